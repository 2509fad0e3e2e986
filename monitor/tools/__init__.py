"""Offline tools on the same processing code: replay, evaluation, the simulator, the demo
sample, cost and state-size measurements."""
