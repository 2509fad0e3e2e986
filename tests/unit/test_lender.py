"""The predatory-lender rule needs both halves: driving rollovers/referrals and dear terms."""

from __future__ import annotations

from monitor.config import DetectionSettings
from monitor.detection.entities.lender import LenderState


def strength(**features: float) -> float:
    base = {"loans_30d": 40.0, "rollover_share": 0.0, "referral_ratio": 0.0,
            "short_term_share": 0.0, "fee_rate": 0.0, "referrals_out_30d": 0.0,
            "rollovers_30d": 0.0}
    found = LenderState().findings({**base, **features}, DetectionSettings())
    return found[0].strength if found else 0.0


def test_a_short_dear_lender_that_drives_rollovers_is_strong() -> None:
    assert strength(rollover_share=0.8, referral_ratio=0.5, short_term_share=1.0,
                    fee_rate=0.25) == 1.0


def test_a_fairly_priced_lender_used_by_spiralling_borrowers_stays_weak() -> None:
    fair = strength(rollover_share=1.1, referral_ratio=0.33, short_term_share=0.5,
                    fee_rate=0.04)
    dear = strength(rollover_share=1.1, referral_ratio=0.33, short_term_share=0.5,
                    fee_rate=0.25)
    assert fair < 0.6 < dear


def test_dear_terms_alone_are_not_predatory() -> None:
    assert strength(short_term_share=1.0, fee_rate=0.4) == 0.0
