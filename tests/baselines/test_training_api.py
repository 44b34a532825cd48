"""The API the Flower ClientApp builds on: build, weights as numpy, train_local, evaluate."""

import numpy as np
import pytest

from baselines.models import (
    RulEnsemble,
    build_model,
    calibrate,
    evaluate,
    get_weights,
    head_parameter_names,
    load_plant_data,
    predict,
    set_weights,
    train_local,
    train_members,
)


def _train(recipe, data, **kw):
    model = build_model(recipe, data.input_shape)
    hp = recipe.hyperparameters
    metrics = train_local(
        model, data.x_train, data.y_train, epochs=hp.epochs, lr=hp.lr,
        batch_size=hp.batch_size, seed=hp.seed, **kw,
    )  # fmt: skip
    return model, metrics


def test_training_is_reproducible(cmapss_small, tiny_cmapss_recipe) -> None:
    a, ma = _train(tiny_cmapss_recipe, cmapss_small)
    b, mb = _train(tiny_cmapss_recipe, cmapss_small)
    assert ma["loss"] == mb["loss"]
    for wa, wb in zip(get_weights(a), get_weights(b), strict=True):
        assert np.array_equal(wa, wb)


def test_weights_round_trip_as_numpy(cmapss_small, tiny_cmapss_recipe) -> None:
    trained, _ = _train(tiny_cmapss_recipe, cmapss_small)
    fresh = build_model(tiny_cmapss_recipe, cmapss_small.input_shape, seed=123)
    set_weights(fresh, get_weights(trained))
    assert evaluate(fresh, cmapss_small.x_test, cmapss_small.y_test)["rmse"] == pytest.approx(
        evaluate(trained, cmapss_small.x_test, cmapss_small.y_test)["rmse"]
    )
    with pytest.raises(ValueError):
        set_weights(fresh, get_weights(trained)[:-1])


def test_regression_metrics(cmapss_small, tiny_cmapss_recipe) -> None:
    model, metrics = _train(tiny_cmapss_recipe, cmapss_small)
    out = evaluate(model, cmapss_small.x_test, cmapss_small.y_test)
    assert {"rmse", "mae", "phm08_score", "loss", "num_examples"} <= set(out)
    assert out["num_examples"] == 8 and metrics["num_examples"] == len(cmapss_small.x_train)


def test_fedprox_term_pulls_towards_the_global_weights(cmapss_small, tiny_cmapss_recipe) -> None:
    # Prepare
    start = build_model(tiny_cmapss_recipe, cmapss_small.input_shape)
    anchor = get_weights(start)

    def drift(mu: float) -> float:
        model = build_model(tiny_cmapss_recipe, cmapss_small.input_shape)
        train_local(
            model, cmapss_small.x_train, cmapss_small.y_train, epochs=2, lr=5e-3,
            batch_size=256, seed=1, proximal_mu=mu, global_weights=anchor,
        )  # fmt: skip
        return sum(
            float(((w - a) ** 2).sum()) for w, a in zip(get_weights(model), anchor, strict=True)
        )

    # Execute / Assert
    assert drift(10.0) < drift(0.0)


def test_head_only_training_changes_the_head_and_nothing_else(
    cmapss_small, tiny_cmapss_recipe
) -> None:
    # Prepare
    model = build_model(tiny_cmapss_recipe, cmapss_small.input_shape)
    before = dict(model.state_dict())
    before = {k: v.clone() for k, v in before.items()}
    head = set(head_parameter_names(model))

    # Execute
    train_local(
        model, cmapss_small.x_train, cmapss_small.y_train, epochs=1, lr=5e-3,
        batch_size=256, seed=1, head_only=True,
    )  # fmt: skip

    # Assert: the head moved, the representation did not, and training re-enabled it.
    after = model.state_dict()
    assert head and all(k.startswith("head.") for k in head)
    for name, _ in model.named_parameters():
        moved = not bool((after[name] == before[name]).all())
        assert moved == (name in head), name
    assert all(p.requires_grad for p in model.parameters())


def test_an_ensembles_head_is_each_members_last_layer() -> None:
    from baselines.recipes import get_recipe

    model = build_model(get_recipe("ai4i"), (11,), seed=0)
    names = head_parameter_names(model)
    members = {n.split(".")[1] for n, _ in model.named_parameters()}
    assert len(names) == 2 * len(members)  # weight and bias of each member's last layer
    last = max(int(n.split(".")[2]) for n, _ in model.named_parameters())
    assert all(int(n.split(".")[2]) == last for n in names)


def test_an_rul_ensemble_serves_the_mean_of_its_independent_copies(
    cmapss_small, tiny_cmapss_recipe
) -> None:
    # Prepare
    hp = tiny_cmapss_recipe.hyperparameters
    schedule = {"epochs": hp.epochs, "lr": hp.lr, "batch_size": hp.batch_size, "seed": hp.seed}
    single = build_model(tiny_cmapss_recipe, cmapss_small.input_shape)
    ensemble = build_model(tiny_cmapss_recipe, cmapss_small.input_shape, ensemble=3)

    # Execute
    train_members(single, cmapss_small.x_train, cmapss_small.y_train, **schedule)
    out = train_members(ensemble, cmapss_small.x_train, cmapss_small.y_train, **schedule)

    # Assert: forward is the mean of the copies; copy 0 is exactly the single network of the
    # same recipe and seed, the other copies are different networks.
    assert isinstance(ensemble, RulEnsemble) and out["members"] == 3
    x = cmapss_small.x_test
    copies = np.stack([predict(c, x) for c in ensemble.ensemble])
    np.testing.assert_allclose(predict(ensemble, x), copies.mean(axis=0), rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(copies[0], predict(single, x))
    assert np.abs(copies[1] - copies[0]).max() > 0.1 and np.abs(copies[2] - copies[1]).max() > 0.1
    assert len(get_weights(ensemble)) == 3 * len(get_weights(single))
    head = head_parameter_names(ensemble)
    assert len(head) == 3 * len(head_parameter_names(single))
    assert all(n.split(".")[2] == "head" for n in head)


def test_only_rul_regressors_are_built_as_ensembles() -> None:
    from baselines.recipes import get_recipe

    with pytest.raises(ValueError, match="only built for RUL regression"):
        build_model(get_recipe("ai4i"), (11,), ensemble=2)


def test_classifier_calibrates_and_reports_classification_metrics(
    ai4i_data, tiny_ai4i_recipe
) -> None:
    model, _ = _train(tiny_ai4i_recipe, ai4i_data)
    calib = calibrate(model, ai4i_data.x_val, ai4i_data.y_val)
    out = evaluate(model, ai4i_data.x_test, ai4i_data.y_test)
    assert calib["temperature"] > 0
    assert out["threshold"] == pytest.approx(calib["threshold"], rel=1e-6)
    assert {"f1", "pr_auc", "ece", "precision", "recall"} <= set(out)
    # Calibration buffers are not federated weights.
    assert len(get_weights(model)) == len(list(model.parameters()))


def test_plant_data_per_line_and_subset() -> None:
    line = load_plant_data("ai4i", "M")
    assert line.x_train.shape[1] == 11 and line.plant_id == "M"
    a = load_plant_data("cmapss", "FD001", max_units=3)
    b = load_plant_data("cmapss", "FD001", max_units=4)
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == load_plant_data("cmapss", "FD001", max_units=3).fingerprint
    with pytest.raises(ValueError):
        load_plant_data("cmapss")


def test_clean_source_loses_no_rows_to_the_contract() -> None:
    data = load_plant_data("ai4i")
    assert data.quarantined_rows == 0
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 10000
    assert load_plant_data("cmapss", "FD001", max_units=5).quarantined_rows == 0
