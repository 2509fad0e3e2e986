"""River's half-space trees as flat arrays, for the per-event learning and scoring.

River keeps each tree as linked node objects, so one learning step reads and writes
about 70 attributes of Python objects (~10 us, a third of a replay's instructions).
:class:`FlatTrees` holds the same trees as lists (split feature, threshold, children,
masses) and does exactly River's ``learn_one`` / ``score_one`` arithmetic on them, in
the same order, so scores are bit-identical. River's model stays the state a checkpoint
pickles: :meth:`FlatTrees.store` writes the masses back into its nodes first.
"""

from __future__ import annotations

from typing import Any


class FlatTrees:
    """A built ``river.anomaly.HalfSpaceTrees``, read once into arrays; nodes in DFS order."""

    def __init__(self, hst: Any) -> None:
        self.height: int = hst.height
        self.window_size: int = hst.window_size
        self.max_score: int = hst.n_trees * hst.window_size * (2 ** (hst.height + 1) - 1)
        self.counter: int = hst.counter
        self.first_window: bool = hst._first_window
        self.nodes: list[Any] = []
        self.roots: list[int] = []
        self.names: list[str] = []
        """The split features; a branch holds the index of its feature here."""
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.l_mass: list[int] = []
        self.r_mass: list[int] = []
        for tree in hst.trees:
            self.roots.append(self._add(tree))

    def _add(self, node: Any) -> int:
        """Append ``node`` and its subtree (pre-order); returns its index."""
        index = len(self.nodes)
        self.nodes.append(node)
        self.l_mass.append(node.l_mass)
        self.r_mass.append(node.r_mass)
        children = getattr(node, "children", None)
        if children is None:  # a leaf
            self.feature.append(-1)
            self.threshold.append(0.0)
            self.left.append(-1)
            self.right.append(-1)
            return index
        name: str = node.feature
        if name not in self.names:
            self.names.append(name)
        self.feature.append(self.names.index(name))
        self.threshold.append(node.threshold)
        self.left.append(-1)
        self.right.append(-1)
        self.left[index] = self._add(children[0])
        self.right[index] = self._add(children[1])
        return index

    def learn(self, values: list[float | None]) -> None:
        """River's ``learn_one`` once its trees are built, given the event's value of each
        of :attr:`names` (``None`` where missing)."""
        l_mass, feature, threshold = self.l_mass, self.feature, self.threshold
        left, right = self.left, self.right
        height = self.height
        for root in self.roots:
            node = root
            depth = 0
            while depth < height:
                depth += 1
                l_mass[node] = l_mass[node] + 1
                value = values[feature[node]]
                if value is None:  # River goes down the busier side
                    low, high = left[node], right[node]
                    node = high if l_mass[low] < l_mass[high] else low
                else:
                    node = left[node] if value < threshold[node] else right[node]
            l_mass[node] = l_mass[node] + 1
        self.counter += 1
        if self.counter == self.window_size:  # the window's masses become the reference
            self.r_mass = l_mass
            self.l_mass = [0] * len(l_mass)
            self.first_window = False
            self.counter = 0

    def score(self, values: list[float | None]) -> float:
        """River's ``score_one`` (0 during the first window, else in [0, 1]), given the
        event's value of each of :attr:`names`."""
        if self.first_window:
            return 0.0
        l_mass, r_mass = self.l_mass, self.r_mass
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        height = self.height
        size_limit = 0.1 * self.window_size
        score = 0.0
        for root in self.roots:
            node = root
            depth_pow = 1
            walk = 0.0
            ended = False
            for _ in range(height):
                mass = r_mass[node]
                walk += mass * depth_pow
                if mass < size_limit:
                    ended = True
                    break
                value = values[feature[node]]
                if value is None:
                    low, high = left[node], right[node]
                    node = high if l_mass[low] < l_mass[high] else low
                else:
                    node = left[node] if value < threshold[node] else right[node]
                depth_pow <<= 1
            if not ended:
                walk += r_mass[node] * depth_pow
            score += walk
        return 1 - score / self.max_score

    def store(self, hst: Any) -> None:
        """Write the masses, counter and window flag back into River's model."""
        for node, l_mass, r_mass in zip(self.nodes, self.l_mass, self.r_mass, strict=True):
            node.l_mass = l_mass
            node.r_mass = r_mass
        hst.counter = self.counter
        hst._first_window = self.first_window
