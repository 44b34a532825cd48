"""PLACEHOLDER for gov-audit's hash-chained ``append`` (CONTRACTS.md); take theirs on merge.

It records nothing: it exists so governance code, written against the agreed signature,
imports and runs before the real audit trail is merged. No test relies on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session


def append(
    *,
    session: Session,
    actor: str,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    flags: Sequence[str] = (),
) -> None:
    """Agreed signature of the audit append (no-op placeholder)."""
    del session, actor, action, subject, before, after, reason, flags
