"""Permission dependencies of the event routes."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

#: Only a plant writes its own reports (admins may backfill).
WriteEvents = Depends(Allow(Role.ADMIN, own_plant=True))
#: Central roles read every plant's reports; a plant reads its own.
ReadEvents = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE, own_plant=True))
