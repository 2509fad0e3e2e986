"""Kafka adapters: the Faust app (the host), the consumer loop, topics, the local broker.

Everything here is thin: decode, call :mod:`monitor`, emit.
"""
