"""Audit schemas: defined once in :mod:`federation.schemas.audit`, re-exported here."""

from federation.schemas.audit import AuditEntryRead, AuditPage

__all__ = ["AuditEntryRead", "AuditPage"]
