"""Permission dependencies of the campaign routes."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

RunCampaigns = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST))
ReadCampaigns = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE))
