"""Per-shard state: the shard (entities, models, dedup window, decision memory), its
snapshots, and where checkpoints are kept."""
