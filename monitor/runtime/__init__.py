"""Build and process tuning, not the domain: the mypyc-compiled hot path and the
garbage-collector policy."""
