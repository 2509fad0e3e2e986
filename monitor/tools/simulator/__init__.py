"""A labelled traffic simulator: everyday life, honest look-alikes and fraud mechanisms.

``simulate(SimParams(seed=..., days=..., people=...))`` returns the events (replay
format, sorted by event time) and a ground-truth document (see :mod:`.truth`). Every
pattern instance draws its own shape from wide distributions; nothing here is tuned to
a detector. Pure Python and deterministic for a seed.

Modules, one job each: ``world`` (the cast), ``income``, ``spending``, ``housing``,
``social``, ``borrowing`` (everyday life and the look-alikes), ``rollover``, ``mules``,
``structuring``, ``farms`` (the fraud mechanisms), ``labels`` (late analyst feedback),
``log`` and ``truth`` (outputs), ``generate`` (one run), ``command`` (the CLI).
"""

from monitor.tools.simulator.generate import Simulation, simulate
from monitor.tools.simulator.params import SimParams

__all__ = ["SimParams", "Simulation", "simulate"]
