"""Analyst feedback, late as in life: confirmed labels for a share of the positives,
cleared labels for a share of the look-alikes someone looked at, and chargebacks on
single payments. Labels that would land after the end of the run are not sent.
"""

from __future__ import annotations

from monitor.contract.vocabulary import PATTERNS
from monitor.tools.simulator.clock import DAY
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import clip, lognormal
from monitor.tools.simulator.truth import FAKE, MULE, ROLLOVER, STRUCTURING

SUSPECTED = {"merchant": MULE, "payroll": FAKE, "ordinary_borrower": ROLLOVER,
             "consolidation": ROLLOVER, "landlord": STRUCTURING, "household_device": FAKE,
             "salary_saver": MULE}


def generate(ctx: Context) -> dict[str, int]:
    """Emit the labels; returns how many of each kind were sent."""
    rng = ctx.rng("labels")
    params, log, truth = ctx.params, ctx.log, ctx.truth
    counts = {"confirmed": 0, "cleared": 0, "chargebacks": 0}

    def delay() -> int:
        return int(clip(lognormal(rng, params.label_delay_days * DAY, 0.6), 2 * DAY, 90 * DAY))

    positive_keys = set()
    for pattern in PATTERNS:
        for key, start in truth.positives(pattern):
            positive_keys.add(key)
            entity_type, entity = key
            if rng.random() < params.label_share and log.entity_label(
                    start + delay(), entity, entity_type, pattern, True):
                counts["confirmed"] += 1
    candidates = [(kind, key) for kind in SUSPECTED for key in truth.lookalikes(kind)
                  if rng.random() < params.cleared_share and key not in positive_keys]
    seen = log.first_seen({entity for _, (_, entity) in candidates})
    for kind, (entity_type, entity) in candidates:
        first = seen.get(entity)
        if first is None:
            continue
        looked_at = first + int(rng.random() * max(DAY, ctx.horizon - first) * 0.5)
        if log.entity_label(looked_at + delay(), entity, entity_type, SUSPECTED[kind], False):
            counts["cleared"] += 1
    for chargeback in ctx.chargebacks:
        if log.chargeback(chargeback.target["ts"] + chargeback.delay, chargeback.target,
                          chargeback.confirmed):
            counts["chargebacks"] += 1
    return counts
