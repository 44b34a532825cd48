"""Audit schemas: defined once in :mod:`federation.schemas.audit`, re-exported here."""

from federation.schemas.audit import AuditEntryRead, AuditPage, AuditVerification

__all__ = ["AuditEntryRead", "AuditPage", "AuditVerification"]
