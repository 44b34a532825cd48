"""Permission dependencies of the metrics routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from federation.errors import Forbidden
from federation.schemas.auth import Role
from hub.auth.permissions import Allow
from hub.deps import PrincipalDep

#: A plant reports only for itself (admins may backfill).
WriteMetrics = Depends(Allow(Role.ADMIN, own_plant=True))
#: Reading one plant's stored report: central roles, and that plant itself.
ReadPlantMetrics = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE, own_plant=True))


class PlantScopedRead:
    """Central roles read every plant; a plant token is confined to its own plant.

    Returns the plant the query must be limited to (None: no limit beyond the caller's own
    ``plant_id`` filter). A plant token that filters on another plant gets 403, not an
    empty page, so a misconfigured node notices.
    """

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, request: Request, principal: PrincipalDep) -> str | None:
        """Raise :class:`Forbidden` unless the principal may read; return the plant scope."""
        requested = request.query_params.get("plant_id") or None
        if principal.role in self.roles:
            return requested
        if principal.role == Role.PLANT and principal.plant_id is not None:
            if requested not in (None, principal.plant_id):
                raise Forbidden(
                    f"This plant token is bound to plant '{principal.plant_id}' and cannot read "
                    f"plant '{requested}'s metrics."
                )
            return principal.plant_id
        raise Forbidden(f"Role '{principal.role.value}' may not read metrics.")


#: Every plant for central roles (executives read-only); a plant token only its own.
ReadMetricsScope = Annotated[
    str | None, Depends(PlantScopedRead(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE))
]
