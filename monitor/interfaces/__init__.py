"""How people and other tools talk to the monitor: the HTTP API's rules, its OpenAPI
document, and importers of third-party exports."""
