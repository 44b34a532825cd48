import json

from baselines.recipes import Recipe, ai4i_recipe, cmapss_recipe, get_recipe


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
    assert recipe.gates_pass({"rmse": 20.0}, "FD002") == {"rmse": True}
    assert recipe.gates_pass({"rmse": 20.0}, "FD001") == {"rmse": False}
    assert ai4i_recipe().gates_pass({"f1": 0.9}) == {"f1": True, "pr_auc": False, "ece": False}


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
