"""Routing: which entity views an event updates, which shard (Kafka partition) owns each,
and the routed record that carries views between workers."""
