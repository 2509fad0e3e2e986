"""Kafka adapters: the Faust app, its topics and agents, and the local broker tooling.

Everything here is thin: decode, call :mod:`monitor`, emit.
"""
