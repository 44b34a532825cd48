"""``millwright node connect``: run a node's line connectors beside its serving process.

The runner opens the node's own database and model cache (``--plant``/``--data-dir``, as
``node serve``), loads the champions from the cache (``--sync`` pulls from the hub first), and
scores every reading in this process through the same serving flows as ``POST /v1/predict``,
into the same prediction log. It needs no HTTP key: it never calls the node over HTTP. Alerts
are queued in the node's outbox, which the ``node serve`` process delivers. To run the
connectors inside the serving process instead (lowest latency, and ``GET /v1/connectors``),
name the mapping files in ``MILLWRIGHT_NODE_CONNECTORS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from federation.errors import InvalidInput
from plant_node.config import NodeSettings
from plant_node.connectors.mapping import LineMapping, load_mapping
from plant_node.connectors.runner import ConnectorRunner

log = logging.getLogger("millwright.node.connectors")


def _emit(event: str, fmt: str, **fields: Any) -> None:
    if fmt == "json":
        print(json.dumps({"event": event, **fields}, default=str), flush=True)
    else:
        detail = " ".join(f"{k}={v}" for k, v in fields.items())
        print(f"{event} {detail}", flush=True)


async def _serve(
    runner: ConnectorRunner, *, status_every_s: float, run_for_s: float | None, fmt: str
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner.start()
    started = time.monotonic()
    announced: set[tuple[str, str]] = set()
    last_status = time.monotonic()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.1)
            except TimeoutError:
                pass
            for item in runner.status():
                key = (item["line"], item["connector"])
                if item["state"] == "connected" and key not in announced:
                    announced.add(key)
                    _emit("connected", fmt, line=key[0], connector=key[1], peer=item["peer"])
                elif item["state"] != "connected":
                    announced.discard(key)
            if status_every_s > 0 and time.monotonic() - last_status >= status_every_s:
                last_status = time.monotonic()
                for item in runner.status():
                    _emit("status", fmt, **item)
            if run_for_s is not None and time.monotonic() - started >= run_for_s:
                break
    finally:
        await runner.stop()
        for item in runner.status():
            _emit("stopped", fmt, **item)


def run(
    configs: list[Path],
    settings: NodeSettings,
    *,
    sync: bool = False,
    status_every_s: float = 0.0,
    run_for_s: float | None = None,
    fmt: str = "text",
) -> None:
    """Validate the mappings, load the node's models, and run the connectors until stopped.

    Raises
    ------
    SystemExit
        With status 2 if a mapping file is missing or invalid (before anything starts).
    """
    from plant_node.db import upgrade_database
    from plant_node.main import build_state

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        mappings: list[LineMapping] = [load_mapping(p) for p in configs]
    except InvalidInput as exc:
        print(exc.detail, file=sys.stderr)
        for error in exc.errors:
            print(f"  {error['field']}: {error['message']}", file=sys.stderr)
        raise SystemExit(2) from None
    # The serving process owns the outbox sender and the scheduled jobs of this database.
    settings = settings.model_copy(
        update={"connectors": [], "outbox_enabled": False, "scheduler_enabled": False}
    )
    settings.ensure_dirs()
    upgrade_database(settings.db_url)
    state = build_state(settings)
    assert state.serving is not None
    try:
        models = state.serving.sync_models(state.model_source if sync else None)
        _emit("models", fmt, **{k: v["versions"] for k, v in models.items()})
        state.serving.start()
        runner = ConnectorRunner(mappings, state.serving, state.session_factory, state.metrics)
        asyncio.run(_serve(runner, status_every_s=status_every_s, run_for_s=run_for_s, fmt=fmt))
    finally:
        state.serving.stop()
        hub = state.extras.get("hub_client")
        close = getattr(hub, "close", None)
        if callable(close):
            close()
        state.engine.dispose()
