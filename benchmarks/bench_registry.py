"""Registry benchmark: 50 plants, 10,000 versions with tags and lineage, over real HTTP.

The hub runs as ``millwright hub serve`` (one uvicorn worker, the configuration the README
recommends) and one keep-alive :class:`~federation.hub_client.HubClient` measures p50/p95 of
filter (plant + tag), get-by-id, get-by-alias, diff and the first page of the plant list,
plus the population rate through the batch endpoint. Runs on SQLite and, when a server is
reachable (``MILLWRIGHT_BENCH_POSTGRES_URL`` or ``MILLWRIGHT_TEST_POSTGRES_URL``), on
PostgreSQL in a throw-away database. Writes ``benchmarks/results/registry.json``
(``--quick`` only prints).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.hubproc import running_hub
from federation.hub_client import HubClient
from federation.schemas.recipes import RecipeCreate
from federation.schemas.registry import AliasName, BaselineModelCreate, PlantCreate, VersionCreate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "registry.json"
KEYS = (
    "filter_p50_ms",
    "filter_p95_ms",
    "get_p95_ms",
    "alias_p95_ms",
    "diff_p50_ms",
    "diff_p95_ms",
    "list_p95_ms",
    "populate_versions_per_s",
    "versions",
    "plants",
)
TARGETS_MS = {
    "filter_p95_ms": 10,
    "get_p95_ms": 10,
    "alias_p95_ms": 10,
    "diff_p95_ms": 10,
    "list_p95_ms": 25,
}
MODEL = "turbofan-rul"
STAGES = ("dev", "candidate", "prod")


def _postgres_base() -> str | None:
    url = os.environ.get("MILLWRIGHT_BENCH_POSTGRES_URL") or os.environ.get(
        "MILLWRIGHT_TEST_POSTGRES_URL"
    )
    if not url:
        return None
    return (
        url.replace("postgresql://", "postgresql+psycopg://", 1)
        if url.startswith("postgresql://")
        else url
    )


@contextmanager
def _postgres_database(base: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mw_hub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _hub(database_url: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """Migrate, mint an admin token and serve the hub exactly as the README recommends."""
    with running_hub(database_url, workdir) as hub:
        yield hub.url, hub.token


def _populate(
    hub: HubClient, n_plants: int, n_versions: int, rng: random.Random
) -> tuple[list[int], dict[int, int | None], float]:
    plants = [f"plant-{i:03d}" for i in range(n_plants)]
    for pid in plants:
        hub.create_plant(
            PlantCreate(
                id=pid, name=pid.title(), site=f"site-{int(pid[-3:]) % 7}", lines=["l1", "l2"]
            )
        )
    hub.create_model(BaselineModelCreate(name=MODEL, task="rul_regression", dataset="cmapss"))
    recipe = hub.create_recipe(RecipeCreate(name="turbofan-lstm", hyperparameters={"lr": 0.001}))
    hub.publish_recipe(recipe.id)
    digests = [hub.upload_artifact(f"model-{i}".encode() * 100).digest for i in range(20)]

    per_batch = 500
    per_plant = max(1, per_batch // n_plants)
    last: dict[str, int | None] = dict.fromkeys(plants)
    ids: list[int] = []
    parents: dict[int, int | None] = {}
    made = 0
    batch_no = 0
    started = time.perf_counter()
    while made < n_versions:
        batch: list[VersionCreate] = []
        for pid in plants:
            for j in range(per_plant):
                if made + len(batch) >= n_versions:
                    break
                batch.append(
                    VersionCreate(
                        model=MODEL,
                        version=f"{batch_no}.{j}+{pid}",
                        plant_id=pid,
                        parent_id=last[pid],
                        recipe_id=recipe.id,
                        artifact_digest=rng.choice(digests),
                        training_data_fingerprint=uuid.UUID(int=rng.getrandbits(128)).hex,
                        code_version=f"git:{rng.getrandbits(28):07x}",
                        hyperparameters={
                            "lr": rng.choice([1e-3, 5e-4, 1e-4]),
                            "epochs": rng.randint(5, 50),
                            "hidden": 64,
                        },
                        metrics={
                            "rmse": round(rng.uniform(12, 30), 3),
                            "mae": round(rng.uniform(8, 20), 3),
                        },
                        tags={
                            "stage": rng.choice(STAGES),
                            "round": str(batch_no),
                            "federated": rng.choice(["yes", "no"]),
                        },
                    )
                )
        created = hub.create_versions(batch)
        for v in created:
            ids.append(v.id)
            parents[v.id] = v.parent_id
            assert v.plant_id is not None
            last[v.plant_id] = v.id
        made += len(created)
        batch_no += 1
    rate = made / (time.perf_counter() - started)
    # The champion is written only by a promotion (bench_governance measures that); the
    # alias reads below go through the same route and query for every alias name.
    for pid in plants:
        newest = last[pid]
        assert newest is not None
        hub.set_alias(pid, MODEL, AliasName.CHALLENGER, newest)
        parent = parents[newest] or newest
        hub.set_alias(pid, MODEL, AliasName.SHADOW, parents[parent] or parent)
    return ids, parents, rate


def _measure(ops: dict[str, Callable[[], Any]], n: int, warmup: int = 20) -> dict[str, list[float]]:
    """Time every operation ``n`` times, interleaved round-robin.

    Interleaving gives each operation the same share of whatever else the machine is doing,
    so operations stay comparable with each other and with the no-op floor.
    """
    for _ in range(warmup):
        for fn in ops.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(n):
        for name, fn in ops.items():
            t = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t) * 1000)
    return out


def _p(samples: list[float], q: float) -> float:
    return round(statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1], 3)


def bench_backend(
    database_url: str, *, n_plants: int, n_versions: int, n_samples: int
) -> dict[str, Any]:
    """Populate and measure one backend; returns the result row of the JSON file."""
    rng = random.Random(42)
    with (
        tempfile.TemporaryDirectory(prefix="mw-bench-") as tmp,
        _hub(database_url, Path(tmp)) as (url, token),
    ):
        with HubClient(url, token=token, timeout=60) as hub:
            ids, parents, rate = _populate(hub, n_plants, n_versions, rng)
            plants = [f"plant-{i:03d}" for i in range(n_plants)]
            with_parent = [v for v in ids if parents[v] is not None]
            aliases = [AliasName.CHALLENGER, AliasName.SHADOW]
            raw = hub._client

            def diff() -> None:
                v = rng.choice(with_parent)
                hub.diff_versions(parents[v] or v, v)

            samples = _measure(
                {
                    "filter": lambda: hub.list_versions(
                        plant_id=rng.choice(plants), tag="stage=prod", page_size=50
                    ),
                    "get": lambda: hub.get_version(rng.choice(ids)),
                    "alias": lambda: hub.get_alias(rng.choice(plants), MODEL, rng.choice(aliases)),
                    "diff": diff,
                    "list": lambda: hub.list_plants(page_size=50),
                    # The floor: an endpoint that does no work, same connection, same moments.
                    "floor": lambda: raw.get("/healthz"),
                },
                n_samples,
            )
    filt, get, alias, dif, lst, floor = (
        samples[k] for k in ("filter", "get", "alias", "diff", "list", "floor")
    )
    print(
        f"  floor (/healthz, no work): p50 {_p(floor, 50)} ms, p95 {_p(floor, 95)} ms; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    return {
        "filter_p50_ms": _p(filt, 50),
        "filter_p95_ms": _p(filt, 95),
        "get_p95_ms": _p(get, 95),
        "alias_p95_ms": _p(alias, 95),
        "diff_p50_ms": _p(dif, 50),
        "diff_p95_ms": _p(dif, 95),
        "list_p95_ms": _p(lst, 95),
        "populate_versions_per_s": round(rate, 1),
        "versions": len(ids),
        "plants": n_plants,
    }


def _print(results: dict[str, Any]) -> None:
    print(f"{'metric':<26}" + "".join(f"{b:>14}" for b in results))
    for key in KEYS:
        row = f"{key:<26}"
        for res in results.values():
            value = res.get(key) if res else None
            mark = ""
            if value is not None and key in TARGETS_MS:
                mark = " ok" if value <= TARGETS_MS[key] else " !!"
            if value is not None and key == "populate_versions_per_s":
                mark = " ok" if value >= 500 else " !!"
            row += f"{'-' if value is None else value:>11}{mark:<3}"
        print(row)


def run(quick: bool) -> dict[str, Any]:
    """Run the benchmark on every reachable backend and write the results file."""
    size = (
        {"n_plants": 10, "n_versions": 1000, "n_samples": 100}
        if quick
        else {"n_plants": 50, "n_versions": 10_000, "n_samples": 500}
    )
    results: dict[str, Any] = {}
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory(prefix="mw-bench-sqlite-") as tmp:
        print("sqlite ...", flush=True)
        results["sqlite"] = bench_backend(f"sqlite:///{Path(tmp) / 'hub.db'}", **size)
    base = _postgres_base()
    if base is None:
        print("postgresql: skipped (set MILLWRIGHT_BENCH_POSTGRES_URL or ..._TEST_POSTGRES_URL)")
        results["postgresql"] = previous.get("postgresql")
    else:
        try:
            with _postgres_database(base) as url:
                print("postgresql ...", flush=True)
                results["postgresql"] = bench_backend(url, **size)
        except Exception as exc:  # noqa: BLE001 - an unreachable server must not lose the SQLite run
            print(f"postgresql: skipped ({exc.__class__.__name__}: {exc})")
            results["postgresql"] = previous.get("postgresql")
    _print(results)
    if not quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = RESULTS.with_suffix(".json.tmp")
        tmp_path.write_text(json.dumps(results, indent=2) + "\n")
        tmp_path.replace(RESULTS)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return results
