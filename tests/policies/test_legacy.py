"""Gates stored before policies/ upgrade to scoped rules with unique names."""

from policies import Gate, Scope, upgrade_legacy_gates


def test_hub_and_baselines_legacy_shapes_upgrade_to_the_same_rule() -> None:
    hub = {"metric": "rmse.fd001", "op": "<=", "threshold": 13.9}
    recipe = {"metric": "rmse", "op": "<=", "value": 13.9, "plant": "fd001"}
    (a,), (b,) = upgrade_legacy_gates([hub]), upgrade_legacy_gates([recipe])
    assert Gate.model_validate(a) == Gate.model_validate(b) == Gate(
        name="rmse_fd001", metric="validation.rmse", op="<=", threshold=13.9,
        scope=Scope(level="plant", value="fd001"),
    )


def test_repeated_legacy_names_get_suffixes_and_new_gates_pass_through() -> None:
    new = {"name": "f1", "metric": "holdout.f1", "op": ">=", "threshold": 0.5}
    items = [
        new,
        {"metric": "f1", "op": ">=", "threshold": 0.8},
        {"metric": "f1", "op": "<=", "threshold": 0.99},
    ]
    upgraded = upgrade_legacy_gates(items)
    assert upgraded[0] is new
    assert [g["name"] for g in upgraded] == ["f1", "f1_2", "f1_3"]
    assert {g["metric"] for g in upgraded[1:]} == {"validation.f1"}


def test_unknown_legacy_metric_still_fails_validation() -> None:
    (gate,) = upgrade_legacy_gates([{"metric": "bogus", "op": "<=", "threshold": 1}])
    assert gate["metric"] == "validation.bogus"
    assert upgrade_legacy_gates("not a list") == "not a list"
