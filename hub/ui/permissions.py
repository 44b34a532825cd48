"""Who may see which dashboard: the session cookie's principal, scoped like the API's roles.

Executives, data scientists and admins see every plant; a plant account sees only its own
plant (and no registry pages, as the registry API refuses plant tokens); anything else is a
403 page. A missing, tampered or expired cookie sends the browser back to sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from federation.errors import Forbidden, Unauthenticated
from federation.schemas.auth import Principal, Role
from hub.audit.permissions import READERS as AUDIT_READERS
from hub.auth import service as auth_service
from hub.deps import SessionDep
from hub.rollouts.permissions import FLEET_READERS
from hub.ui import sessions

CENTRAL = frozenset({Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE})


class SignInRequired(Exception):
    """No valid session: the UI route answers with a redirect to the sign-in page."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in principal of a page request and its session's CSRF token."""

    principal: Principal
    csrf: str

    @property
    def plant_scope(self) -> list[str] | None:
        """Plants this viewer may see: None for every plant."""
        if self.principal.role in CENTRAL:
            return None
        return [self.principal.plant_id] if self.principal.plant_id else []

    def require_plant(self, plant_id: str) -> None:
        """Raise :class:`Forbidden` unless the viewer may see ``plant_id``."""
        scope = self.plant_scope
        if scope is not None and plant_id not in scope:
            raise Forbidden(
                f"This account is bound to plant '{self.principal.plant_id}' and cannot see "
                "other plants."
            )

    def require_roles(self, roles: frozenset[Role], page: str) -> None:
        """Raise :class:`Forbidden` unless the viewer holds one of ``roles`` (as the API)."""
        if self.principal.role not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise Forbidden(
                f"Role '{self.principal.role.value}' may not see the {page}; it needs one of: "
                f"{allowed}."
            )

    @property
    def sees_inventory(self) -> bool:
        """Whether the inventory API (and view) answers this viewer."""
        return self.principal.role in FLEET_READERS

    @property
    def sees_audit(self) -> bool:
        """Whether the audit API (and view) answers this viewer."""
        return self.principal.role in AUDIT_READERS

    def require_central(self) -> None:
        """Raise :class:`Forbidden` unless the viewer holds a central role."""
        if self.principal.role not in CENTRAL:
            raise Forbidden(
                f"Role '{self.principal.role.value}' may not see this page; it needs one of: "
                "admin, data_scientist, executive."
            )


def ui_key(request: Request) -> bytes:
    """Return the key that signs this app's session cookies."""
    key: bytes = request.app.state.ui_key
    return key


async def get_viewer(request: Request, session: SessionDep) -> Viewer:
    """Resolve the session cookie to the viewer (redirect to sign-in when invalid)."""
    key = ui_key(request)
    ui_session = sessions.verify(key, request.cookies.get(sessions.COOKIE_NAME))
    if ui_session is None:
        raise SignInRequired
    try:
        principal = await run_in_threadpool(
            auth_service.principal_for_token_id, session=session, token_id=ui_session.token_id
        )
    except Unauthenticated as exc:
        raise SignInRequired from exc
    return Viewer(principal=principal, csrf=ui_session.csrf(key))


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
