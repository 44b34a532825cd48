"""Canonical JSON and sha256 are stable across key order and refuse NaN."""

import math

import pytest

from policies import (
    Evidence,
    canonical_json,
    document_sha256,
    evidence_sha256,
    parse_policy,
    sha256_of,
)


def test_canonical_json_sorts_keys_and_strips_whitespace() -> None:
    text = canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]})
    assert text == '{"a":[1,{"c":"é","d":2}],"b":1}'


def test_sha256_stable_across_key_order() -> None:
    one = {"plant": "fd002", "values": {"validation.rmse": 25.9, "int8.parity_ok": True}}
    two = {"values": {"int8.parity_ok": True, "validation.rmse": 25.9}, "plant": "fd002"}
    assert sha256_of(one) == sha256_of(two)
    assert sha256_of(one) != sha256_of({**one, "plant": "fd001"})
    a = Evidence(plant="p", values={"x.a": 1, "y.b": 2})
    b = Evidence(plant="p", values={"y.b": 2, "x.a": 1})
    assert evidence_sha256(a) == evidence_sha256(b)


def test_document_sha256_ignores_yaml_layout() -> None:
    first = "kind: cost\nid: c\nversion: 1\ntitle: T\ncurrency: EUR\n" \
        "cost_per_unplanned_failure_hour: 1\nhours_per_failure: 2\n" \
        "cost_per_false_alarm: 3\ncost_per_planned_intervention: 4\n"
    second = "# same figures\n" + "\n".join(reversed(first.strip().splitlines())) + "\n"
    assert document_sha256(parse_policy(first)) == document_sha256(parse_policy(second))
    changed = first.replace("hours_per_failure: 2", "hours_per_failure: 3")
    assert document_sha256(parse_policy(first)) != document_sha256(parse_policy(changed))


def test_nan_has_no_canonical_form() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})
    assert Evidence(values={"x.a": math.inf}).values == {"x.a": None}
