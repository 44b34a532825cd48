"""Serving benchmark: in-process and HTTP latency, sustained throughput, explanation delay, RSS.

The node under test is a real ``uvicorn`` process pinned to one core, serving both baselines
(the recipes' architectures, converted to OpenVINO FP32 IR) from its model cache. The same
process is then restarted with the torch eager modules swapped in, for comparison.
Writes ``benchmarks/results/serving.json``.

Usage: ``python -m benchmarks serving [--quick]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "serving.json"
REPO = Path(__file__).resolve().parent.parent
BASELINES = ("cmapss", "ai4i")
# A 1,200 parts/minute line: the pace at which the explanation delay is measured.
LINE_RATE_PER_S = 20.0


# -- model preparation (torch lives only here, never in the server's OpenVINO mode) -----------


def _states() -> dict[str, Any]:
    from baselines.datasets import load_ai4i, load_cmapss
    from baselines.features import ai4i, cmapss

    return {"ai4i": ai4i.fit(load_ai4i()), "cmapss": cmapss.fit(load_cmapss("FD001", "train"))}


def _torch_module(baseline: str, state: Any) -> Any:
    import torch

    from baselines.models.networks import build_network
    from baselines.recipes.standard import get_recipe

    torch.manual_seed(0)
    shape = (state.window, state.n_features) if baseline == "cmapss" else (state.n_features,)
    return build_network(dict(get_recipe(baseline).architecture), shape).eval(), shape


def _export(baseline: str, state: Any, out: Path) -> None:
    import openvino as ov
    import torch

    module, shape = _torch_module(baseline, state)
    with torch.no_grad():
        model = ov.convert_model(module, example_input=torch.zeros((1, *shape)))
    model.reshape({model.inputs[0]: ov.PartialShape([-1, *shape])})
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out / "model_fp32.xml"), compress_to_fp16=False)
    sha = {
        f"{ext}_sha256": hashlib.sha256((out / f"model_fp32.{ext}").read_bytes()).hexdigest()
        for ext in ("xml", "bin")
    }
    meta = {
        "format_version": 1,
        "name": f"{baseline}-bench",
        "version": "bench-1",
        "baseline": baseline,
        "feature_state": state.to_dict(),
        "threshold": 0.5,
        "files": {"fp32": {"xml": "model_fp32.xml", "bin": "model_fp32.bin", **sha}},
    }
    (out / "metadata.json").write_text(json.dumps(meta))


def _requests(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from baselines.datasets import load_ai4i, load_cmapss
    from baselines.features import ai4i

    row = load_ai4i().iloc[0]
    record = {"type": str(row["type"]), **{c: float(row[c]) for c in ai4i.RAW_NUMERIC}}
    frame = load_cmapss("FD001", "test")
    unit = frame[frame["unit"] == 1].tail(states["cmapss"].window)
    cycles = [
        {k: (int(v) if k in ("unit", "cycle") else float(v)) for k, v in r.items()}
        for r in unit.to_dict(orient="records")
    ]
    return {
        "ai4i": {"baseline": "ai4i", "record": record},
        "cmapss": {"baseline": "cmapss", "records": cycles},
    }


# -- the server process ---------------------------------------------------------------------


def _serve(data_dir: str, port: int, engine: str) -> None:
    """Run the node (``--serve`` mode); with engine ``torch`` the eager modules answer."""
    import uvicorn

    from plant_node.config import NodeSettings
    from plant_node.db import upgrade_database
    from plant_node.main import create_app

    os.sched_setaffinity(0, {0})
    settings = NodeSettings(
        plant_id="bench", data_dir=Path(data_dir), outbox_enabled=False, serving_precision="fp32"
    )
    upgrade_database(settings.db_url)
    app = create_app(settings)
    if engine == "torch":
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: Any) -> Any:
            async with inner(a):
                _swap_in_torch(a)
                yield

        app.router.lifespan_context = lifespan
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _swap_in_torch(app: Any) -> None:
    import torch

    torch.set_num_threads(1)
    flows = app.state.node.serving
    for baseline, runtime in flows.runtimes.items():
        ov_model = runtime.current
        module, _ = _torch_module(baseline, _state_of(ov_model))

        class TorchModel:
            def __init__(self, m: Any, ov_model: Any) -> None:
                self.m = m
                self.manifest = ov_model.manifest
                self.version = ov_model.version + "-torch"
                self.featurize = ov_model.featurize

            def infer(self, x: Any) -> Any:
                with torch.no_grad():
                    out = self.m(torch.as_tensor(np.asarray(x, dtype=np.float32)))
                return out.numpy().astype(np.float64).reshape(len(x))

            def predict_rows(self, items: Any) -> Any:
                feats = self.featurize(items)
                return feats, self.infer(feats)

        runtime.activate(TorchModel(module, ov_model))


def _state_of(model: Any) -> Any:
    from baselines.features import state_from_dict

    return state_from_dict(model.manifest.metadata["feature_state"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, engine: str) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_serving",
            "--serve",
            str(data_dir),
            str(port),
            engine,
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        try:
            if httpx.get(base + "/v1/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("node did not become ready")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- measurements ---------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _http_latency(base: str, body: dict[str, Any], n: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(min(20, n)):
            client.post("/v1/predict", json=body)
        for _ in range(n):
            t = time.perf_counter()
            r = client.post("/v1/predict", json=body)
            out.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(r.text)
    return out


def _paced(base: str, body: dict[str, Any], n: int, rate_per_s: float) -> list[str]:
    """Send ``n`` requests at a line's pace; return their prediction ids."""
    import httpx

    ids = []
    with httpx.Client(base_url=base, timeout=10) as client:
        next_at = time.monotonic()
        for _ in range(n):
            r = client.post("/v1/predict", json=body)
            ids.extend(p["prediction_id"] for p in r.json()["predictions"])
            next_at += 1.0 / rate_per_s
            time.sleep(max(0.0, next_at - time.monotonic()))
    return ids


def _drain(base: str, body: dict[str, Any], timeout_s: float = 300.0) -> None:
    """Wait until the explanation backlog is empty (a fresh prediction gets explained)."""
    import httpx

    with httpx.Client(base_url=base, timeout=10) as client:
        pid = client.post("/v1/predict", json=body).json()["predictions"][0]["prediction_id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if client.get(f"/v1/predictions/{pid}").json()["explanation"] != "pending":
                return
            time.sleep(0.2)


def _throughput(base: str, body: dict[str, Any], seconds: float, clients: int = 4) -> float:
    import httpx

    done = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            while time.monotonic() < stop:
                if client.post("/v1/predict", json=body).status_code == 200:
                    done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def _explanation_delays(db: Path, ids: list[str]) -> list[float]:
    marks = ",".join("?" * len(ids))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"SELECT created_at, explained_at FROM predictions WHERE id IN ({marks})", ids
        ).fetchall()
    if any(b is None for _, b in rows):
        return [float("inf")]
    from datetime import datetime

    def ts(v: str) -> float:
        return datetime.fromisoformat(v).timestamp()

    return [(ts(b) - ts(a)) * 1000 for a, b in rows]


def _inproc(data_dir: Path, bodies: dict[str, dict[str, Any]], n: int) -> dict[str, float]:
    from plant_node.config import NodeSettings
    from plant_node.db import make_engine, make_session_factory
    from plant_node.metrics import NodeMetrics
    from plant_node.serving.cache import ModelCache
    from plant_node.serving.flows import ServingFlows
    from plant_node.serving.pipelines import default_pipelines
    from plant_node.serving.schemas import PredictRequest

    settings = NodeSettings(
        plant_id="bench", data_dir=data_dir, outbox_enabled=False, serving_precision="fp32"
    )
    engine = make_engine(settings.db_url)
    flows = ServingFlows(
        settings,
        make_session_factory(engine),
        NodeMetrics(),
        default_pipelines(),
        ModelCache(settings.cache_path),
    )
    flows.sync_models(None)
    out = {}
    for baseline, body in bodies.items():
        req = PredictRequest.model_validate(body)
        for _ in range(20):
            flows.predict(req)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            flows.predict(req)
            times.append((time.perf_counter() - t) * 1000)
        out[baseline] = _pct(times, 99)
    engine.dispose()
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """Run the benchmark, print a table and write ``benchmarks/results/serving.json``."""
    n = 200 if quick else 1000
    seconds = 3.0 if quick else 10.0
    from plant_node.db import upgrade_database
    from plant_node.serving.cache import ModelCache

    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})  # clients on core 1, the node alone on core 0
    states = _states()
    bodies = _requests(states)
    results: dict[str, dict[str, Any]] = {b: {} for b in BASELINES}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for engine in ("openvino", "torch"):
            data_dir = root / engine
            upgrade_database(f"sqlite:///{data_dir / 'node.db'}")
            cache = ModelCache(data_dir / "models")
            for b in BASELINES:
                _export(b, states[b], root / "exports" / engine / b)
                cache.install(root / "exports" / engine / b)
            proc, base = _start(data_dir, engine)
            try:
                for b in BASELINES:
                    _drain(base, bodies[b])
                    lat = _http_latency(base, bodies[b], n)
                    if engine == "openvino":
                        results[b]["http_p50_ms"] = round(_pct(lat, 50), 3)
                        results[b]["http_p99_ms"] = round(_pct(lat, 99), 3)
                        _drain(base, bodies[b])
                        ids = _paced(base, bodies[b], n // 4, LINE_RATE_PER_S)
                        _drain(base, bodies[b])
                        delays = _explanation_delays(data_dir / "node.db", ids)
                        results[b]["explanation_p99_ms"] = round(_pct(delays, 99), 3)
                        results[b]["requests_per_s"] = round(
                            _throughput(base, bodies[b], seconds), 1
                        )
                    else:
                        results[b]["torch_http_p99_ms"] = round(_pct(lat, 99), 3)
                rss = _peak_rss_mb(proc.pid)
            finally:
                proc.terminate()
                proc.wait(30)
            if engine == "openvino":
                for b in BASELINES:
                    results[b]["rss_mb"] = round(rss, 1)
                inproc = _inproc(data_dir, bodies, n)
                for b in BASELINES:
                    results[b]["inproc_p99_ms"] = round(inproc[b], 3)
    results["_meta"] = {
        "quick": quick,
        "cores_server": 1,
        "cores_client": 1,
        "precision": "fp32",
        "models": "recipe architectures, untrained weights, converted with openvino.convert_model",
        "explanation": "deferred worker; delay measured at 20 req/s; AI4I exact, C-MAPSS 16 perms",
        "load_avg_1m": os.getloadavg()[0],
    }
    keys = ("http_p50_ms", "http_p99_ms", "inproc_p99_ms", "requests_per_s",
            "explanation_p99_ms", "rss_mb", "torch_http_p99_ms")  # fmt: skip
    print(f"{'baseline':10}" + "".join(f"{k:>20}" for k in keys))
    for b in BASELINES:
        print(f"{b:10}" + "".join(f"{results[b].get(k, float('nan')):>20}" for k in keys))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        run(quick="--quick" in sys.argv)
