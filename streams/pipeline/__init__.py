"""The worker's consumer loop on one aiokafka consumer: ingest, score, checkpoint,
rebalance, and the producer batches and reference lookups it uses."""
