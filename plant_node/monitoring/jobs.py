"""The scheduled monitoring job: read new log rows, run the monitor, publish the report.

The node's scheduler registers :func:`run_in_subprocess` by name: it starts
``python -m plant_node.monitoring --once`` with the node's settings on its standard input,
so nannyml never loads in the serving process. :func:`run_monitoring_job` is one tick of one
model version; storage stays outside: the caller passes a reader of the prediction log (rows
after a timestamp, already joined with the outcomes received so far) and a publisher that
enqueues the report in the durable outbox, so it knows neither the database nor the hub.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import SecretStr

from federation.schemas.metrics_report import MetricsReport
from plant_node.monitoring.alerts import Alert, EventType
from plant_node.monitoring.report import build_metrics_report

if TYPE_CHECKING:
    from plant_node.config import NodeSettings
from plant_node.monitoring.engine import (
    ChunkResult,
    MonitorState,
    load_monitor,
    load_state,
    run_monitor,
    save_state,
)


@dataclass(frozen=True)
class JobOutcome:
    """What one job run did."""

    results: list[ChunkResult]
    report: MetricsReport | None
    state: MonitorState

    @property
    def raised(self) -> list[Alert]:
        """Alerts raised by this run, for the node API and ``/metrics``."""
        return [e.alert for r in self.results for e in r.events if e.type is EventType.RAISED]


def run_monitoring_job(
    *,
    read_rows: Callable[[str | None], pd.DataFrame],
    publish: Callable[[MetricsReport], None],
    monitor_path: Path,
    state_path: Path,
    plant_id: str,
    model_name: str,
    model_version: str,
    pseudonym_key: bytes,
    min_rows: int,
    alarms: tuple[int, int] = (0, 0),
) -> JobOutcome:
    """Run one monitoring tick over the rows logged since the previous tick.

    Complete chunks only: an incomplete last chunk is left for the next tick. The report
    is published before the state is saved; if saving fails, the next tick repeats the same
    chunks and publishes a report with the same id, which the hub de-duplicates.

    Parameters
    ----------
    read_rows
        Returns the prediction-log rows with a timestamp strictly after the given ISO
        timestamp (all rows for ``None``), with labels where outcomes have arrived.
    publish
        Enqueues a report in the outbox.
    monitor_path, state_path
        Node-local files of the fitted monitor and of the run state.
    plant_id, model_name, model_version, pseudonym_key, min_rows
        Report identity, anonymization key and policy minimum (see
        :func:`.report.build_metrics_report`).
    alarms
        ``(true, false)`` alarms confirmed by outcomes so far.

    Returns
    -------
    JobOutcome
        Chunk results, the report (``None`` when nothing was reportable) and the new state.
    """
    monitor = load_monitor(monitor_path)
    state = load_state(state_path)
    rows = read_rows(state.processed_through)
    results, new_state = run_monitor(monitor, rows, state, hold_partial=True)
    report = build_metrics_report(
        results,
        plant_id=plant_id,
        model_name=model_name,
        model_version=model_version,
        pseudonym_key=pseudonym_key,
        min_rows=min_rows,
        open_alerts=len(new_state.alerts.open_alerts()),
        open_alert_keys=[a.key for a in new_state.alerts.open_alerts()],
        alarms=alarms,
    )
    if report is not None:
        publish(report)
    save_state(new_state, state_path)
    return JobOutcome(results=results, report=report, state=new_state)


log = logging.getLogger("millwright.node.monitoring")


def child_settings(settings: NodeSettings) -> dict[str, Any]:
    """Return the settings a child process rebuilds, as JSON-ready values.

    Only the fields set explicitly (environment, ``.env``, arguments) travel: a default left
    to the model's recipe (chunk size, reference rows, ...) must stay a default in the child,
    or it would override the recipe there.
    """
    out: dict[str, Any] = {}
    for name in sorted(settings.model_fields_set):
        if name == "bootstrap_keys":  # the monitoring child serves no requests: no keys
            continue
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, Path):
            value = str(value)
        out[name] = value
    return out


def run_in_subprocess(settings: NodeSettings) -> dict[str, Any]:
    """Run one monitoring pass in a child process (the scheduler's job).

    The serving process never imports nannyml: the child loads it, does the work, and exits.
    The settings reach the child as JSON on its standard input (:func:`child_settings`),
    not as environment variables.

    Returns
    -------
    dict
        ``{"returncode", "summaries"}`` (summaries as the child printed them).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWRIGHT_NODE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "plant_node.monitoring", "--once", "--settings-stdin"],
        input=json.dumps(child_settings(settings), default=str),
        env=env,
        capture_output=True,
        text=True,
        timeout=settings.monitor_timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        log.error("monitoring run failed (%s): %s", proc.returncode, proc.stderr[-2000:])
        return {"returncode": proc.returncode, "summaries": []}
    lines = proc.stdout.strip().splitlines()
    return {"returncode": 0, "summaries": json.loads(lines[-1]) if lines else []}
