import json

from typer.testing import CliRunner

from baselines.cli import app


def test_cli_evaluates_and_exports_cached_models(
    trained_cmapss, exported_cmapss, model_root
) -> None:
    runner = CliRunner()
    # evaluate reads the cached model and compares it with the rule fallback
    result = runner.invoke(
        app,
        ["evaluate", "cmapss", "--plant", "FD002", "--root", str(model_root), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["status"] == "ok" and "rmse" in row["metrics"] and "rmse" in row["rule_fallback"]
    # export is skipped while the training fingerprint is unchanged
    result = runner.invoke(
        app, ["export", "cmapss", "--plant", "FD002", "--root", str(model_root), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["status"].startswith("cached")


def test_cli_reports_missing_models(tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["evaluate", "ai4i", "--root", str(tmp_path), "--format", "json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.output)[0]["status"] == "missing"
