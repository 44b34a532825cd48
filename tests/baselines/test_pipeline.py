import json

import pytest

from baselines.models.pipeline import load_trained, train_baseline
from baselines.recipes import cmapss_recipe
from tests.baselines.conftest import small_export_recipe


def test_metadata_carries_fingerprint_recipe_and_feature_state(trained_cmapss) -> None:
    meta = json.loads((trained_cmapss.directory / "metadata.json").read_text())
    assert meta["fingerprint"] == trained_cmapss.data.fingerprint
    assert meta["recipe_id"] == "cmapss-rul-cnn@1.0.0"
    assert meta["feature_state"]["kind"] == "cmapss-features"
    assert meta["input_shape"] == [None, 30, 14]
    assert meta["output"]["unit"] == "cycles"
    assert "rmse" in meta["metrics"] and meta["train"]["train_seconds"] > 0


def test_same_fingerprint_is_served_from_cache(trained_cmapss, model_root) -> None:
    recipe = small_export_recipe(cmapss_recipe(), epochs=2)
    again = train_baseline("cmapss", "FD002", recipe=recipe, root=model_root, max_units=8)
    assert again.cached
    assert again.metadata["fingerprint"] == trained_cmapss.metadata["fingerprint"]


def test_other_recipe_does_not_hit_the_cache(trained_cmapss) -> None:
    assert load_trained(trained_cmapss.directory, expect_fingerprint="0" * 64) is None


def test_ai4i_reports_recall_per_failure_mode(trained_ai4i) -> None:
    recall = trained_ai4i.metadata["metrics"]["recall_by_mode"]
    assert set(recall) == {"twf", "hdf", "pwf", "osf", "rnf"}
    assert 0.0 < trained_ai4i.metadata["threshold"] < 1.0
    assert set(trained_ai4i.metadata["gates"]) == {"f1", "pr_auc", "ece"}


def test_ai4i_threshold_is_cross_fitted_on_all_non_test_rows(trained_ai4i) -> None:
    data, meta = trained_ai4i.data, trained_ai4i.metadata
    assert meta["calibration"]["folds"] == 5
    assert meta["train"]["num_examples"] == len(data.x_train) + len(data.x_val)
    assert meta["calibration"]["temperature"] > 0
    assert meta["threshold"] == pytest.approx(meta["calibration"]["threshold"], rel=1e-6)
