"""Parsing policy documents: shipped ones parse, malformed ones fail with located errors."""

import math
import textwrap

import pytest
from pydantic import ValidationError

import policies
from policies import (
    Gate,
    PolicyKind,
    PolicyValidationError,
    PromotionGatePolicy,
    format_ref,
    parse_policy,
    parse_ref,
    standard_documents,
)

GATE_YAML = textwrap.dedent(
    """
    kind: promotion_gate
    id: promotion-test
    version: 3
    title: Test gate
    rules:
      - name: max_rmse
        metric: validation.rmse
        op: "<="
        threshold: 24.6
        scope: {level: plant, value: fd002}
    """
)


def _paths(exc: PolicyValidationError) -> set[str]:
    return {e["path"] for e in exc.errors}


def test_every_shipped_document_parses_with_its_kind() -> None:
    docs = standard_documents()
    assert {d.kind for d in docs.values()} == set(PolicyKind)
    assert "promotion-default@1" in docs
    for ref, doc in docs.items():
        assert doc.ref == ref
        assert policies.validate_policy(doc.model_dump(mode="json")) == doc


def test_shipped_promotion_gate_holds_the_recipe_gates_per_plant() -> None:
    gate = policies.standard_document("promotion-default@1")
    assert isinstance(gate, PromotionGatePolicy)
    by_name = {r.name: r for r in gate.rules}
    assert by_name["max_rmse_fd002"].threshold == 24.6
    assert by_name["max_rmse_fd002"].scope.value == "fd002"
    assert by_name["min_f1_h"].metric == "validation.f1"
    assert gate.approvals.required == 2


def test_parse_gives_typed_frozen_document_with_ref() -> None:
    doc = parse_policy(GATE_YAML)
    assert isinstance(doc, PromotionGatePolicy)
    assert doc.ref == "promotion-test@3"
    assert doc.approvals.roles == ["data_scientist", "admin"]
    with pytest.raises(ValidationError):
        doc.version = 4  # type: ignore[misc]


def test_malformed_document_lists_each_error_with_its_path() -> None:
    bad = GATE_YAML.replace("version: 3", "version: 0").replace('op: "<="', 'op: "=~"')
    bad += "    extra_key: 1\n"
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(bad)
    assert _paths(caught.value) == {"version", "rules.0.op", "rules.0.extra_key"}
    assert all(e["message"] for e in caught.value.errors)
    assert "rules.0.op" in str(caught.value)


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy("kind: promotion_gate\nrules: [unclosed\n")
    (error,) = caught.value.errors
    assert error["path"] == "" and "line" in error["message"]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("- a list", ""),
        ("id: x\nversion: 1\n", "kind"),
        ("kind: voting\nid: x\n", "kind"),
    ],
)
def test_not_a_document(text: str, path: str) -> None:
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(text)
    assert _paths(caught.value) == {path}


def test_yaml_aliases_are_refused() -> None:
    text = "kind: cost\nid: c\nversion: 1\ntitle: &t T\ndescription: *t\n"
    with pytest.raises(PolicyValidationError, match="aliases"):
        parse_policy(text)


def test_unknown_evidence_metric_is_refused_at_parse() -> None:
    for metric in ("validation.rmsee", "rmse.fd001", "holdout", "bogus.rmse"):
        with pytest.raises(PolicyValidationError) as caught:
            parse_policy(GATE_YAML.replace("validation.rmse", metric))
        assert _paths(caught.value) == {"rules.0.metric"}
        assert "unknown evidence metric" in caught.value.errors[0]["message"]
    assert policies.is_known_metric("holdout.rmse")
    assert policies.is_known_metric("champion.estimated.f1")
    assert not policies.is_known_metric("champion.holdout.f1")


@pytest.mark.parametrize("threshold", [".nan", ".inf", "-.inf"])
def test_non_finite_thresholds_are_refused(threshold: str) -> None:
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(GATE_YAML.replace("threshold: 24.6", f"threshold: {threshold}"))
    assert caught.value.errors == [
        {"path": "rules.0.threshold", "message": "Value error, threshold must be a finite number"}
    ]
    with pytest.raises(ValueError):
        Gate(name="g", metric="holdout.rmse", op="<=", threshold=math.nan)


def test_bool_threshold_needs_equality() -> None:
    with pytest.raises(ValueError, match="compares only with == or !="):
        Gate(name="g", metric="int8.parity_ok", op=">=", threshold=True)
    assert Gate(name="g", metric="int8.parity_ok", op="==", threshold=True).threshold is True


def test_duplicate_rule_names_and_bad_scope_refused() -> None:
    twice = GATE_YAML + textwrap.indent(
        "- name: max_rmse\n  metric: holdout.rmse\n  op: '<'\n  threshold: 1\n", "  "
    )
    with pytest.raises(PolicyValidationError, match="used twice"):
        parse_policy(twice)
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(GATE_YAML.replace("{level: plant, value: fd002}", "{level: plant}"))
    assert _paths(caught.value) == {"rules.0.scope"}


def test_overridable_field_must_exist_and_hold_the_documents_value() -> None:
    missing = GATE_YAML + "overridable:\n  - {field: rules.nope.threshold, max: 30}\n"
    with pytest.raises(PolicyValidationError, match="does not exist"):
        parse_policy(missing)
    outside = GATE_YAML + "overridable:\n  - {field: rules.max_rmse.threshold, max: 20}\n"
    with pytest.raises(PolicyValidationError, match="outside its bound"):
        parse_policy(outside)
    never = GATE_YAML + "overridable:\n  - {field: version, max: 20}\n"
    with pytest.raises(PolicyValidationError, match="never be overridden"):
        parse_policy(never)


def test_refs_round_trip_and_refuse_garbage() -> None:
    assert parse_ref("promotion-default@3") == ("promotion-default", 3)
    assert format_ref("promotion-default", 3) == "promotion-default@3"
    for bad in ("promotion-default", "x@0", "X@1", "x@1.5", "@1", "x@-1"):
        with pytest.raises(ValueError):
            parse_ref(bad)
    with pytest.raises(ValueError):
        format_ref("x", 0)


def test_other_kinds_validate_their_figures() -> None:
    with pytest.raises(PolicyValidationError) as caught:
        policies.validate_policy(
            {"kind": "cost", "id": "c", "version": 1, "title": "t", "currency": "euro",
             "cost_per_unplanned_failure_hour": -1, "hours_per_failure": 8,
             "cost_per_false_alarm": 1, "cost_per_planned_intervention": 1}
        )
    assert _paths(caught.value) == {"currency", "cost_per_unplanned_failure_hour"}
    with pytest.raises(PolicyValidationError, match="at least 365 days"):
        policies.validate_policy(
            {"kind": "retention", "id": "r", "version": 1, "title": "t",
             "rules": [{"record_class": "audit", "keep_days": 30}]}
        )
    with pytest.raises(PolicyValidationError) as caught:
        policies.validate_policy(
            {"kind": "data_sharing", "id": "d", "version": 1, "title": "t", "dp_epsilon": 0}
        )
    assert _paths(caught.value) == {"dp_epsilon"}
