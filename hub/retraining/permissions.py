"""Permission dependencies of the retraining routes."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

#: A plant requests retraining for itself (admins may replay a request).
RequestRetraining = Depends(Allow(Role.ADMIN, own_plant=True))
#: Central roles read every request; a plant token reads its own plant's.
ReadPlantRetraining = Depends(
    Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE, own_plant=True)
)
#: The fleet-wide listing and the "why did this version change" query: central roles.
ReadRetraining = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE))
