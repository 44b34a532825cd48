"""Demo step of fleet operations: two waves, an injected abort, a rollback, the inventory.

A webhook receiver in the demo process prints the signed events it verified.

Needs the hub's engine and webhook sender to tick fast (``MILLWRIGHT_HUB_ROLLOUT_POLL_SECONDS``
and ``MILLWRIGHT_HUB_WEBHOOK_POLL_SECONDS``, set by the hub step). Finishes in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from standardwebhooks import Webhook

from federation.demo.context import DemoContext, DemoError
from federation.fleet_view import inventory_table, rollbacks_table, rollout_table
from federation.schemas.events import PlantEventCreate
from federation.schemas.rollouts import PlantStage, RolloutCreate, RolloutRead, WebhookEvent

if TYPE_CHECKING:
    from federation.hub_client import HubClient

#: The turbofan plants, pilot first.
TURBOFAN = ["fd001", "fd002", "fd003", "fd004"]
#: The wave-2 plant where the demo injects a breach.
BREACH_PLANT = "fd003"
GATE_REF = "promotion-fleet-demo@1"
PLAN_REF = "rollout-fleet-demo@1"

GATE = """
kind: promotion_gate
id: promotion-fleet-demo
version: 1
title: Fleet demo gate (artifact verified, no approvals)
rules:
  - {name: artifact_verified, metric: artifact.verified, op: "==", threshold: true}
approvals: {required: 0}
"""

PLAN = """
kind: rollout
id: rollout-fleet-demo
version: 1
title: Fleet demo (pilot fd001, then the other turbofan plants)
waves:
  - name: pilot
    plants: [fd001]
    shadow: {duration_s: 0, min_predictions: 0}
    canary: {share: 0.1, soak_s: 0, min_predictions: 0}
  - name: rest
    plants: [fd002, fd003, fd004]
    shadow: {duration_s: 0, min_predictions: 10}
    canary: {share: 0.25, soak_s: 0, min_predictions: 0}
abort:
  - {kind: fallback_rate, name: max_fallback_rate, max_rate: 0.05, min_samples: 10}
failure_handling: rollback
"""


class WebhookPrinter:
    """A local receiver that verifies each delivery's signature and prints the event."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.secret = ""
        self.verified: list[dict[str, Any]] = []
        self.rejected = 0
        printer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    payload = Webhook(printer.secret).verify(body, dict(self.headers.items()))
                except Exception:
                    printer.rejected += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                printer.verified.append(payload)
                say(f"webhook verified {self.headers['webhook-id']}: {payload['type']} "
                    f"{json.dumps(payload['data'], sort_keys=True)[:120]}")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/millwright"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _wait(
    hub: HubClient, rollout_id: int, done: Callable[[RolloutRead], bool], timeout: float
) -> RolloutRead:
    deadline = time.monotonic() + timeout
    row = hub.get_rollout(rollout_id)
    while not done(row) and time.monotonic() < deadline:
        time.sleep(0.1)
        row = hub.get_rollout(rollout_id)
    return row


def _seen(printer: WebhookPrinter, event: WebhookEvent, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p["type"] == event.value for p in printer.verified):
            time.sleep(0.2)  # the sender records the delivery after the receiver answers
            return True
        time.sleep(0.05)
    return False


def fleet_rollout(ctx: DemoContext) -> None:
    """Two waves, a breach injected at a wave-2 plant (abort, rollback), inventory, webhooks."""
    assert ctx.hub is not None and ctx.campaign is not None
    hub = ctx.hub
    version_id = ctx.campaign.version_id
    if version_id is None:
        raise DemoError("the campaign registered no global model to roll out")
    printer = WebhookPrinter(ctx.console.print)
    printer.start()
    try:
        sub = hub.create_webhook(printer.url, list(WebhookEvent), description="demo receiver")
        printer.secret = sub.secret
        hub.publish_policy(GATE)
        hub.publish_policy(PLAN)
        started = hub.start_rollout(RolloutCreate(
            plan=PLAN_REF, version_id=version_id, gate=GATE_REF, plants=TURBOFAN,
            reason="demo: global model to the turbofan fleet",
        ))
        row = _wait(hub, started.id, lambda r: r.current_wave == 1 and all(
            p.stage is PlantStage.SHADOW for p in r.plants if p.wave == 1), timeout=6)
        if row.current_wave != 1:
            raise DemoError(f"rollout {row.id} did not reach wave 2: {row.detail}")
        ctx.console.print(rollout_table(row))
        # Let the hub's workers go idle first: on SQLite, a request that reads then writes
        # while a worker commits is refused ("database is locked").
        _seen(printer, WebhookEvent.ROLLOUT_WAVE_ADVANCED, timeout=3)
        hub.post_events(BREACH_PLANT, [PlantEventCreate(
            id=uuid.uuid4().hex, kind="rollout.stats", occurred_at=dt.datetime.now(dt.UTC),
            payload={"model_version": row.version, "model": row.model,
                     "stats": {"samples": 200, "fallbacks": 30, "p99_ms": 40.0}},
        )])
        row = _wait(hub, started.id, lambda r: not r.status.active, timeout=3)
        ctx.console.print(rollout_table(row))
        if row.status.value != "aborted":
            raise DemoError(f"rollout {row.id} is {row.status.value} after the injected breach")
        ctx.console.print(f"aborted: {row.detail}")
        _seen(printer, WebhookEvent.ROLLOUT_ABORTED, timeout=3)
        result = hub.rollback(row.model, plant="fd001", reason="demo: pilot back as well")
        ctx.console.print(rollbacks_table(result.items))
        ctx.console.print(inventory_table(hub.inventory(model=row.model).items))
        _seen(printer, WebhookEvent.ROLLBACK, timeout=2)
        ctx.console.print(f"webhooks: {len(printer.verified)} verified, "
                          f"{printer.rejected} rejected")
        hub.delete_webhook(sub.id)
    finally:
        printer.stop()
