"""Signed webhook delivery of alerts (Standard Webhooks 1.0) and a receiver that verifies it.

``signing`` signs and verifies, ``guard`` refuses private and loopback targets,
``retry`` schedules attempts, ``sink`` makes one delivery attempt, ``outbox`` runs the
deliveries of a stream of alerts with retries and dead letters, ``receiver`` is the
``fraudmon webhook-receiver`` server.
"""
