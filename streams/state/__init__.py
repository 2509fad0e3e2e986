"""Live shard ownership and durable checkpoints: local files and the compacted changelog topic."""
