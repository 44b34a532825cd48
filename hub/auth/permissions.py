"""Permission dependencies declared on routes, so the authorization matrix reads off the table."""

from __future__ import annotations

from fastapi import Request

from federation.errors import Forbidden
from federation.schemas.auth import Role
from hub.deps import PrincipalDep, SessionDep
from hub.registry import service as registry_service

ALL_ROLES = frozenset(Role)
READERS = frozenset({Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE})
WRITERS = frozenset({Role.ADMIN, Role.DATA_SCIENTIST})


class Allow:
    """Allow the listed roles; ``plant`` tokens only for their own ``{plant_id}``.

    Parameters
    ----------
    roles
        Roles that may call the route.
    own_plant
        Also allow ``plant`` tokens when the path's ``plant_id`` is the token's plant.
    """

    def __init__(self, *roles: Role, own_plant: bool = False) -> None:
        self.roles = frozenset(roles)
        self.own_plant = own_plant

    async def __call__(self, request: Request, principal: PrincipalDep) -> None:
        """Raise :class:`Forbidden` unless the principal may call this route."""
        if principal.role in self.roles:
            return
        if self.own_plant and principal.role == Role.PLANT:
            if request.path_params.get("plant_id") == principal.plant_id:
                return
            raise Forbidden(
                f"This plant token is bound to plant '{principal.plant_id}' and cannot act "
                "for another plant."
            )
        allowed = ", ".join(
            sorted(r.value for r in self.roles | ({Role.PLANT} if self.own_plant else set()))
        )
        raise Forbidden(
            f"Role '{principal.role.value}' may not do this; it needs one of: {allowed}."
        )


class AllowArtifactRead:
    """Admins and data scientists read every artifact; a plant only what is assigned to it."""

    def __call__(self, request: Request, principal: PrincipalDep, session: SessionDep) -> None:
        """Raise :class:`Forbidden` unless the principal may download this artifact."""
        if principal.role in WRITERS:
            return
        if principal.role == Role.PLANT and principal.plant_id is not None:
            digest = str(request.path_params.get("digest", ""))
            if registry_service.artifact_assigned_to_plant(
                session=session, digest=digest, plant_id=principal.plant_id
            ):
                return
            raise Forbidden(
                f"Artifact sha256:{digest} is not assigned to plant '{principal.plant_id}'."
            )
        raise Forbidden(f"Role '{principal.role.value}' may not download artifacts.")
