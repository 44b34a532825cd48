"""``millwright baselines``: train, evaluate and export the baseline models.

Models are written under ``<root>/<baseline>/<plant>/`` (``var/models`` by default) and reused
while the training fingerprint (exact rows + recipe) is unchanged. ``publish`` lives in
``federation.baselines_cli`` (it needs the hub client; baselines may not import federation) and
is mounted on this group by the ``millwright`` entry point.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Train, evaluate, export and publish baseline models.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_ROOT = Path("var/models")
EXPORT_DIR = "export"


class Which(StrEnum):
    """Baselines a command can target."""

    CMAPSS = "cmapss"
    AI4I = "ai4i"
    ALL = "all"


class OutputFormat(StrEnum):
    """How commands print results."""

    TABLE = "table"
    JSON = "json"


BaselineArg = Annotated[Which, typer.Argument(help="cmapss, ai4i or all")]
PlantOpt = Annotated[
    list[str] | None,
    typer.Option("--plant", "-p", help="C-MAPSS subset(s) FD00x; default: every plant"),
]
RootOpt = Annotated[Path, typer.Option("--root", help="Model directory root")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="table or json")]


def targets(which: Which, plants: list[str] | None) -> list[tuple[str, str | None]]:
    """Expand a baseline choice into ``(baseline, plant)`` pairs (AI4I trains on all lines)."""
    from baselines.recipes import get_recipe

    out: list[tuple[str, str | None]] = []
    for b in ("cmapss", "ai4i"):
        if which not in (Which.ALL, Which(b)):
            continue
        if b == "ai4i":
            out.append((b, None))
            continue
        wanted = plants or list(get_recipe(b).plants)
        out += [(b, p) for p in wanted]
    return out


def _headline(metrics: dict[str, Any]) -> str:
    keys = ("rmse", "phm08_score", "f1", "pr_auc", "ece")
    return "  ".join(f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), float))


def _emit(rows: list[dict[str, Any]], fmt: OutputFormat, title: str) -> None:
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("baseline", "plant", "status", "metrics", "directory"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["baseline"], str(r["plant"] or "all"), r["status"], r["summary"], str(r["directory"])
        )
    Console().print(table)


@app.command()
def train(
    which: BaselineArg = Which.ALL,
    plant: PlantOpt = None,
    epochs: Annotated[
        int | None, typer.Option(help="Override every plant's epochs (demo-sized runs)")
    ] = None,
    root: RootOpt = DEFAULT_ROOT,
    force: Annotated[bool, typer.Option(help="Retrain even if cached")] = False,
    threads: Annotated[int | None, typer.Option(help="Torch threads")] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Train baselines (cached by training fingerprint) into ROOT/<baseline>/<plant>/."""
    from baselines.models.pipeline import train_baseline, with_epochs
    from baselines.recipes import get_recipe

    rows = []
    for baseline, p in targets(which, plant):
        recipe = with_epochs(get_recipe(baseline), epochs)
        trained = train_baseline(
            baseline, p, recipe=recipe, root=root, force=force, threads=threads
        )
        meta = trained.metadata
        rows.append(
            {
                "baseline": baseline,
                "plant": p,
                "status": "cached" if trained.cached else "trained",
                "fingerprint": meta["fingerprint"],
                "metrics": meta["metrics"],
                "train_seconds": meta["train"]["train_seconds"],
                "gates": meta["gates"],
                "summary": _headline(meta["metrics"]),
                "directory": str(trained.directory),
            }
        )
    _emit(rows, fmt, "trained baselines")


@app.command()
def evaluate(
    which: BaselineArg = Which.ALL,
    plant: PlantOpt = None,
    root: RootOpt = DEFAULT_ROOT,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Re-score trained baselines on their test split, beside the rule-based fallback."""
    from baselines.models.pipeline import holdout_targets, load_trained, plant_key, score_test
    from baselines.recipes import Baseline, Recipe
    from baselines.rules.evaluation import rule_metrics

    rows: list[dict[str, Any]] = []
    for baseline, p in targets(which, plant):
        directory = root / baseline / plant_key(Baseline(baseline), p)
        trained = load_trained(directory)
        if trained is None:
            rows.append(
                {"baseline": baseline, "plant": p, "status": "missing", "summary": "run train",
                 "directory": str(directory)}
            )  # fmt: skip
            continue
        recipe = Recipe.model_validate(trained.metadata["recipe"])
        metrics = score_test(trained.model, trained.data, recipe, p)
        rules = rule_metrics(trained.data, holdout_targets(trained.data))
        rows.append(
            {
                "baseline": baseline,
                "plant": p,
                "status": "ok",
                "metrics": metrics,
                "rule_fallback": rules,
                "summary": f"{_headline(metrics)} | rules: {_headline(rules)}",
                "directory": str(directory),
            }
        )
    _emit(rows, fmt, "evaluation on the test split")


@app.command()
def export(
    which: BaselineArg = Which.ALL,
    plant: PlantOpt = None,
    root: RootOpt = DEFAULT_ROOT,
    int8: Annotated[bool, typer.Option(help="Also write the NNCF INT8 model")] = True,
    force: Annotated[bool, typer.Option(help="Re-export even if up to date")] = False,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Export trained baselines to OpenVINO IR (FP32, INT8) in ROOT/<baseline>/<plant>/export/."""
    from baselines.export.convert import export_baseline
    from baselines.export.runtime import read_metadata
    from baselines.models.pipeline import load_trained, plant_key
    from baselines.recipes import Baseline

    rows: list[dict[str, Any]] = []
    for baseline, p in targets(which, plant):
        directory = root / baseline / plant_key(Baseline(baseline), p)
        out = directory / EXPORT_DIR
        trained_meta = directory / "metadata.json"
        if not trained_meta.exists():
            rows.append(
                {"baseline": baseline, "plant": p, "status": "missing", "summary": "run train",
                 "directory": str(directory)}
            )  # fmt: skip
            continue
        fingerprint = json.loads(trained_meta.read_text())["fingerprint"]
        try:
            current = read_metadata(out)
        except ValueError:
            current = {}
        up_to_date = current.get("fingerprint") == fingerprint and (
            not int8 or "int8" in current.get("files", {})
        )
        if up_to_date and not force:
            meta, status = current, "cached"
        else:
            trained = load_trained(directory)
            assert trained is not None
            meta, status = export_baseline(trained, out, int8=int8, strict=False), "exported"
        parity = meta.get("parity", {})
        ok = all(v.get("passed", False) for v in parity.values())
        rows.append(
            {
                "baseline": baseline,
                "plant": p,
                "status": status if ok else f"{status} (parity FAILED)",
                "parity": parity,
                "metrics": meta.get("metrics", {}),
                "summary": "  ".join(
                    f"{k}: {_headline(v)}" for k, v in meta.get("metrics", {}).items()
                ),
                "directory": str(out),
            }
        )
    _emit(rows, fmt, "OpenVINO exports")


__all__ = ["DEFAULT_ROOT", "EXPORT_DIR", "Which", "app", "targets"]
