"""The knobs of a simulation run. Rates are per 1,000 people so a run scales with ``people``.

Each pattern instance then draws its own shape (amounts, timings, counts, chain
lengths) from wide distributions inside its generator; these are only the volumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from monitor.tools.simulator.clock import DEFAULT_START


@dataclass(frozen=True, slots=True)
class SimParams:
    seed: int = 7
    days: int = 180
    people: int = 3000
    start: datetime = field(default=DEFAULT_START)
    reporting_line: float = 50_000.0
    # Lending market.
    normal_lenders: int = 40
    predatory_lenders: int = 5
    # Fraud volumes, per 1,000 people (each at least the minimum below).
    spirals_per_1000: float = 8.0
    mule_rings_per_1000: float = 3.0
    structurers_per_1000: float = 3.0
    farms_per_1000: float = 1.2
    # Look-alike volumes.
    ordinary_borrower_share: float = 0.12
    consolidations_per_1000: float = 8.0
    salary_saver_share: float = 0.15
    renter_share: float = 0.35
    # Analyst feedback.
    label_share: float = 0.3
    cleared_share: float = 0.05
    chargeback_share: float = 0.04
    label_delay_days: float = 10.0

    def count(self, per_1000: float, minimum: int = 1) -> int:
        """How many instances a per-1,000 rate gives for this population."""
        return max(minimum, round(per_1000 * self.people / 1000))

    def validate(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.people < 50:
            raise ValueError("people must be at least 50")
        if self.reporting_line <= 100:
            raise ValueError("the reporting line must be above 100")
        if self.predatory_lenders < 1 or self.normal_lenders < 4:
            raise ValueError("need at least 1 predatory and 4 normal lenders")
        for name in ("label_share", "cleared_share", "chargeback_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
