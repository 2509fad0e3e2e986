"""The closed vocabularies: entity types, fraud patterns and alert severities.

The event contract validates against them, metrics label by them, receivers filter by
them, the simulator and the HTTP API use them: each is defined here once. The entity
families of :mod:`monitor.detection.entities` are one per entity type (a test holds it).
"""

from __future__ import annotations

from typing import Final

PATTERNS: Final = ("rollover_loan", "predatory_lender", "mule_account", "structuring",
                   "fake_account")
SEVERITIES: Final = ("low", "medium", "high")
ENTITY_TYPES: Final = ("account", "borrower", "device", "lender")
"""Every entity type: one per entity family; labels name one of these."""
LOOKUP_TYPES: Final = ("account", "borrower", "lender")
"""Entity types the HTTP API looks up by default, in this order."""


def severity_rank(severity: str) -> int:
    """0 for ``low`` up to 2 for ``high``; -1 for anything else.

    >>> severity_rank("medium") > severity_rank("low")
    True
    """
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return -1
