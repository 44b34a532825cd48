"""The node's monitoring run: prediction log -> monitor -> chunk rows, alerts, hub report.

For every baseline and model version with logged champion predictions:

1. **Reference.** The first ``monitor_reference_rows`` predictions of that version (plus
   the rest of the request batch of the last one) are the reference period. The monitor is
   fitted on them once they all carry a label (QA verdicts, failure records, operator
   feedback), so the reference comes from the model as deployed, on this plant's own data,
   timestamps and request cadence. Until then the run reports ``waiting_for_reference``.
2. **New rows, streamed.** Rows after the state's ``processed_through`` are read in bounded
   batches (``monitor_batch_rows``, cut at a timestamp so one request's rows are never
   split), labels joined, and handed to :func:`.jobs.run_monitoring_job`, which runs
   complete chunks only and publishes the anonymized report.
3. **Stored together.** Chunk rows, alerts and the report's outbox message are written in
   one transaction; the run state is written to a staging file first and moved into place
   only after that commit, so a crash in between repeats the same chunks and the upserts
   (and the report's deterministic id as outbox key) make the repeat harmless.

The node's scheduler runs this in a child process (:func:`run_in_subprocess`): nannyml,
LightGBM and the frames stay out of the serving process.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from baselines.export.runtime import METADATA_FILE, RECIPE_FILE
from baselines.recipes.schema import MonitoringKnobs
from federation.errors import Conflict
from federation.schemas.metrics_report import MetricsReport
from plant_node.config import NodeSettings
from plant_node.db import make_engine, make_session_factory, managed_session
from plant_node.monitoring import records
from plant_node.monitoring.alerts import EventType
from plant_node.monitoring.chunking import LogColumns
from plant_node.monitoring.jobs import run_monitoring_job
from plant_node.monitoring.models import MonitoringChunk, MonitoringReport
from plant_node.monitoring.outcomes import tally_failure_alarms
from plant_node.monitoring.service import (
    ChunkResult,
    MonitorConfig,
    MonitorState,
    fit_monitor,
    load_monitor,
    save_monitor,
    save_state,
)
from plant_node.outbox import service as outbox_service
from plant_node.serving.models import Feedback, Prediction

log = logging.getLogger("millwright.node.monitoring")

METRICS_STREAM = "metrics"
METRICS_KIND = "metrics.report"
DEFAULT_RUL_CAP = 125.0


def _features(baseline: str) -> tuple[str, ...] | None:
    """Return the monitored signals: C-MAPSS sensors of the newest cycle, AI4I readings."""
    if baseline == "cmapss":
        from baselines.features.cmapss import INFORMATIVE_SENSORS

        return INFORMATIVE_SENSORS
    if baseline == "ai4i":
        from baselines.features.ai4i import RAW_NUMERIC

        return RAW_NUMERIC
    return None


@dataclass
class RunSummary:
    """What one run did for one model version (printed by ``millwright node monitor``)."""

    baseline: str
    model_name: str
    model_version: str
    # waiting_for_reference | fitted | monitored | up_to_date | unsupported | failed
    status: str
    detail: str = ""
    chunks: list[dict[str, Any]] = field(default_factory=list)
    raised: list[dict[str, Any]] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    relabelled: int = 0
    revised: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable form."""
        return asdict(self)


@dataclass(frozen=True)
class _Target:
    baseline: str
    model_name: str
    model_version: str
    classifier: bool
    features: tuple[str, ...]
    windowed: bool = False  # inputs hold a window of cycles (C-MAPSS)
    knobs: MonitoringKnobs = MonitoringKnobs()  # the recipe's, see monitoring_knobs

    @property
    def columns(self) -> LogColumns:
        return LogColumns(features=self.features)

    def directory(self, root: Path) -> Path:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.model_version)
        return root / self.baseline / safe


def pseudonym_key(settings: NodeSettings) -> bytes:
    """Return the plant-held pseudonymization key (settings, else a key file made once)."""
    if settings.monitor_pseudonym_key is not None:
        return settings.monitor_pseudonym_key.get_secret_value().encode()
    path = settings.data_path / "monitoring" / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _bundle(settings: NodeSettings, target: _Target) -> tuple[Path, dict[str, Any]] | None:
    """Return the installed model directory of the target's version and its metadata."""
    for meta in settings.cache_path.glob(f"{target.baseline}/*/{METADATA_FILE}"):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if str(data.get("version", meta.parent.name)) == target.model_version:
            return meta.parent, data
    return None


def _rul_cap(settings: NodeSettings, target: _Target) -> float:
    """Return the RUL cap of the version's target (its feature state), 125 if unknown."""
    found = _bundle(settings, target)
    cap = (found[1].get("feature_state") or {}).get("rul_cap") if found else None
    return float(cap) if isinstance(cap, int | float) else DEFAULT_RUL_CAP


# Node settings that, when set explicitly (environment, .env), win over the recipe's knob.
_SETTING_OF_KNOB = {
    "chunk_size": "monitor_chunk_size",
    "chunk_period": "monitor_chunk_period",
    "reference_rows": "monitor_reference_rows",
    "min_report_rows": "monitor_min_rows",
}


def monitoring_knobs(settings: NodeSettings, target: _Target) -> MonitoringKnobs:
    """Return the monitoring section of the version's recipe, overridden by the node's settings.

    The recipe travels inside the exported model directory; a version without one (or with a
    section this node cannot read) is monitored with the defaults, and says so in the log.
    """
    knobs = MonitoringKnobs()
    found = _bundle(settings, target)
    recipe_path = found[0] / RECIPE_FILE if found else None
    if recipe_path is not None and recipe_path.exists():
        try:
            section = json.loads(recipe_path.read_text()).get("monitoring")
            if section is not None:
                knobs = MonitoringKnobs.model_validate(section)
        except (OSError, ValueError, ValidationError) as exc:
            log.warning("%s: recipe monitoring section unreadable (%s); using defaults",
                        target.model_version, exc)  # fmt: skip
    explicit = {
        knob: getattr(settings, name)
        for knob, name in _SETTING_OF_KNOB.items()
        if name in settings.model_fields_set
    }
    if "chunk_size" in explicit and "chunk_period" not in explicit:
        explicit["chunk_period"] = None  # the node asked for row chunks
    return knobs.model_copy(update=explicit) if explicit else knobs


def _apply_knobs(settings: NodeSettings, knobs: MonitoringKnobs) -> NodeSettings:
    return settings.model_copy(
        update={
            "monitor_chunk_size": knobs.chunk_size or settings.monitor_chunk_size,
            "monitor_chunk_period": knobs.chunk_period,
            "monitor_reference_rows": knobs.reference_rows,
            "monitor_min_rows": knobs.min_report_rows,
        }
    )


# -- reading the log -------------------------------------------------------------------------


def _columns(target: _Target) -> tuple[Any, ...]:
    # SQLite pulls the newest reading out of each JSON row (a C-MAPSS row holds its whole
    # window): parsing only that in Python keeps a 100k-row read at a few seconds.
    reading, unit = ("$.cycles[#-1]", "$.unit") if target.windowed else ("$", "$.type")
    return (
        Prediction.id,
        Prediction.created_at,
        func.json_extract(Prediction.inputs, reading).label("reading"),
        func.json_extract(Prediction.inputs, unit).label("unit"),
        func.json_extract(Prediction.outputs, "$.score").label("score"),
        func.json_extract(Prediction.outputs, "$.label").label("predicted_class"),
        Prediction.latency_ms,
    )


def _targets(session: Session) -> list[_Target]:
    query = (
        select(Prediction.baseline, Prediction.model_name, Prediction.model_version)
        .where(Prediction.role == "champion", Prediction.fallback.is_(False))
        .distinct()
    )
    out = []
    for baseline, name, version in session.execute(query).all():
        inputs, outputs = session.execute(
            select(Prediction.inputs, Prediction.outputs)
            .where(Prediction.baseline == baseline, Prediction.model_version == version)
            .limit(1)
        ).one()
        features = _features(baseline) or ()
        out.append(
            _Target(baseline, name, version, "label" in outputs, features, "cycles" in inputs)
        )
    return sorted(out, key=lambda t: (t.baseline, t.model_version))


def _log_query(target: _Target) -> Any:
    return (
        select(*_columns(target))
        .where(
            Prediction.baseline == target.baseline,
            Prediction.model_version == target.model_version,
            Prediction.role == "champion",
            Prediction.fallback.is_(False),
        )
        .order_by(Prediction.created_at, Prediction.id)
    )


def _read(
    session: Session, target: _Target, after: datetime | None, limit: int
) -> tuple[list[Any], bool]:
    """Up to ``limit`` rows after ``after``, never splitting the rows of one timestamp.

    Returns the rows and whether the limit was hit (more rows may follow).
    """
    query = _log_query(target)
    if after is not None:
        query = query.where(Prediction.created_at > after)
    rows = list(session.execute(query.limit(limit)).all())
    if len(rows) < limit:
        return rows, False
    last = rows[-1].created_at
    kept = [r for r in rows if r.created_at != last]
    if kept:
        return kept, True
    # one timestamp holds more rows than a batch: take all of them
    query = _log_query(target).where(Prediction.created_at == last)
    return list(session.execute(query).all()), True


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def _frame(session: Session, target: _Target, rows: list[Any], rul_cap: float) -> pd.DataFrame:
    """Turn log rows into the monitor's frame and join every label that has arrived."""
    recs = []
    for r in rows:
        reading = json.loads(r.reading) if r.reading else {}
        rec: dict[str, Any] = {
            "prediction_id": r.id,
            "timestamp": _naive(r.created_at),
            "unit_id": str(r.unit if r.unit is not None else "line"),
            "cycle": float(reading.get("cycle", math.nan)),
            "prediction": float(r.score),
            "latency_ms": float(r.latency_ms),
        }
        for f in target.features:
            v = reading.get(f)
            rec[f] = float(v) if isinstance(v, int | float) else math.nan
        if target.classifier:
            rec["predicted_class"] = int(r.predicted_class)
        recs.append(rec)
    frame = pd.DataFrame.from_records(recs)
    if frame.empty:
        return frame
    frame["label"] = math.nan
    ids = frame["prediction_id"].tolist()
    # operator feedback first, then failure records, then QA verdicts (most specific wins)
    fb = _feedback_labels(session, ids, classifier=target.classifier, frame=frame)
    if fb:
        frame["label"] = frame["prediction_id"].map(fb).astype(float)
    if not target.classifier:
        failures = records.failures_for_units(
            session=session, baseline=target.baseline, units=frame["unit_id"].unique().tolist()
        )
        failed_at = frame["unit_id"].map(failures).astype(float)
        rul = (failed_at - frame["cycle"]).clip(upper=rul_cap)
        frame["label"] = frame["label"].where(~(rul >= 0), rul)
    qa = records.labels_for_predictions(session=session, prediction_ids=ids)
    if qa:
        verdict = frame["prediction_id"].map(qa).astype(float)
        frame["label"] = frame["label"].where(verdict.isna(), verdict)
    return frame


def _feedback_labels(
    session: Session, ids: list[str], *, classifier: bool, frame: pd.DataFrame
) -> dict[str, float]:
    """Return operator feedback as labels.

    The true label if given; else, for a classifier, "right" keeps the predicted class and
    "wrong" flips it.
    """
    out: dict[str, float] = {}
    predicted = (
        dict(zip(frame["prediction_id"], frame["predicted_class"], strict=True))
        if classifier
        else {}
    )
    for start in range(0, len(ids), 500):
        query = (
            select(Feedback.prediction_id, Feedback.verdict, Feedback.true_label)
            .where(Feedback.prediction_id.in_(ids[start : start + 500]))
            .order_by(Feedback.id)
        )
        for pid, verdict, true_label in session.execute(query).all():
            value: float | None = None
            if true_label is not None:
                try:
                    value = float(true_label)
                except ValueError:
                    value = None
                if classifier and value not in (0.0, 1.0):
                    value = None
            if value is None and classifier:
                cls = float(predicted[pid])
                value = cls if verdict == "right" else 1.0 - cls
            if value is not None:
                out[pid] = value
    return out


# -- one target ------------------------------------------------------------------------------


def _config(settings: NodeSettings, target: _Target) -> MonitorConfig:
    period = settings.monitor_chunk_period
    knobs = target.knobs
    return MonitorConfig(
        chunk_size=None if period else settings.monitor_chunk_size,
        chunk_period=period,
        problem="classification_binary" if target.classifier else "regression",
        performance_k=knobs.performance_k,
        performance_k_clear=knobs.performance_k_clear,
        performance_window=knobs.performance_window,
        drift_k=knobs.drift_k,
        false_alarm_rate=knobs.false_alarm_rate,
        failure_mode_features=tuple(knobs.failure_mode_features),
        raise_after=knobs.raise_after,
        clear_after=knobs.clear_after,
        expected_interval_s=settings.monitor_expected_interval_s,
        windowed_inputs=target.windowed,
    )


def _fit_reference(
    settings: NodeSettings,
    factory: sessionmaker[Session],
    target: _Target,
    folder: Path,
    rul_cap: float,
) -> RunSummary | None:
    """Fit the monitor on the reference period; return a summary when it cannot yet."""
    n = settings.monitor_reference_rows
    with factory() as session:
        rows = list(session.execute(_log_query(target).limit(n)).all())
        if len(rows) == n:  # the whole request batch of the n-th row belongs to the reference
            last = rows[-1].created_at
            query = _log_query(target).where(Prediction.created_at <= last)
            rows = list(session.execute(query).all())
        if len(rows) < n:
            return RunSummary(
                target.baseline, target.model_name, target.model_version,
                "waiting_for_reference", f"{len(rows)}/{n} reference predictions logged",
            )  # fmt: skip
        frame = _frame(session, target, rows, rul_cap)
    labelled = int(frame["label"].notna().sum())
    if labelled < len(frame):
        return RunSummary(
            target.baseline, target.model_name, target.model_version,
            "waiting_for_reference", f"{labelled}/{len(frame)} reference predictions labelled",
        )  # fmt: skip
    monitor = fit_monitor(frame, columns=target.columns, config=_config(settings, target))
    folder.mkdir(parents=True, exist_ok=True)
    save_monitor(monitor, folder / "monitor.pkl")
    end = pd.Timestamp(frame["timestamp"].max()).isoformat()
    save_state(MonitorState(processed_through=end), folder / "state.pkl")
    (folder / "reference.json").write_text(
        json.dumps({"rows": len(frame), "start": str(frame["timestamp"].min()), "end": end})
    )
    return None


def _chunk_values(target: _Target, monitor: Any, r: ChunkResult) -> dict[str, Any]:
    perf = [
        {
            "metric": p.metric,
            "estimated": records._finite(p.estimated),
            "lower": records._finite(p.lower),
            "upper": records._finite(p.upper),
            "realized": records._finite(p.realized),
            "n_labels": int(p.n_labels),
            "unreliable": list(r.unreliable),
        }
        for p in r.performance
    ]
    first = perf[0] if perf else {}
    excess = r.drift.excess(monitor.drift)
    finite = ((k, float(v)) for k, v in excess.items() if math.isfinite(v))
    top = sorted(finite, key=lambda kv: -kv[1])
    return {
        "baseline": target.baseline,
        "model_name": target.model_name,
        "model_version": target.model_version,
        "chunk": r.chunk,
        "start": _aware(r.start),
        "end": _aware(r.end),
        "n_rows": r.n_rows,
        "metric": first.get("metric"),
        "estimated": first.get("estimated"),
        "lower": first.get("lower"),
        "upper": first.get("upper"),
        "realized": first.get("realized"),
        "n_labels": first.get("n_labels", 0),
        "performance": perf,
        "multivariate_drift": records._finite(r.drift.multivariate),
        "top_drift": [[k, v] for k, v in top[:5]],
        "integrity": {k: float(v) for k, v in r.integrity.rates().items()},
        "latency_ms": dict(r.latency_ms),
    }


def _aware(value: str | None) -> datetime:
    if value is None:
        raise ValueError("chunk without a timestamp")
    ts: datetime = pd.Timestamp(value).to_pydatetime()
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _store(
    session: Session,
    target: _Target,
    monitor: Any,
    results: list[ChunkResult],
    reports: list[MetricsReport],
    summary: RunSummary,
) -> None:
    for r in results:
        values = _chunk_values(target, monitor, r)
        records.upsert_chunk(session=session, values=values)
        summary.chunks.append(
            values | {"start": values["start"].isoformat(), "end": values["end"].isoformat()}
        )
        for e in r.events:
            a = e.alert
            if e.type is EventType.RAISED:
                records.raise_alert(
                    session=session,
                    values={
                        "baseline": target.baseline,
                        "model_version": target.model_version,
                        "key": a.key,
                        "kind": a.kind.value,
                        "since": _aware(a.since) if a.since else None,
                        "since_chunk": a.since_chunk,
                        "raised_chunk": a.raised_chunk,
                        "value": a.value,
                        "worst_value": a.worst_value,
                        "threshold": a.threshold,
                        "reference_mean": a.reference_mean,
                        "reference_std": a.reference_std,
                        "sigmas": records._finite(a.sigmas),
                        "top_features": [[n, float(v)] for n, v in a.top_features],
                        "description": a.describe(),
                    },
                )
                summary.raised.append(
                    {"key": a.key, "kind": a.kind.value, "description": a.describe()}
                )
            else:
                records.clear_alert(
                    session=session,
                    baseline=target.baseline,
                    model_version=target.model_version,
                    key=a.key,
                    since_chunk=a.since_chunk,
                    cleared_chunk=e.chunk,
                    worst_value=a.worst_value,
                    at=_aware(r.end),
                )
    for report in reports:
        payload = report.model_dump(mode="json")
        try:
            outbox_service.enqueue(
                session=session,
                stream=METRICS_STREAM,
                kind=METRICS_KIND,
                key=str(report.report_id),
                payload=payload,
            )
        except Conflict:
            # a repeated window (after a crash) whose alarm tallies moved meanwhile: the hub
            # de-duplicates by report id, so the first version stands
            log.info("report %s already queued", report.report_id)
        if session.get(MonitoringReport, str(report.report_id)) is None:
            session.add(
                MonitoringReport(
                    report_id=str(report.report_id),
                    baseline=target.baseline,
                    model_version=target.model_version,
                    first_chunk=min(c.chunk for c in report.chunks),
                    last_chunk=max(c.chunk for c in report.chunks),
                    revision=report.revision,
                    payload=payload,
                )
            )
        summary.reports.append(str(report.report_id))


def _refresh_realized(
    factory: sessionmaker[Session], target: _Target, monitor: Any, rul_cap: float, limit: int = 200
) -> tuple[int, list[str]]:
    """Recompute the realized metrics of stored chunks whose labels arrived after they ran.

    A turbofan's truth comes with its failure, long after its chunks were monitored; the
    estimate was stored then, the realized value is set beside it now, and every report
    that already went out with those chunks is queued again as its next revision (in the
    same transaction, so a crash cannot update the chunks and lose the revision).

    Returns
    -------
    tuple[int, list[str]]
        Chunks updated, and the re-sent reports as ``"<report id> r<revision>"``.
    """
    from plant_node.monitoring.estimation import realized_metric

    estimator = monitor.estimator
    if estimator is None:
        return 0, []
    updated: dict[int, MonitoringChunk] = {}
    with managed_session(factory) as session:
        stale = session.execute(
            select(MonitoringChunk)
            .where(
                MonitoringChunk.baseline == target.baseline,
                MonitoringChunk.model_version == target.model_version,
                MonitoringChunk.n_labels < MonitoringChunk.n_rows,
            )
            .order_by(MonitoringChunk.chunk)
            .limit(limit)
        ).scalars()
        for chunk in list(stale):
            query = _log_query(target).where(
                Prediction.created_at >= chunk.start, Prediction.created_at <= chunk.end
            )
            frame = _frame(session, target, list(session.execute(query).all()), rul_cap)
            labelled = frame[frame["label"].notna()] if len(frame) else frame
            if len(labelled) <= chunk.n_labels:
                continue
            y = labelled["label"].to_numpy(dtype=float)
            score = labelled["prediction"].to_numpy(dtype=float)
            pred = labelled["predicted_class"].to_numpy() if target.classifier else score
            perf = []
            for p in chunk.performance:
                value = None
                if len(labelled) >= estimator.min_labels:
                    value = realized_metric(p["metric"], y, pred, score)
                perf.append(p | {"realized": records._finite(value), "n_labels": len(labelled)})
            chunk.performance = perf
            chunk.n_labels = len(labelled)
            chunk.realized = perf[0]["realized"] if perf else None
            updated[chunk.chunk] = chunk
        revised = _revise_reports(session, target, updated) if updated else []
    return len(updated), revised


def _revise_reports(
    session: Session, target: _Target, chunks: dict[int, MonitoringChunk]
) -> list[str]:
    """Queue the next revision of every sent report holding a chunk whose labels arrived.

    Only realized metrics and label counts change; the estimate (or why it is unreliable),
    drift, integrity and alerts stay as first reported. The revision is validated against
    the report schema like the first copy, and its outbox key names the revision.
    """
    sent = session.scalars(
        select(MonitoringReport)
        .where(
            MonitoringReport.baseline == target.baseline,
            MonitoringReport.model_version == target.model_version,
            MonitoringReport.first_chunk <= max(chunks),
            MonitoringReport.last_chunk >= min(chunks),
        )
        .order_by(MonitoringReport.first_chunk)
    ).all()
    out = []
    for record in sent:
        payload = copy.deepcopy(record.payload)
        changed = False
        for c in payload["chunks"]:
            row = chunks.get(int(c["chunk"]))
            now = {p["metric"]: p for p in row.performance} if row is not None else {}
            for m in c["metrics"]:
                p = now.get(m["metric"])
                if p is not None and (p["realized"], p["n_labels"]) != (
                    m.get("realized"),
                    m.get("n_labels"),
                ):
                    m["realized"], m["n_labels"] = p["realized"], p["n_labels"]
                    changed = True
        if not changed:
            continue
        payload["revision"] = record.revision + 1
        report = MetricsReport.model_validate(payload)
        payload = report.model_dump(mode="json")
        key = f"{record.report_id}.r{report.revision}"
        outbox_service.enqueue(
            session=session, stream=METRICS_STREAM, kind=METRICS_KIND, key=key, payload=payload
        )
        record.payload, record.revision = payload, report.revision
        out.append(f"{record.report_id} r{report.revision}")
    return out


def _alarms(session: Session, target: _Target, settings: NodeSettings) -> tuple[int, int]:
    name = target.baseline
    starts = [pd.Timestamp(t) for t in records.alert_starts(session=session, baseline=name)]
    failures = [pd.Timestamp(t) for t in records.failure_times(session=session, baseline=name)]
    horizon = pd.Timedelta(hours=settings.monitor_alarm_horizon_h)
    return tally_failure_alarms(starts, failures, horizon=horizon)


def monitor_target(
    settings: NodeSettings, factory: sessionmaker[Session], target: _Target
) -> RunSummary:
    """Fit (first time) and run the monitor of one baseline's model version."""
    target = replace(target, knobs=monitoring_knobs(settings, target))
    settings = _apply_knobs(settings, target.knobs)
    folder = target.directory(settings.data_path / "monitoring")
    rul_cap = _rul_cap(settings, target)
    fitted_now = False
    if not (folder / "monitor.pkl").exists():
        waiting = _fit_reference(settings, factory, target, folder, rul_cap)
        if waiting is not None:
            return waiting
        fitted_now = True
    monitor = load_monitor(folder / "monitor.pkl")
    summary = RunSummary(
        target.baseline, target.model_name, target.model_version,
        "fitted" if fitted_now else "up_to_date",
    )  # fmt: skip
    key = pseudonym_key(settings)
    batch = max(settings.monitor_batch_rows, 2 * (settings.monitor_chunk_size or 1))
    state_path, staging = folder / "state.pkl", folder / "state.pending.pkl"
    while True:
        shutil.copyfile(state_path, staging)
        full = {"value": False}

        def read_rows(after: str | None, full: dict[str, bool] = full) -> pd.DataFrame:
            since = _aware(after) if after else None
            with factory() as session:
                rows, full["value"] = _read(session, target, since, batch)
                return _frame(session, target, rows, rul_cap)

        published: list[MetricsReport] = []
        with factory() as session:
            alarms = _alarms(session, target, settings)
        outcome = run_monitoring_job(
            read_rows=_with_columns(read_rows, target),
            publish=published.append,
            monitor_path=folder / "monitor.pkl",
            state_path=staging,
            plant_id=settings.plant_id,
            model_name=_report_name(target.model_name),
            model_version=target.model_version,
            pseudonym_key=key,
            min_rows=settings.monitor_min_rows,
            alarms=alarms,
        )
        with managed_session(factory) as session:
            _store(session, target, monitor, outcome.results, published, summary)
        os.replace(staging, state_path)
        if outcome.results:
            summary.status = "monitored"
        if not outcome.results or not full["value"]:
            break
    summary.relabelled, summary.revised = _refresh_realized(factory, target, monitor, rul_cap)
    summary.detail = f"{len(summary.chunks)} chunk(s), {len(summary.raised)} alert(s) raised"
    if summary.relabelled:
        summary.detail += f", realized metrics updated on {summary.relabelled} earlier chunk(s)"
    if summary.revised:
        summary.detail += f", {len(summary.revised)} report(s) re-sent with late labels"
    return summary


def _report_name(name: str) -> str:
    """Fit a manifest's model name to the report schema's lowercase slug."""
    slug = re.sub(r"[^a-z0-9_.-]", "-", name.lower()).lstrip("_.-")[:64]
    return slug or "model"


def _with_columns(read: Any, target: _Target) -> Any:
    """Wrap a reader so an empty read still has the monitor's columns."""

    def wrapped(after: str | None) -> pd.DataFrame:
        frame: pd.DataFrame = read(after)
        if frame.empty:
            cols = ["prediction_id", "timestamp", "unit_id", "cycle", "prediction", "latency_ms",
                    *target.features, "label"]  # fmt: skip
            if target.classifier:
                cols.append("predicted_class")
            frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
            frame["timestamp"] = pd.Series(dtype="datetime64[ns]")
        return frame

    return wrapped


def run_node_monitoring(
    settings: NodeSettings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    baseline: str | None = None,
) -> list[RunSummary]:
    """Run monitoring once over every monitored model version of the node.

    Parameters
    ----------
    settings
        The node's settings (database, data directory, monitoring knobs).
    session_factory
        Sessions on the node database; a fresh engine on ``settings.db_url`` by default.
    baseline
        Only this baseline.

    Returns
    -------
    list[RunSummary]
        One summary per baseline and model version.
    """
    from federation.offline import disable_telemetry

    disable_telemetry()
    engine = None
    if session_factory is None:
        engine = make_engine(settings.db_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        session_factory = make_session_factory(engine)
    try:
        with session_factory() as session:
            targets = _targets(session)
        out = []
        for target in targets:
            if baseline is not None and target.baseline != baseline:
                continue
            if not target.features:
                detail = "no monitored features for this baseline"
                out.append(
                    RunSummary(target.baseline, target.model_name, target.model_version,
                               "unsupported", detail)
                )  # fmt: skip
                continue
            try:
                out.append(monitor_target(settings, session_factory, target))
            except Exception as exc:  # one broken model version must not stop the others
                log.exception("monitoring %s %s failed", target.baseline, target.model_version)
                out.append(
                    RunSummary(target.baseline, target.model_name, target.model_version,
                               "failed", f"{type(exc).__name__}: {exc}"[:500])
                )  # fmt: skip
        return out
    finally:
        if engine is not None:
            engine.dispose()


# -- the scheduled job -----------------------------------------------------------------------


def settings_env(settings: NodeSettings) -> dict[str, str]:
    """Return the environment that rebuilds these settings in a child process."""
    env: dict[str, str] = {}
    recipe_owned = set(_SETTING_OF_KNOB.values()) - settings.model_fields_set
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None or name in recipe_owned:  # left to the model's recipe
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"MILLWRIGHT_NODE_{name.upper()}"] = str(value)
    return env


def run_in_subprocess(settings: NodeSettings) -> dict[str, Any]:
    """Run :func:`run_node_monitoring` in a child process (the scheduler's job).

    The serving process never imports nannyml: the child loads it, does the work, and exits.

    Returns
    -------
    dict
        ``{"returncode", "summaries"}`` (summaries as the child printed them).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWRIGHT_NODE_")}
    env.update(settings_env(settings))
    proc = subprocess.run(
        [sys.executable, "-m", "plant_node.monitoring", "--once"],
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
