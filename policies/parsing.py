"""The policy document union, and parsing YAML (or plain data) into it with located errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError

from policies.base import PolicyBase, PolicyKind
from policies.cost import CostPolicy
from policies.promotion import PromotionGatePolicy
from policies.retention import RetentionPolicy
from policies.retraining import RetrainingPolicy
from policies.rollout import RolloutPolicy
from policies.sharing import DataSharingPolicy

PolicyDocument = Annotated[
    PromotionGatePolicy
    | RolloutPolicy
    | RetrainingPolicy
    | DataSharingPolicy
    | RetentionPolicy
    | CostPolicy,
    Field(discriminator="kind"),
]

#: The model of each kind.
MODELS: dict[PolicyKind, type[PolicyBase]] = {
    PolicyKind.PROMOTION_GATE: PromotionGatePolicy,
    PolicyKind.ROLLOUT: RolloutPolicy,
    PolicyKind.RETRAINING: RetrainingPolicy,
    PolicyKind.DATA_SHARING: DataSharingPolicy,
    PolicyKind.RETENTION: RetentionPolicy,
    PolicyKind.COST: CostPolicy,
}

#: Largest YAML document accepted.
MAX_DOCUMENT_BYTES = 256 * 1024


class PolicyValidationError(ValueError):
    """A policy document is malformed; ``errors`` lists each problem with its path.

    Parameters
    ----------
    errors
        ``{"path": "rules.0.threshold", "message": "..."}`` per problem (``path`` is ``""``
        for the document as a whole).
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__(
            "invalid policy document: "
            + "; ".join(f"{e['path'] or '<document>'}: {e['message']}" for e in errors)
        )


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases (no billion-laughs expansion)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed in policy documents", event.start_mark
            )
        return super().compose_node(parent, index)


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validate_policy(data: Any) -> PolicyDocument:
    """Validate plain data (a parsed YAML or JSON mapping) as a policy document.

    Parameters
    ----------
    data
        The document as a mapping; ``kind`` selects the model.

    Returns
    -------
    PolicyDocument
        The typed, frozen document.

    Raises
    ------
    PolicyValidationError
        Listing every error with its dotted path.
    """
    if not isinstance(data, Mapping):
        raise PolicyValidationError(
            [{"path": "", "message": f"a policy document is a mapping, not {type(data).__name__}"}]
        )
    kind = data.get("kind")
    try:
        model = MODELS[PolicyKind(str(kind))]
    except ValueError:
        known = ", ".join(k.value for k in PolicyKind)
        message = "missing" if kind is None else f"unknown policy kind {kind!r}"
        raise PolicyValidationError(
            [{"path": "kind", "message": f"{message}; expected one of {known}"}]
        ) from None
    try:
        doc = model.model_validate(dict(data))
    except ValidationError as exc:
        raise PolicyValidationError(
            [{"path": _path(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        ) from None
    return doc  # type: ignore[return-value]


def parse_policy(text: str | bytes) -> PolicyDocument:
    """Parse one YAML policy document.

    Parameters
    ----------
    text
        The YAML (at most 256 KiB; anchors and aliases are refused).

    Returns
    -------
    PolicyDocument
        The typed, frozen document.

    Raises
    ------
    PolicyValidationError
        On a YAML syntax error (its line and column in the message) or any schema error,
        each listed with its dotted path; an unknown evidence metric in a rule is one.
    """
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise PolicyValidationError(
            [{"path": "", "message": f"document larger than {MAX_DOCUMENT_BYTES} bytes"}]
        )
    try:
        data = yaml.load(raw, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyValidationError([{"path": "", "message": f"YAML {where}{problem}"}]) from None
    return validate_policy(data)
