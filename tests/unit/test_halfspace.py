"""The flat half-space trees learn and score exactly as River's HalfSpaceTrees."""

from __future__ import annotations

import pickle
import random

from river import anomaly

from monitor.config import AnomalySettings
from monitor.detection.models.anomaly import AnomalyModel

CAPS = {f"f{i}": 10.0 for i in range(6)}
SETTINGS = AnomalySettings(n_trees=4, height=5, window_size=10, seed=7, learn_every=1)


def _features(rng: random.Random) -> dict[str, float]:
    """Random features; some are missing, so both ways down a missing split are taken."""
    return {name: rng.choice([0.0, rng.uniform(0, 12)]) for name in CAPS
            if rng.random() > 0.2}


def _river() -> anomaly.HalfSpaceTrees:
    return anomaly.HalfSpaceTrees(n_trees=SETTINGS.n_trees, height=SETTINGS.height,
                                  window_size=SETTINGS.window_size, seed=SETTINGS.seed)


def _masses(hst: anomaly.HalfSpaceTrees) -> list[tuple[int, int]]:
    return [(node.l_mass, node.r_mass) for tree in hst.trees for node in tree.iter_dfs()]


def test_scores_and_masses_equal_rivers_across_windows_and_checkpoints() -> None:
    rng = random.Random(1)
    model, river = AnomalyModel(SETTINGS, CAPS), _river()
    for step in range(95):  # nine and a half windows
        features = _features(rng)
        scaled = model._scaled(features)
        assert model.score_one(features) == float(river.score_one(scaled))
        model.learn_one(features)
        river.learn_one(scaled)
        if step % 17 == 16:  # a checkpoint and restore in mid-window
            model = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
            assert _masses(model.model) == _masses(river)
            assert model.model.counter == river.counter
    assert river.counter == 5 and not river._first_window


def test_a_checkpoint_of_rivers_model_alone_restores_into_the_flat_trees() -> None:
    """Checkpoints from before the flat trees hold River's model only."""
    rng = random.Random(2)
    model, river = AnomalyModel(SETTINGS, CAPS), _river()
    for _ in range(23):
        features = _features(rng)
        model.learn_one(features)
        river.learn_one(model._scaled(features))
    state = model.__getstate__()
    assert "_flat" not in state
    restored = AnomalyModel()
    restored.__setstate__({name: value for name, value in state.items()})
    for _ in range(30):
        features = _features(rng)
        scaled = restored._scaled(features)
        assert restored.score_one(features) == float(river.score_one(scaled))
        restored.learn_one(features)
        river.learn_one(scaled)


def test_select_gives_the_scaled_values_by_name() -> None:
    rng = random.Random(3)
    scaler = AnomalyModel(SETTINGS, CAPS)._scaled
    names = [*CAPS, "uncapped"]
    for _ in range(50):
        features = {**_features(rng), "uncapped": 1.0}
        scaled = scaler(features)
        assert scaler.select(features, names) == [scaled.get(name) for name in names]
