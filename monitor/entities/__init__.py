"""Per-entity state in event time, one module per entity family."""

from monitor.entities.account import AccountState
from monitor.entities.base import EntityState, Finding
from monitor.entities.borrower import BorrowerState
from monitor.entities.device import DeviceState
from monitor.entities.lender import LenderState

FAMILIES: dict[str, type[EntityState]] = {
    "account": AccountState,
    "borrower": BorrowerState,
    "lender": LenderState,
    "device": DeviceState,
}

__all__ = ["FAMILIES", "AccountState", "BorrowerState", "DeviceState", "EntityState", "Finding",
           "LenderState"]
