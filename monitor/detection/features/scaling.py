"""Fixed-range feature scaling into the unit box, shared by every model of a family."""

from __future__ import annotations

import math
from typing import Any

from monitor.runtime.slotstate import as_dict, get_state, set_state


class LogScaler:
    """Maps each known feature to ``log1p(value) / log1p(cap)``, saturating at 1.

    Needs no learning, so it is deterministic, cheap, and the same before and after a
    restart. Features without a cap are dropped.
    """

    def __init__(self, caps: dict[str, float] | None = None) -> None:
        # Callable without arguments: a compiled build unpickles by calling the class.
        caps = caps if caps is not None else {}
        self.scales = {name: 1.0 / math.log1p(cap) for name, cap in caps.items()}

    def __getstate__(self) -> dict[str, Any]:
        return get_state(self)

    def __setstate__(self, state: Any) -> None:
        set_state(self, as_dict(state))

    def __call__(self, features: dict[str, float]) -> dict[str, float]:
        scales = self.scales
        return {name: _scale(value, scales[name])
                for name, value in features.items() if name in scales}

    def select(self, features: dict[str, float], names: list[str]) -> list[float | None]:
        """The scaled values of ``names``, in order, as :meth:`__call__` gives them (``None``
        for a feature that is missing or has no cap), without building the dict."""
        scales = self.scales
        selected: list[float | None] = []
        for name in names:
            value = features.get(name)
            scale = scales.get(name)
            selected.append(None if value is None or scale is None else _scale(value, scale))
        return selected


def _scale(value: float, scale: float) -> float:
    """``log1p(value)`` over ``log1p(cap)``, capped at 1; 0 for a value of 0 or less."""
    return min(1.0, math.log1p(value) * scale) if value > 0 else 0.0
