"""Permission dependencies of the webhook routes: subscriptions are an admin's."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

ManageWebhooks = Depends(Allow(Role.ADMIN))
