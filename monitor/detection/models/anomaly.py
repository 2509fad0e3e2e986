"""Online anomaly scoring per entity family with River's HalfSpaceTrees."""

from __future__ import annotations

from typing import Any

from river import anomaly
from river.tree.padded import make_padded_tree

from monitor.config import AnomalySettings
from monitor.detection.features.scaling import LogScaler
from monitor.detection.models.halfspace import FlatTrees
from monitor.runtime.slotstate import as_dict, get_state, set_state


class AnomalyModel:
    """Half-space trees over features scaled into the unit box by fixed log caps.

    Each feature maps to ``log1p(value) / log1p(cap)`` (saturating at 1), so scaling
    needs no learning and costs one pass over the dict. Keep trees small: the model
    rebuilds its mass profile every ``window_size`` learned events, at a cost that grows
    with ``n_trees * 2**height``. Learning every ``learn_every``-th event keeps the
    profile representative for a fraction of the cost; scoring happens only where a
    typology rule has a finding to weigh.

    Once River has built the trees (on the first learned event, or :meth:`build`),
    learning and scoring run on a :class:`~monitor.detection.models.halfspace.FlatTrees` copy of
    them;
    River's model, with the masses written back, is what pickles.
    """

    def __init__(self, settings: AnomalySettings | None = None,
                 caps: dict[str, float] | None = None) -> None:
        # Callable without arguments: a compiled build unpickles by calling the class.
        settings = settings if settings is not None else AnomalySettings()
        self.model = anomaly.HalfSpaceTrees(
            n_trees=settings.n_trees, height=settings.height,
            window_size=settings.window_size, seed=settings.seed,
        )
        self._scaled = LogScaler(caps if caps is not None else {})
        self.learn_every = settings.learn_every
        self.window_size = settings.window_size
        self.seen = 0
        self.learned = 0
        self._flat: FlatTrees | None = None

    def __getstate__(self) -> dict[str, Any]:
        if self._flat is not None:
            self._flat.store(self.model)
        state = get_state(self)
        state.pop("_flat", None)
        return state

    def __setstate__(self, state: Any) -> None:
        set_state(self, as_dict(state))
        self._flat = None

    def _trees(self) -> FlatTrees | None:
        """The flat copy of River's trees, made once they exist."""
        flat = self._flat
        if flat is None and self.model.trees:
            flat = self._flat = FlatTrees(self.model)
        return flat

    def build(self) -> None:
        """Build the trees and their flat copy now, not on the first event learned.

        That first event took 4-5 ms (ten trees, then the copy), for each model of each
        shard: a worker's first batch waited about 50 ms for them. River builds the trees
        over the sorted names of the first event's scaled features, and every family's
        ``features`` has each capped name, so these are the trees River would build: the
        same calls on the same seeded generator, as in River 0.26's ``learn_one``
        (``tests/unit/test_shard.py`` checks that they learn and score the same).
        """
        model = self.model
        if not model.trees and self._scaled.scales:
            names = sorted(self._scaled.scales)
            model.trees = [make_padded_tree(limits={name: model.limits[name] for name in names},
                                            height=model.height, padding=0.15, rng=model.rng,
                                            r_mass=0, l_mass=0)  # type: ignore[no-untyped-call]
                           for _ in range(model.n_trees)]
            model._tree_nodes = [list(tree.iter_dfs())  # type: ignore[no-untyped-call]
                                 for tree in model.trees]
        self._trees()

    def score_one(self, features: dict[str, float]) -> float:
        """Anomaly score in [0, 1]; higher is stranger."""
        flat = self._trees()
        if flat is None:
            return float(self.model.score_one(self._scaled(features)))  # type: ignore[no-untyped-call]
        return flat.score(self._scaled.select(features, flat.names))

    @property
    def ready(self) -> bool:
        """Whether the trees hold a mass profile yet: HalfSpaceTrees scores 0 for everything
        until its first window of ``window_size`` learned events is complete."""
        return self.learned >= self.window_size

    def turn(self) -> bool:
        """Count one event of the family; True when it is in the learning sample."""
        self.seen += 1
        return self.seen % self.learn_every == 0

    def learn_one(self, features: dict[str, float]) -> None:
        flat = self._trees()
        if flat is None:  # River builds its trees from the first event it learns
            self.model.learn_one(self._scaled(features))  # type: ignore[no-untyped-call]
        else:
            flat.learn(self._scaled.select(features, flat.names))
        self.learned += 1
