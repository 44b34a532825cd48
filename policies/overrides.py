"""Local overrides of a central policy, allowed only for declared fields within their bounds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from policies.base import resolve
from policies.parsing import PolicyDocument, validate_policy


class OverrideRefused(ValueError):
    """An override the central policy does not allow; names the field and the bound.

    Parameters
    ----------
    field
        The dotted field path.
    bound
        The bound it violates, in words (``"max 26"``, ``"not overridable"``).
    value
        The refused value.
    """

    def __init__(self, field: str, bound: str, value: Any) -> None:
        self.field = field
        self.bound = bound
        self.value = value
        super().__init__(f"override of {field} = {value!r} refused (bound: {bound})")


def apply_overrides(
    policy: PolicyDocument, overrides: Mapping[str, Any], *, plant: str
) -> PolicyDocument:
    """Return the policy as ``plant`` applies it: the central document with its overrides.

    Parameters
    ----------
    policy
        The central document.
    overrides
        Dotted field path -> value, e.g. ``{"rules.max_rmse_fd002.threshold": 25.0}``.
    plant
        The plant that overrides.

    Returns
    -------
    PolicyDocument
        A new document (same ``ref``); the central one is unchanged.

    Raises
    ------
    OverrideRefused
        For the first field the policy does not declare overridable, a plant it does not
        allow, or a value outside the bound (or that breaks the document's own rules).
    """
    bounds = {b.field: b for b in policy.overridable}
    data = policy.model_dump(mode="json")
    for field, value in overrides.items():
        bound = bounds.get(field)
        if bound is None:
            allowed = ", ".join(bounds) or "none"
            raise OverrideRefused(field, f"not overridable (overridable: {allowed})", value)
        violated = bound.refusal(value, plant)
        if violated is not None:
            raise OverrideRefused(field, violated, value)
        container, key = resolve(data, field)
        container[key] = value
    try:
        return validate_policy(data)
    except (ValidationError, ValueError) as exc:
        field = next(iter(overrides), "")
        raise OverrideRefused(
            field, f"the document's own rules ({exc})", overrides.get(field)
        ) from None
