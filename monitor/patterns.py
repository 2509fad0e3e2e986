"""The closed vocabularies outputs use: fraud patterns and alert severities.

Metrics label by these, receivers filter by them, and the HTTP API validates against
them, so they live in one place.
"""

from __future__ import annotations

from typing import Final

PATTERNS: Final = ("rollover_loan", "predatory_lender", "mule_account", "structuring",
                   "fake_account")
SEVERITIES: Final = ("low", "medium", "high")
ENTITY_TYPES: Final = ("account", "borrower", "lender")
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
