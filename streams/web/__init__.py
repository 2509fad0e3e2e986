"""The worker's HTTP endpoints: health, readiness and metrics, and the risk team's API."""
