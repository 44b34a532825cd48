"""How each baseline's line records become model input: contract, items, features, explanation.

A :class:`Pipeline` binds one baseline to ``baselines.contracts`` and ``baselines.features``,
the same code training uses, so serving cannot drift from it.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from baselines.contracts import DataContract, Severity, Violation, ViolationReport, get_contract
from baselines.features import ai4i, cmapss, state_from_dict
from baselines.rules import ai4i as ai4i_rules
from plant_node.serving.explain import ValueFunction
from plant_node.serving.fallback import CallableRule, FallbackRule
from plant_node.serving.runtime import Featurizer, LoadedModel, ModelManifest

Record = Mapping[str, Any]


@dataclass(frozen=True)
class ExplainSetup:
    """What the Shapley estimator needs for one item."""

    f: ValueFunction
    x: npt.NDArray[Any]
    baseline: npt.NDArray[Any]
    names: list[str]


class Pipeline(Protocol):
    """One baseline's serving recipe."""

    baseline: str
    task: str  # classification | regression

    def validate(self, records: Sequence[Record]) -> ViolationReport:
        """Check raw records against the baseline's data contract."""
        ...

    def items(self, records: Sequence[Record]) -> list[Any]:
        """Group records into the items that each get one prediction."""
        ...

    def item_inputs(self, item: Any) -> dict[str, Any]:
        """Return the JSON form of an item for the prediction log."""
        ...

    def featurizer(self, manifest: ModelManifest) -> Featurizer:
        """Build the featurizer of a model version (items -> model input batch)."""
        ...

    def explain_setup(self, model: LoadedModel, item: Any) -> ExplainSetup:
        """Return the value function, input, reference input and signal names for an item."""
        ...

    def fallback_rule(self) -> FallbackRule:
        """Return the rule that answers when no model can."""
        ...


def _feature_state(manifest: ModelManifest) -> Any:
    meta = manifest.metadata
    data = meta.get("feature_state") or meta.get("features") or meta.get("feature_pipeline")
    if not isinstance(data, Mapping):
        raise ValueError(f"manifest of {manifest.version} carries no feature state")
    return state_from_dict(dict(data))


# Parsed feature state per loaded model version (explanations need it for every item).
_STATES: weakref.WeakKeyDictionary[LoadedModel, Any] = weakref.WeakKeyDictionary()


def _model_state(model: LoadedModel) -> Any:
    state = _STATES.get(model)
    if state is None:
        state = _STATES[model] = _feature_state(model.manifest)
    return state


_NUMBER_TYPES = frozenset({int, float})
_STR_TYPES: frozenset[type] = frozenset({str})
# Integers beyond this lose precision as float64; the fast path leaves them to pandera.
_EXACT_INT = 2.0**53


class ContractGate:
    """A data contract with a vectorized fast path for the line.

    Pandera needs ~15 ms for a single record, more than the whole latency budget. The fast
    path checks the contract's own column specs and frame rules with one numpy matrix of all
    numeric columns; only when it finds anything does the full pandera validation run, and
    its report is the one returned. So a clean batch costs tens of microseconds, a dirty one
    gets the authoritative report, and the verdicts are pandera's (``test_pipelines`` checks
    agreement on random mutations of real records).

    Parameters
    ----------
    contract
        The baseline's contract from ``baselines.contracts``.
    """

    def __init__(self, contract: DataContract) -> None:
        self.contract = contract
        self.specs = [c for c in contract.columns if not c.training_only]
        self.numeric = [c for c in self.specs if c.kind != "str"]
        self.strings = [c for c in self.specs if c.kind == "str"]
        self._names = [c.name for c in self.numeric]
        self._row = operator.itemgetter(*self._names) if self._names else None
        inf = float("inf")
        self._lo = np.asarray([-inf if c.min is None else c.min for c in self.numeric])
        self._hi = np.asarray([inf if c.max is None else c.max for c in self.numeric])
        self._int_cols = np.asarray([c.kind == "int" for c in self.numeric], dtype=bool)
        self._special = [
            (j, c) for j, c in enumerate(self.numeric) if c.allowed is not None or c.unique
        ]

    def _numeric_ok(self, records: Sequence[Record]) -> npt.NDArray[np.float64] | None:
        """Return the ``(rows, numeric columns)`` matrix if every spec holds, else None."""
        if self._row is None:
            return np.zeros((len(records), 0))
        try:
            table = [self._row(rec) for rec in records]
        except KeyError:
            return None
        if len(self._names) == 1:
            table = [(v,) for v in table]
        # None, bool, strings, numpy scalars: let pandera name the problem.
        if not set(map(type, itertools.chain.from_iterable(table))) <= _NUMBER_TYPES:
            return None
        arr = np.asarray(table, dtype=np.float64).reshape(len(records), len(self._names))
        if not np.isfinite(arr).all():
            return None
        if (arr < self._lo).any() or (arr > self._hi).any():
            return None
        ints = arr[:, self._int_cols]
        if ints.size and ((ints % 1 != 0).any() or (np.abs(ints) >= _EXACT_INT).any()):
            return None
        for j, spec in self._special:
            if spec.allowed is not None and not np.isin(arr[:, j], spec.allowed).all():
                return None
            if spec.unique and len(np.unique(arr[:, j])) != len(records):
                return None
        return arr

    def _fast_ok(self, records: Sequence[Record]) -> bool:
        arr = self._numeric_ok(records)
        if arr is None:
            return False
        columns: dict[str, Any] = {name: arr[:, j] for j, name in enumerate(self._names)}
        for spec in self.strings:
            try:
                values = [rec[spec.name] for rec in records]
            except KeyError:
                return False
            if spec.regex is not None or any(type(v) is not str for v in values):
                return False
            if spec.allowed is not None and not set(values) <= set(spec.allowed):
                return False
            if spec.unique and len(set(values)) != len(values):
                return False
            columns[spec.name] = np.asarray(values, dtype=object)
        present = set().union(*(r.keys() for r in records)) if records else set()
        rules = [
            fn for col, fn in self.contract.frame_rules.values() if col is None or col in present
        ]
        for fn in rules:
            # Rules read columns by name; they get the checked columns as numpy arrays. A rule
            # needing anything else (an unchecked column, pandas methods) gets a DataFrame.
            try:
                flagged = np.asarray(fn(columns))
            except (KeyError, TypeError, ValueError, AttributeError):
                import pandas as pd

                try:
                    flagged = np.asarray(fn(pd.DataFrame(list(records))))
                except (KeyError, TypeError, ValueError):
                    return False
            if len(flagged):
                return False
        return True

    def _type_violations(self, records: Sequence[Record]) -> list[Violation]:
        """Fields of the wrong JSON type: pandera would coerce ``"42"`` to 42; the node does not.

        A numeric field takes a JSON number (not a string, not a boolean), a string field a
        string; null is left to the contract's null rules.
        """
        out = []
        for spec in self.specs:
            wanted: frozenset[type] = _STR_TYPES if spec.kind == "str" else _NUMBER_TYPES
            bad = [
                i
                for i, r in enumerate(records)
                if r.get(spec.name) is not None and type(r[spec.name]) not in wanted
            ]
            if bad:
                expected = "a string" if spec.kind == "str" else "a JSON number, not a string"
                out.append(
                    Violation("type", spec.name, bad, len(bad), detail=f"expected {expected}")
                )
        return out

    def validate(self, records: Sequence[Record]) -> ViolationReport:
        """Return the contract's report (plus strict JSON types); clean batches skip pandera."""
        if records and self._fast_ok(records):
            return ViolationReport(self.contract.name, self.contract.version, len(records), [])
        import pandas as pd

        report = self.contract.validate(pd.DataFrame(list(records)), with_labels=False)
        typed = self._type_violations(records)
        if not typed:
            return report
        return dataclasses.replace(report, violations=[*typed, *report.violations])


def blocking_violations(report: ViolationReport) -> list[dict[str, Any]]:
    """Return the error-severity violations as JSON (warnings do not reject a batch)."""
    return [v.to_dict() for v in report.violations if v.severity is Severity.ERROR]


class Ai4iPipeline:
    """AI4I 2020: one prediction per record, failure probability, six raw signals explained."""

    baseline = "ai4i"
    task = "classification"
    signals: tuple[str, ...] = ("type", *ai4i.RAW_NUMERIC)

    def __init__(self) -> None:
        self.gate = ContractGate(get_contract("ai4i-raw"))

    def validate(self, records: Sequence[Record]) -> ViolationReport:
        """Check records against ``ai4i-raw`` (serving columns only)."""
        return self.gate.validate(records)

    def items(self, records: Sequence[Record]) -> list[Any]:
        """Each record is an item."""
        return list(records)

    def item_inputs(self, item: Any) -> dict[str, Any]:
        """Return the record itself."""
        return dict(item)

    def featurizer(self, manifest: ModelManifest) -> Featurizer:
        """``baselines.features.ai4i.transform_rows`` with the version's fitted state."""
        state = _feature_state(manifest)

        def featurize(items: Sequence[Record]) -> npt.NDArray[Any]:
            return ai4i.transform_rows(items, state)

        return featurize

    def explain_setup(self, model: LoadedModel, item: Any) -> ExplainSetup:
        """Signals are the raw readings and the product Type; reference is the training mean.

        The value function depends only on the model (not on the item), so the explainer may
        score the coalitions of many items in one call of it.
        """
        state = _model_state(model)
        types = list(state.types)
        ref = model.manifest.metadata.get("explain_baseline") or {}
        means = dict(zip(state.numeric, state.mean, strict=False))
        base = [float(types.index(str(ref.get("type", types[0]))))]
        base += [float(ref[c]) if c in ref else means[c] for c in ai4i.RAW_NUMERIC]
        x = [float(types.index(str(item["type"])))] + [float(item[c]) for c in ai4i.RAW_NUMERIC]
        type_names = np.asarray(types)

        def f(batch: npt.NDArray[Any]) -> npt.NDArray[Any]:
            # The columns ai4i.transform_rows would build from records, built directly.
            columns: dict[str, Any] = {
                c: np.ascontiguousarray(batch[:, i + 1], dtype=np.float64)
                for i, c in enumerate(ai4i.RAW_NUMERIC)
            }
            columns["type"] = type_names[np.rint(batch[:, 0]).astype(np.intp)]
            return model.infer(ai4i.transform(columns, state), lane="explain")

        return ExplainSetup(f, np.asarray(x), np.asarray(base), list(self.signals))

    def fallback_rule(self) -> FallbackRule:
        """Return the dataset's published physical failure rules (``baselines.rules.ai4i``)."""
        return CallableRule(
            "ai4i-physical-rules", lambda items: ai4i_rules.predict_rows(items).score
        )


FIT_UNITS = 30


class CmapssHealthIndexRule:
    """``baselines.rules.cmapss`` health-index RUL rule, fitted on the shipped FD001 training set.

    The export does not carry a fitted rule yet, so it is fitted here once, lazily, on the
    first 30 training engines (under a second, a few tens of MB for a moment) the first time
    no model can answer; ``warm_fallbacks`` fits it at start instead. The rule reads its own
    feature state, so it answers even when no model file is usable.
    """

    name = "cmapss-health-index"

    def __init__(self) -> None:
        self._fitted: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _get(self) -> tuple[Any, Any]:
        with self._lock:
            if self._fitted is None:
                from baselines.datasets import load_cmapss
                from baselines.rules import fit_health_index

                full = load_cmapss("FD001", "train")
                frame = full[full["unit"] <= FIT_UNITS].reset_index(drop=True)
                state = cmapss.fit(frame)
                win = cmapss.windows(frame, state, every_cycle=True)
                targets = cmapss.rul_targets(frame, state, win)
                self._fitted = (state, fit_health_index(win.x, targets, rul_cap=state.rul_cap))
            return self._fitted

    def warm(self) -> None:
        """Fit the rule now (called in a background thread at start)."""
        self._get()

    def predict(self, items: Sequence[Any]) -> npt.NDArray[np.float64]:
        """Return the rule's RUL for each engine's recent cycles."""
        state, rule = self._get()
        x = np.concatenate([cmapss.transform_rows(list(unit), state) for unit in items])
        return np.asarray(rule.predict(x), dtype=np.float64)


class CmapssPipeline:
    """C-MAPSS: one RUL prediction per engine from its recent cycles; sensors explained."""

    baseline = "cmapss"
    task = "regression"

    def __init__(self) -> None:
        self.gate = ContractGate(get_contract("cmapss-raw"))

    def validate(self, records: Sequence[Record]) -> ViolationReport:
        """Check cycles against ``cmapss-raw``."""
        return self.gate.validate(records)

    def items(self, records: Sequence[Record]) -> list[Any]:
        """Group cycles by ``unit`` (first-seen order); each engine is one item."""
        units: dict[Any, list[Record]] = {}
        for rec in records:
            units.setdefault(rec.get("unit"), []).append(rec)
        return [sorted(rows, key=lambda r: r["cycle"]) for rows in units.values()]

    def item_inputs(self, item: Any) -> dict[str, Any]:
        """Return the engine's unit id and cycles."""
        return {"unit": item[0].get("unit"), "cycles": [dict(r) for r in item]}

    def featurizer(self, manifest: ModelManifest) -> Featurizer:
        """``baselines.features.cmapss.transform_rows`` per engine, stacked."""
        state = _feature_state(manifest)

        def featurize(items: Sequence[Sequence[Record]]) -> npt.NDArray[Any]:
            return np.concatenate([cmapss.transform_rows(list(u), state) for u in items])

        return featurize

    def explain_setup(self, model: LoadedModel, item: Any) -> ExplainSetup:
        """Signals are whole sensor channels over the window; reference is the condition mean."""
        state = _model_state(model)
        x = model.featurize([item])[0]

        def f(batch: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return model.infer(batch, lane="explain")

        return ExplainSetup(f, x, np.zeros_like(x), list(state.sensors))

    def fallback_rule(self) -> FallbackRule:
        """Return the health-index RUL rule of ``baselines.rules.cmapss``."""
        return CmapssHealthIndexRule()


def default_pipelines() -> dict[str, Pipeline]:
    """Return the pipelines of the shipped baselines, by name."""
    return {p.baseline: p for p in (Ai4iPipeline(), CmapssPipeline())}
