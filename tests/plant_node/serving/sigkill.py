"""SIGKILL harness: a real ``millwright node serve`` process under load, killed and restarted.

Concurrent line clients record every prediction id the node acknowledged (HTTP 200); the node
is SIGKILLed at a random moment; before it restarts, the harness reads the node's SQLite file
and counts acknowledged ids that have no log row. The suite runs a few kills, the reliability
benchmark twenty and more (``sigkill.*``), and the benchmark's latency figure uses the same
node and client (:func:`measure_latency`).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
LINE_KEY = "mwn_sigkill-line-key-" + "0" * 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_node(root: Path) -> Path:
    """A migrated node data directory serving a small AI4I logistic model; returns it."""
    from baselines.datasets import load_ai4i
    from baselines.features import ai4i
    from plant_node.config import NodeSettings
    from plant_node.db import upgrade_database
    from plant_node.serving.cache import ModelCache
    from tests.plant_node.serving.conftest import ai4i_model

    data_dir = root / "node"
    settings = NodeSettings(plant_id="sigkill", data_dir=data_dir)
    settings.ensure_dirs()
    upgrade_database(settings.db_url)
    cache = ModelCache(settings.cache_path)
    cache.install(ai4i_model(root / "src", ai4i.fit(load_ai4i()), "1"))
    cache.set_champion("ai4i", "1")
    return data_dir


def ai4i_bodies(n: int = 50) -> list[bytes]:
    """Single-record AI4I predict bodies, pre-encoded."""
    from baselines.datasets import load_ai4i
    from baselines.features import ai4i

    frame = load_ai4i().head(n)
    cols = ["type", *ai4i.RAW_NUMERIC]
    out = []
    for row in frame[cols].itertuples(index=False):
        record = {c: (str(v) if c == "type" else float(v)) for c, v in zip(cols, row, strict=True)}
        out.append(json.dumps({"baseline": "ai4i", "record": record}).encode())
    return out


def start_node(
    data_dir: Path,
    port: int,
    repo: Path = REPO,
    extra: dict[str, str] | None = None,
    **env_extra: str,
) -> subprocess.Popen[bytes]:
    """Start ``millwright node serve`` (of the code in ``repo``) on ``port``; wait until ready."""
    keys = [{"role": "line", "name": "sigkill", "key": LINE_KEY}]
    env = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "MILLWRIGHT_NODE_BOOTSTRAP_KEYS": json.dumps(keys),
        "MILLWRIGHT_NODE_OUTBOX_ENABLED": "false",
        "MILLWRIGHT_NODE_SCHEDULER_ENABLED": "false",
        "MILLWRIGHT_NODE_EXPLAIN": "off",
        "MILLWRIGHT_NODE_HUB_URL": f"http://127.0.0.1:{_free_port()}",  # nobody: cache only
        **(extra or {}),
        **env_extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "millwright", "node", "serve", "--plant", "sigkill",
         "--data-dir", str(data_dir), "--port", str(port)],
        cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 180  # a loaded CI machine starts a node slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v1/ready")
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                return proc
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError("node did not become ready")


class LineClient:
    """One keep-alive connection sending pre-encoded predict bodies with the line key."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {LINE_KEY}"}

    def predict(self, body: bytes) -> list[str]:
        """Return the acknowledged prediction ids (raises on a non-200 or a broken socket)."""
        self.conn.request("POST", "/v1/predict", body, self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return [p["prediction_id"] for p in json.loads(data)["predictions"]]

    def close(self) -> None:
        self.conn.close()


def _load(port: int, bodies: list[bytes], acked: list[str], stop: threading.Event) -> None:
    client = LineClient(port)
    i = 0
    try:
        while not stop.is_set():
            try:
                acked.extend(client.predict(bodies[i % len(bodies)]))
            except (OSError, http.client.HTTPException, RuntimeError):
                return  # the node died mid-request: that one was never acknowledged
            i += 1
    finally:
        client.close()


def logged_ids(data_dir: Path, ids: list[str]) -> set[str]:
    """Which of ``ids`` have a row in the node's prediction log (read with the node down)."""
    conn = sqlite3.connect(data_dir / "node.db")
    try:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT id FROM predictions WHERE id IN ({marks})", chunk)
            found.update(r[0] for r in rows)
        return found
    finally:
        conn.close()


@dataclass
class KillReport:
    """What the kills did: acknowledged ids per kill and those without a log row."""

    kills: int = 0
    acknowledged: int = 0
    acknowledged_lost: int = 0
    lost_ids: list[str] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)


def run_kills(
    data_dir: Path,
    *,
    kills: int,
    clients: int = 3,
    window_s: tuple[float, float] = (0.2, 0.8),
    seed: int = 0,
    env: dict[str, str] | None = None,
) -> KillReport:
    """Start, load, SIGKILL the node ``kills`` times; check every acknowledged id each time."""
    rng = random.Random(seed)
    bodies = ai4i_bodies()
    report = KillReport()
    for _ in range(kills):
        port = _free_port()
        started = time.monotonic()
        proc = start_node(data_dir, port, extra=env)
        report.restart_s.append(time.monotonic() - started)
        acked: list[list[str]] = [[] for _ in range(clients)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_load, args=(port, bodies, acked[i], stop), daemon=True)
            for i in range(clients)
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(*window_s))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(15)
        ids = [i for per in acked for i in per]
        missing = set(ids) - logged_ids(data_dir, ids)
        report.kills += 1
        report.acknowledged += len(ids)
        report.acknowledged_lost += len(missing)
        report.lost_ids += sorted(missing)[:20]
    return report


def measure_latency(
    data_dir: Path, *, requests: int, clients: int = 1, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """p50/p99 of single-record predicts against a fresh node (the same client as the kills)."""
    port = _free_port()
    proc = start_node(data_dir, port, extra=env)
    bodies = ai4i_bodies()
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def loop(out: list[float]) -> None:
        client = LineClient(port)
        for i in range(50):  # warm-up
            client.predict(bodies[i % len(bodies)])
        for i in range(requests // clients):
            t0 = time.perf_counter()
            client.predict(bodies[i % len(bodies)])
            out.append((time.perf_counter() - t0) * 1000)
        client.close()

    try:
        started = time.perf_counter()
        threads = [threading.Thread(target=loop, args=(latencies[i],)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    flat = sorted(x for per in latencies for x in per)
    return {
        "requests": len(flat),
        "clients": clients,
        "p50_ms": round(flat[len(flat) // 2], 3),
        "p99_ms": round(flat[min(len(flat) - 1, int(len(flat) * 0.99))], 3),
        "throughput_rps": round(len(flat) / elapsed, 1),
    }


def _burst(port: int, bodies: list[bytes], n: int, clients: int, out: list[float]) -> float:
    def loop() -> None:
        client = LineClient(port)
        for i in range(n):
            t0 = time.perf_counter()
            client.predict(bodies[i % len(bodies)])
            out.append((time.perf_counter() - t0) * 1000)
        client.close()

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def compare_latency(
    nodes: dict[str, tuple[Path, Path, dict[str, str]]], *, rounds: int = 8, per_round: int = 60
) -> dict[str, Any]:
    """Latency of several nodes measured side by side: requests alternate between them.

    ``nodes`` maps a name to (code checkout, data directory, extra env). Every round sends
    ``per_round`` requests from one client, then ``per_round // 2`` from each of four, to
    each node in turn (order flipped every round), so a load spike hits all of them alike.
    """
    bodies = ai4i_bodies()
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    lat: dict[str, dict[int, list[float]]] = {n: {1: [], 4: []} for n in nodes}
    spent: dict[str, dict[int, float]] = {n: {1: 0.0, 4: 0.0} for n in nodes}
    try:
        for name, (repo, data_dir, env) in nodes.items():
            port = _free_port()
            procs[name] = (start_node(data_dir, port, repo, env), port)
            _burst(port, bodies, 30, 1, [])  # warm-up
        names = list(nodes)
        for rnd in range(rounds):
            for name in names if rnd % 2 == 0 else names[::-1]:
                port = procs[name][1]
                spent[name][1] += _burst(port, bodies, per_round, 1, lat[name][1])
                spent[name][4] += _burst(port, bodies, per_round // 4, 4, lat[name][4])
    finally:
        for proc, _ in procs.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    out: dict[str, Any] = {}
    for name, per in lat.items():
        out[name] = {}
        for clients, values in per.items():
            v = sorted(values)
            out[name]["one_client" if clients == 1 else "four_clients"] = {
                "requests": len(v),
                "p50_ms": round(v[len(v) // 2], 2),
                "p99_ms": round(v[min(len(v) - 1, int(len(v) * 0.99))], 2),
                "throughput_rps": round(len(v) / spent[name][clients], 1),
            }
    return out
