"""evaluate(): one reason per rule, verdicts by scope, and a summary that explains itself."""

import pytest

from policies import (
    Evidence,
    Gate,
    PromotionGatePolicy,
    Scope,
    Verdict,
    evaluate,
    standard_document,
)


def _gate_policy(*rules: Gate) -> PromotionGatePolicy:
    return PromotionGatePolicy(id="promotion-default", version=3, title="t", rules=list(rules))


MAX_RMSE_FD002 = Gate(
    name="max_rmse", metric="validation.rmse", op="<=", threshold=24.6,
    scope=Scope(level="plant", value="fd002"),
)


def test_refusal_names_plant_metric_values_gate_and_rule() -> None:
    policy = _gate_policy(MAX_RMSE_FD002)
    decision = evaluate(policy, Evidence(plant="fd002", values={"validation.rmse": 25.9}))
    assert not decision.passed
    assert decision.summary == (
        "promotion refused: fd002 validation.rmse 25.9 > 24.6 "
        "(gate promotion-default@3, rule max_rmse)"
    )
    (result,) = decision.results
    assert (result.rule, result.observed, result.threshold, result.verdict) == (
        "max_rmse", 25.9, 24.6, Verdict.FAIL,
    )
    assert decision.policy_ref == "promotion-default@3"
    assert len(decision.evidence_sha256) == 64


def test_pass_fail_missing_not_applicable_by_scope() -> None:
    policy = _gate_policy(
        MAX_RMSE_FD002,
        Gate(name="max_rmse_fd001", metric="validation.rmse", op="<=", threshold=13.9,
             scope=Scope(level="plant", value="FD001")),
        Gate(name="min_agreement", metric="shadow.agreement", op=">=", threshold=0.9),
        Gate(name="line_a_f1", metric="holdout.f1", op=">=", threshold=0.8,
             scope=Scope(level="product_line", value="line-a")),
        Gate(name="parity", metric="int8.parity_ok", op="==", threshold=True),
    )
    evidence = Evidence(
        plant="FD002", product_line="line-a",
        values={"validation.rmse": 20.0, "holdout.f1": 0.7, "int8.parity_ok": True},
    )
    verdicts = {r.rule: r.verdict for r in evaluate(policy, evidence).results}
    assert verdicts == {
        "max_rmse": Verdict.PASS,  # scope matches case-insensitively
        "max_rmse_fd001": Verdict.NOT_APPLICABLE,
        "min_agreement": Verdict.MISSING,
        "line_a_f1": Verdict.FAIL,
        "parity": Verdict.PASS,
    }
    decision = evaluate(policy, evidence)
    assert not decision.passed
    assert {r.rule for r in decision.failures} == {"min_agreement", "line_a_f1"}
    assert "FD002 shadow.agreement missing" in decision.summary


def test_all_applicable_pass_allows() -> None:
    policy = _gate_policy(
        MAX_RMSE_FD002, Gate(name="parity", metric="int8.parity_ok", op="==", threshold=True)
    )
    decision = evaluate(
        policy, Evidence(plant="fd002", values={"validation.rmse": 24.6, "int8.parity_ok": True})
    )
    assert decision.passed
    assert decision.summary == "promotion allowed: 2 pass (gate promotion-default@3)"


def test_no_applicable_rule_refuses() -> None:
    decision = evaluate(_gate_policy(MAX_RMSE_FD002), Evidence(plant="fd001", values={}))
    assert not decision.passed
    assert "no rule of gate promotion-default@3 applies to fd001" in decision.summary


def test_two_gates_on_one_metric_are_both_reported() -> None:
    policy = _gate_policy(
        Gate(name="fleet_floor", metric="validation.rmse", op="<=", threshold=30.0),
        MAX_RMSE_FD002,
    )
    decision = evaluate(policy, Evidence(plant="fd002", values={"validation.rmse": 25.0}))
    assert [(r.rule, r.verdict) for r in decision.results] == [
        ("fleet_floor", Verdict.PASS),
        ("max_rmse", Verdict.FAIL),
    ]
    assert not decision.passed


def test_advisory_rule_does_not_refuse_but_is_named() -> None:
    policy = _gate_policy(
        MAX_RMSE_FD002,
        Gate(name="latency", metric="shadow.latency_delta_ms", op="<=", threshold=5,
             required=False),
    )
    decision = evaluate(
        policy,
        Evidence(plant="fd002", values={"validation.rmse": 20.0, "shadow.latency_delta_ms": 9}),
    )
    assert decision.passed
    assert "advisory: fd002 shadow.latency_delta_ms 9 > 5" in decision.summary


@pytest.mark.parametrize("observed", ["25", True, None, float("nan")])
def test_wrong_typed_or_non_finite_evidence_never_passes(observed: object) -> None:
    decision = evaluate(
        _gate_policy(MAX_RMSE_FD002),
        Evidence(plant="fd002", values={"validation.rmse": observed}),
    )
    assert not decision.passed
    assert decision.results[0].verdict in (Verdict.FAIL, Verdict.MISSING)


def test_bool_evidence_is_not_equal_to_numeric_threshold() -> None:
    gate = Gate(name="one", metric="shadow.predictions", op="==", threshold=1)
    decision = evaluate(_gate_policy(gate), Evidence(values={"shadow.predictions": True}))
    assert decision.results[0].verdict is Verdict.FAIL


def test_relative_rule_and_min_samples() -> None:
    gate = Gate(
        name="est_worse", metric="estimated.f1", op="<=", threshold=10,
        relative_to="champion.estimated.f1", samples="rollout.predictions", min_samples=100,
    )
    policy = _gate_policy(gate)
    few = Evidence(values={"estimated.f1": 0.5, "champion.estimated.f1": 0.8,
                           "rollout.predictions": 99})
    assert evaluate(policy, few).results[0].verdict is Verdict.MISSING
    # f1 is higher-is-better: 0.7 vs 0.8 is 12.5 % worse, above the 10 % bound.
    worse = few.model_copy(update={"values": {**few.values, "estimated.f1": 0.7,
                                              "rollout.predictions": 100}})
    result = evaluate(policy, worse).results[0]
    assert result.verdict is Verdict.FAIL and result.observed == pytest.approx(12.5)
    better = few.model_copy(update={"values": {**worse.values, "estimated.f1": 0.75}})
    assert evaluate(policy, better).results[0].verdict is Verdict.PASS


def test_rollout_breach_and_insufficient_samples() -> None:
    plan = standard_document("rollout-default@1")
    quiet = Evidence(plant="fd001", values={"rollout.predictions": 10,
                                            "rollout.fallback_rate": 0.5})
    assert evaluate(plan, quiet).passed  # 10 samples cannot breach
    loud = Evidence(plant="fd001", values={"rollout.predictions": 500,
                                           "rollout.fallback_rate": 0.5,
                                           "node.report_age_s": 1000})
    decision = evaluate(plan, loud)
    assert not decision.passed
    assert {r.rule for r in decision.results if r.verdict is Verdict.FAIL} == {
        "max_fallback_rate", "node_reporting",
    }
    assert decision.summary.startswith("rollout breached, rollback: fd001 rollout.fallback_rate")


def test_retraining_fires_on_any_trigger() -> None:
    policy = standard_document("retraining-default@1")
    calm = Evidence(plant="fd001", values={"labels.new": 1000, "drift.sustained_chunks": 2,
                                           "estimated.rmse": 11.0, "reference.rmse": 10.0})
    assert not evaluate(policy, calm).passed
    drifting = calm.model_copy(update={"values": {**calm.values, "drift.sustained_chunks": 3}})
    decision = evaluate(policy, drifting)
    assert decision.passed
    assert decision.summary == (
        "retraining triggered: fd001 drift.sustained_chunks 3 >= 3 "
        "(policy retraining-default@1, trigger drift_sustained)"
    )


def test_kinds_without_rules_are_refused() -> None:
    with pytest.raises(TypeError):
        evaluate(standard_document("cost-default@1"), Evidence())


def test_evaluate_is_pure() -> None:
    policy = standard_document("promotion-default@1")
    evidence = Evidence(plant="fd002", values={"validation.rmse": 25.9})
    assert evaluate(policy, evidence) == evaluate(policy, evidence)
    assert evidence.values == {"validation.rmse": 25.9}
