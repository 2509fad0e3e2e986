"""The one exception tree of fraud-monitor.

::

    FraudMonitorError            root; ``retryable`` says whether trying again may help
    ├── ConfigError              a configuration file or override is invalid
    ├── InvalidEvent             an input event breaks the contract (goes to dead-letter)
    ├── CheckpointError          a state checkpoint cannot be read or written
    ├── ReplayInputError         a replay input file cannot be read at all
    └── ReplayOutputError        replay's output directory cannot be written

Third-party exceptions are translated into these at the boundary that meets them.
"""

from __future__ import annotations


class FraudMonitorError(Exception):
    """Root of every error fraud-monitor raises on purpose."""

    retryable: bool = False


class ConfigError(FraudMonitorError):
    """A configuration file or environment override is invalid."""


class InvalidEvent(FraudMonitorError):
    """An input event breaks the event contract; ``reason`` is one line for the dead-letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CheckpointError(FraudMonitorError):
    """A state checkpoint cannot be read or written."""

    retryable = True


class ReplayInputError(FraudMonitorError):
    """A replay input file cannot be opened or read."""


class ReplayOutputError(FraudMonitorError):
    """Replay's output directory or files cannot be created or written."""
