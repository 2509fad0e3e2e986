"""Reading checkpoints written before the package layout moved (format 1, pickled).

Pickles name each class by its module path, and the modules moved into subpackages
(``monitor.shard`` is ``monitor.state.shard`` now): a checkpoint written before the move
names the old paths. :func:`loads` reads either, mapping each old path to its new one.
Checkpoints are local, trusted files in this format; the changelog's successor format
executes nothing when read.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Final

MOVED: Final[dict[str, str]] = {
    "monitor.events": "monitor.contract.events",
    "monitor.records": "monitor.contract.records",
    "monitor.patterns": "monitor.contract.vocabulary",
    "monitor.routing": "monitor.routing.views",
    "monitor.partitioning": "monitor.routing.partitioner",
    "monitor.envelope": "monitor.routing.envelope",
    "monitor.entities": "monitor.detection.entities",
    "monitor.entities.base": "monitor.detection.entities.base",
    "monitor.entities.account": "monitor.detection.entities.account",
    "monitor.entities.borrower": "monitor.detection.entities.borrower",
    "monitor.entities.device": "monitor.detection.entities.device",
    "monitor.entities.lender": "monitor.detection.entities.lender",
    "monitor.windows": "monitor.detection.features.windows",
    "monitor.sketch": "monitor.detection.features.sketch",
    "monitor.scaling": "monitor.detection.features.scaling",
    "monitor.halfspace": "monitor.detection.models.halfspace",
    "monitor.anomaly": "monitor.detection.models.anomaly",
    "monitor.supervised": "monitor.detection.models.supervised",
    "monitor.quality": "monitor.detection.models.quality",
    "monitor.policy": "monitor.detection.policy",
    "monitor.shard": "monitor.state.shard",
    "monitor.dedup": "monitor.state.dedup",
    "monitor.slotstate": "monitor.runtime.slotstate",
}
"""Module paths of state classes before the layout moved, and where they are now."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED.get(module, module), name)


def loads(data: bytes) -> Any:
    """Unpickle ``data``, a checkpoint or a part of one, written before or after the move."""
    return _Unpickler(io.BytesIO(data)).load()
