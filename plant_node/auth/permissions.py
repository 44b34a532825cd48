"""Permission dependencies declared on routes, so the authorization matrix reads off the table."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from federation.errors import Forbidden
from plant_node.auth.schemas import NodePrincipal, NodeRole
from plant_node.deps import PrincipalDep

#: Who may do what (the README's table is this one).
LINE = frozenset({NodeRole.LINE, NodeRole.ENGINEER})
ENGINEER = frozenset({NodeRole.ENGINEER})
READ = frozenset(NodeRole)


class Allow:
    """Allow the listed roles; any other authenticated role gets 403.

    Parameters
    ----------
    roles
        Roles that may call the route.
    """

    def __init__(self, roles: frozenset[NodeRole]) -> None:
        self.roles = roles

    async def __call__(self, principal: PrincipalDep) -> NodePrincipal:
        """Return the principal, or raise :class:`Forbidden` when its role may not call this."""
        if principal.role in self.roles:
            return principal
        allowed = ", ".join(sorted(r.value for r in self.roles))
        raise Forbidden(
            f"Role '{principal.role.value}' may not do this; it needs one of: {allowed}."
        )


#: Route decorators' ``dependencies=`` lists.
allow_line = [Depends(Allow(LINE))]
allow_engineer = [Depends(Allow(ENGINEER))]
allow_read = [Depends(Allow(READ))]
#: A route parameter giving the engineer who calls (recorded with what they change).
EngineerDep = Annotated[NodePrincipal, Depends(Allow(ENGINEER))]
