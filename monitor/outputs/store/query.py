"""What one ``GET /alerts`` asks of the alert store, and the cursor that continues a page.

Pages run newest first by event time, ties broken by ``alert_id``: an order every
worker's store agrees on, so a cursor from one worker continues on another. A cursor is
opaque to clients: the (event time, alert id) of the last alert of a page, base64url.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from monitor.contract.vocabulary import SEVERITIES, severity_rank

MAX_CURSOR_CHARS = 200
_CURSOR = re.compile(r"^(-?[0-9]{1,19}):([A-Za-z0-9_.:-]{1,128})$")


class BadCursor(ValueError):
    """A cursor this store did not hand out."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: event time in microseconds and the alert id."""

    ts_us: int
    alert_id: str

    def encode(self) -> str:
        """The opaque cursor text.

        >>> Position(1767571200000000, "al_1").encode()
        'MTc2NzU3MTIwMDAwMDAwMDphbF8x'
        >>> Position.decode('MTc2NzU3MTIwMDAwMDAwMDphbF8x')
        Position(ts_us=1767571200000000, alert_id='al_1')
        """
        text = f"{self.ts_us}:{self.alert_id}".encode()
        return base64.urlsafe_b64encode(text).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        if not 1 <= len(cursor) <= MAX_CURSOR_CHARS:
            raise BadCursor("'cursor' is not one this API handed out")
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BadCursor("'cursor' is not one this API handed out") from None
        found = _CURSOR.match(text)
        if found is None:
            raise BadCursor("'cursor' is not one this API handed out")
        return cls(int(found.group(1)), found.group(2))


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters and page of one ``GET /alerts``; ``None`` means no filter. ``since`` and
    ``until`` are event times (unix seconds), ``since`` inclusive."""

    pattern: str | None = None
    entity: str | None = None
    entity_type: str | None = None
    severity: str | None = None
    min_severity: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: Position | None = None

    def severities(self) -> tuple[int, ...] | None:
        """The severity ranks wanted (``severity`` and ``min_severity`` together), or
        ``None`` for any."""
        if self.severity is None and self.min_severity is None:
            return None
        low = severity_rank(self.min_severity) if self.min_severity is not None else 0
        return tuple(rank for rank, name in enumerate(SEVERITIES)
                     if rank >= low and (self.severity is None or name == self.severity))


@dataclass(frozen=True, slots=True)
class Page:
    """One page, newest first; ``next_cursor`` is ``None`` on the last page."""

    alerts: list[dict[str, Any]]
    next_cursor: str | None
