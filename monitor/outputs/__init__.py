"""Where results go: Prometheus metrics, the alert store, webhook delivery, and the sink
interface they share."""
