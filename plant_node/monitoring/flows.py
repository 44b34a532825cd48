"""The node's monitoring flow: prediction log -> monitor -> chunk rows, alerts, hub report.

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

The node's scheduler runs this in a child process (:func:`.jobs.run_in_subprocess`):
nannyml, LightGBM and the frames stay out of the serving process. The log is read through
the serving domain's read functions (:mod:`plant_node.serving.records`), the frame built by
:mod:`.logframe`, the monitor fitted and run by :mod:`.engine`, and the results stored by
:mod:`.service`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from baselines.export.runtime import METADATA_FILE, RECIPE_FILE
from baselines.recipes.schema import MonitoringKnobs
from federation.errors import Conflict
from federation.schemas.metrics_report import MetricsReport
from plant_node.config import NodeSettings
from plant_node.db import make_engine, make_session_factory, managed_session
from plant_node.monitoring import service
from plant_node.monitoring.alerts import EventType
from plant_node.monitoring.calibration import ReferenceTooSmall
from plant_node.monitoring.chunking import LogColumns
from plant_node.monitoring.engine import (
    ChunkResult,
    MonitorConfig,
    MonitorState,
    fit_monitor,
    load_monitor,
    save_monitor,
    save_state,
)
from plant_node.monitoring.jobs import run_monitoring_job
from plant_node.monitoring.logframe import log_frame, with_columns
from plant_node.monitoring.models import MonitoringChunk, MonitoringReport
from plant_node.monitoring.outcomes import tally_failure_alarms
from plant_node.outbox import service as outbox_service
from plant_node.serving import records as serving_records
from plant_node.serving.records import LoggedVersion

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

    @property
    def version(self) -> LoggedVersion:
        return LoggedVersion(
            self.baseline, self.model_name, self.model_version, self.classifier, self.windowed
        )

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


def _recipe_intact(recipe_path: Path) -> bool:
    """Return whether the recipe matches the digest the model cache took at install (if any)."""
    record = recipe_path.parent / ".integrity.json"  # plant_node.serving.runtime.INTEGRITY_FILE
    if not record.is_file():
        return True  # not a cached version (an export directory read directly)
    try:
        expected = json.loads(record.read_text()).get(RECIPE_FILE)
    except (OSError, ValueError, AttributeError):
        return False
    return bool(expected == hashlib.sha256(recipe_path.read_bytes()).hexdigest())


def monitoring_knobs(settings: NodeSettings, target: _Target) -> MonitoringKnobs:
    """Return the monitoring section of the version's recipe, overridden by the node's settings.

    The recipe travels inside the exported model directory; a version without one (or with a
    section this node cannot read) is monitored with the defaults, and says so in the log.
    """
    knobs = MonitoringKnobs()
    found = _bundle(settings, target)
    recipe_path = found[0] / RECIPE_FILE if found else None
    if recipe_path is not None and recipe_path.exists() and not _recipe_intact(recipe_path):
        log.warning("%s: recipe.json changed since the model was installed; using defaults",
                    target.model_version)  # fmt: skip
        recipe_path = None
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


def _targets(session: Session) -> list[_Target]:
    out = []
    for v in serving_records.logged_versions(session=session):
        features = _features(v.baseline) or ()
        out.append(_Target(v.baseline, v.model_name, v.model_version, v.classifier, features,
                           v.windowed))  # fmt: skip
    return out


def _frame(session: Session, target: _Target, rows: list[Any], rul_cap: float) -> pd.DataFrame:
    return log_frame(
        session,
        baseline=target.baseline,
        features=target.features,
        classifier=target.classifier,
        rows=rows,
        rul_cap=rul_cap,
    )


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
        rows = serving_records.first_log_rows(session=session, version=target.version, n=n)
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
    try:
        monitor = fit_monitor(frame, columns=target.columns, config=_config(settings, target))
    except ReferenceTooSmall as exc:
        return RunSummary(
            target.baseline, target.model_name, target.model_version,
            "reference_too_small", str(exc),
        )  # fmt: skip
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
            "estimated": service._finite(p.estimated),
            "lower": service._finite(p.lower),
            "upper": service._finite(p.upper),
            "realized": service._finite(p.realized),
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
        "multivariate_drift": service._finite(r.drift.multivariate),
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
        service.upsert_chunk(session=session, values=values)
        summary.chunks.append(
            values | {"start": values["start"].isoformat(), "end": values["end"].isoformat()}
        )
        for e in r.events:
            a = e.alert
            if e.type is EventType.RAISED:
                service.raise_alert(
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
                        "sigmas": service._finite(a.sigmas),
                        "top_features": [[n, float(v)] for n, v in a.top_features],
                        "description": a.describe(),
                    },
                )
                summary.raised.append(
                    {"key": a.key, "kind": a.kind.value, "description": a.describe()}
                )
            else:
                service.clear_alert(
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
            rows = serving_records.log_rows_between(
                session=session, version=target.version, start=chunk.start, end=chunk.end
            )
            frame = _frame(session, target, rows, rul_cap)
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
                perf.append(p | {"realized": service._finite(value), "n_labels": len(labelled)})
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
    starts = [pd.Timestamp(t) for t in service.alert_starts(session=session, baseline=name)]
    failures = [pd.Timestamp(t) for t in service.failure_times(session=session, baseline=name)]
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
                rows, full["value"] = serving_records.log_batch(
                    session=session, version=target.version, after=since, limit=batch
                )
                return _frame(session, target, rows, rul_cap)

        published: list[MetricsReport] = []
        with factory() as session:
            alarms = _alarms(session, target, settings)
        outcome = run_monitoring_job(
            read_rows=with_columns(
                read_rows, features=target.features, classifier=target.classifier
            ),
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
