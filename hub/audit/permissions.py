"""Permission dependencies of the audit routes.

Admins and executives (who answer for the plants to regulators and auditors) read the
trail. Data scientists and plants are what it records, so they do not.
"""

from fastapi import Depends

from federation.schemas.auth import Role
from hub.auth.permissions import Allow

#: Roles that read the trail (the dashboards' audit view checks the same set).
READERS = frozenset({Role.ADMIN, Role.EXECUTIVE})
ReadAudit = Depends(Allow(*READERS))
