"""A data contract: a pandera schema plus the rules pandera cannot express row by row.

``DataContract.validate`` never raises on bad data and never drops rows: it returns a
``ViolationReport`` naming each rule, column and row position. Pandera runs lazily (all failures
collected); its failure cases are translated into violations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from baselines.contracts.report import Severity, Violation, ViolationReport

#: A frame-level rule: (frame with a RangeIndex) -> positions of offending rows.
FrameRule = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class ColumnSpec:
    """What one raw column must look like.

    ``kind`` is ``"int"``, ``"float"`` (any real number; integers are accepted) or ``"str"``.
    """

    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    unique: bool = False
    training_only: bool = False


@dataclass(frozen=True)
class DataContract:
    """Versioned contract of one raw source."""

    name: str
    version: str
    columns: tuple[ColumnSpec, ...]
    null_tolerance: float = 0.0
    frame_rules: dict[str, tuple[str | None, FrameRule]] = field(default_factory=dict)
    description: str = ""

    def column_names(self, *, with_labels: bool = True) -> list[str]:
        """Names of the required columns."""
        return [c.name for c in self.columns if with_labels or not c.training_only]

    def _schema(self, present: Sequence[str], with_labels: bool) -> pa.DataFrameSchema:
        cols: dict[str, pa.Column] = {}
        for spec in self.columns:
            if spec.training_only and not with_labels:
                continue
            checks: list[pa.Check] = []
            if spec.min is not None:
                checks.append(pa.Check.ge(spec.min, name="range"))
            if spec.max is not None:
                checks.append(pa.Check.le(spec.max, name="range"))
            if spec.allowed is not None:
                checks.append(pa.Check.isin(list(spec.allowed), name="vocabulary"))
            if spec.regex is not None:
                checks.append(pa.Check.str_matches(spec.regex, name="format"))
            dtype: Any = {"int": "int64", "float": "float64", "str": str}[spec.kind]
            cols[spec.name] = pa.Column(
                dtype,
                checks=checks,
                nullable=True,  # nulls are counted against null_tolerance below, not here
                unique=spec.unique,
                coerce=True,
                required=True,
            )
        return pa.DataFrameSchema(cols, strict=False, coerce=True)

    def validate(self, frame: pd.DataFrame, *, with_labels: bool = True) -> ViolationReport:
        """Check a raw batch and report every broken rule; the frame is not modified.

        Parameters
        ----------
        frame
            Raw rows with the source's column names.
        with_labels
            Also require the label columns (training data); serving batches have none.

        Returns
        -------
        ViolationReport
            Empty ``violations`` when the batch honours the contract.
        """
        data = frame.reset_index(drop=True)
        violations: list[Violation] = []
        wanted = self.column_names(with_labels=with_labels)
        missing = [c for c in wanted if c not in data.columns]
        for col in missing:
            violations.append(
                Violation("missing_column", col, [], len(data), detail="required column absent")
            )
        violations += self._null_violations(data, [c for c in wanted if c in data.columns])
        violations += self._pandera_violations(data, with_labels, missing)
        present = set(data.columns)
        for rule, (column, fn) in self.frame_rules.items():
            if column is not None and column not in present:
                continue
            try:
                rows = np.asarray(fn(data), dtype=np.int64)
            except (KeyError, TypeError, ValueError) as exc:
                violations.append(
                    Violation(rule, column, [], len(data), detail=f"not checked: {exc}")
                )
                continue
            if rows.size:
                violations.append(Violation(rule, column, sorted(rows.tolist()), int(rows.size)))
        return ViolationReport(self.name, self.version, len(data), violations)

    def _null_violations(self, data: pd.DataFrame, columns: list[str]) -> list[Violation]:
        out: list[Violation] = []
        for col in columns:
            isna = data[col].isna().to_numpy()
            if not isna.any():
                continue
            rows = np.flatnonzero(isna).tolist()
            rate = len(rows) / max(len(data), 1)
            over = rate > self.null_tolerance
            out.append(
                Violation(
                    "null_rate" if over else "null_value",
                    col,
                    rows,
                    len(rows),
                    Severity.ERROR if over else Severity.WARNING,
                    f"null rate {rate:.4f} vs tolerance {self.null_tolerance:.4f}",
                )
            )
        return out

    def _pandera_violations(
        self, data: pd.DataFrame, with_labels: bool, missing: list[str]
    ) -> list[Violation]:
        schema = self._schema(data.columns, with_labels)
        schema = schema.remove_columns(missing) if missing else schema
        try:
            schema.validate(data, lazy=True)
        except SchemaErrors as err:
            return _translate(err.failure_cases, len(data))
        return []


def _rule_name(check: str) -> str:
    text = str(check)
    if text.startswith("coerce_dtype") or text.startswith("dtype"):
        return "dtype"
    if "field_uniqueness" in text or "unique" in text:
        return "unique"
    if text in ("range", "vocabulary", "format"):
        return text
    if "greater_than" in text or "less_than" in text or "in_range" in text:
        return "range"
    if "isin" in text:
        return "vocabulary"
    return text


def _translate(cases: pd.DataFrame, n_rows: int) -> list[Violation]:
    out: list[Violation] = []
    cases = cases.assign(rule=cases["check"].map(_rule_name))
    for (rule, column), group in cases.groupby(["rule", "column"], dropna=False, sort=True):
        idx = pd.to_numeric(group["index"], errors="coerce").dropna().astype(np.int64)
        rows = sorted(set(idx.tolist()))
        col = None if pd.isna(column) else str(column)
        if rule == "dtype" and not rows:
            detail = f"column dtype {group['failure_case'].iloc[0]} cannot be read as required"
            out.append(Violation("dtype", col, [], n_rows, detail=detail))
            continue
        if not rows:
            # Missing columns are reported already; a check that crashed on values that failed
            # dtype coercion names no rows of its own (those rows are in the dtype violation).
            continue
        examples = group["failure_case"].astype(str).head(3).tolist()
        out.append(Violation(str(rule), col, rows, len(rows), detail=f"e.g. {examples}"))
    return out


__all__ = ["ColumnSpec", "DataContract", "FrameRule"]
