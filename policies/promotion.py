"""Promotion gates: the rules a version's evidence must meet, and who must approve it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from policies.base import Frozen, PolicyBase, PolicyKind
from policies.rules import Gate


class ApprovalRule(Frozen):
    """How many people, in which roles, must approve a promotion the gate allowed.

    Parameters
    ----------
    required
        Distinct approvers needed, never the requester (``0``: promoted automatically,
        signed by the system identity; only for low-risk models).
    roles
        The roles an approver may hold.
    """

    required: int = Field(1, ge=0, le=10)
    roles: list[str] = Field(
        default_factory=lambda: ["data_scientist", "admin"], min_length=1, max_length=20
    )


def unique_names(items: list[Gate]) -> list[Gate]:
    """Refuse two rules with one name (reasons and overrides address rules by name).

    Parameters
    ----------
    items
        The rules.

    Returns
    -------
    list[Gate]
        ``items`` unchanged.

    Raises
    ------
    ValueError
        On a repeated name.
    """
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"rule name {item.name!r} is used twice")
        seen.add(item.name)
    return items


class PromotionGatePolicy(PolicyBase):
    """A promotion gate: every applicable required rule must pass, then the approvals.

    Parameters
    ----------
    rules
        The gates; two gates may name one metric (e.g. a fleet floor and a plant's bound),
        and each is reported.
    approvals
        Who must approve.
    """

    kind: Literal[PolicyKind.PROMOTION_GATE] = PolicyKind.PROMOTION_GATE
    rules: list[Gate] = Field(min_length=1, max_length=500)
    approvals: ApprovalRule = ApprovalRule()

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: list[Gate]) -> list[Gate]:
        return unique_names(value)

    def gates(self) -> list[Gate]:
        """Return the rules :func:`~policies.evaluate` checks."""
        return list(self.rules)
