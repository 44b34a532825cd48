"""Permission dependencies of the fleet routes (rollouts, rollbacks, inventory)."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

#: Central teams run rollouts and rollbacks.
RunRollouts = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST))
#: Everyone but plants reads rollouts and the inventory (the dashboards check the same set).
FLEET_READERS = frozenset({Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE})
ReadFleet = Depends(Allow(*FLEET_READERS))
