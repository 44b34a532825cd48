import subprocess
import sys
import textwrap

import numpy as np
import pytest

from baselines.export import load_exported, read_metadata
from baselines.models.pipeline import holdout_targets
from baselines.models.training import predict


@pytest.mark.parametrize("which", ["cmapss", "cmapss_ensemble", "ai4i"])
def test_fp32_ir_matches_torch(which, request) -> None:
    trained = request.getfixturevalue(f"trained_{which}")
    directory = request.getfixturevalue(f"exported_{which}")
    runtime = load_exported(directory, "fp32")
    x = trained.data.x_test
    diff = np.max(np.abs(runtime.predict(x) - predict(trained.model, x)))
    assert diff <= 1e-4
    assert read_metadata(directory)["parity"]["fp32"]["passed"]


def test_int8_stays_within_the_recipe_tolerance(
    trained_cmapss, exported_cmapss, exported_cmapss_ensemble, exported_ai4i
) -> None:
    for directory in (exported_cmapss, exported_cmapss_ensemble, exported_ai4i):
        meta = read_metadata(directory)
        int8 = meta["parity"]["int8"]
        assert int8["degradation"] <= int8["tolerance"], int8
        runtime = load_exported(directory, "int8")
        assert runtime.predict(np.zeros([3, *meta["input"]["shape"][1:]], np.float32)).shape == (3,)


def test_an_ensembles_export_is_one_graph_and_reloads(
    trained_cmapss_ensemble, exported_cmapss_ensemble
) -> None:
    from baselines.models import RulEnsemble
    from baselines.models.pipeline import load_trained

    # One IR pair per precision, whatever the number of copies; the cached model reloads as
    # the same three-copy ensemble from its metadata's recipe.
    assert sorted(p.name for p in exported_cmapss_ensemble.glob("*.xml")) == [
        "model_fp32.xml", "model_int8.xml"
    ]
    again = load_trained(trained_cmapss_ensemble.directory, data=trained_cmapss_ensemble.data)
    assert again is not None and isinstance(again.model, RulEnsemble)
    assert len(again.model.ensemble) == 3
    x = trained_cmapss_ensemble.data.x_test
    expected = predict(trained_cmapss_ensemble.model, x)
    np.testing.assert_array_equal(predict(again.model, x), expected)


def test_federated_weights_from_an_ensemble_parent_export_as_one_network(
    trained_cmapss_ensemble, exported_cmapss_ensemble, tmp_path
) -> None:
    from baselines.export.federated import export_weights
    from baselines.recipes import Recipe
    from federation.apps.arrays import first_copy

    # A campaign from the ensemble starts from its first copy; its weights export as one network.
    with np.load(exported_cmapss_ensemble / "weights.npz") as f:
        single = first_copy({k: f[k] for k in f.files})
    np.savez(tmp_path / "global.npz", **single)
    meta = export_weights(tmp_path / "global.npz", exported_cmapss_ensemble, tmp_path / "out")

    assert meta["parity"]["fp32"]["passed"]
    recipe = Recipe.model_validate_json((tmp_path / "out" / "recipe.json").read_text())
    assert recipe.hyperparameters.ensemble == 1 and meta["recipe_digest"] == recipe.digest()
    x = trained_cmapss_ensemble.data.x_test
    copy0 = predict(trained_cmapss_ensemble.model.ensemble[0], x)
    got = load_exported(tmp_path / "out", "fp32").predict(x)
    assert np.abs(got - copy0).max() <= 1e-3 * max(1.0, float(np.abs(copy0).max()))


def test_metadata_describes_what_serving_needs(exported_ai4i, trained_ai4i) -> None:
    meta = read_metadata(exported_ai4i)
    assert meta["recipe_id"] == "ai4i-failure-mlp@1.0.0"
    assert meta["fingerprint"] == trained_ai4i.metadata["fingerprint"]
    assert meta["input"] == {"name": "features", "shape": [-1, 11], "dtype": "float32"}
    assert meta["output"]["name"] == "failure_probability"
    assert set(meta["files"]) == {"fp32", "int8"}
    y = holdout_targets(trained_ai4i.data)
    assert len(y) == 2000


def test_tampered_ir_is_refused(exported_ai4i, tmp_path) -> None:
    for f in exported_ai4i.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "model_fp32.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="sha256"):
        load_exported(tmp_path, "fp32")


def test_serving_loads_with_openvino_and_numpy_only(exported_cmapss) -> None:
    # A fresh interpreter: rebuild the features from raw rows and score, without torch.
    script = textwrap.dedent(
        """
        import sys
        from baselines.datasets import load_cmapss
        from baselines.export import load_exported
        from baselines.features import cmapss
        m = load_exported(sys.argv[1], "int8", threads=1)
        rows = load_cmapss("FD002", "test").query("unit == 1").to_dict("records")
        rul = m.predict(cmapss.transform_rows(rows, m.feature_state))
        assert rul.shape == (1,)
        assert "torch" not in sys.modules and "nncf" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(exported_cmapss)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
