"""Readings of one line through the node's serving pipeline, exactly as ``POST /v1/predict``.

Each batch of readings becomes one :class:`PredictRequest` handed to
:meth:`ServingFlows.predict`: the same contract validation, feature pipeline, model, rollout,
prediction log and deferred explanations as HTTP, so a prediction made from a message has the
same id in the log as the one published back. Messages that cannot become a reading are
quarantined here through the serving service (the same ``quarantined_batches`` table).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from federation.errors import ContractViolation, MillwrightError
from plant_node.connectors.mapping import LineMapping
from plant_node.connectors.metrics import ConnectorMetrics
from plant_node.connectors.readings import CONTRACT, SCORING, Reading, Rejected
from plant_node.db import managed_session, utcnow
from plant_node.serving import service as serving_service
from plant_node.serving.flows import ServingFlows
from plant_node.serving.pipelines import blocking_violations
from plant_node.serving.schemas import PredictRequest

log = logging.getLogger("millwright.node.connectors")
# One alert per line and cause per this many seconds (drops happen in runs, not alone).
ALERT_COOLDOWN_S = 60.0


@dataclass
class Answer:
    """A scored reading: the prediction as ``POST /v1/predict`` returns it, and its alarm."""

    reading: Reading
    prediction: dict[str, Any]
    alarm: bool

    def message(self, line: str) -> dict[str, Any]:
        """Return the JSON published on the result topic."""
        p = self.prediction
        return {
            "line": line,
            "prediction_id": p["prediction_id"],
            "batch_id": p["batch_id"],
            "baseline": p["baseline"],
            "score": p["score"],
            "label": p["label"],
            "alarm": self.alarm,
            "model_version": p["model_version"],
            "served_by": p["served_by"],
            "fallback": p["fallback"],
            "explanation": p["explanation"],
            "source": self.reading.source,
            **self.reading.meta,
            "predicted_at": p["created_at"].isoformat(),
        }


class LineFlows:
    """Score one line's readings through :class:`ServingFlows` and quarantine bad messages.

    Parameters
    ----------
    mapping
        The line's mapping.
    serving
        The node's serving flows (in this process).
    session_factory
        The node's sessions (quarantine, alerts).
    metrics
        Connector metrics on the node's registry.
    node_quarantined
        The node's own quarantine counter (``NodeMetrics.quarantined``), bumped for every
        message quarantined here, as for an HTTP batch.
    """

    def __init__(
        self,
        mapping: LineMapping,
        serving: ServingFlows,
        session_factory: sessionmaker[Session],
        metrics: ConnectorMetrics,
        node_quarantined: Any = None,
    ) -> None:
        self.mapping = mapping
        self.serving = serving
        self._factory = session_factory
        self.metrics = metrics
        self._node_quarantined = node_quarantined
        self._windows: OrderedDict[Any, deque[dict[str, Any]]] = OrderedDict()
        self._alerted: dict[str, float] = {}
        self.quarantined_by: dict[str, int] = {}

    # -- quarantine and alerts -------------------------------------------------------------

    def quarantine(self, connector: str, rejected: Rejected, raw: dict[str, Any]) -> str:
        """Keep a message that could not be scored, with its reason; return the batch id."""
        batch_id = uuid.uuid4().hex
        self.quarantined_by[connector] = self.quarantined_by.get(connector, 0) + 1
        self.metrics.quarantined.labels(self.mapping.line, connector, rejected.reason).inc()
        self.metrics.readings.labels(self.mapping.line, connector, "quarantined").inc()
        if rejected.reason == CONTRACT:  # ServingFlows stored it and counted it already
            return batch_id
        try:
            with managed_session(self._factory) as session:
                serving_service.quarantine_batch(
                    session=session,
                    batch_id=batch_id,
                    baseline=self.mapping.baseline,
                    records=[{"line": self.mapping.line, "connector": connector, **raw}],
                    violations=[rejected.violation()],
                )
        except Exception:  # the database being away must not stop the subscriber
            log.exception("could not store quarantined message of %s", self.mapping.line)
        if self._node_quarantined is not None:
            self._node_quarantined.labels(self.mapping.baseline).inc()
        log.info("%s/%s quarantined %s: %s", self.mapping.line, connector, rejected.reason,
                 rejected.message)  # fmt: skip
        return batch_id

    def alert(self, kind: str, detail: str, **extra: Any) -> bool:
        """Queue a connector alert for the hub (outbox), at most once per cooldown per kind."""
        now = time.monotonic()
        if now - self._alerted.get(kind, -1e9) < ALERT_COOLDOWN_S:
            return False
        self._alerted[kind] = now
        log.warning("%s: %s", self.mapping.line, detail)
        try:
            with managed_session(self._factory) as session:
                serving_service.enqueue_alert(
                    session=session,
                    kind=kind,
                    payload={
                        "plant_id": self.serving.settings.plant_id,
                        "baseline": self.mapping.baseline,
                        "line": self.mapping.line,
                        "detail": detail[:1000],
                        "raised_at": utcnow().isoformat(),
                        **extra,
                    },
                )
        except Exception:
            log.exception("could not queue alert %s", kind)
            return False
        return True

    # -- scoring ---------------------------------------------------------------------------

    def _is_alarm(self, prediction: dict[str, Any]) -> bool:
        rule = self.mapping.alarm
        score = float(prediction["score"])
        if rule.on_label and prediction.get("label") == 1:
            return True
        if rule.score_above is not None and score > rule.score_above:
            return True
        return rule.score_below is not None and score < rule.score_below

    def _windowed(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.mapping.window is not None
        unit = record.get(self.mapping.unit_field)
        window = self._windows.get(unit)
        if window is None:
            window = self._windows[unit] = deque(maxlen=self.mapping.window)
            while len(self._windows) > self.mapping.max_units:  # the least recently seen goes
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(unit)
        cycle = self.mapping.cycle_field
        if cycle is not None and window and window[-1].get(cycle) != _next(record.get(cycle)):
            window.clear()
        window.append(record)
        return list(window)

    def _predict(
        self, records: list[dict[str, Any]], durables: list[Future[None]] | None = None
    ) -> list[dict[str, Any]]:
        response, pending, durable = self.serving.predict(
            PredictRequest(baseline=self.mapping.baseline, records=records)
        )
        # Answer the line only once the log rows are on disk, as the HTTP route does. With
        # ``durables`` the caller waits (the connector worker awaits it off the event loop and
        # scores the next burst meanwhile, so bursts share group commits); without, here.
        if durables is not None:
            durables.append(durable)
        else:
            durable.result(timeout=30)
        if pending is not None:  # no explainer thread (tests with serving not started)
            self.serving.explain_pending(pending)
        predictions: list[dict[str, Any]] = response["predictions"]
        return predictions

    def score(
        self, connector: str, readings: list[Reading], durables: list[Future[None]] | None = None
    ) -> list[Answer]:
        """Score readings in one model call; return an answer per reading that scored.

        Readings breaking the contract are scored alone, so ServingFlows quarantines each with
        its own violation report and the rest of the batch still scores. Given a ``durables``
        list, the log-commit futures of the answers are appended to it and not waited for:
        the caller must not publish an answer before they resolve.
        """
        if not readings:
            return []
        pipeline = self.serving.pipelines.get(self.mapping.baseline)
        good = readings
        if pipeline is not None:
            report = pipeline.validate([r.record for r in readings])
            if blocking_violations(report):
                good = []
                for r in readings:
                    if blocking_violations(pipeline.validate([r.record])):
                        self._reject_through_serving(connector, r)
                    else:
                        good.append(r)
        answers: list[Answer] = []
        # A windowed line sends each unit's window; a unit twice in one batch goes in turn.
        batch: list[Reading] = []
        units: set[Any] = set()
        for r in good:
            unit = r.record.get(self.mapping.unit_field) if self.mapping.window else None
            if self.mapping.window and unit in units:
                answers += self._score_batch(connector, batch, durables)
                batch, units = [], set()
            batch.append(r)
            units.add(unit)
        answers += self._score_batch(connector, batch, durables)
        return answers

    def _reject_through_serving(self, connector: str, reading: Reading) -> None:
        try:
            self._predict([reading.record])
        except ContractViolation as exc:
            self.quarantine(connector, Rejected(CONTRACT, exc.detail), {})
            return
        except Exception as exc:  # noqa: BLE001 - reported as the reading's reason
            self.quarantine(
                connector, Rejected(SCORING, f"{type(exc).__name__}: {exc}"), reading.record
            )
            return
        # Scored after all (the batch-level rule that fired does not apply alone): fine.

    def _score_batch(
        self, connector: str, batch: list[Reading], durables: list[Future[None]] | None = None
    ) -> list[Answer]:
        if not batch:
            return []
        if self.mapping.window:
            records = [rec for r in batch for rec in self._windowed(r.record)]
        else:
            records = [r.record for r in batch]
        try:
            predictions = self._predict(records, durables)
        except ContractViolation as exc:
            for _ in batch:
                self.quarantine(connector, Rejected(CONTRACT, exc.detail), {})
            return []
        except MillwrightError as exc:
            for r in batch:
                self.quarantine(connector, Rejected(SCORING, exc.detail), r.record)
            return []
        if len(predictions) != len(batch):  # a pipeline grouping readings another way
            raise RuntimeError(f"{len(predictions)} predictions for {len(batch)} readings")
        self.metrics.readings.labels(self.mapping.line, connector, "predicted").inc(len(batch))
        return [Answer(r, p, self._is_alarm(p)) for r, p in zip(batch, predictions, strict=True)]


def _next(cycle: Any) -> Any:
    """Return the cycle a window must end with for ``cycle`` to follow it."""
    return cycle - 1 if isinstance(cycle, int) else None
