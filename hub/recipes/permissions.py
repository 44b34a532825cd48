"""Permission dependencies of the recipe routes."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

WriteRecipes = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST))
ReadRecipes = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE))
