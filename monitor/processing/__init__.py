"""Driving events through shards: the in-process engine (replay, backtests) and the live
worker's per-view loop, and the per-decision counts they keep."""
