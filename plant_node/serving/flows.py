"""Serving flows: validate → features → OpenVINO → answer, then log and explain; alerts to outbox.

The request path does only what the answer needs. The prediction log rows go to a single
writer thread (:mod:`plant_node.serving.logwriter`), and the Shapley explanations to an
explainer thread that scores the coalitions of every pending prediction in one batched
OpenVINO call and hands the attributions to the same writer.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from federation.errors import (
    Conflict,
    ContractViolation,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from plant_node.config import NodeSettings, RolloutMode
from plant_node.db import managed_session, utcnow
from plant_node.metrics import NodeMetrics
from plant_node.serving import service as serving_service
from plant_node.serving.cache import ModelCache, dir_name
from plant_node.serving.explain import ShapleyPlan, plan_shapley
from plant_node.serving.logwriter import PredictionLog, lower_thread_priority
from plant_node.serving.pipelines import Pipeline, blocking_violations
from plant_node.serving.rollout import RolloutGuard, RolloutLimits
from plant_node.serving.runtime import (
    LoadedModel,
    ModelRuntime,
    RuntimeEvent,
    Scored,
    default_compile_config,
)
from plant_node.serving.schemas import BATCH_MAX_ROWS, BatchPredictRequest, PredictRequest
from plant_node.serving.sync import ModelSource, sync_champion

log = logging.getLogger("millwright.node.serving")
ALERT_KINDS = frozenset({"load_failed", "inference_failed", "fallback_rule"})
# Rows per inference call while explaining: small enough that a live request waits at most
# one chunk for the core (~1 ms), large enough to keep OpenVINO efficient.
EXPLAIN_CHUNK = 256
# Bounds of the post-response queues, in requests. They bound memory under overload (a queued
# C-MAPSS request holds ~50 kB of records): past LOG_BACKLOG requests write their own log rows
# (backpressure, nothing lost); past EXPLAIN_BACKLOG (25 s of a 20/s line) predictions are
# logged with an "unavailable" explanation saying the node was overloaded.
LOG_BACKLOG = 256
EXPLAIN_BACKLOG = 512
# ... and past EXPLAIN_BACKLOG_ROWS predictions waiting (a batch request is one entry of the
# queue but many rows: without this a stream of 256-row batches held ~400 MB of backlog).
# One batch is always taken when nothing waits, whatever its size.
EXPLAIN_BACKLOG_ROWS = 4096
# Rows the explainer takes per round at most (bounds the coalition inputs it builds at once).
EXPLAIN_BATCH_ROWS = 1024
EXPLAIN_OVERLOADED: dict[str, Any] = {
    "method": "none",
    "error": "explanation backlog full: the node was overloaded when this prediction was made",
}
# Pending predictions the explainer takes per round (their coalitions share inference calls).
EXPLAIN_BATCH = 32
# The explainer is best-effort behind live traffic: at a low OS priority (Linux applies
# niceness per thread) it runs on the CPU the requests leave. Measured on one core: a live
# inference's p99 goes from 6.2 ms to 0.25 ms while the explainer scores coalitions beside it.
# Not 19: that starves it behind any other process on the core (1 s explanation delays
# measured on a shared machine); 10 still leaves it ~10% of a contested core.
EXPLAINER_NICENESS = 10
# A thread wanting the GIL waits up to this long for the holder (CPython's default is 5 ms).
# With the log writer and the explainer running Python beside the event loop, 0.2 ms bounds
# what a live request can lose to them; the node process serves only, so the setting is ours.
GIL_SWITCH_INTERVAL_S = 0.0002
# Longest an explanation chunk defers to live requests before it runs anyway (no starvation).
EXPLAIN_MAX_DEFER_S = 0.05


@dataclass
class PendingExplanation:
    """Work for the post-response explainer: which rows, with which model and items."""

    baseline: str
    model: LoadedModel
    prediction_ids: list[str]
    items: list[Any]
    # time.monotonic() when the predictions were made: the explanation deadline runs from it.
    created: float = field(default_factory=time.monotonic)


class ServingFlows:
    """Everything the serving routes do, for every configured baseline.

    Parameters
    ----------
    settings
        Node settings (batch limit, explanation mode, alert cooldown, thread count).
    session_factory
        Opens the flow's own sessions.
    metrics
        The app's metrics.
    pipelines
        Baseline name → pipeline.
    cache
        The local model cache.
    on_alert
        Called after an alert was queued (the app wakes the outbox sender).
    """

    def __init__(
        self,
        settings: NodeSettings,
        session_factory: sessionmaker[Session],
        metrics: NodeMetrics,
        pipelines: dict[str, Pipeline],
        cache: ModelCache,
        on_alert: Callable[[], None] | None = None,
    ) -> None:
        import openvino as ov

        self.settings = settings
        self._factory = session_factory
        self.metrics = metrics
        self.pipelines = pipelines
        self.cache = cache
        self._on_alert = on_alert
        self._alert_last: dict[tuple[str, str, str | None], float] = {}
        self._alert_lock = threading.Lock()
        self._active = 0
        self._idle = threading.Condition()
        self._explain_queue: queue.Queue[PendingExplanation | None] = queue.Queue(
            maxsize=EXPLAIN_BACKLOG
        )
        self.log = PredictionLog(session_factory, max_pending=LOG_BACKLOG)
        self._switch_interval: float | None = None
        self._overloaded = 0
        self._explain_rows = 0  # predictions queued for the explainer (guarded by _rows_lock)
        self._rows_lock = threading.Lock()
        self._overload_warned_at = -1e9
        self._explainer: threading.Thread | None = None
        self._challengers: dict[str, tuple[LoadedModel, RolloutGuard]] = {}
        #: Who staged each baseline's challenger (the ``actor`` of :meth:`start_rollout`).
        self._staged_by: dict[str, str] = {}
        self._rollout_lock = threading.Lock()
        self._rng = np.random.default_rng()
        self._explain_rng = np.random.default_rng()
        core = ov.Core()
        config = default_compile_config(settings.inference_threads, settings.performance_hint)
        self.runtimes: dict[str, ModelRuntime] = {
            name: ModelRuntime(
                name,
                featurizer_factory=pipeline.featurizer,
                fallback=pipeline.fallback_rule(),
                compile_config=config,
                on_event=self._handle_event,
                core=core,
                precision=settings.serving_precision,
            )
            for name, pipeline in pipelines.items()
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the log writer, the explanation worker, and warm the fallback rules."""
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, GIL_SWITCH_INTERVAL_S))
        self.log.start()
        for runtime in self.runtimes.values():
            warm = getattr(runtime.fallback, "warm", None)
            if callable(warm) and self.settings.warm_fallbacks:
                threading.Thread(target=warm, name="fallback-warmup", daemon=True).start()
        if self._explainer is None:
            self._explainer = threading.Thread(
                target=self._explain_loop, name="explainer", daemon=True
            )
            self._explainer.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Explain what is queued, then write every pending log row and stop both threads.

        Called by the app's lifespan on a clean shutdown: nothing handed to the log is lost.
        """
        if self._explainer is not None:
            self._explain_queue.put(None)
            self._explainer.join(timeout_s)
            self._explainer = None
        self.log.stop(timeout_s)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def wait_explanations(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued explanation is stored (tests, shutdown); True if drained."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._explain_queue.unfinished_tasks == 0:
                return self.log.flush(max(0.0, deadline - time.monotonic()))
            time.sleep(0.005)
        return False

    def flush_log(self, timeout_s: float = 10.0) -> bool:
        """Block until every prediction answered so far is in the log (read-your-writes)."""
        return self.log.flush(timeout_s)

    def _explain_loop(self) -> None:
        lower_thread_priority(EXPLAINER_NICENESS)
        while True:
            batch = [self._explain_queue.get()]
            rows = len(batch[0].items) if batch[0] is not None else 0
            while (
                batch[-1] is not None and len(batch) < EXPLAIN_BATCH and rows < EXPLAIN_BATCH_ROWS
            ):
                try:
                    batch.append(self._explain_queue.get_nowait())
                except queue.Empty:
                    break
                rows += len(batch[-1].items) if batch[-1] is not None else 0
            work = [p for p in batch if p is not None]
            try:
                self.explain_batch(work)
            except Exception:
                log.exception("explanation worker failed")
            finally:
                with self._rows_lock:
                    self._explain_rows -= rows
                for _ in batch:
                    self._explain_queue.task_done()
            if batch[-1] is None:
                return

    def _enter(self) -> None:
        with self._idle:
            self._active += 1

    def _leave(self) -> None:
        with self._idle:
            self._active -= 1
            if self._active == 0:
                self._idle.notify_all()

    def _defer_to_requests(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=EXPLAIN_MAX_DEFER_S)

    # -- models -------------------------------------------------------------------------------

    def sync_models(self, source: ModelSource | None = None) -> dict[str, dict[str, Any]]:
        """Load every baseline's champion from the hub, or from the cache when it is away."""
        out: dict[str, dict[str, Any]] = {}
        for name, runtime in self.runtimes.items():
            origin, versions = sync_champion(runtime, self.cache, source)
            out[name] = {"source": origin, "versions": versions}
            self._publish_model_info(name)
        return out

    def _publish_model_info(self, baseline: str) -> None:
        runtime = self.runtimes[baseline]
        for role, model in (("current", runtime.current), ("previous", runtime.previous)):
            if model is not None:
                self.metrics.model_info.labels(
                    baseline, role, model.manifest.name, model.version
                ).set(1)

    def readiness(self) -> dict[str, Any]:
        """Per-baseline readiness; ready when every baseline can answer somehow."""
        per = {name: rt.readiness() for name, rt in self.runtimes.items()}
        return {"ok": all(v["ok"] for v in per.values()), "baselines": per}

    # -- staged rollout -----------------------------------------------------------------------

    def _limits(self) -> RolloutLimits:
        st = self.settings
        return RolloutLimits(
            min_samples=st.rollback_min_samples,
            max_error_rate=st.rollback_max_error_rate,
            max_p99_ms=st.rollback_max_p99_ms,
            max_disagreement=st.rollback_max_disagreement,
        )

    def start_rollout(
        self,
        baseline: str,
        version: str,
        mode: RolloutMode | None = None,
        *,
        actor: str | None = None,
        keep_others: bool = False,
    ) -> dict[str, Any]:
        """Put a cached version in front of traffic as challenger (shadow, canary) or promote it.

        With ``keep_others`` a challenger somebody else staged is never replaced: checked
        under the rollout lock, so an engineer's stage that lands while the hub follower
        prepares its own wins, and the follower is told (:class:`Conflict`).

        The change is queued for the hub as a ``rollout.started`` or ``rollout.promoted``
        event; ``actor`` (the engineer's key, e.g. ``engineer:alice``, or ``hub`` for the hub
        follower) is recorded in it and shown as the challenger's ``staged_by``. Staging the
        version that is already the challenger in another mode (shadow -> canary) keeps its
        compiled model and continues its record: the samples count on across the stages.

        Raises
        ------
        NotFound
            If the version is not in the node's cache.
        InvalidInput
            If it does not verify or compile.
        Conflict
            With ``keep_others``, when another actor's challenger holds the slot.
        """
        self._pipeline(baseline)
        mode = mode or self.settings.rollout_mode
        cached = {p.name: p for p in self.cache.versions(baseline)}
        path = cached.get(dir_name(version))
        if path is None:
            raise NotFound(f"Version {version!r} of {baseline} is not in this node's cache.")
        runtime = self.runtimes[baseline]
        staged = self._challengers.get(baseline)
        same = staged is not None and staged[0].version == dir_name(version)
        loaded = staged[0] if same and staged is not None else runtime.load(path)
        with self._rollout_lock:
            holder = self._staged_by.get(baseline, "node")
            if keep_others and baseline in self._challengers and holder != (actor or "node"):
                raise Conflict(
                    f"the challenger of {baseline} was staged by {holder}; it is kept"
                )
            previous = self._challengers.pop(baseline, None)
            self._staged_by.pop(baseline, None)
            if mode == RolloutMode.FULL:
                runtime.activate(loaded)
                self.cache.set_champion(baseline, version)
                self._publish_model_info(baseline)
            else:
                guard = RolloutGuard(loaded.version, mode, self._limits())
                if previous is not None and previous[0].version == loaded.version:
                    guard.carry(previous[1])
                self._challengers[baseline] = (loaded, guard)
                self._staged_by[baseline] = actor or "node"
        kind = "promoted" if mode == RolloutMode.FULL else "started"
        self._rollout_event(
            kind, baseline, loaded.version, mode, None, actor=actor, model=loaded.manifest.name
        )
        return self.rollout_status()

    def stop_rollout(
        self, baseline: str, reason: str, *, actor: str | None = None, kind: str = "rolled_back"
    ) -> None:
        """Withdraw the challenger of ``baseline`` and record why (and who, when a person).

        ``kind`` names the event: ``rolled_back`` (the default: a guard's breach, an
        operator's withdrawal; the hub counts it against a rollout's wave) or ``withdrawn``
        (the hub itself took the alias away, so there is nothing to count against).
        """
        with self._rollout_lock:
            entry = self._challengers.pop(baseline, None)
            self._staged_by.pop(baseline, None)
        if entry is None:
            return
        model, guard = entry
        status = guard.status()
        self._rollout_event(
            kind,
            baseline,
            model.version,
            guard.mode,
            reason,
            stats={
                "samples": status.rows,
                "fallbacks": status.failed_rows,
                "error_rate": status.error_rate,
                "p99_ms": status.p99_ms,
                "disagreement": status.disagreement,
            },
            actor=actor,
            model=model.manifest.name,
        )
        if kind == "rolled_back":
            self.metrics.fallbacks.labels(baseline, "rollback").inc()

    def rollout_status(self) -> dict[str, Any]:
        """Return each baseline's champion and challenger with the challenger's record."""
        out: dict[str, Any] = {}
        for name, runtime in self.runtimes.items():
            entry = self._challengers.get(name)
            challenger = None
            if entry is not None:
                st = entry[1].status()
                challenger = {
                    "version": st.version,
                    "mode": st.mode.value,
                    "staged_by": self._staged_by.get(name, "node"),
                    "samples": st.samples,
                    "error_rate": st.error_rate,
                    "p99_ms": st.p99_ms,
                    "disagreement": st.disagreement,
                    # cumulative since staged (samples and error_rate are the guard's window)
                    "rows": st.rows,
                    "failed_rows": st.failed_rows,
                    "offered_rows": st.offered_rows,
                    "refused_rows": st.refused_rows,
                }
            current = runtime.current
            out[name] = {
                "champion": current.version if current else None,
                # Which IR answers: INT8 unless the export has none or its INT8 failed parity.
                "precision": current.manifest.precision if current else None,
                "challenger": challenger,
            }
        return out

    def _rollout_event(
        self,
        kind: str,
        baseline: str,
        version: str,
        mode: RolloutMode,
        reason: str | None,
        stats: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
        model: str | None = None,
    ) -> None:
        log.warning(
            "rollout %s: %s %s (%s) %s by %s",
            kind, baseline, version, mode.value, reason or "", actor or "the node",
        )  # fmt: skip
        try:
            with managed_session(self._factory) as session:
                serving_service.enqueue_rollout_event(
                    session=session,
                    kind=kind,
                    payload={
                        "plant_id": self.settings.plant_id,
                        "baseline": baseline,
                        # the registry's model name (what the hub's rollout evidence matches)
                        "model": model or baseline,
                        "model_version": version,
                        "mode": mode.value,
                        "reason": reason,
                        "stats": stats or {},
                        # "node" when the node decided (a guard's automatic rollback).
                        "actor": actor or "node",
                        "at": utcnow().isoformat(),
                    },
                )
        except Exception:
            log.exception("could not record rollout event %s", kind)
            return
        if self._on_alert is not None:
            self._on_alert()

    def _apply_rollout(
        self, pipeline: Pipeline, items: list[Any], champion: Scored
    ) -> tuple[Scored, Scored | None]:
        """Score the challenger if one is staged; return (answer, shadow-only result)."""
        entry = self._challengers.get(pipeline.baseline)
        if entry is None:
            return champion, None
        model, guard = entry
        guard.offer(len(items))
        canary = guard.mode == RolloutMode.CANARY
        if canary and self._rng.random() >= self.settings.canary_fraction:
            return champion, None
        started = time.perf_counter()
        try:
            features, scores = model.predict_rows(items)
        except Exception as exc:
            log.warning("challenger %s %s failed: %s", pipeline.baseline, model.version, exc)
            guard.record_error(len(items))
            self._check_guard(pipeline.baseline, guard)
            return champion, None
        reference = champion.scores if champion.served_by == "current" else None
        guard.record(
            (time.perf_counter() - started) * 1000, scores, reference, pipeline.task, len(items)
        )
        result = Scored(scores, features, model.manifest.name, model.version, "current", model)
        self._check_guard(pipeline.baseline, guard)
        return (result, None) if canary else (champion, result)

    def _check_guard(self, baseline: str, guard: RolloutGuard) -> None:
        breach = guard.status().breach
        if breach is not None:
            self.stop_rollout(baseline, breach)

    # -- alerts -------------------------------------------------------------------------------

    def _handle_event(self, event: RuntimeEvent) -> None:
        if event.kind == "inference_failed":
            self.metrics.fallbacks.labels(event.baseline, "inference_failed").inc()
        elif event.kind == "fallback_rule":
            self.metrics.fallbacks.labels(event.baseline, "rule").inc()
        elif event.kind == "load_failed":
            self.metrics.fallbacks.labels(event.baseline, "load_failed").inc()
        if event.kind not in ALERT_KINDS:
            return
        key = (event.baseline, event.kind, event.version)
        now = time.monotonic()
        with self._alert_lock:  # one alert per cause per cooldown, not one per request
            last = self._alert_last.get(key)
            if last is not None and now - last < self.settings.alert_cooldown_s:
                return
            self._alert_last[key] = now
        try:
            with managed_session(self._factory) as session:
                serving_service.enqueue_alert(
                    session=session,
                    kind=event.kind,
                    payload={
                        "plant_id": self.settings.plant_id,
                        "baseline": event.baseline,
                        "model_version": event.version,
                        "detail": event.detail[:1000],
                        "raised_at": utcnow().isoformat(),
                    },
                )
        except Exception:  # an alert that cannot be stored must not fail the request
            log.exception("could not queue alert %s", key)
            return
        if self._on_alert is not None:
            self._on_alert()

    # -- predict ------------------------------------------------------------------------------

    def _pipeline(self, baseline: str) -> Pipeline:
        pipeline = self.pipelines.get(baseline)
        if pipeline is None:
            raise InvalidInput(
                f"Unknown baseline {baseline!r}; this node serves {sorted(self.pipelines)}.",
                errors=[{"field": "baseline", "message": "unknown baseline"}],
            )
        return pipeline

    def predict(
        self, request: PredictRequest
    ) -> tuple[dict[str, Any], PendingExplanation | None, Future[None]]:
        """Validate, score and log one request: response, deferred work, log-commit future.

        The response is a JSON-ready dict of the ``PredictResponse`` shape (built directly:
        validating the model the service itself built would only cost time). Its log rows are
        handed to the log writer (group commit); the caller answers only once the returned
        future has resolved, so every prediction id given out is durable.

        With the explanation worker running, deferred work is queued to it and None is
        returned in its place; otherwise the caller may run :meth:`explain_pending`.

        Raises
        ------
        ContractViolation
            With one entry per violation; the batch is quarantined first.
        PayloadTooLarge
            If the batch exceeds ``max_batch_size`` records.
        """
        self._enter()
        try:
            return self._predict(
                request.baseline, request.all_records(), self.settings.max_batch_size
            )
        finally:
            self._leave()

    def predict_batch(
        self, request: BatchPredictRequest
    ) -> tuple[dict[str, Any], PendingExplanation | None, Future[None]]:
        """Score up to :data:`BATCH_MAX_ROWS` records in one model call, all or nothing.

        Same answer, log and explanations as :meth:`predict` (every row is logged in the one
        group commit of the batch, and every row is explained); a bad row rejects the whole
        batch, and the 422 names the positions of the bad rows (``row_indices``).

        Raises
        ------
        ContractViolation
            Naming the bad rows; the batch is quarantined first.
        PayloadTooLarge
            Above :data:`BATCH_MAX_ROWS` rows.
        """
        self._enter()
        try:
            return self._predict(request.baseline, request.records, BATCH_MAX_ROWS)
        finally:
            self._leave()

    def _predict(
        self, baseline: str, records: list[dict[str, Any]], max_rows: int
    ) -> tuple[dict[str, Any], PendingExplanation | None, Future[None]]:
        started = time.perf_counter()
        pipeline = self._pipeline(baseline)
        if len(records) > max_rows:
            raise PayloadTooLarge(
                f"{len(records)} records exceed the limit of {max_rows}; split the batch."
            )
        batch_id = uuid.uuid4().hex
        report = pipeline.validate(records)
        violations = blocking_violations(report)
        if violations:
            self._quarantine(batch_id, pipeline.baseline, records, report.to_dict()["violations"])
            bad = sorted({i for v in violations for i in v["row_indices"]})
            shown = ", ".join(map(str, bad[:20])) + (", ..." if len(bad) > 20 else "")
            rows_text = f" in rows [{shown}]" if bad else ""
            raise ContractViolation(
                f"{len(violations)} data-contract violation(s) of {report.contract} "
                f"{report.version}{rows_text}; nothing was scored, the batch was quarantined "
                f"as {batch_id}.",
                errors=violations,
            )
        items = pipeline.items(records)
        champion = self.runtimes[pipeline.baseline].predict(items)
        scored, shadow = self._apply_rollout(pipeline, items, champion)
        role = "champion" if scored is champion else "challenger"
        explain_inline = self.settings.explain == "inline" and scored.model is not None
        attributions: list[dict[str, Any] | None] = [None] * len(items)
        if explain_inline and scored.model is not None:
            attributions = self.explain_items(pipeline, scored.model, items, defer=False)
        latency_ms = (time.perf_counter() - started) * 1000
        deferred = self.settings.explain == "deferred" and scored.model is not None
        # The request thread is the queue's only producer: full now means full at put time.
        if deferred and self._explainer is not None and self._explain_backlog_full(len(items)):
            # Never "pending" forever: the rows say why they have no explanation.
            attributions = [EXPLAIN_OVERLOADED] * len(items)
            self._note_overload(pipeline.baseline, len(items))
            deferred = False
        rows = self._rows(pipeline, batch_id, items, scored, attributions, latency_ms, role)
        shadow_rows = []
        if shadow is not None:  # scored and logged, never returned
            none: list[dict[str, Any] | None] = [None] * len(items)
            shadow_rows = self._rows(pipeline, batch_id, items, shadow, none, latency_ms, "shadow")
        durable = self.log.add(rows + shadow_rows)  # before the explanation: its update follows
        pending = None
        overloaded = False
        if deferred and scored.model is not None:
            pending = PendingExplanation(
                pipeline.baseline, scored.model, [r["id"] for r in rows], items, time.monotonic()
            )
            if self._explainer is not None:
                try:
                    with self._rows_lock:
                        self._explain_queue.put_nowait(pending)
                        self._explain_rows += len(items)
                except queue.Full:  # another thread filled it since the check above
                    self._note_overload(pipeline.baseline, len(rows))
                    self.log.set_attributions([(r["id"], EXPLAIN_OVERLOADED) for r in rows])
                    overloaded = True
                pending = None
        response = {
            "batch_id": batch_id,
            "baseline": pipeline.baseline,
            "model_version": scored.version,
            "fallback": scored.fallback,
            "predictions": [_read(r, "unavailable" if overloaded else None) for r in rows],
        }
        elapsed = time.perf_counter() - started
        self.metrics.predict_latency.labels(pipeline.baseline).observe(elapsed)
        self.metrics.predictions.labels(pipeline.baseline, scored.served_by).inc(len(rows))
        return response, pending, durable

    def _explain_backlog_full(self, n_rows: int) -> bool:
        """Return True when ``n_rows`` more predictions would overflow the explanation backlog."""
        with self._rows_lock:
            queued = self._explain_rows
        if self._explain_queue.full():
            return True
        return queued > 0 and queued + n_rows > EXPLAIN_BACKLOG_ROWS

    def _note_overload(self, baseline: str, n: int) -> None:
        """Count unexplained predictions as late; warn at most every 10 s (not per request)."""
        self.metrics.explanations_late.labels(baseline).inc(n)
        self._overloaded += n
        now = time.monotonic()
        if now - self._overload_warned_at >= 10.0:
            log.warning(
                "explanation backlog full: %d predictions logged without explanation since the "
                "last warning (the node is overloaded)",
                self._overloaded,
            )
            self._overloaded, self._overload_warned_at = 0, now

    def _quarantine(
        self, batch_id: str, baseline: str, records: list[dict[str, Any]], violations: list[Any]
    ) -> None:
        with managed_session(self._factory) as session:
            serving_service.quarantine_batch(
                session=session,
                batch_id=batch_id,
                baseline=baseline,
                records=records,
                violations=violations,
                excerpt_bytes=self.settings.quarantine_excerpt_bytes,
            )
        self.metrics.quarantined.labels(baseline).inc()
        self.metrics.violations.labels(baseline).inc(len(violations))
        entry = self._challengers.get(baseline)
        if entry is not None:  # the line's contract record while the challenger is staged
            entry[1].refuse(len(records))

    def _rows(
        self,
        pipeline: Pipeline,
        batch_id: str,
        items: Sequence[Any],
        scored: Scored,
        attributions: list[dict[str, Any] | None],
        latency_ms: float,
        role: str = "champion",
    ) -> list[dict[str, Any]]:
        """Build the log rows (``predictions`` columns) of one scored batch."""
        threshold = 0.5
        if scored.model is not None:
            raw = scored.model.manifest.metadata.get("threshold")
            if isinstance(raw, int | float) and raw == raw:  # None and NaN mean "use 0.5"
                threshold = float(raw)
        if self.settings.explain == "off":
            status = "off"
        elif scored.model is None:
            status = "unavailable"
        else:
            status = "pending"
        now = utcnow()
        scores = np.asarray(scored.scores, dtype=np.float64).reshape(len(items), -1)[:, 0]
        features = None if scored.features is None else np.asarray(scored.features).round(6)
        rows = []
        for i, item in enumerate(items):
            score = float(scores[i])
            outputs: dict[str, Any] = {"score": score, "explanation": status}
            if pipeline.task == "classification":
                outputs["label"] = int(score >= threshold)
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "batch_id": batch_id,
                    "baseline": pipeline.baseline,
                    "model_name": scored.name,
                    "model_version": scored.version,
                    "served_by": scored.served_by,
                    "fallback": scored.fallback,
                    "role": role,
                    "inputs": pipeline.item_inputs(item),
                    "features": None if features is None else features[i].tolist(),
                    "outputs": outputs,
                    "attributions": attributions[i],
                    "latency_ms": latency_ms,
                    "explained_at": now if attributions[i] is not None else None,
                    "created_at": now,
                }
            )
        return rows

    # -- explain ------------------------------------------------------------------------------

    def _evaluate(
        self, f: Callable[[np.ndarray], Any], inputs: np.ndarray, *, defer: bool
    ) -> np.ndarray:
        """Score ``inputs`` in chunks, letting live requests go first between chunks."""
        parts = []
        for i in range(0, len(inputs), EXPLAIN_CHUNK):
            if defer:
                self._defer_to_requests()
            out = np.asarray(f(inputs[i : i + EXPLAIN_CHUNK]), dtype=np.float64)
            parts.append(out.reshape(out.shape[0], -1)[:, 0])
        values = np.concatenate(parts)
        if values.shape[0] != inputs.shape[0]:
            raise ValueError(f"f returned {values.shape[0]} values for {inputs.shape[0]} inputs")
        return values

    def explain_items(
        self, pipeline: Pipeline, model: LoadedModel, items: Sequence[Any], *, defer: bool = True
    ) -> list[dict[str, Any] | None]:
        """Attributions of ``items`` scored by ``model``, their coalitions batched together.

        Every item's Shapley plan is built first; the concatenated coalition inputs are scored
        in a few large OpenVINO calls; each plan is finished on its slice. If the batch fails,
        the items are explained one by one so one bad item cannot cost the others theirs.
        """
        if not items:
            return []
        started = time.perf_counter()
        try:
            setups = [pipeline.explain_setup(model, item) for item in items]
            plans: list[ShapleyPlan] = [
                plan_shapley(
                    s.x,
                    s.baseline,
                    max_exact_signals=self.settings.explain_exact_max_signals,
                    n_permutations=self.settings.explain_permutations,
                    rng=self._explain_rng,
                )
                for s in setups
            ]
            # Every setup's value function depends only on the model: the first scores all.
            values = self._evaluate(
                setups[0].f, np.concatenate([p.inputs for p in plans]), defer=defer
            )
        except Exception as exc:
            if len(items) == 1:
                return [self._explain_failed(pipeline, model, exc)]
            return [self.explain_items(pipeline, model, [it], defer=defer)[0] for it in items]
        out: list[dict[str, Any] | None] = []
        offset = 0
        per_item = (time.perf_counter() - started) / len(items)
        for setup, plan in zip(setups, plans, strict=True):
            k = len(plan.inputs)
            try:
                attr = plan.finish(values[offset : offset + k])
            except Exception as exc:
                out.append(self._explain_failed(pipeline, model, exc))
            else:
                doc = attr.to_dict(setup.names)
                doc["model_version"] = model.version
                out.append(doc)
                # Amortized compute time per explanation (the batch's time shared by its items).
                self.metrics.explain_latency.labels(pipeline.baseline, attr.method).observe(
                    per_item
                )
            offset += k
        return out

    def _explain_failed(
        self, pipeline: Pipeline, model: LoadedModel, exc: Exception
    ) -> dict[str, Any]:
        # An explanation must never cost a prediction: the row records why it has none.
        log.warning("explanation failed for %s %s: %s", pipeline.baseline, model.version, exc)
        return {"method": "none", "error": f"{type(exc).__name__}: {exc}"[:500]}

    def explain_batch(self, pendings: Sequence[PendingExplanation]) -> None:
        """Explain pending predictions, one batched pass per model, and hand them to the log."""
        groups: dict[int, list[PendingExplanation]] = {}
        for p in pendings:
            groups.setdefault(id(p.model), []).append(p)
        for group in groups.values():
            first = group[0]
            ids = [pid for p in group for pid in p.prediction_ids]
            items = [item for p in group for item in p.items]
            results = self.explain_items(self.pipelines[first.baseline], first.model, items)
            now = time.monotonic()
            late = sum(
                len(p.prediction_ids)
                for p in group
                if now - p.created > self.settings.explain_deadline_s
            )
            if late:
                self.metrics.explanations_late.labels(first.baseline).inc(late)
            self.log.set_attributions(
                [(pid, a) for pid, a in zip(ids, results, strict=True) if a is not None]
            )

    def explain_pending(self, pending: PendingExplanation) -> None:
        """Compute and store the attributions of predictions answered without them."""
        self.explain_batch([pending])


def _read(row: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    """Return the ``PredictionRead`` shape of a log row (what ``POST /v1/predict`` returns)."""
    outputs = row["outputs"]
    attributions = row["attributions"]
    if status is not None:
        pass
    elif attributions is not None:
        status = "ready" if attributions.get("method") != "none" else "unavailable"
    else:
        status = outputs["explanation"]
    return {
        "prediction_id": row["id"],
        "batch_id": row["batch_id"],
        "baseline": row["baseline"],
        "score": outputs["score"],
        "label": outputs.get("label"),
        "model_name": row["model_name"],
        "model_version": row["model_version"],
        "served_by": row["served_by"],
        "fallback": row["fallback"],
        "role": row["role"],
        "latency_ms": row["latency_ms"],
        "explanation": status,
        "attributions": attributions,
        "created_at": row["created_at"],
    }
