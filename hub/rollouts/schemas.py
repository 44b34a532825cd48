"""Wire shapes of the fleet routes, defined once in :mod:`federation.schemas.rollouts`."""

from federation.schemas.rollouts import (
    InventoryList,
    InventoryRow,
    RollbackCreate,
    RollbackRead,
    RollbackResult,
    RolloutAction,
    RolloutCreate,
    RolloutPage,
    RolloutRead,
)

__all__ = [
    "InventoryList",
    "InventoryRow",
    "RollbackCreate",
    "RollbackRead",
    "RollbackResult",
    "RolloutAction",
    "RolloutCreate",
    "RolloutPage",
    "RolloutRead",
]
