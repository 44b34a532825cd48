"""Retraining triggers on monitoring's records: each condition, cooldown, budget, evidence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from federation.errors import InvalidInput
from federation.schemas.retraining import RetrainingRequestCreate
from plant_node.outbox import service as outbox_service
from plant_node.retraining import service
from plant_node.retraining.schemas import LineSignalIn
from policies.parsing import validate_policy
from policies.retraining import RetrainingPolicy
from tests.plant_node.retraining.helpers import (
    HOUR,
    T0,
    add_chunks,
    add_drift_alert,
    add_feedback,
    add_predictions,
)


def policy(*triggers: dict[str, object]) -> RetrainingPolicy:
    doc = validate_policy(
        {"kind": "retraining", "id": "retraining-test", "version": 1, "title": "t",
         "triggers": list(triggers), "label_budget_per_day": 3}
    )  # fmt: skip
    assert isinstance(doc, RetrainingPolicy)
    return doc


WORSE = {
    "kind": "estimated_metric_worse", "name": "rmse_worse", "metric": "rmse",
    "min_worse_pct": 15, "cooldown_s": 86400, "daily_budget": 1, "min_evidence": 200,
}  # fmt: skip
DRIFT = {"kind": "drift_sustained", "name": "drift", "chunks": 3, "cooldown_s": 3600,
         "daily_budget": 2, "min_evidence": 0}  # fmt: skip


def run(session: Session, pol: RetrainingPolicy, hours: float) -> list[service.TriggerCheck]:
    return service.evaluate(
        session=session, policy=pol, plant_id="plant-t", now=T0 + hours * HOUR, reference_chunks=4
    )


def fired(checks: list[service.TriggerCheck]) -> list[str]:
    return [c.trigger for c in checks if c.new]


def test_estimated_metric_worse_fires_once_with_its_evidence_on_the_outbox(
    session_factory: sessionmaker[Session],
) -> None:
    pol = policy(WORSE)
    with session_factory() as session:
        # reference (realized) 20.0; estimates 22 then 24 (+20%, averaged over 3 chunks)
        add_chunks(session, [20.0] * 4 + [21.0] * 3, realized=[20.0] * 4 + [None] * 3)
        assert fired(run(session, pol, 7)) == []  # +5%: holds
        add_chunks(session, [24.0, 24.0, 24.0], first=7)
        checks = run(session, pol, 10)
        assert fired(checks) == ["rmse_worse"]
        firing = checks[0].firing
        assert firing is not None
        assert firing.evidence["estimated.rmse"] == pytest.approx(24.0)
        assert firing.evidence["reference.rmse"] == pytest.approx(20.0)
        assert firing.labelled_window == 1000  # 10 chunks x 100 labels
        assert "20% worse" in firing.summary
        # the labels it fired on are spent: no new evidence, no second request
        again = run(session, pol, 10)
        assert fired(again) == [] and again[0].verdict == "missing"
        items = outbox_service.list_items(session=session, stream="retraining")
    assert [i.idempotency_key for i in items] == [firing.id]
    assert items[0].kind == "retraining.requested"
    payload = dict(items[0].payload)
    assert payload.pop("version") == "1.0"
    request = RetrainingRequestCreate.model_validate({**payload, "version_id": 7})
    assert request.condition.value == "estimated_metric_worse"
    assert request.evidence["estimated.rmse"] == pytest.approx(24.0)


def test_minimum_evidence_holds_a_trigger_without_new_labels(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session:
        add_chunks(session, [20.0] * 4 + [30.0] * 3, realized=[20.0] * 4 + [None] * 3, n_labels=20)
        checks = run(session, policy(WORSE), 7)
    assert fired(checks) == []
    assert checks[0].verdict == "missing" and "labels.new 140 < 200" in checks[0].message


def test_drift_sustained_k_chunks_cooldown_and_daily_budget(
    session_factory: sessionmaker[Session],
) -> None:
    pol = policy(DRIFT)
    with session_factory() as session:
        add_chunks(session, [20.0] * 6)
        add_drift_alert(session, since_chunk=4)  # chunks 4, 5: 2 < 3
        assert fired(run(session, pol, 6)) == []
        add_chunks(session, [20.0], first=6)  # chunks 4..6: sustained 3
        first = run(session, pol, 7)
        assert fired(first) == ["drift"]
        repeat = run(session, pol, 7)  # the same records again (a re-run job): found, not new
        assert fired(repeat) == [] and repeat[0].firing == first[0].firing
        add_chunks(session, [20.0], first=7)
        held = run(session, pol, 7.5)  # 30 min later, new chunk: cooling down
        assert fired(held) == [] and held[0].refusal is not None
        assert "cooling down" in held[0].refusal
        add_chunks(session, [20.0], first=8)
        assert fired(run(session, pol, 9)) == ["drift"]  # second of the daily budget of 2
        add_chunks(session, [20.0], first=9)
        budget = run(session, pol, 10.5)
        assert budget[0].refusal is not None and "daily budget" in budget[0].refusal
        assert len(service.list_firings(session=session)) == 2


def test_operator_flags_in_window_new_failure_type_and_line_signal(
    session_factory: sessionmaker[Session],
) -> None:
    pol = policy(
        {"kind": "operator_flags", "name": "flags", "count": 3, "window_s": 3600,
         "cooldown_s": 0, "min_evidence": 0},
        {"kind": "new_failure_type", "name": "new_type", "cooldown_s": 0, "min_evidence": 0},
        {"kind": "product_mix_change", "name": "mix", "cooldown_s": 0, "min_evidence": 0},
    )  # fmt: skip
    with session_factory() as session:
        ids = add_predictions(session, [0.9, 0.8, 0.7, 0.6], start=T0 - timedelta(hours=2))
        add_feedback(session, ids[0], failure_type="TWF", at=T0 - timedelta(hours=1))  # known
        add_chunks(session, [0.5] * 2, baseline="ai4i", metric="f1")
        now = T0 + 2 * HOUR
        for pid in ids[1:3]:
            add_feedback(session, pid, at=now - timedelta(minutes=10))
        assert fired(run(session, pol, 2)) == []  # 2 flags < 3, no new type, no signal
        add_feedback(session, ids[3], failure_type="HDF", at=now - timedelta(minutes=5))
        service.add_line_signal(session=session, signal=LineSignalIn(value="recipe-B"))
        checks = {c.trigger: c for c in run(session, pol, 2)}
    assert {t for t, c in checks.items() if c.new} == {"flags", "new_type", "mix"}
    assert checks["flags"].evidence["operator.flagged_errors"] == 3
    assert checks["new_type"].evidence["outcomes.new_failure_types"] == 1  # HDF, not TWF


def test_schedule_fires_once_per_cron_slot(session_factory: sessionmaker[Session]) -> None:
    pol = policy({"kind": "schedule", "name": "daily", "cron": "0 3 * * *", "cooldown_s": 0,
                  "min_evidence": 0})  # fmt: skip
    with session_factory() as session:
        add_chunks(session, [20.0] * 2)
        assert fired(run(session, pol, 2)) == []  # 02:00: not due
        assert fired(run(session, pol, 3.5)) == ["daily"]
        assert fired(run(session, pol, 20)) == []  # same day, slot taken
        assert fired(run(session, pol, 27.5)) == ["daily"]  # the next day's 03:00


def test_stable_stream_never_fires(session_factory: sessionmaker[Session]) -> None:
    pol = service.load_policy("retraining-default@1")
    with session_factory() as session:
        add_chunks(session, [20.0 + (i % 3) * 0.5 for i in range(24)], realized=[20.0] * 24)
        checks = run(session, pol, 24)
    assert fired(checks) == []
    assert any(c.trigger == "estimated_rmse_worse" and c.verdict == "fail" for c in checks)


def test_a_policy_that_is_not_retraining_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not retraining"):
        service.load_policy("promotion-default@1")
    with pytest.raises(InvalidInput):
        service.load_policy("retraining-nope@9")
