"""Inference benchmark: torch eager vs OpenVINO FP32 vs OpenVINO INT8, for each baseline.

Single-sample latency p50/p99 and batch-64 throughput on one thread, accuracy of each variant
on the full test split (C-MAPSS FD001 RMSE, AI4I F1 at the calibrated threshold), and peak RSS
of a fresh process that loads only what that variant needs to serve (for OpenVINO: openvino +
numpy + ``baselines.export``; the child asserts torch was never imported). Uses the models
``bench_baselines`` trained and exports them if needed. Writes
``benchmarks/results/inference.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_baselines import ROOT, update_readme

RESULTS = Path(__file__).parent / "results"
PLANTS = {"cmapss": "FD001", "ai4i": None}
BEGIN, END = "<!-- results: inference -->", "<!-- /results: inference -->"


def _latency(fn: Any, samples: np.ndarray, n: int) -> tuple[float, float]:
    for i in range(min(20, n)):
        fn(samples[i % len(samples)][None])
    times = []
    for i in range(n):
        x = samples[i % len(samples)][None]
        t = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t) * 1000.0)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def _throughput(fn: Any, batch: np.ndarray, seconds: float) -> float:
    fn(batch)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(batch)
        done += len(batch)
    return done / (time.perf_counter() - start)


def _throughputs(
    fns: dict[str, Any], samples: np.ndarray, seconds: float, rounds: int = 10
) -> dict[str, float]:
    """Batch-64 samples/s of each variant: median of short rounds that take turns.

    On a shared machine one long block per variant measures the load of its moment along with
    the variant; alternating rounds see the same load, so the INT8 / FP32 ratio is the variants'.
    """
    batch = np.ascontiguousarray(samples[np.arange(64) % len(samples)])
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            runs[name].append(_throughput(fn, batch, seconds / rounds))
    return {name: float(np.median(r)) for name, r in runs.items()}


# Peak RSS from /proc/self/status VmHWM: ru_maxrss survives exec, so a child started from a
# large parent would report the parent's peak.
_PEAK = """
def _peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
"""

_RSS_OV = (
    _PEAK
    + """
import sys
import numpy as np
from baselines.export import load_exported
m = load_exported(sys.argv[1], sys.argv[2], threads=1)
x = np.zeros([1, *m.metadata["input"]["shape"][1:]], dtype=np.float32)
for _ in range(50):
    m.predict(x)
assert "torch" not in sys.modules, "serving path imported torch"
print(_peak_mb())
"""
)

_RSS_TORCH = (
    _PEAK
    + """
import sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from baselines.models.pipeline import load_trained
t = load_trained(Path(sys.argv[1]))
x = torch.as_tensor(t.data.x_test[:1])
with torch.no_grad():
    for _ in range(50):
        t.model(x)
print(_peak_mb())
"""
)


def _rss(script: str, *args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return round(float(out.stdout.strip().splitlines()[-1]), 1)


def bench_one(baseline: str, plant: str | None, quick: bool) -> dict[str, Any]:
    """Measure the three variants of one baseline."""
    import torch

    from baselines.export import load_exported, read_metadata
    from baselines.export.convert import export_baseline
    from baselines.models.pipeline import holdout_targets, load_trained, plant_key
    from baselines.models.training import score_predictions
    from baselines.recipes import Baseline

    root = ROOT / "quick" if quick else ROOT
    directory = root / baseline / plant_key(Baseline(baseline), plant)
    trained = load_trained(directory)
    if trained is None:
        raise RuntimeError(f"no trained model in {directory}; run bench_baselines first")
    export_dir = directory / "export"
    try:
        current = read_metadata(export_dir)
    except ValueError:
        current = {}
    if current.get("fingerprint") != trained.metadata["fingerprint"]:
        export_baseline(trained, export_dir, strict=False)
    data = trained.data
    y = holdout_targets(data)
    task = trained.metadata["recipe"]["task"]
    threshold = trained.metadata.get("threshold") or 0.5
    threshold = 0.5 if threshold != threshold else float(threshold)
    metric = "rmse" if task == "rul_regression" else "f1"
    n_lat = 200 if quick else 2000
    seconds = 1.0 if quick else 5.0
    samples = np.ascontiguousarray(data.x_test, dtype=np.float32)

    torch.set_num_threads(1)
    model = trained.model.eval()

    def torch_fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    variants: dict[str, Any] = {"torch": torch_fn}
    for precision in ("fp32", "int8"):
        compiled = load_exported(export_dir, precision, threads=1)  # type: ignore[arg-type]
        variants[f"ov_{precision}"] = compiled.predict
    out: dict[str, Any] = {}
    throughput = _throughputs(variants, samples, seconds)
    for name, fn in variants.items():
        p50, p99 = _latency(fn, samples, n_lat)
        pred = np.concatenate([fn(samples[i : i + 64]) for i in range(0, len(samples), 64)])
        scored = score_predictions(task, y, pred, threshold)
        if name == "torch":
            rss = _rss(_RSS_TORCH, str(directory))
        else:
            rss = _rss(_RSS_OV, str(export_dir), name.removeprefix("ov_"))
        out[name] = {
            "p50_ms": round(p50, 4),
            "p99_ms": round(p99, 4),
            "batch64_per_s": round(throughput[name], 1),
            "metric": round(float(scored[metric]), 4),
            "rss_mb": rss,
        }
    return out


def table(results: dict[str, Any]) -> str:
    """Markdown table of the inference results with the speed-up ratios."""
    lines = [
        "| baseline | variant | p50 ms | p99 ms | batch-64 samples/s | metric | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for baseline, variants in results.items():
        label = "C-MAPSS FD001 (RMSE)" if baseline == "cmapss" else "AI4I (F1)"
        for name, r in variants.items():
            lines.append(
                f"| {label} | {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                f"{r['batch64_per_s']:.0f} | {r['metric']:.4f} | {r['rss_mb']:.0f} |"
            )
    lines.append("")
    lines.append(
        "One thread for every variant, on a shared 2-core AMD EPYC with AVX2 and no VNNI (no "
        "native INT8 dot products); peak RSS of a fresh process that loads only that variant "
        "(the OpenVINO child asserts torch was never imported)."
    )
    lines.append("")
    for baseline, v in results.items():
        fp32_vs_torch = v["torch"]["p50_ms"] / v["ov_fp32"]["p50_ms"]
        int8_vs_fp32 = v["ov_int8"]["batch64_per_s"] / v["ov_fp32"]["batch64_per_s"]
        lines.append(
            f"- {baseline}: OpenVINO FP32 is {fp32_vs_torch:.2f}× torch at batch 1 "
            "(target ≥ 1.5×); "
            f"INT8 is {int8_vs_fp32:.2f}× FP32 at batch 64 (target ≥ 1.3×)."
        )
    return "\n".join(lines)


def run(quick: bool = False) -> dict[str, Any]:
    """Benchmark entry point used by ``python -m benchmarks``."""
    results = {b: bench_one(b, p, quick) for b, p in PLANTS.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "inference.quick.json.tmp" if quick else "inference.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    text = table(results)
    print(text)
    if not quick:
        update_readme(
            "### Inference (`benchmarks/results/inference.json`, one thread)\n\n" + text, BEGIN, END
        )
    return results


if __name__ == "__main__":
    run()
