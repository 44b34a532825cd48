"""Dashboards benchmark on PostgreSQL with the fleet-scale history (50 plants x 4 models x a year).

The history is written once by ``millwright hub seed-history`` into the database named by
``MILLWRIGHT_BENCH_DASHBOARDS_URL`` (default ``.../millwright_bench_dash``, a database of its
own on the test server, so other tests' databases are not disturbed); this benchmark seeds it
if it is empty (that takes long: run the seed beforehand). The hub
runs as ``millwright hub serve``; for each page it records the server time p95 over keep-alive
HTTP (``pages.<name>.server_p95_ms``, target <= 300) and Chromium's navigation-to-load time
(``pages.<name>.browser_load_ms``, median of 3, target <= 1000), runs axe-core on each page
(``axe_serious_violations``, target 0), and measures ``ingest_reports_per_s`` through the batch
route with an Idempotency-Key per batch (target >= 5000) on a plant of its own. Writes
``benchmarks/results/dashboards.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from benchmarks.demo_screenshots import small_png
from benchmarks.hubproc import running_hub

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "dashboards.json"
AXE = ROOT / "hub" / "ui" / "static" / "vendor" / "axe.min.js"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/millwright_bench_dash"
TARGETS = {"server_p95_ms": 300.0, "browser_load_ms": 1000.0}
#: Plants posting batches at once in the ingest measurement.
INGEST_PLANTS = 2
COSTS = """default:
  id: cost-default
  version: 1
  kind: cost
  title: Fleet default
  currency: EUR
  cost_per_unplanned_failure_hour: 12000
  hours_per_failure: 6
  cost_per_false_alarm: 800
  cost_per_planned_intervention: 2500
"""


@contextmanager
def _hub(database_url: str, workdir: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    (workdir / "costs.yaml").write_text(COSTS)
    extra = {
        "MILLWRIGHT_HUB_ACCESS_LOG": "false",
        "MILLWRIGHT_HUB_COST_POLICY_FILE": str(workdir / "costs.yaml"),
    }
    with running_hub(database_url, workdir, token_name="bench-dashboards", extra_env=extra) as hub:
        yield hub.url, hub.token, hub.env


def _reports(database_url: str) -> dict[str, int]:
    """Count reports and observations, and refresh the planner's statistics after the load.

    The rollups are vacuumed too (small next to the observations), so their covering
    indexes answer index-only, as they would on a hub that autovacuum keeps up.
    """
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE) metric_daily, metric_monthly, metric_latest"))
            conn.execute(text("ANALYZE"))
            reports = conn.execute(text("SELECT count(*) FROM metrics_reports")).scalar_one()
            # the planner's estimate: an exact count of tens of millions of rows takes minutes
            observations = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'metric_observations'")
            ).scalar_one()
            return {"reports": int(reports), "observations": int(observations)}
    finally:
        engine.dispose()


def _pages(end: dt.date) -> dict[str, str]:
    year = (end - dt.timedelta(days=364)).isoformat()
    quarter = (end - dt.timedelta(days=89)).isoformat()
    ten = "&".join(f"plants=plant-{i:02d}" for i in range(1, 11))
    return {
        "fleet": "/ui/fleet",
        "compare": f"/ui/compare?model=turbofan-rul&metric=rmse&{ten}&from={quarter}&to={end}",
        "compare_year_normalized": (
            f"/ui/compare?model=ai4i-failure&metric=f1&{ten}&from={year}&to={end}&normalize=true"
        ),
        "plant": f"/ui/plants/plant-07?model=turbofan-rul&from={quarter}&to={end}",
        "model": "/ui/models/turbofan-rul/versions/2.0",
        "impact": f"/ui/impact?from={year}&to={end}",
        "inventory": "/ui/inventory",
        "audit": "/ui/audit",
    }


def _sign_in(client: httpx.Client, token: str) -> None:
    form = client.get("/ui/sign-in").text
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = client.post("/ui/sign-in", data={"token": token, "csrf": csrf}, follow_redirects=False)
    if r.status_code != 303:
        raise RuntimeError(f"sign-in failed: {r.status_code}")


def _server_p95(client: httpx.Client, path: str, n: int) -> tuple[float, float]:
    client.get(path).raise_for_status()  # warm
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    times.sort()
    return statistics.median(times), times[max(0, int(round(0.95 * len(times))) - 1)]


def _browser(url: str, token: str, pages: dict[str, str], shots: Path | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"], headless=True
        )
        page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
        page.goto(url + "/ui/sign-in")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        for name, path in pages.items():
            loads = []
            for _ in range(3):
                page.goto(url + path, wait_until="load")
                loads.append(
                    page.evaluate(
                        "() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return n.loadEventEnd - n.startTime; }"
                    )
                )
            page.add_script_tag(path=str(AXE))
            serious = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => v.id)"""
            )
            if shots is not None:
                (shots / f"fleet-scale-{name}.png").write_bytes(small_png(page.screenshot()))
            out[name] = {"browser_load_ms": round(statistics.median(loads), 1), "axe": serious}
        browser.close()
    return out


def _ingest(url: str, token: str, n_batches: int, batch: int, plants: int) -> dict[str, Any]:
    """Post ``n_batches`` batches per plant, ``plants`` plants at once; return the rates.

    Each plant posts its own batches in order on its own keep-alive connection (a fleet's
    nodes deliver concurrently; one plant's ingests are serialised by the hub). Every
    batch carries an Idempotency-Key; afterwards the first batch of each plant is delivered
    again (same key) and once more without a key, and the stored count must not change.
    """
    from concurrent.futures import ThreadPoolExecutor

    from federation.schemas.metrics_report import MetricsReport
    from hub.metrics import flows

    headers = {"Authorization": f"Bearer {token}"}
    model = flows.FLEET_MODELS[0]
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    # fresh plants per run, so every batch is new work
    run_id = int(time.time() * 10) % 10**9
    ids = [f"ingest-{run_id}-{k:02d}" for k in range(plants)]
    bodies: dict[str, list[bytes]] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for k, plant in enumerate(ids):
            client.post("/api/v1/plants", json={"id": plant, "name": f"Ingest {k}", "lines": []})
            rng = random.Random(k)
            bodies[plant] = []
            for b in range(n_batches):
                reports: list[MetricsReport] = [
                    flows.hourly_report(
                        plant_index=90 + k,
                        plant_id=plant,
                        model=model,
                        hour=b * batch + h,
                        start=start,
                        switch_hour=10**9,
                        rng=rng,
                    )
                    for h in range(batch)
                ]
                bodies[plant].append(
                    json.dumps({"reports": [r.model_dump(mode="json") for r in reports]}).encode()
                )

    def post(client: httpx.Client, plant: str, i: int, key: bool = True) -> dict[str, Any]:
        extra = {"Idempotency-Key": f"b-{plant}-{i}"} if key else {}
        r = client.post(
            f"/api/v1/plants/{plant}/metrics-reports/batch",
            content=bodies[plant][i],
            headers={"Content-Type": "application/json", **extra},
        )
        r.raise_for_status()
        return dict(r.json())

    firsts: dict[str, dict[str, Any]] = {}

    def deliver(plant: str) -> int:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            answers = [post(client, plant, i) for i in range(n_batches)]
        firsts[plant] = answers[0]
        return sum(a["accepted"] for a in answers)

    t = time.perf_counter()
    with ThreadPoolExecutor(plants) as pool:
        accepted = sum(pool.map(deliver, ids))
    elapsed = time.perf_counter() - t
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        replay = post(client, ids[0], 0)
        resend = post(client, ids[0], 0, key=False)
        stored = sum(
            len(client.get(f"/api/v1/metrics/summary?plant_id={p}").json()["items"]) > 0
            for p in ids
        )
    return {
        "reports_per_s": accepted / elapsed,
        "accepted": accepted,
        "seconds": round(elapsed, 2),
        "concurrent_plants": plants,
        "batch": batch,
        "plants_with_data": stored,
        # the same key replays the first answer; without a key every report is a duplicate
        "replay_same_answer": replay == firsts[ids[0]],
        "resend_accepted": resend["accepted"],
        "resend_duplicates": resend["duplicates"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the dashboards at fleet scale; print a table and write the JSON."""
    database_url = os.environ.get("MILLWRIGHT_BENCH_DASHBOARDS_URL", DEFAULT_URL)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with _hub(database_url, workdir) as (url, token, env):
            counts = _reports(database_url)
            if counts["reports"] == 0:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "millwright",
                        "hub",
                        "seed-history",
                        *(["--plants", "10", "--days", "2", "--models", "2"] if quick else []),
                    ],
                    env=env,
                    cwd=workdir,
                    check=True,
                )
                counts = _reports(database_url)
            reports = counts["reports"]
            end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
            pages = _pages(end)
            results: dict[str, Any] = {}
            with httpx.Client(base_url=url, timeout=60) as client:
                _sign_in(client, token)
                for name, path in pages.items():
                    p50, p95 = _server_p95(client, path, 5 if quick else 20)
                    results[name] = {"server_p50_ms": round(p50, 1), "server_p95_ms": round(p95, 1)}
            shots = None if quick else ROOT / "benchmarks" / "results" / "screenshots"
            for name, b in _browser(url, token, pages, shots).items():
                results[name]["browser_load_ms"] = b["browser_load_ms"]
                results[name]["axe_serious"] = b["axe"]
            ingest = _ingest(url, token, 3 if quick else 10, 1000, INGEST_PLANTS)
    axe_total = sum(len(r.pop("axe_serious")) for r in results.values())
    out = {
        "reports": reports,
        "observations_estimated": counts["observations"],
        "pages": results,
        "ingest_reports_per_s": round(ingest.pop("reports_per_s"), 1),
        "ingest": ingest,
        "axe_serious_violations": axe_total,
        "database": "postgresql",
        "targets": {
            "reports": 1_700_000,
            **TARGETS,
            "ingest_reports_per_s": 5000,
            "axe_serious_violations": 0,
        },
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg()[0],
    }
    print(f"{'page':<26}{'server p50 ms':>14}{'server p95 ms':>14}{'browser load ms':>17}")
    for name, r in results.items():
        print(
            f"{name:<26}{r['server_p50_ms']:>14}{r['server_p95_ms']:>14}{r['browser_load_ms']:>17}"
        )
    print(
        f"reports: {reports}  ingest: {out['ingest_reports_per_s']} reports/s  "
        f"axe serious/critical: {axe_total}  (load average {out['load_average']:.1f})"
    )
    if not quick:
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return out
