"""Fleet operations against a real hub process: rollback, rollout abort, inventory, webhooks.

The hub runs as ``millwright hub serve`` (:mod:`benchmarks.hubproc`) on SQLite with its
rollout engine and webhook sender. Seven plants are real node processes (``millwright node
serve``, following the hub with real OpenVINO exports of the ``ai4i`` baseline); the others
are simulated nodes, one thread each, that speak the node's HTTP protocol with their own
plant token: a conditional poll of
``/plants/{id}/assignments`` every ``poll_interval_s`` (``If-None-Match``), a
``rollout.serving`` event for each new champion pointing (the confirmation the hub waits
for), and ``rollout.stats`` counters while a shadow or challenger alias points at a version.

Measured (``benchmarks/results/fleet.json``):

- ``rollback_fleet_seconds``: ``POST /api/v1/rollbacks {fleet: true}`` until every target
  plant's rollback row has ``confirmed_at`` (its node reported serving the version).
- ``rollout_abort_seconds``: a fallback-rate breach starts at a wave-1 plant until the
  rollout is ``aborted`` and every wave-1 plant ``rolled_back``.
- ``plants_changed_after_abort``: plants outside wave 1 whose assignments changed.
- ``inventory_p95_ms``: ``GET /api/v1/inventory`` (every plant x model) at 50 plants x 4
  models x 10k versions.
- ``webhook_delivery_p95_ms``: event queued -> the local receiver verified it.
- ``webhook_lost``: events never received after a SIGKILL of the hub with deliveries pending
  (the receiver fails until the hub is back).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from benchmarks.hubproc import HubProcess
from federation.hub_client import HubClient
from federation.schemas.auth import Role
from federation.schemas.events import PlantEventCreate
from federation.schemas.recipes import RecipeCreate
from federation.schemas.registry import AliasName, BaselineModelCreate, PlantCreate, VersionCreate
from federation.schemas.rollouts import PlantStage, RolloutCreate, RolloutStatus, WebhookEvent

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fleet.json"
#: The model the benchmark moves; its name maps to the node's ``ai4i`` baseline, so real node
#: processes serve its versions (real OpenVINO exports); the other three map to no baseline.
MODEL = "ai4i-fleet"
OTHER_MODELS = ("turbofan-b", "press-c", "pump-d")
GATE_REF = "gate-fleet-bench@1"
PLAN_REF = "plan-fleet-bench@1"
PILOT = ["p00", "p01", "p02"]
BREACH_PLANT = "p01"

GATE = """
kind: promotion_gate
id: gate-fleet-bench
version: 1
title: Fleet benchmark gate (artifact verified, no approvals)
rules:
  - {name: artifact_verified, metric: artifact.verified, op: "==", threshold: true}
approvals: {required: 0}
"""

# Nothing leaves shadow on its own: the breach is the only way the pilot wave ends.
PLAN = """
kind: rollout
id: plan-fleet-bench
version: 1
title: Pilot of three plants, then the fleet in doubling waves
waves:
  - name: pilot
    plants: [p00, p01, p02]
    shadow: {duration_s: 0, min_predictions: 1000000000}
    canary: {share: 0.1, soak_s: 0, min_predictions: 0}
  - name: fleet
    fleet_share: 0.1
    increment_factor: 2.0
    shadow: {duration_s: 0, min_predictions: 10}
    canary: {share: 0.25, soak_s: 0, min_predictions: 0}
abort:
  - {kind: fallback_rate, name: max_fallback_rate, max_rate: 0.05, min_samples: 20}
failure_handling: rollback
"""

# One wave straight to champion: the rollout the benchmark SIGKILLs the hub in the middle of.
RESUME_PLAN = """
kind: rollout
id: plan-fleet-resume
version: 1
title: One wave to champion (hub killed mid-way)
waves:
  - name: all
    fleet_share: 1.0
    shadow: {duration_s: 0, min_predictions: 50}
    canary: {share: 0.5, soak_s: 0, min_predictions: 25}
failure_handling: rollback
"""
RESUME_PLANTS = ["p10", "p11", "p12"]


def _pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return round(samples[0], 1) if samples else float("nan")
    return round(statistics.quantiles(samples, n=100, method="inclusive")[q - 1], 1)


class Receiver:
    """A local webhook receiver that verifies every signature; ``failing`` answers 503."""

    def __init__(self) -> None:
        self.secret = ""
        self.failing = False
        self.latencies_ms: list[float] = []
        self.ids: set[str] = set()
        self.rejected = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if receiver.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except Exception:
                    receiver.rejected += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                queued = dt.datetime.fromisoformat(payload["timestamp"])
                waited = (dt.datetime.now(dt.UTC) - queued).total_seconds() * 1000.0
                with receiver._lock:
                    if self.headers["webhook-id"] not in receiver.ids:
                        receiver.latencies_ms.append(waited)
                    receiver.ids.add(self.headers["webhook-id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class SimNode(threading.Thread):
    """A plant node reduced to its hub protocol: poll assignments, confirm, report counters."""

    def __init__(self, url: str, token: str, plant: str, poll_s: float) -> None:
        super().__init__(name=f"sim-{plant}", daemon=True)
        self.plant = plant
        self.poll_s = poll_s
        self.client = HubClient(url, token=token, timeout=30, retries=0)
        self.breach = False
        self.serving: str | None = None
        self.staged: str | None = None
        self.samples = 0
        self.polls = 0
        self.not_modified = 0
        self.errors = 0
        self.last_error = ""
        self._unsent: list[PlantEventCreate] = []
        self._etag: str | None = None
        self._pointed: str | None = None
        self._halt = threading.Event()

    def stop(self) -> None:
        """Stop after the current poll."""
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.step()
            except Exception as exc:  # the hub may be down (SIGKILL phase): the next poll retries
                self.errors += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
            self._halt.wait(self.poll_s)
        self.client.close()

    def step(self) -> None:
        """One poll, and the events it calls for."""
        listing, self._etag = self.client.poll_assignments(self.plant, self._etag)
        self.polls += 1
        events: list[PlantEventCreate] = []
        now = dt.datetime.now(dt.UTC)
        if listing is None:
            self.not_modified += 1
        else:
            mine = {a.alias: a for a in listing.items if a.model == MODEL}
            champion = mine.get(AliasName.CHAMPION)
            if champion is not None:
                pointed = f"{champion.version}@{champion.updated_at.isoformat()}"
                if pointed != self._pointed:
                    self.serving = champion.version
                    self._pointed = pointed
                    events.append(self._event("rollout.serving", champion.version, {}, now))
            staged = mine.get(AliasName.CHALLENGER) or mine.get(AliasName.SHADOW)
            new_staged = None if staged is None else staged.version
            if new_staged != self.staged:
                self.samples = 0
            self.staged = new_staged
        if self.staged is not None:
            self.samples += 25
            fallbacks = self.samples // 2 if self.breach else 0
            stats = {"samples": self.samples, "fallbacks": fallbacks, "p99_ms": 18.0}
            events.append(self._event("rollout.stats", self.staged, stats, now))
        # Like the node's outbox: what could not be delivered is sent again with the next poll
        # (same event ids, so the hub de-duplicates).
        self._unsent.extend(events)
        if self._unsent:
            self.client.post_events(self.plant, self._unsent[-200:])
            self._unsent = []

    def _event(
        self, kind: str, version: str, stats: dict[str, Any], now: dt.datetime
    ) -> PlantEventCreate:
        return PlantEventCreate(
            id=uuid.uuid4().hex,
            kind=kind,
            occurred_at=now,
            payload={"model": MODEL, "model_version": version, "stats": stats, "actor": "node"},
        )


def _wait(what: str, done: Callable[[], bool], timeout: float, every: float = 0.1) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - started


def _exports(work: Path) -> list[bytes]:
    """Three real ``ai4i`` OpenVINO exports (versions 1.0, 2.0, 3.0) as tar.gz artifacts."""
    import io
    import tarfile

    from baselines.datasets import load_ai4i
    from baselines.features import ai4i
    from tests.plant_node.serving.irs import build_logistic_ir

    state = ai4i.fit(load_ai4i()).to_dict()
    out = []
    for k in (1, 2, 3):
        weights = [0.3 * k, -0.2, 0.1, 0.9, 1.2, 0.4, -0.5, 1.1, 0.2, 0.0, -0.1]
        src = build_logistic_ir(
            work / "exports" / f"{k}.0",
            weights,
            -1.0,
            version=f"{k}.0",
            baseline="ai4i",
            name=MODEL,
            extra={"feature_state": state, "threshold": 0.5},
        )
        blob = io.BytesIO()
        with tarfile.open(fileobj=blob, mode="w:gz") as tar:
            tar.add(src, arcname="export")
        out.append(blob.getvalue())
    return out


def _start_node(hub_url: str, token: str, plant: str, work: Path, poll_s: float) -> Any:
    """A real ``millwright node serve`` process for ``plant``, following the hub."""
    import subprocess
    import sys

    from benchmarks.hubproc import free_port

    data = work / "nodes" / plant
    data.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWRIGHT_NODE_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        MILLWRIGHT_NODE_HUB_URL=hub_url,
        MILLWRIGHT_NODE_HUB_TOKEN=token,
        MILLWRIGHT_NODE_HUB_POLL_INTERVAL_S=str(poll_s),
        MILLWRIGHT_NODE_MONITORING_ENABLED="false",
    )
    with (data / "node.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "millwright", "node", "serve", "--plant", plant,
             "--data-dir", str(data), "--port", str(free_port())],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _populate(hub: HubClient, n_plants: int, n_versions: int, work: Path) -> dict[str, Any]:
    """Plants, 4 models, ``n_versions`` versions (depth 3), a champion at every plant x model."""
    plants = [f"p{i:02d}" for i in range(n_plants)]
    for pid in plants:
        hub.create_plant(PlantCreate(id=pid, name=pid.upper(), site=f"site-{int(pid[1:]) % 5}"))
    models = [MODEL, *OTHER_MODELS]
    for name in models:
        hub.create_model(BaselineModelCreate(name=name, task="rul_regression", dataset="cmapss"))
    recipe = hub.create_recipe(RecipeCreate(name="fleet-bench", hyperparameters={"lr": 0.001}))
    hub.publish_recipe(recipe.id)
    digests = [hub.upload_artifact(f"fleet-model-{i}".encode() * 64).digest for i in range(8)]
    hub.publish_policy(GATE)
    hub.publish_policy(PLAN)
    hub.publish_policy(RESUME_PLAN)

    def version(model: str, label: str, i: int, **kw: Any) -> VersionCreate:
        return VersionCreate(
            model=model,
            version=label,
            recipe_id=recipe.id,
            artifact_digest=digests[i % len(digests)],
            training_data_fingerprint=uuid.UUID(int=i * 7919 + len(label)).hex,
            code_version=f"git:{i:07x}",
            metrics={"rmse": 15.0 + (i % 10) / 10},
            **kw,
        )

    # Fleet versions: a baseline, two campaign versions; the rollout model adds the three the
    # benchmark moves (v1 champion, v2 rolled out then rolled back, v3 aborted).
    fleet: dict[str, list[int]] = {}
    for m, name in enumerate(models):
        base = hub.create_versions([version(name, "0.1-baseline", m)])[0]
        campaign = hub.create_versions(
            [version(name, f"1.{k}-campaign", m + k, parent_id=base.id) for k in range(2)]
        )
        fleet[name] = [base.id, *(c.id for c in campaign)]
    exports = [hub.upload_artifact(blob).digest for blob in _exports(work)]
    moved = hub.create_versions(
        [
            version(MODEL, f"{k}.0", 100 + k, parent_id=fleet[MODEL][1]).model_copy(
                update={"artifact_digest": exports[k - 1]}
            )
            for k in (1, 2, 3)
        ]
    )
    made = 3 * len(models) + 3
    # Personalized versions per plant x model, parent a campaign version, up to n_versions.
    per_pair = max(1, -(-(n_versions - made) // (n_plants * len(models))))  # at least n_versions
    newest: dict[tuple[str, str], int] = {}
    batch: list[VersionCreate] = []
    for name in models:
        for pid in plants:
            for k in range(per_pair):
                batch.append(
                    version(
                        name,
                        f"2.{k}+{pid}",
                        k,
                        plant_id=pid,
                        parent_id=fleet[name][1 + k % 2],
                    )
                )
                if len(batch) == 500:
                    for v in hub.create_versions(batch):
                        assert v.plant_id is not None
                        newest[(v.model, v.plant_id)] = v.id
                    made += len(batch)
                    batch = []
    if batch:
        for v in hub.create_versions(batch):
            assert v.plant_id is not None
            newest[(v.model, v.plant_id)] = v.id
        made += len(batch)
    # Champions: the other models' newest personalized version at every plant; the rollout
    # model v1 then v2 (so v1 is the previous champion a fleet rollback returns to).
    v1, v2, v3 = (v.id for v in moved)
    for pid in plants:
        for name in OTHER_MODELS:
            hub.promote(newest[(name, pid)], pid, policy=GATE_REF)
        hub.promote(v1, pid, policy=GATE_REF)
        hub.promote(v2, pid, policy=GATE_REF)
    return {"plants": plants, "versions": made, "v1": v1, "v2": v2, "v3": v3}


def _assignments(hub: HubClient, plants: list[str]) -> dict[str, list[tuple[str, str, int]]]:
    out = {}
    for pid in plants:
        listing = hub.get_assignments(pid)
        out[pid] = sorted(
            (a.model, a.alias.value, a.version_id) for a in listing.items if a.model == MODEL
        )
    return out


def bench(
    *, n_plants: int, n_versions: int, poll_s: float, engine_s: float, samples: int, n_real: int
) -> dict[str, Any]:
    """Run every measurement once on a fresh SQLite hub; return the flat result row."""
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="mw-bench-fleet-") as tmp:
        work = Path(tmp)
        hub_proc = HubProcess(
            f"sqlite:///{work / 'hub.db'}",
            work,
            {
                "MILLWRIGHT_HUB_ACCESS_LOG": "false",
                "MILLWRIGHT_HUB_ROLLOUT_POLL_SECONDS": str(engine_s),
                "MILLWRIGHT_HUB_WEBHOOK_POLL_SECONDS": "0.1",
                "MILLWRIGHT_HUB_WEBHOOK_BACKOFF_SECONDS": "0.2",
                "MILLWRIGHT_HUB_WEBHOOK_MAX_ATTEMPTS": "1000",
                "MILLWRIGHT_HUB_WEBHOOK_TIMEOUT_SECONDS": "2",
            },
        )
        hub_proc.prepare("bench-fleet")
        hub_proc.start()
        nodes: list[SimNode] = []
        real: list[Any] = []
        try:
            admin = HubClient(hub_proc.url, token=hub_proc.token, timeout=120)
            started = time.perf_counter()
            seeded = _populate(admin, n_plants, n_versions, work)
            print(
                f"  seeded {len(seeded['plants'])} plants x 4 models, {seeded['versions']} "
                f"versions in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            plants: list[str] = seeded["plants"]
            hook = admin.create_webhook(receiver.url, list(WebhookEvent), description="bench")
            receiver.secret = hook.secret
            real_plants = plants[len(plants) - n_real :] if n_real else []
            for pid in plants:
                token = admin.create_token(Role.PLANT, plant_id=pid, name=f"node-{pid}").token
                if pid in real_plants:
                    real.append(_start_node(hub_proc.url, token, pid, work, poll_s))
                else:
                    nodes.append(SimNode(hub_proc.url, token, pid, poll_s))
            by_plant = {n.plant: n for n in nodes}
            for node in nodes:
                node.start()

            def serving(label: str) -> bool:
                rows = admin.inventory(model=MODEL).items
                return len(rows) == len(plants) and all(r.reported_version == label for r in rows)

            started = time.monotonic()
            _wait("every node (real and simulated) reporting v2", lambda: serving("2.0"), 300, 0.5)
            print(
                f"  {len(real)} real node processes and {len(nodes)} simulated nodes serve v2 "
                f"after {time.monotonic() - started:.0f} s",
                flush=True,
            )

            # --- one-call fleet rollback: call -> every node confirms serving v1
            t0 = time.monotonic()
            result = admin.rollback(MODEL, fleet=True, reason="benchmark: fleet back to v1")
            call_s = time.monotonic() - t0
            pending = {r.id: r.plant_id for r in result.items}
            assert len(pending) == len(plants), (len(pending), len(plants))
            seen_at: dict[str, float] = {}

            def confirmed() -> bool:
                for rid, pid in list(pending.items()):
                    if admin.get_rollback(rid).confirmed_at is not None:
                        seen_at[pid] = time.monotonic() - t0
                        del pending[rid]
                return not pending

            try:
                _wait("every node confirming the rollback", confirmed, 20 * poll_s + 60, 0.05)
            except RuntimeError:
                print((work / "hub.log").read_text()[-3000:])
                raise
            rollback_s = time.monotonic() - t0
            real_s = max((seen_at[p] for p in real_plants), default=float("nan"))
            print(
                f"  fleet rollback of {len(plants)} plants: call {call_s:.2f} s, every node "
                f"confirmed after {rollback_s:.2f} s (the real ones {real_s:.2f} s; poll interval "
                f"{poll_s} s)",
                flush=True,
            )

            # --- rollout of v3 with a breach injected at a wave-1 plant
            outside = [p for p in plants if p not in PILOT]
            before = _assignments(admin, outside)
            rollout = admin.start_rollout(
                RolloutCreate(
                    plan=PLAN_REF, version_id=seeded["v3"], gate=GATE_REF, reason="benchmark"
                )
            )
            _wait(
                "the pilot in shadow, counted by its nodes",
                lambda: all(by_plant[p].samples >= 50 for p in PILOT),
                timeout=20 * poll_s + 60,
            )
            read = admin.get_rollout(rollout.id)
            assert read.status is RolloutStatus.RUNNING, read.detail
            by_plant[BREACH_PLANT].breach = True
            t0 = time.monotonic()

            def aborted() -> bool:
                row = admin.get_rollout(rollout.id)
                pilot = [p for p in row.plants if p.plant_id in PILOT]
                return row.status is RolloutStatus.ABORTED and all(
                    p.stage is PlantStage.ROLLED_BACK for p in pilot
                )

            _wait("the wave aborted and rolled back", aborted, 20 * poll_s + 60, 0.05)
            abort_s = time.monotonic() - t0
            time.sleep(max(3 * engine_s, poll_s))  # would anything else still move?
            after = _assignments(admin, outside)
            changed = sorted(p for p in outside if before[p] != after[p])
            final = admin.get_rollout(rollout.id)
            print(
                f"  breach at {BREACH_PLANT}: wave aborted and rolled back after {abort_s:.2f} s; "
                f"plants changed outside the wave: {len(changed)}; {final.detail[:100]}",
                flush=True,
            )
            delivery = list(receiver.latencies_ms)

            # --- a rollout survives a SIGKILL of the hub in the middle of its wave
            row = admin.start_rollout(
                RolloutCreate(
                    plan="plan-fleet-resume@1",
                    version_id=seeded["v3"],
                    gate=GATE_REF,
                    plants=RESUME_PLANTS,
                    reason="benchmark: resume after a SIGKILL",
                )
            )

            def moving() -> bool:
                stages = {p.stage for p in admin.get_rollout(row.id).plants}
                return bool(stages & {PlantStage.SHADOW, PlantStage.CANARY})

            _wait("the resume rollout moving", moving, 60, 0.05)
            before_kill = admin.get_rollout(row.id)
            errors_before_kill = sum(n.errors for n in nodes)
            hub_proc.kill()
            hub_proc.start()
            admin.close()
            admin = HubClient(hub_proc.url, token=hub_proc.token, timeout=120)
            t0 = time.monotonic()
            _wait(
                "the resumed rollout to complete",
                lambda: admin.get_rollout(row.id).status is not RolloutStatus.RUNNING,
                20 * poll_s + 60,
                0.1,
            )
            resume_s = time.monotonic() - t0
            after_restart = admin.get_rollout(row.id)
            seqs = [st.seq for st in after_restart.steps]
            resumed = (
                after_restart.status is RolloutStatus.COMPLETED
                and all(p.stage is PlantStage.CHAMPION for p in after_restart.plants)
                and seqs == list(range(1, len(seqs) + 1))
                and all(
                    admin.get_alias(p, MODEL, AliasName.CHAMPION).id == seeded["v3"]
                    for p in RESUME_PLANTS
                )
            )
            print(
                f"  hub SIGKILLed with the rollout at "
                f"{sorted(p.stage.value for p in before_kill.plants)}; restarted, it completed "
                f"{resume_s:.1f} s later: {after_restart.status.value}, {len(seqs)} steps "
                f"numbered without gaps or repeats: {resumed}",
                flush=True,
            )

            # --- webhooks across a hub SIGKILL with deliveries pending
            receiver.failing = True
            for _ in range(10):
                row = admin.start_rollout(
                    RolloutCreate(
                        plan=PLAN_REF,
                        version_id=seeded["v3"],
                        gate=GATE_REF,
                        plants=[*plants[-3:], *PILOT],
                        reason="benchmark: events while the receiver is down",
                    )
                )
                admin.rollout_action(row.id, "abort", reason="benchmark")
            time.sleep(1.0)
            counts = admin.list_webhooks().items[0]
            assert counts.pending > 0, counts
            print(f"  SIGKILL with {counts.pending} deliveries pending", flush=True)
            hub_proc.kill()
            receiver.failing = False
            hub_proc.start()
            admin.close()
            admin = HubClient(hub_proc.url, token=hub_proc.token, timeout=120)

            def drained() -> bool:
                sub = admin.list_webhooks().items[0]
                return sub.pending == 0

            _wait("the outbox drained after the restart", drained, 120, 0.2)
            sub = admin.list_webhooks().items[0]
            total = sub.pending + sub.delivered + sub.failed
            lost = total - len(receiver.ids)
            print(
                f"  after restart: {sub.delivered} delivered, {sub.failed} failed, "
                f"{len(receiver.ids)} distinct ids received of {total}; lost {lost}",
                flush=True,
            )

            # --- inventory: every plant x model, nodes stopped (the read alone)
            for node in nodes:
                node.stop()
            for node in nodes:
                node.join(timeout=30)
            inv = admin.inventory()
            assert len(inv.items) == len(plants) * 4, len(inv.items)
            times: list[float] = []
            for _ in range(samples):
                t = time.perf_counter()
                admin.inventory()
                times.append((time.perf_counter() - t) * 1000.0)
            one: list[float] = []
            for i in range(samples):
                t = time.perf_counter()
                admin.inventory(plant=plants[i % len(plants)])
                one.append((time.perf_counter() - t) * 1000.0)
            print(
                f"  inventory of {len(inv.items)} rows: p50 {_pct(times, 50)} ms, p95 "
                f"{_pct(times, 95)} ms; one plant p95 {_pct(one, 95)} ms",
                flush=True,
            )
            errors = sum(n.errors for n in nodes)
            log_text = (work / "hub.log").read_text(errors="replace")
            first = ""
            for line in log_text.splitlines():
                if '"exc"' in line:
                    try:
                        tail = json.loads(line)["exc"].strip().splitlines()
                        first = next(t for t in reversed(tail) if "Error" in t)
                    except (ValueError, KeyError, StopIteration):
                        first = line
                    break
            print(f"  node request errors: {errors} (first hub log error: {first[:200]})")
            polls = sum(n.polls for n in nodes)
            not_modified = sum(n.not_modified for n in nodes)
            admin.close()
        finally:
            for node in nodes:
                node.stop()
            for proc in real:
                proc.terminate()
            for proc in real:
                try:
                    proc.wait(timeout=20)
                except Exception:  # noqa: BLE001 - a node that hangs on shutdown is killed
                    proc.kill()
            hub_proc.stop()
            receiver.stop()
    return {
        "nodes": len(nodes) + len(real),
        "real_nodes": len(real),
        "simulated_nodes": len(nodes),
        "poll_interval_s": poll_s,
        "engine_poll_s": engine_s,
        "rollback_fleet_seconds": round(rollback_s, 2),
        "rollback_call_seconds": round(call_s, 2),
        "rollback_real_nodes_seconds": round(real_s, 2),
        "rollback_target_seconds": poll_s + 2.0,
        "rollout_abort_seconds": round(abort_s, 2),
        "plants_changed_after_abort": len(changed),
        "inventory_rows": len(inv.items),
        "inventory_p50_ms": _pct(times, 50),
        "inventory_p95_ms": _pct(times, 95),
        "inventory_one_plant_p95_ms": _pct(one, 95),
        "versions": seeded["versions"],
        "plants": len(plants),
        "models": 4,
        "rollout_resumed_after_kill": resumed,
        "rollout_resume_seconds": round(resume_s, 2),
        "webhook_deliveries_measured": len(delivery),
        "webhook_delivery_p50_ms": _pct(delivery, 50),
        "webhook_delivery_p95_ms": _pct(delivery, 95),
        "webhook_lost": lost,
        "webhook_failed": sub.failed,
        "webhook_rejected_signatures": receiver.rejected,
        "polls": polls,
        "node_request_errors": errors,
        "node_request_errors_before_kill": errors_before_kill,
        "polls_not_modified": not_modified,
        "database": "sqlite",
        "load_average": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }


def run(quick: bool) -> dict[str, Any]:
    """Run the fleet benchmark and write ``benchmarks/results/fleet.json``."""
    size = (
        {
            "n_plants": 27,
            "n_versions": 1000,
            "poll_s": 1.0,
            "engine_s": 0.25,
            "samples": 10,
            "n_real": 2,
        }
        if quick
        else {
            "n_plants": 50,
            "n_versions": 10_000,
            "poll_s": 2.0,
            "engine_s": 0.25,
            "samples": 40,
            "n_real": 7,
        }
    )
    result = bench(**size)
    targets = {
        "rollback_fleet_seconds": result["rollback_fleet_seconds"]
        <= result["rollback_target_seconds"],
        "plants_changed_after_abort": result["plants_changed_after_abort"] == 0,
        "inventory_p95_ms": result["inventory_p95_ms"] <= 50.0,
        "webhook_lost": result["webhook_lost"] == 0,
        "rollout_resumed_after_kill": result["rollout_resumed_after_kill"],
        "nodes": result["nodes"] >= 27,
    }
    result["targets_met"] = targets
    for key, ok in targets.items():
        print(f"  {key:<28} {result[key]!s:>10}  {'ok' if ok else 'MISSED'}")
    if not quick:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"  wrote {RESULTS.relative_to(ROOT)}")
    return result
