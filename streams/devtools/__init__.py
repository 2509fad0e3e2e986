"""Development tooling, not the service: a local Kafka broker, the bench, the demo, and
``fraudmon produce``."""
