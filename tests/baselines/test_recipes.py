import json

from baselines.recipes import Recipe, ai4i_recipe, cmapss_recipe, get_recipe
from policies import Gate


def test_recipes_round_trip_through_json() -> None:
    for recipe in (cmapss_recipe(), ai4i_recipe()):
        again = Recipe.model_validate(json.loads(recipe.to_json()))
        assert again == recipe and again.digest() == recipe.digest()


def test_recipes_carry_every_section_the_registry_needs() -> None:
    doc = cmapss_recipe().to_dict()
    for key in (
        "preprocessing", "features", "architecture", "hyperparameters", "split", "metrics",
        "promotion_gates", "int8_tolerance", "data_contract", "federation", "privacy",
        "monitoring",
    ):  # fmt: skip
        assert key in doc
    assert doc["int8_tolerance"] == {
        "metric": "rmse",
        "max_degradation": 0.5,
        "calibration_samples": 512,
    }
    assert get_recipe("ai4i").int8_tolerance.max_degradation == 0.02


def test_gates_are_per_plant_for_cmapss() -> None:
    recipe = cmapss_recipe()
    assert recipe.gates_pass({"rmse": 20.0}, "FD002") == {"rmse_fd002": True}
    assert recipe.gates_pass({"rmse": 20.0}, "FD001") == {"rmse_fd001": False}
    assert ai4i_recipe().gates_pass({"f1": 0.9}) == {"f1": True, "pr_auc": False, "ece": False}
    gate = recipe.promotion_gates[1]
    assert (gate.metric, gate.scope.value) == ("validation.rmse", "FD002")


def test_two_gates_on_one_metric_are_both_reported() -> None:
    recipe = cmapss_recipe()
    fleet_floor = Gate(name="rmse_fleet", metric="validation.rmse", op="<=", threshold=30.0)
    both = recipe.model_copy(update={"promotion_gates": [fleet_floor, *recipe.promotion_gates]})
    assert both.gates_pass({"rmse": 25.0}, "FD002") == {"rmse_fleet": True, "rmse_fd002": False}


def test_recipes_stored_before_policies_load_as_the_same_gates() -> None:
    recipe = cmapss_recipe()
    doc = recipe.to_dict()
    doc["promotion_gates"] = [
        {"metric": "rmse", "op": "<=", "value": v, "plant": k}
        for k, v in {"FD001": 13.9, "FD002": 24.6, "FD003": 13.9, "FD004": 25.6}.items()
    ]
    assert Recipe.model_validate(doc) == recipe
    ai4i = ai4i_recipe().to_dict()
    ai4i["promotion_gates"] = [{"metric": "f1", "op": ">=", "value": 0.8, "plant": None}]
    assert Recipe.model_validate(ai4i).promotion_gates[0].name == "f1"


def test_gates_do_not_touch_the_training_fingerprint() -> None:
    recipe = cmapss_recipe()
    stricter = recipe.model_copy(update={"promotion_gates": recipe.promotion_gates[:1]})
    assert stricter.training_json("FD001") == recipe.training_json("FD001")
    assert stricter.digest() != recipe.digest()


def test_monitoring_knobs_do_not_touch_the_training_fingerprint() -> None:
    recipe = cmapss_recipe()
    retuned = recipe.model_copy(
        update={"monitoring": recipe.monitoring.model_copy(update={"performance_k": 3.0})}
    )
    assert retuned.digest() != recipe.digest()  # the published recipe did change
    assert retuned.training_json("FD001") == recipe.training_json("FD001")
    trained_on = json.loads(recipe.training_json("FD001"))
    assert not {"monitoring", "federation", "privacy"} & set(trained_on)


def test_single_condition_weight_decay_is_a_plant_override_that_survives_demo_epochs() -> None:
    from baselines.models.pipeline import with_epochs

    recipe = cmapss_recipe()
    assert recipe.hyperparameters_for("FD001").weight_decay == 1e-2
    assert recipe.hyperparameters_for("FD003").weight_decay == 3e-3
    assert recipe.hyperparameters_for("FD002").weight_decay == 0.0
    # The override changes FD001's trained-on recipe only, never the other plants'.
    plain = recipe.model_copy(
        update={"hyperparameters": recipe.hyperparameters.model_copy(update={"overrides": {}})}
    )
    assert recipe.training_json("FD002") == plain.training_json("FD002")
    assert recipe.training_json("FD001") != plain.training_json("FD001")
    # The demo trains with a reduced epoch count; the plant's regularization must stay.
    demo = with_epochs(recipe, 3).hyperparameters_for("FD001")
    assert (demo.epochs, demo.weight_decay) == (3, 1e-2)
