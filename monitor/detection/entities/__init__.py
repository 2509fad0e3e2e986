"""Per-entity state in event time, one module per entity family."""

from monitor.detection.entities.account import AccountState
from monitor.detection.entities.base import EntityState, Finding
from monitor.detection.entities.borrower import BorrowerState
from monitor.detection.entities.device import DeviceState
from monitor.detection.entities.lender import LenderState

FAMILIES: dict[str, type[EntityState]] = {
    "account": AccountState,
    "borrower": BorrowerState,
    "lender": LenderState,
    "device": DeviceState,
}

__all__ = ["FAMILIES", "AccountState", "BorrowerState", "DeviceState", "EntityState", "Finding",
           "LenderState"]
