"""The one exception tree of fraud-monitor.

::

    FraudMonitorError            root; ``retryable`` says whether trying again may help
    ├── ConfigError              a configuration file or override is invalid
    ├── InvalidEvent             an input event breaks the contract (goes to dead-letter)
    ├── CheckpointError          a state checkpoint cannot be read or written
    ├── ReplayInputError         a replay input file cannot be read at all
    ├── ReplayOutputError        replay's output directory cannot be written
    ├── SinkError                a sink could not take a record; ``retry_after`` may say when
    │   ├── DeliveryFailed       a webhook attempt failed (network, timeout, 5xx, 429, 4xx)
    │   ├── ReceiverGone         the receiver answered 410 Gone: stop sending to it
    │   └── TargetRefused        the target address is private or loopback and not allowed
    ├── StoreUnavailable         the alert store's database failed or cannot be reached
    ├── LabelsUnavailable        the labels topic did not take a case decision's label in time
    ├── BadCaseRequest           a case request body is not a transition or a note (400)
    ├── CaseConflict             a case request does not fit the case as it is now (409)
    └── SignatureError           a webhook's signature or timestamp does not verify

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


class SinkError(FraudMonitorError):
    """A sink could not take a record.

    ``result`` is a short, bounded word for metrics (``server_error``, ``timeout``, ...);
    ``retry_after`` is the delay in seconds the peer asked for, when it asked.
    """

    def __init__(self, message: str, *, result: str, retryable: bool = False,
                 retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class DeliveryFailed(SinkError):
    """One webhook attempt failed; ``retryable`` says whether another may succeed."""


class ReceiverGone(SinkError):
    """The receiver answered 410 Gone: it asks never to be sent anything again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, result="gone", status=410)


class TargetRefused(SinkError):
    """The webhook target resolves to an address the configuration does not allow."""

    def __init__(self, message: str) -> None:
        super().__init__(message, result="refused")


class StoreUnavailable(FraudMonitorError):
    """The alert store's database failed or cannot be reached (retried; a 503 to the API)."""

    retryable = True


class LabelsUnavailable(FraudMonitorError):
    """Kafka did not take a case decision's label, or answer, in time (a 503 to the API;
    a settle pass writes it later)."""

    retryable = True


class BadCaseRequest(FraudMonitorError, ValueError):
    """A case request body that is not a transition or a note; one line for the 400."""


class CaseConflict(FraudMonitorError):
    """A case request that does not fit the case as it is now (409); ``allowed`` names
    the statuses the case may move to."""

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class SignatureError(FraudMonitorError):
    """A received webhook's signature, id or timestamp does not verify."""
