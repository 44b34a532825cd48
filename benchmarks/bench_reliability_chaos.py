"""Reliability between node and hub: chaos on the link, seven days offline, egress.

Merges three objects into ``benchmarks/results/reliability.json`` (keeping every other key):

* ``chaos``: a real ``millwright hub serve`` and ``millwright node serve``, the node's outbox
  reaching the hub through a TCP proxy that delays, resets mid-request and loses answers
  (``tests/plant_node/outbox/chaos.py``), link cuts, and SIGKILLs of the hub and the node at
  random moments of a seeded schedule. ``reports_lost`` and ``reports_duplicated`` compare
  the report ids written at the node with the rows the hub stores (targets 0).
* ``offline_7d``: seven generated days of one plant (two lines, 20 readings/s each, hourly
  metrics reports of 144 chunks revised a day later, operator feedback, alerts, rollouts;
  ``tests/plant_node/outbox/offline.py``) written into the outbox while the hub is
  unreachable, then delivered to a real hub. ``delivered_exactly_once`` and
  ``outbox_peak_mb`` (the node database file, outbox only, with its WAL) at the default
  budget; ``at_budget`` repeats the week under a budget of a quarter of that peak.
* ``egress``: hub, node (serving, outbox, scheduler) and a line client run inside a fresh
  network namespace with only loopback, under ``strace -f``; every ``connect``/``sendto``
  destination is classified. ``unexpected`` counts destinations other than loopback and
  local (AF_UNIX) sockets (target 0).

* ``chaos.superlink_*``, ``chaos.campaign_outcome`` (part ``superlink``): the SuperLink
  (with its SuperExec and ServerApp) and the hub SIGKILLed during hub campaigns at seeded
  moments and restarted (``tests/federation/superlink_chaos.py``): how each campaign ended
  (``failed:run_lost`` and the like; none may stay running), how long after the kill, and
  whether the same SuperNodes came back and a new run succeeded.

``--quick`` runs a shorter chaos schedule, one offline day and one SuperLink kill, and
writes ``reliability.quick.json`` instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "reliability.json"
PLANT = "sigkill"  # the plant id tests/plant_node/serving/sigkill.start_node serves


def chaos(quick: bool) -> dict[str, Any]:
    """Seeded chaos with real processes; the ``chaos`` object."""
    from tests.plant_node.outbox.chaos import run_chaos

    with tempfile.TemporaryDirectory(prefix="mw-chaos-") as tmp:
        result = run_chaos(
            Path(tmp),
            steps=10 if quick else 40,
            seed=18,
            reports_per_step=3,
            events_per_step=4,
            node_process=True,
            hub_process=True,
            step_s=(0.5, 2.0),
            drain_timeout_s=300,
            log=lambda line: print("  ", line, flush=True),
        )
    f = result.figures
    return {
        "reports_made": f["reports_made"],
        "reports_held": f["reports_held"],
        "reports_lost": f["reports_lost"],
        "reports_duplicated": f["reports_duplicated"],
        "events_made": f["events_made"],
        "events_lost": f["events_lost"],
        "events_duplicated": f["events_duplicated"],
        "pending_after_heal": f["pending_after_heal"],
        "hub_kills": result.hub_kills,
        "node_kills": result.node_kills,
        "link_cuts": result.link_cuts,
        "steps": len(result.actions),
        "proxy_connections": result.connections,
        "seed": 18,
        "wall_s": result.seconds,
        "method": "real hub and node processes (SIGKILL), node outbox -> TCP proxy -> hub; "
        "proxy modes per connection on flaky stretches: pass, delay 50-400 ms, reset "
        "mid-request, reset after the hub answered (lost acknowledgement); counts from the "
        "node's outbox and the hub's SQLite tables",
    }


def superlink(quick: bool) -> dict[str, Any]:
    """Seeded SIGKILLs of the SuperLink and the hub during hub campaigns; ``chaos.superlink_*``.

    A real SuperLink (TLS, SuperNode authentication, state database) and three SuperNodes,
    a real ``millwright hub serve`` whose worker drives 2-round C-MAPSS campaigns; per kill
    (``tests/federation/superlink_chaos.kill_during_campaign``) the SuperLink dies with its
    SuperExec and ServerApp shortly after round 1 started, then the hub, both come back,
    and a new toy run must succeed on the restarted SuperLink with the same SuperNodes.
    """
    import random

    from federation.apps.tasks import write_toy_plant_data
    from federation.flower.deployment import LocalFederation, PlantSite
    from federation.flower.processes import free_ports
    from federation.flower.runner import wait_for_run
    from federation.flower.settings import FlowerSettings
    from hub import migrations
    from hub.config import HubSettings
    from tests.federation.superlink_chaos import (
        HubProcess,
        kill_during_campaign,
        publish_parent,
        tiny_cmapss_export,
        wait_for_campaign,
    )

    plants = ("FD001", "FD002", "FD003")
    kills = 1 if quick else 3
    rng = random.Random(18)
    outcomes: Counter[str] = Counter()
    outcome_s: list[float] = []
    details: list[str] = []
    new_runs_ok = 0
    nodes_back = True
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mw-superlink-") as tmp:
        root = Path(tmp)
        link_port, *node_ports = free_ports(1 + len(plants))
        sites = []
        for plant, port in zip(plants, node_ports, strict=True):
            write_toy_plant_data(root / "sites" / plant, plant)
            sites.append(PlantSite(plant, root / "sites" / plant, runtime_port=port))
        settings = FlowerSettings(var_dir=root / "flower", superlink_port=link_port, tls=True,
                                  node_auth=True)  # fmt: skip
        template = root / "template.db"
        migrations.upgrade(HubSettings(database_url=f"sqlite:///{template}"))
        export = tiny_cmapss_export(root / "parent")
        with LocalFederation(settings, sites) as fed:
            before = dict(fed.node_plants)
            hub = HubProcess(root / "hub", fed, template, plants)
            hub.start()
            try:
                parent = publish_parent(hub, export)
                for i in range(kills):
                    kill = kill_during_campaign(fed, hub, parent, rng, plants=plants,
                                                name=f"after-restart-{i}")  # fmt: skip
                    new_runs_ok += wait_for_run(fed.control, kill.new_run[0], timeout=300).succeeded
                    online = {n.node_id: n.name for n in fed.control.list_nodes()
                              if n.status == "online"}  # fmt: skip
                    nodes_back = nodes_back and online == before
                    with hub.client() as client:
                        campaign = wait_for_campaign(client, kill.campaign_id, timeout=300)
                    key = campaign.status.value
                    if campaign.failure_code is not None:
                        key += f":{campaign.failure_code.value}"
                    outcomes[key] += 1
                    if campaign.finished_at is not None:
                        outcome_s.append(
                            round((campaign.finished_at - kill.killed).total_seconds(), 1)
                        )
                    details.append(campaign.failure_detail)
                    print(f"   kill {i + 1}/{kills}: {key} after "
                          f"{outcome_s[-1] if outcome_s else '?'} s: {campaign.failure_detail}",
                          flush=True)  # fmt: skip
            finally:
                hub.stop()
    return {
        "superlink_kills": kills,
        "superlink_hub_kills": kills,
        "campaign_outcome": dict(outcomes),
        "campaign_outcome_s": outcome_s,
        "campaign_outcome_details": details,
        "campaigns_left_running": kills - sum(outcomes.values()),
        "supernodes_back_online": nodes_back,
        "runs_after_restart_succeeded": new_runs_ok,
        "superlink_wall_s": round(time.perf_counter() - started, 1),
        "superlink_method": "real SuperLink (TLS, node auth, state database) + 3 SuperNodes "
        "and a real hub process driving 2-round C-MAPSS campaigns; per kill, seed 18: "
        "SIGKILL the SuperLink with its SuperExec and ServerApp 0.5-4 s after the ServerApp "
        "started, SIGKILL the hub 0.2-2 s later, restart both 0.5-3 s after; outcome_s is "
        "from the SuperLink kill to the campaign's finished_at (Flower declares the dead "
        "ServerApp's run failed when its heartbeat lapses, 2 x 30 s in flwr 1.41)",
    }


def _offline_week(root: Path, *, days: float, budget_bytes: int) -> tuple[dict[str, Any], Any]:
    from federation.hub_client import HubClient
    from plant_node.db import make_engine, make_session_factory, upgrade_database
    from plant_node.outbox.deliverers import HubClientDeliverer
    from tests.plant_node.outbox import procs
    from tests.plant_node.outbox.chaos import RealHub
    from tests.plant_node.outbox.offline import (
        Cadence,
        drain,
        exactly_once,
        fill_offline,
        hub_holdings,
    )

    root.mkdir(parents=True)
    db_file = root / "node.db"
    upgrade_database(f"sqlite:///{db_file}")
    engine = make_engine(f"sqlite:///{db_file}")
    factory = make_session_factory(engine)
    cadence = Cadence()
    dead = HubClientDeliverer(
        HubClient(f"http://127.0.0.1:{procs.free_port()}", retries=0, timeout=1), PLANT
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=days)
    started = time.perf_counter()
    made = fill_offline(factory, db_file, plant=PLANT, days=days, cadence=cadence,
                        dead_hub=dead, budget_bytes=budget_bytes, start=start)  # fmt: skip
    fill_s = time.perf_counter() - started
    (root / "hub-work").mkdir()
    hub = RealHub(root / "hub-work", PLANT)
    try:
        with HubClient(hub.url, token=hub.plant_token, retries=0, timeout=30) as client:
            started = time.perf_counter()
            passes = drain(factory, HubClientDeliverer(client, PLANT))
            deliver_s = time.perf_counter() - started
    finally:
        hub.stop()
        engine.dispose()
    figures = exactly_once(made, hub_holdings(hub.db, PLANT))
    budgets = made.budget_reports
    out = {
        "delivered_exactly_once": figures["delivered_exactly_once"],
        "outbox_peak_mb": round(made.peak_file_bytes / 1e6, 1),
        "outbox_peak_accounted_mb": round(made.peak_accounted_bytes / 1e6, 1),
        "budget_mb": round(budget_bytes / 1e6, 1),
        "messages": made.messages,
        **{
            k: figures[k]
            for k in (
                "reports_made",
                "reports_held",
                "reports_lost",
                "reports_duplicated",
                "reports_stale",
                "reports_dropped_by_budget",
                "events_made",
                "events_lost",
                "events_duplicated",
            )
        },  # fmt: skip
        "budget_passes_over": sum(b.size_before > b.budget for b in budgets),
        "reports_thinned": sum(b.reports_thinned for b in budgets),
        "report_rows_dropped": sum(b.reports_dropped + b.superseded_dropped for b in budgets),
        "over_budget_with_audit_only": any(b.over_budget and b.audit_only for b in budgets),
        "passes_ending_over_budget": sum(b.over_budget for b in budgets),
        "simulated_hours": made.hours,
        "fill_s": round(fill_s, 1),
        "deliver_s": round(deliver_s, 1),
        "drain_passes": passes,
    }
    return out, cadence


def offline_7d(quick: bool) -> dict[str, Any]:
    """Seven generated days offline at the default budget, then at a quarter of its peak."""
    days = 1.0 if quick else 7.0
    logging.getLogger("millwright.node.outbox").setLevel(logging.ERROR)  # one warning a head
    with tempfile.TemporaryDirectory(prefix="mw-offline-") as tmp:
        week, cadence = _offline_week(Path(tmp) / "default", days=days, budget_bytes=256_000_000)
        quarter = int(week["outbox_peak_accounted_mb"] * 1e6 / 4)
        bound, _ = _offline_week(Path(tmp) / "bound", days=days, budget_bytes=quarter)
    print(f"{'offline_7d.delivered_exactly_once':42} {week['delivered_exactly_once']}")
    print(f"{'offline_7d.outbox_peak_mb':42} {week['outbox_peak_mb']}")
    print(f"{'offline_7d.at_budget.delivered_exactly_once':42} {bound['delivered_exactly_once']}")
    return {
        **week,
        "days": days,
        "cadence": {
            "lines": cadence.lines,
            "readings_per_s_per_line": cadence.readings_per_s,
            "chunk_rows": cadence.chunk_rows,
            "chunks_per_report": cadence.chunks_per_report,
            "report_every_h": cadence.report_every_h,
            "revision_after_h": cadence.revise_after_h,
            "feedback_per_h_per_line": cadence.feedback_per_h,
            "alert_every_h": cadence.alert_every_h,
            "rollout_every_h": cadence.rollout_every_h,
        },
        "at_budget": bound,
        "policy": "outbox.enforce_budget (every 10 min; hourly in the simulation): free "
        "delivered rows, drop unsent report revisions superseded by a newer unsent one, thin "
        "unsent reports (per-chunk detail dropped, window aggregates kept, same id), then drop "
        "the oldest unsent reports and queue an alert naming them; rows already attempted "
        "and every alert/feedback/rollout/retraining record are never rewritten or dropped",
        "clock": "generated timestamps, one simulated hour per step; the sender tries the "
        "dead hub once per hour, so stream heads carry attempts as in a real outage",
    }


# ----------------------------------------------------------------------------- egress

_DEST = re.compile(
    r"^(?P<pid>\d+)\s+(?P<call>connect|sendto|sendmsg)\((?P<fd>\d+),.*?"
    r"\{sa_family=(?P<family>AF_\w+)(?P<rest>[^}]*)\}"
)
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')
_PATH = re.compile(r'sun_path=(?:@)?"([^"]*)"')


def classify_trace(lines: list[str]) -> dict[str, Any]:
    """Classify every socket destination of an ``strace -f -e connect,sendto,sendmsg`` log."""
    from federation.tls import is_loopback_host

    kinds: Counter[str] = Counter()
    loopback_ports: Counter[int] = Counter()
    unix_paths: Counter[str] = Counter()
    unexpected: list[str] = []
    for line in lines:
        match = _DEST.search(line)
        if match is None:
            continue
        family, rest = match["family"], match["rest"]
        if family == "AF_UNIX":
            kinds["unix"] += 1
            path = _PATH.search(rest)
            unix_paths[path.group(1) if path else "?"] += 1
        elif family in ("AF_INET", "AF_INET6"):
            addr = _ADDR.search(rest)
            host = (addr.group(1) or addr.group(2)) if addr else ""
            port = _PORT.search(rest)
            if is_loopback_host(host):
                kinds["loopback"] += 1
                loopback_ports[int(port.group(1)) if port else -1] += 1
            else:
                kinds["other"] += 1
                unexpected.append(line.strip()[:300])
        elif family in ("AF_UNSPEC", "AF_NETLINK"):
            kinds[family.lower()] += 1  # dissolving a UDP association; the kernel itself
        else:
            kinds["other"] += 1
            unexpected.append(line.strip()[:300])
    return {
        "destinations": dict(kinds),
        "loopback_ports": {str(k): v for k, v in sorted(loopback_ports.items())},
        "unix_paths": dict(unix_paths),
        "unexpected": len(unexpected),
        "unexpected_examples": unexpected[:20],
    }


def _egress_driver(workdir: Path) -> None:
    """Inside the namespace: hub, node (serving, outbox, scheduler), line traffic, feedback."""
    import http.client

    from federation.hub_client import HubClient
    from tests.plant_node.outbox.chaos import RealHub
    from tests.plant_node.serving.sigkill import (
        LINE_KEY,
        LineClient,
        _free_port,
        ai4i_bodies,
        prepare_node,
        start_node,
    )

    (workdir / "hub").mkdir()
    hub = RealHub(workdir / "hub", PLANT)
    node = None
    try:
        data_dir = prepare_node(workdir)
        port = _free_port()
        node = start_node(data_dir, port, extra={
            "MILLWRIGHT_NODE_OUTBOX_ENABLED": "true",
            "MILLWRIGHT_NODE_SCHEDULER_ENABLED": "true",
            "MILLWRIGHT_NODE_SCHEDULER_IN_SERVE": "true",
            "MILLWRIGHT_NODE_HUB_URL": hub.url,
            "MILLWRIGHT_NODE_HUB_TOKEN": hub.plant_token,
            "MILLWRIGHT_NODE_EXPLAIN": "deferred",
        })  # fmt: skip
        client = LineClient(port)
        ids = [i for body in ai4i_bodies(200) for i in client.predict(body)]
        client.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {LINE_KEY}"}
        for pid in ids[:25]:
            body = json.dumps({"prediction_id": pid, "verdict": "right"}).encode()
            conn.request("POST", "/v1/feedback", body, headers)
            assert conn.getresponse().read() is not None
        conn.close()
        with HubClient(hub.url, token=hub.plant_token) as hub_client:
            deadline = time.monotonic() + 120
            held = 0
            while time.monotonic() < deadline:
                held = sum(1 for _ in hub_client.iter_events(PLANT))
                if held >= 25:
                    break
                time.sleep(0.5)
        (workdir / "driver.json").write_text(json.dumps({
            "predictions": len(ids), "feedback_sent": 25, "events_at_hub": held,
            "hub_port": hub.port, "node_port": port,
        }))  # fmt: skip
    finally:
        if node is not None:
            node.terminate()
            node.wait(30)
        hub.stop()


def egress() -> dict[str, Any]:
    """Run the driver in a loopback-only network namespace under strace; classify."""
    namespace = f"mw-egress-{os.getpid()}"
    netns = shutil.which("ip") is not None and os.geteuid() == 0
    if netns:
        netns = (
            subprocess.run(["ip", "netns", "add", namespace], capture_output=True).returncode == 0
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mw-egress-") as tmp:
        workdir = Path(tmp)
        trace = workdir / "trace.txt"
        driver = [sys.executable, "-m", "benchmarks.bench_reliability_chaos", "--egress-driver",
                  str(workdir)]  # fmt: skip
        strace = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg",
                  "-e", "signal=none", "-o", str(trace)]  # fmt: skip
        prefix = ["ip", "netns", "exec", namespace] if netns else []
        try:
            if netns:
                subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], check=True)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            done = subprocess.run([*prefix, *strace, *driver], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
        finally:
            if netns:
                subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"egress driver failed: {done.stderr[-3000:]}")
        lines = trace.read_text().splitlines()
        run = json.loads((workdir / "driver.json").read_text())
    out = classify_trace(lines)
    out.update(
        network_namespace=netns,
        traced_calls=len(lines),
        processes=len({line.split()[0] for line in lines if line[:1].isdigit()}),
        run=run,
        wall_s=round(time.perf_counter() - started, 1),
        method="hub serve, node serve (outbox, scheduler in serve, deferred explanations), "
        "200 line predictions and 25 feedback verdicts delivered to the hub, all under strace -f "
        "(connect, sendto, sendmsg) in a fresh network namespace with only loopback up; "
        "allowed: loopback (hub, node) and AF_UNIX; anything else is unexpected",
    )
    print(f"{'egress.unexpected':42} {out['unexpected']}")
    print(f"{'egress.destinations':42} {out['destinations']}")
    return out


def merge_results(update: dict[str, Any], path: Path = RESULTS) -> dict[str, Any]:
    """Deep-merge into the reliability JSON (the other benchmarks write the same file)."""
    from benchmarks.bench_reliability import merge

    return merge(path, update)


def _measured(part: Any) -> dict[str, Any]:
    """Run one part and note the load average (1 min) at its start and end."""
    start = os.getloadavg()[0]
    out: dict[str, Any] = part()
    out["load_average"] = {"start": round(start, 2), "end": round(os.getloadavg()[0], 2)}
    return out


def run(
    quick: bool = False,
    parts: tuple[str, ...] = ("egress", "offline_7d", "chaos", "superlink"),
) -> dict[str, Any]:
    """Run chaos, offline, egress and SuperLink kills (or some); print figures; merge JSON."""
    funcs = {"chaos": lambda: chaos(quick), "offline_7d": lambda: offline_7d(quick),
             "egress": egress, "superlink": lambda: superlink(quick)}  # fmt: skip
    out = {name: _measured(funcs[name]) for name in parts}
    if "chaos" in out:
        for name in ("reports_lost", "reports_duplicated", "hub_kills", "node_kills", "link_cuts"):
            print(f"{'chaos.' + name:42} {out['chaos'][name]}")
    if "superlink" in out:  # its figures belong to the chaos object (merged, not replaced)
        figures = out.pop("superlink")
        figures["superlink_load_average"] = figures.pop("load_average")
        out.setdefault("chaos", {}).update(figures)
        for name in ("superlink_kills", "campaign_outcome", "supernodes_back_online"):
            print(f"{'chaos.' + name:42} {figures[name]}")
    merge_results(out, RESULTS if not quick else RESULTS.with_suffix(".quick.json"))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--egress-driver":
        from federation.offline import disable_telemetry

        disable_telemetry()
        _egress_driver(Path(sys.argv[2]))
    else:
        from federation.offline import disable_telemetry

        disable_telemetry()
        parts = tuple(a for a in sys.argv[1:] if not a.startswith("--"))
        # e.g. `python -m benchmarks.bench_reliability_chaos offline_7d`: that part alone
        run(quick="--quick" in sys.argv,
            parts=parts or ("egress", "offline_7d", "chaos", "superlink"))
