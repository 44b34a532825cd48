"""The structured result of validating a raw batch: one entry per broken rule and column."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """An error rejects the batch; a warning only quarantines the named rows."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Violation:
    """One rule broken in one column (``column`` is ``None`` for frame-level rules).

    ``row_indices`` are positions (0-based) in the validated frame; they are empty when the rule
    concerns the frame as a whole (a missing column, a null rate) rather than given rows.
    """

    rule: str
    column: str | None
    row_indices: list[int]
    count: int
    severity: Severity = Severity.ERROR
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        out = asdict(self)
        out["severity"] = str(self.severity)
        return out


@dataclass(frozen=True)
class ViolationReport:
    """Every violation found in a batch, plus what was checked."""

    contract: str
    version: str
    n_rows: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no error-severity rule is broken."""
        return not any(v.severity is Severity.ERROR for v in self.violations)

    @property
    def clean(self) -> bool:
        """True when nothing at all was found."""
        return not self.violations

    def bad_rows(self) -> set[int]:
        """Positions of rows named by any violation: quarantine them, never train or score them."""
        return {i for v in self.violations for i in v.row_indices}

    def rules(self) -> set[tuple[str, str | None]]:
        """Return the ``(rule, column)`` pairs that were broken."""
        return {(v.rule, v.column) for v in self.violations}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (what the node logs, quarantines and alerts on)."""
        return {
            "contract": self.contract,
            "version": self.version,
            "n_rows": self.n_rows,
            "ok": self.ok,
            "bad_rows": len(self.bad_rows()),
            "violations": [v.to_dict() for v in self.violations],
        }


__all__ = ["Severity", "Violation", "ViolationReport"]
