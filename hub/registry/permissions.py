"""Permission dependencies of the registry routes (one instance per rule)."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow, AllowArtifactRead

#: Admins enroll and change plants.
ManagePlants = Depends(Allow(Role.ADMIN))
#: Central teams write the registry (models, versions, artifacts, tags, aliases).
WriteRegistry = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST))
#: Everyone but plants reads the registry.
ReadRegistry = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE))
#: Registry reads about one plant: central roles, and that plant itself.
ReadPlant = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE, own_plant=True))
#: A plant fetches what it is assigned; central teams see every plant's assignments.
ReadAssignments = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE, own_plant=True))
#: Artifact bytes: central writers, or a plant for artifacts assigned to it.
ReadArtifact = Depends(AllowArtifactRead())
