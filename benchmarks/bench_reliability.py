"""Reliability of the plant node: SIGKILL under load, durable-ack latency, authz, bombs.

Writes its keys into ``benchmarks/results/reliability.json``, merging with what other
benchmarks put there (``authz.hub``, ``fuzz.hub``, ``chaos``, ``egress``, ``offline_7d``):

* ``sigkill.kills`` / ``sigkill.acknowledged`` / ``sigkill.acknowledged_lost``: a real
  ``millwright node serve`` process, three line clients, killed with SIGKILL at a random
  moment, 20 times (5 with ``--quick``); every acknowledged id must have its log row.
* ``predict_p99_ms_with_durable_ack`` beside ``predict_p99_ms_previous``: single-record AI4I
  predicts from one keep-alive client (and four, under ``predict_latency``), the same client
  and node as the kills. Both nodes run side by side and the requests alternate between
  them, so a load spike of the shared machine hits both alike: "previous" is this tree with
  the log writer, flows and routes of commit ee23eb1 (answered before the commit,
  ``synchronous=NORMAL``), "durable" is this branch (answered after the group commit,
  ``synchronous=FULL``); a third node shows durable acks with ``NORMAL``.
* ``authz.node``: the node's authorization matrix (every route x role, anonymous, revoked,
  unknown and non-bearer keys); ``leaks`` counts calls that broke it.
* ``fuzz.node``: schemathesis over the node's own OpenAPI document with a line key, 10,000
  cases (``tests/plant_node/test_fuzz.py`` runs 500 in the suite): 5xx answers and
  responses that break the document (status, content type, body schema, headers).
* ``bomb``: a tar.gz of a real export plus 1 GiB of zeros (about 1 MB on disk, the artifact
  of issue 18), served by a fake hub to the node's model source; ``refused`` is true when
  the download raised and left nothing unpacked.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "reliability.json"

# The answer-before-commit path the durable ack replaced (the commit before it).
PREVIOUS_COMMIT = "ee23eb1"
PREVIOUS_FILES = (
    "plant_node/serving/logwriter.py",
    "plant_node/serving/flows.py",
    "plant_node/serving/routes.py",
)


def merge(path: Path, update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into the JSON file at ``path`` (other benchmarks' keys kept)."""
    current: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                _merge(into[key], value)
            else:
                into[key] = value

    _merge(current, update)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return current


def authz_node() -> dict[str, Any]:
    """Run the node's authorization matrix against a fresh node; count leaks."""
    from fastapi.testclient import TestClient

    from plant_node.auth import service as auth_service
    from plant_node.auth.schemas import NodeRole
    from plant_node.config import NodeSettings
    from plant_node.db import upgrade_database
    from plant_node.main import create_app
    from tests.plant_node.auth.matrix import route_table, run_matrix
    from tests.plant_node.keys import BOOTSTRAP, KEYS

    with tempfile.TemporaryDirectory(prefix="authz-") as tmp:
        settings = NodeSettings(
            plant_id="authz",
            data_dir=Path(tmp),
            outbox_enabled=False,
            bootstrap_keys=BOOTSTRAP,
            hub_url="http://127.0.0.1:9",  # nothing: the node serves its (empty) cache
        )
        upgrade_database(settings.db_url)
        app = create_app(settings)
        with TestClient(app) as client:
            with app.state.node.session_factory() as session:
                revoked = auth_service.create_key(session=session, role=NodeRole.LINE, name="r")
                auth_service.revoke_key(session=session, key_id=revoked.id)
            result = run_matrix(client, KEYS, revoked.key)
        routes = len(route_table(app))
    return {
        "routes": routes,
        "routes_covered": result.routes,
        "calls": result.calls,
        "leaks": len(result.failures),
        "failures": result.failures[:20],
    }


def bomb(size: int = 1 << 30) -> dict[str, Any]:
    """Hand the node's model source a gzip bomb; it must refuse it and keep nothing."""
    from types import SimpleNamespace

    from plant_node.serving.archive import ArchiveRefused
    from plant_node.serving.hub_source import HubModelSource
    from tests.plant_node.serving.bombs import zero_bomb
    from tests.plant_node.serving.irs import build_logistic_ir

    with tempfile.TemporaryDirectory(prefix="bomb-") as tmp:
        root = Path(tmp)
        export = build_logistic_ir(root / "export", [0.5, -0.5], version="1", baseline="ai4i")
        started = time.perf_counter()
        archive = zero_bomb(root / "bomb.tar.gz", size, prefix=export)
        build_s = time.perf_counter() - started

        class FakeHub:
            def get_assignments(self, plant_id: str) -> object:
                item = SimpleNamespace(
                    model="ai4i", alias="champion", version="9", artifact_digest="d"
                )
                return SimpleNamespace(items=[item])

            def download_artifact(self, digest: str, dest: Path) -> int:
                dest.write_bytes(archive.read_bytes())
                return archive.stat().st_size

        source = HubModelSource(FakeHub(), "bench")
        dest = root / "dest"
        dest.mkdir()
        started = time.perf_counter()
        error = None
        try:
            source.download(source.list_assignments()[0], dest)
        except ArchiveRefused as exc:
            error = str(exc)
        refuse_s = time.perf_counter() - started
        left = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        return {
            "refused": error is not None and left == 0,
            "archive_bytes": archive.stat().st_size,
            "declared_bytes": size,
            "bytes_left_unpacked": left,
            "refuse_s": round(refuse_s, 3),
            "build_s": round(build_s, 1),
            "error": error,
        }


def fuzz(cases: int = 10_000) -> dict[str, Any]:
    """Schemathesis over the node's API with a line key; merge ``fuzz.node`` into the JSON."""
    from tests.plant_node.test_fuzz import fuzz_node

    started = time.perf_counter()
    result = fuzz_node(cases)
    node = {
        "cases": result["cases"],
        "server_errors": result["server_errors"],
        "schema_violations": result["schema_violations"],
        "problems": result["problems"],
        "wall_s": round(time.perf_counter() - started, 1),
        "key_role": "line",
    }
    print(f"{'fuzz.node.cases':42} {node['cases']}")
    print(f"{'fuzz.node.server_errors':42} {node['server_errors']}")
    print(f"{'fuzz.node.schema_violations':42} {node['schema_violations']}")
    return node


def _latency_nodes(root: Path) -> dict[str, tuple[Path, Path, dict[str, str]]]:
    """The nodes compared: previous (ee23eb1's ack path), durable (FULL), durable (NORMAL)."""
    from tests.plant_node.serving.sigkill import REPO, prepare_node

    old = root / "previous-tree"
    old.mkdir()
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    for path in PREVIOUS_FILES:
        blob = subprocess.run(
            ["git", "show", f"{PREVIOUS_COMMIT}:{path}"], cwd=REPO, check=True, capture_output=True
        )
        (old / path).write_bytes(blob.stdout)
    normal = {"MILLWRIGHT_NODE_SQLITE_SYNCHRONOUS": "NORMAL"}
    return {
        "previous": (old, prepare_node(root / "a"), normal),
        "durable": (REPO, prepare_node(root / "b"), {}),
        "durable_normal": (REPO, prepare_node(root / "c"), normal),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Run the node's reliability measurements, print a table, merge the JSON."""
    from tests.plant_node.serving.sigkill import compare_latency, prepare_node, run_kills

    load_start = os.getloadavg()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        data_dir = prepare_node(Path(tmp))
        ab = compare_latency(_latency_nodes(Path(tmp)), rounds=4 if quick else 8)
        one, four = ab["durable"]["one_client"], ab["durable"]["four_clients"]
        started = time.perf_counter()
        kills = run_kills(data_dir, kills=5 if quick else 20, clients=3, seed=18)
        kill_s = time.perf_counter() - started
    out["sigkill"] = {
        "kills": kills.kills,
        "clients": 3,
        "acknowledged": kills.acknowledged,
        "acknowledged_lost": kills.acknowledged_lost,
        "lost_ids": kills.lost_ids,
        "restart_s_mean": round(sum(kills.restart_s) / len(kills.restart_s), 2),
        "wall_s": round(kill_s, 1),
    }
    out["predict_p99_ms_with_durable_ack"] = one["p99_ms"]
    out["predict_p99_ms_previous"] = ab["previous"]["one_client"]["p99_ms"]
    out["predict_latency"] = {
        "interleaved_ab": ab,
        "previous_commit": "ee23eb1",
        "client": "http.client keep-alive, single-record AI4I bodies, line key",
    }
    out["authz"] = {"node": authz_node()}
    out["bomb"] = bomb()
    out["fuzz"] = {"node": fuzz(1_000 if quick else 10_000)}
    out["node_load_average"] = {"start": round(load_start[0], 2),
                                "end": round(os.getloadavg()[0], 2)}  # fmt: skip
    for name, value in (
        ("sigkill.kills", out["sigkill"]["kills"]),
        ("sigkill.acknowledged", out["sigkill"]["acknowledged"]),
        ("sigkill.acknowledged_lost", out["sigkill"]["acknowledged_lost"]),
        ("predict_p99_ms_with_durable_ack", out["predict_p99_ms_with_durable_ack"]),
        ("predict_p99_ms_previous", out["predict_p99_ms_previous"]),
        ("4 clients p99 ms (durable / previous)",
         f"{four['p99_ms']} / {ab['previous']['four_clients']['p99_ms']}"),
        ("authz.node.routes_covered", f"{out['authz']['node']['routes_covered']}"
                                      f" of {out['authz']['node']['routes']}"),
        ("authz.node.leaks", out["authz"]["node"]["leaks"]),
        ("bomb.refused", out["bomb"]["refused"]),
        ("bomb archive / declared bytes",
         f"{out['bomb']['archive_bytes']:,} / {out['bomb']['declared_bytes']:,}"),
    ):  # fmt: skip
        print(f"{name:42} {value}")
    target = RESULTS if not quick else RESULTS.with_suffix(".quick.json")
    merge(target, out)
    return out


if __name__ == "__main__":
    import sys

    if "--fuzz-only" in sys.argv:  # the fuzz section alone, merged into the results
        merge(RESULTS, {"fuzz": {"node": fuzz()}})
    else:
        run(quick="--quick" in sys.argv)
