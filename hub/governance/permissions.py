"""Permission dependencies of the governance routes (one instance per rule)."""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

#: Policies are central standards: admins publish them.
PublishPolicies = Depends(Allow(Role.ADMIN))
#: Everyone but plants reads policies and promotion records.
ReadGovernance = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE))
#: Central teams request promotions.
RequestPromotions = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST))
#: People sign; the policy then narrows which roles count (``approvals.roles``).
SignPromotions = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE))
#: Break-glass is an admin's alone, and always flagged on the audit trail.
BreakGlass = Depends(Allow(Role.ADMIN))
#: A version's lifecycle at a plant: central roles, and that plant itself.
ReadLifecycle = Depends(Allow(Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE, own_plant=True))
