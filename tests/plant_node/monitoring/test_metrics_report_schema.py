"""The anonymized metrics report schema: closed, finite, pseudonymous, small windows refused."""

import datetime as dt
import uuid

import pytest
from pydantic import ValidationError

from federation.schemas.metrics_report import MetricsReport, pseudonymize, report_id

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _report(**over):
    base = {
        "report_id": str(uuid.uuid4()),
        "plant_id": "plant-a",
        "model_name": "cmapss-rul",
        "model_version": "1.0",
        "window_start": T0.isoformat(),
        "window_end": (T0 + dt.timedelta(hours=8)).isoformat(),
        "n_rows": 1000,
        "min_rows_policy": 200,
        "chunks": [
            {
                "chunk": 0,
                "start": T0.isoformat(),
                "end": T0.isoformat(),
                "n_rows": 500,
                "metrics": [
                    {
                        "metric": "rmse",
                        "estimated": 20.1,
                        "lower": 18.0,
                        "upper": 22.2,
                        "realized": 21.0,
                        "n_labels": 500,
                    }
                ],
            },
        ],
        "drift": [
            {"feature": "s11", "scores": {"js": 0.1, "ks": 0.05, "wasserstein": 0.2, "psi": 0.01}}
        ],
        "integrity": {"null_values": {"s4": 3}, "stuck_units": ["u_0123456789abcdef"]},
        "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0},
        "alerts": {"raised": 1, "true_alarms": 1, "by_kind": {"drift": 1}},
    }
    base.update(over)
    return base


def test_valid_report_round_trips():
    report = MetricsReport.model_validate(_report())

    assert MetricsReport.model_validate_json(report.model_dump_json()) == report


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(raw_rows=[[1, 2, 3]]),
        lambda r: r["integrity"].update(unit_ids=["17"]),
        lambda r: r["chunks"][0].update(values=[642.1]),
        lambda r: r["drift"][0]["scores"].update(mean=642.1),
    ],
)
def test_extra_fields_are_refused_at_every_level(mutate):
    data = _report()
    mutate(data)

    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MetricsReport.model_validate(data)


def test_windows_and_chunks_below_the_policy_minimum_are_refused():
    with pytest.raises(ValidationError, match="below the policy minimum"):
        MetricsReport.model_validate(_report(n_rows=150))
    small_chunk = _report()
    small_chunk["chunks"][0]["n_rows"] = 20
    with pytest.raises(ValidationError, match="fewer rows than the policy minimum"):
        MetricsReport.model_validate(small_chunk)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["integrity"].update(stuck_units=["17"]),  # a raw unit id
        lambda r: r["drift"][0].update(feature="s11=642.31"),  # a value smuggled in a name
        lambda r: r["chunks"][0]["metrics"][0].update(estimated=float("nan")),
        lambda r: r["drift"][0]["scores"].update(js=-0.1),
    ],
)
def test_raw_ids_values_and_non_finite_numbers_are_refused(mutate):
    data = _report()
    mutate(data)

    with pytest.raises(ValidationError):
        MetricsReport.model_validate(data)


def test_pseudonyms_are_keyed_stable_and_not_reversible_by_shape():
    key, other = b"k" * 32, b"o" * 32

    assert pseudonymize("17", key) == pseudonymize("17", key)
    assert pseudonymize("17", key) != pseudonymize("17", other)
    assert pseudonymize("17", key) != pseudonymize("18", key)
    assert pseudonymize("17", key).startswith("u_") and "17" not in pseudonymize("17", key)[2:4]
    with pytest.raises(ValueError):
        pseudonymize("17", b"short")


def test_report_id_is_deterministic_per_window():
    args = dict(plant_id="p", model_name="m", model_version="1", start=T0, end=T0)
    secret = b"plant-held-secret-0123"

    assert report_id(**args, secret=secret) == report_id(**args, secret=secret)
    assert report_id(**args, secret=secret) != report_id(**{**args, "plant_id": "q"}, secret=secret)


def test_report_id_cannot_be_predicted_without_the_plant_secret():
    # Issue 18 defect 2: ids were uuid5 of public fields, so another plant could compute a
    # pending report's id. Now the same window under another secret gets an unrelated id.
    import uuid

    args = dict(plant_id="p", model_name="m", model_version="1", start=T0, end=T0)
    public_name = f"p|m|1|{T0.isoformat()}|{T0.isoformat()}"
    old_namespace = uuid.UUID("6d1f4f3e-3b7a-5c39-9d5e-6a0c2f8b7e41")

    mine = report_id(**args, secret=b"a" * 32)

    assert mine != report_id(**args, secret=b"b" * 32)
    assert mine != uuid.uuid5(old_namespace, public_name)
    with pytest.raises(ValueError):
        report_id(**args, secret=b"short")


def test_an_unreliable_estimate_travels_as_reasons_not_as_a_number():
    flagged = {"metric": "rmse", "realized": 30.0, "n_labels": 500}
    why = {"unreliable": ["integrity:null_rate"]}
    chunk = _report()["chunks"][0] | {"metrics": [flagged | why]}

    report = MetricsReport.model_validate(_report(chunks=[chunk]))

    assert report.chunks[0].metrics[0].unreliable == ["integrity:null_rate"]
    with pytest.raises(ValidationError, match="unreliable"):
        bad = flagged | why | {"estimated": 20.0}
        MetricsReport.model_validate(_report(chunks=[chunk | {"metrics": [bad]}]))
