"""Overrides: within the central policy's bounds they apply, outside they are refused by name."""

import pytest

from policies import (
    Evidence,
    OverrideRefused,
    PromotionGatePolicy,
    apply_overrides,
    evaluate,
    standard_document,
)

CENTRAL = "promotion-default@1"


def test_override_within_bounds_applies_and_leaves_central_unchanged() -> None:
    central = standard_document(CENTRAL)
    local = apply_overrides(central, {"rules.max_rmse_fd002.threshold": 25.9}, plant="FD002")
    evidence = Evidence(
        plant="fd002",
        values={"validation.rmse": 25.9, "int8.parity_ok": True, "contract.compatible": True,
                "lineage.complete": True, "artifact.verified": True},
    )
    assert evaluate(local, evidence).passed
    assert not evaluate(central, evidence).passed
    assert local.ref == central.ref
    assert isinstance(central, PromotionGatePolicy)
    assert {r.name: r.threshold for r in central.rules}["max_rmse_fd002"] == 24.6


def test_override_at_the_bound_is_allowed() -> None:
    local = apply_overrides(standard_document(CENTRAL), {"approvals.required": 3}, plant="fd001")
    assert local.approvals.required == 3  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("overrides", "plant", "field", "bound"),
    [
        ({"rules.max_rmse_fd002.threshold": 26.5}, "fd002", "rules.max_rmse_fd002.threshold",
         "max 26"),
        ({"rules.max_rmse_fd002.threshold": 19}, "fd002", "rules.max_rmse_fd002.threshold",
         "min 20"),
        ({"rules.max_rmse_fd002.threshold": 25}, "fd001", "rules.max_rmse_fd002.threshold",
         "plants fd002"),
        ({"rules.max_rmse_fd002.threshold": "25"}, "fd002", "rules.max_rmse_fd002.threshold",
         "min 20, max 26 (plants fd002) (a number)"),
        ({"approvals.required": 1}, "fd002", "approvals.required", "min 2"),
        ({"rules.max_rmse_fd001.threshold": 14}, "fd001", "rules.max_rmse_fd001.threshold",
         "not overridable"),
    ],
)
def test_override_outside_bounds_is_refused_naming_field_and_bound(
    overrides: dict[str, object], plant: str, field: str, bound: str
) -> None:
    with pytest.raises(OverrideRefused) as caught:
        apply_overrides(standard_document(CENTRAL), overrides, plant=plant)
    assert caught.value.field == field
    assert caught.value.bound.startswith(bound)
    assert field in str(caught.value) and bound in str(caught.value)


def test_choice_bound() -> None:
    plan = standard_document("rollout-default@1")
    assert apply_overrides(plan, {"failure_handling": "halt"}, plant="x").failure_handling == "halt"  # type: ignore[union-attr]
    with pytest.raises(OverrideRefused, match="one of 'rollback', 'halt'"):
        apply_overrides(plan, {"failure_handling": "ignore"}, plant="x")


def test_override_list_element_by_record_class() -> None:
    retention = standard_document("retention-default@1")
    local = apply_overrides(retention, {"rules.predictions.keep_days": 30}, plant="x")
    assert local.keep_days("predictions") == 30  # type: ignore[union-attr]
