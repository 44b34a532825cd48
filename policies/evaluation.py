"""``evaluate(policy, evidence) -> Decision``: pure, one reason per rule, and a summary in words."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from policies.canonical import evidence_sha256
from policies.evidence import Evidence, EvidenceValue, lower_is_better
from policies.parsing import PolicyDocument
from policies.promotion import PromotionGatePolicy
from policies.retraining import RetrainingPolicy
from policies.rollout import RolloutPolicy
from policies.rules import Comparator, Gate, Scope


class Verdict(StrEnum):
    """The outcome of one rule."""

    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"
    NOT_APPLICABLE = "not_applicable"


class RuleResult(BaseModel):
    """One rule's reason: what was observed, against what, and the verdict.

    Parameters
    ----------
    rule
        The rule's name.
    metric
        Its evidence path.
    scope
        Its scope.
    observed
        The observed value (for a relative rule, the percent it is worse than ``reference``).
    op, threshold
        The rule.
    verdict
        ``pass``, ``fail``, ``missing`` or ``not_applicable``.
    message
        The reason in words.
    required
        Whether the rule can fail the decision.
    reference
        The reference value of a relative rule.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    metric: str
    scope: Scope
    observed: EvidenceValue
    op: Comparator
    threshold: float | bool | str
    verdict: Verdict
    message: str
    required: bool = True
    reference: float | None = None


class Decision(BaseModel):
    """What :func:`evaluate` decided, in data (``results``) and in words (``summary``).

    Parameters
    ----------
    policy_ref
        ``id@version`` of the policy.
    kind
        Its kind.
    passed
        Promotion gate: every applicable required rule passed. Rollout: no abort criterion
        breached. Retraining: at least one trigger fires.
    results
        One per rule, in the policy's order.
    summary
        E.g. ``promotion refused: fd002 validation.rmse 25.9 > 24.6 (gate
        promotion-default@1, rule max_rmse_fd002)``.
    plant, product_line
        Whom the evidence is about.
    evidence_sha256
        The sha256 of the evidence's canonical JSON.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_ref: str
    kind: str
    passed: bool
    results: list[RuleResult]
    summary: str
    plant: str | None = None
    product_line: str | None = None
    evidence_sha256: str = ""

    @property
    def failures(self) -> list[RuleResult]:
        """The required rules that failed or had no evidence (what refused it)."""
        return [
            r for r in self.results if r.required and r.verdict in (Verdict.FAIL, Verdict.MISSING)
        ]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(observed: Any, threshold: Any) -> bool:
    if isinstance(threshold, bool):
        return isinstance(observed, bool)
    if isinstance(threshold, str):
        return isinstance(observed, str)
    return _number(observed)


def check_gate(gate: Gate, evidence: Evidence) -> RuleResult:
    """Check one rule against evidence (what :func:`evaluate` does for each rule).

    Parameters
    ----------
    gate
        The rule.
    evidence
        The facts.

    Returns
    -------
    RuleResult
        Its verdict and reason.
    """
    subject = evidence.plant or evidence.product_line or "fleet"
    values = evidence.values

    def result(verdict: Verdict, message: str, observed: Any = None, ref: Any = None) -> RuleResult:
        return RuleResult(
            rule=gate.name, metric=gate.metric, scope=gate.scope, observed=observed, op=gate.op,
            threshold=gate.threshold, verdict=verdict, message=message, required=gate.required,
            reference=ref,
        )

    if not gate.scope.applies_to(evidence.plant, evidence.product_line):
        return result(Verdict.NOT_APPLICABLE, f"applies to {gate.scope}, evidence is for {subject}")
    wants = f"{gate.op.value} {_fmt(gate.threshold)}{'%' if gate.relative_to else ''}"
    if gate.samples is not None and gate.min_samples > 0:
        count = values.get(gate.samples)
        enough = isinstance(count, int | float) and not isinstance(count, bool)
        if not enough or count < gate.min_samples:  # type: ignore[operator]
            shown = "missing" if count is None else _fmt(count)
            return result(
                Verdict.MISSING,
                f"{subject} {gate.metric}: {gate.samples} {shown} < {gate.min_samples} needed",
            )
    observed = values.get(gate.metric)
    if observed is None:
        return result(Verdict.MISSING, f"{subject} {gate.metric} missing (rule: {wants})")
    if not _comparable(observed, gate.threshold):
        return result(
            Verdict.FAIL,
            f"{subject} {gate.metric} {observed!r} is not comparable with {_fmt(gate.threshold)}",
            observed,
        )
    if gate.relative_to is not None:
        ref = values.get(gate.relative_to)
        if ref is None or not _number(ref) or ref == 0:
            why = "missing" if ref is None else f"{ref!r} (no percent of it)"
            return result(
                Verdict.MISSING, f"{subject} {gate.metric}: reference {gate.relative_to} {why}"
            )
        sign = 1.0 if lower_is_better(gate.metric) else -1.0
        worse = sign * (float(observed) - float(ref)) / abs(float(ref)) * 100.0
        holds = gate.op.holds(worse, gate.threshold)
        op = gate.op if holds else gate.op.negated
        return result(
            Verdict.PASS if holds else Verdict.FAIL,
            f"{subject} {gate.metric} {_fmt(round(worse, 2))}% worse than {gate.relative_to} "
            f"({_fmt(observed)} vs {_fmt(ref)}) {op.value} {_fmt(gate.threshold)}%",
            round(worse, 6), float(ref),
        )
    holds = gate.op.holds(observed, gate.threshold)
    op = gate.op if holds else gate.op.negated
    return result(
        Verdict.PASS if holds else Verdict.FAIL,
        f"{subject} {gate.metric} {_fmt(observed)} {op.value} {_fmt(gate.threshold)}",
        observed,
    )


def evaluate(policy: PolicyDocument, evidence: Evidence) -> Decision:
    """Evaluate a policy's rules on evidence; pure (no clock, no I/O).

    Parameters
    ----------
    policy
        A promotion gate, rollout plan (abort criteria) or retraining policy (triggers).
    evidence
        The facts, by evidence path, about one plant (or the fleet).

    Returns
    -------
    Decision
        One :class:`RuleResult` per rule and a summary. A promotion gate with no rule that
        applies to the evidence refuses (fail closed).

    Raises
    ------
    TypeError
        For kinds without rules (data sharing, retention, cost).
    """
    if not isinstance(policy, PromotionGatePolicy | RolloutPolicy | RetrainingPolicy):
        raise TypeError(f"{policy.kind} policies have no rules to evaluate")
    results = [check_gate(gate, evidence) for gate in policy.gates()]
    applicable = [r for r in results if r.verdict is not Verdict.NOT_APPLICABLE]
    ref = policy.ref

    def reasons(items: list[RuleResult], label: str, rule_word: str) -> str:
        return "; ".join(f"{r.message} ({label} {ref}, {rule_word} {r.rule})" for r in items)

    if isinstance(policy, PromotionGatePolicy):
        blocking = [r for r in applicable if r.required and r.verdict is not Verdict.PASS]
        passed = bool(applicable) and not blocking
        if not applicable:
            subject = evidence.plant or evidence.product_line or "the fleet"
            summary = f"promotion refused: no rule of gate {ref} applies to {subject}"
        elif blocking:
            summary = "promotion refused: " + reasons(blocking, "gate", "rule")
        else:
            summary = f"promotion allowed: {_count(results)} (gate {ref})"
        advisory = [r for r in applicable if not r.required and r.verdict is not Verdict.PASS]
        if advisory:
            summary += "; advisory: " + reasons(advisory, "gate", "rule")
    elif isinstance(policy, RolloutPolicy):
        breached = [r for r in applicable if r.verdict is Verdict.FAIL]
        passed = not breached
        if breached:
            summary = (
                f"rollout breached, {policy.failure_handling.value}: "
                + reasons(breached, "plan", "criterion")
            )
        else:
            summary = f"rollout healthy: {_count(results)} (plan {ref})"
    else:
        fired = [r for r in applicable if r.verdict is Verdict.PASS]
        passed = bool(fired)
        if fired:
            summary = "retraining triggered: " + reasons(fired, "policy", "trigger")
        else:
            summary = f"retraining not triggered: {_count(results, fired=True)} (policy {ref})"
    return Decision(
        policy_ref=ref, kind=policy.kind.value, passed=passed, results=results, summary=summary,
        plant=evidence.plant, product_line=evidence.product_line,
        evidence_sha256=evidence_sha256(evidence),
    )


def _count(results: list[RuleResult], *, fired: bool = False) -> str:
    counts = {v: sum(r.verdict is v for r in results) for v in Verdict}
    words = {
        Verdict.PASS: "fire" if fired else "pass",
        Verdict.FAIL: "hold" if fired else "fail",
        Verdict.MISSING: "missing evidence",
        Verdict.NOT_APPLICABLE: "not applicable",
    }
    return ", ".join(f"{counts[v]} {words[v]}" for v in Verdict if counts[v])
