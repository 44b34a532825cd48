"""The concept-shift guard: labels outside the band, alerts on failure-mode features, coverage."""

import pandas as pd
import pytest

from plant_node.monitoring import LogColumns
from plant_node.monitoring.alerts import Alert, AlertKind, Direction
from plant_node.monitoring.engine import MonitorConfig, fit_monitor, run_monitor
from plant_node.monitoring.estimation import ChunkPerformance
from plant_node.monitoring.guards import (
    CONCEPT_SHIFT_KEY,
    ConceptState,
    band_coverage,
    update_concept,
)
from tests.plant_node.monitoring.test_service import _classifier_log


def _perf(chunk, realized, lower=0.8, upper=0.9):
    return ChunkPerformance(chunk, "roc_auc", 0.85, lower, upper, realized, 500)


def _alert(features):
    return Alert("drift:features", AlertKind.DRIFT, Direction.ABOVE, 3, None, 3, 1.5, 1.5, 1.0,
                 0.5, 0.1, top_features=features)  # fmt: skip


def test_two_labelled_chunks_outside_the_band_in_a_row_suspect_a_concept_shift():
    state = ConceptState()
    for chunk, realized in enumerate([0.86, 0.60, 0.87, 0.55]):
        state = update_concept(state, chunk=chunk, performance=[_perf(chunk, realized)], raised=[])
    assert not state.suspected  # one miss at a time is chance

    unlabelled = update_concept(state, chunk=4, performance=[_perf(4, None)], raised=[])
    state = update_concept(unlabelled, chunk=5, performance=[_perf(5, 0.50)], raised=[])

    assert unlabelled.outside_streak == 1  # no label: no evidence either way
    assert state.suspected and state.suspected_since == 4
    assert "roc_auc" in (state.reason or "")


def test_a_drift_alert_on_a_failure_mode_feature_suspects_a_shift_without_labels():
    quiet = update_concept(
        ConceptState(), chunk=3, performance=[], raised=[_alert([("air", 2.0), ("wear", 0.9)])],
        failure_mode_features=["wear"],
    )  # fmt: skip
    hit = update_concept(
        ConceptState(), chunk=3, performance=[], raised=[_alert([("air", 2.0), ("wear", 1.4)])],
        failure_mode_features=["wear"],
    )  # fmt: skip

    assert not quiet.suspected  # wear stayed under its threshold
    assert hit.suspected_since == 3 and "wear" in (hit.reason or "")
    assert update_concept(hit, chunk=9, performance=[_perf(9, 0.85)], raised=[]) == hit


def test_band_coverage_counts_labelled_chunks_only():
    perf = [_perf(0, 0.85), _perf(1, 0.95), _perf(2, None), _perf(3, 0.80)]

    assert band_coverage(perf) == pytest.approx(2 / 3)
    assert band_coverage([_perf(0, None)]) is None


def test_estimates_after_labels_contradict_them_are_flagged_until_refit():
    cols = LogColumns(features=("f0", "f1"))
    config = MonitorConfig(chunk_size=500, problem="classification_binary", metrics=("roc_auc",))
    monitor = fit_monitor(_classifier_log(3000, 0), columns=cols, config=config)
    calm = _classifier_log(2000, 1, start="2026-02-01")
    # same inputs, same model outputs: the process now fails the parts it used to pass
    flipped = _classifier_log(2000, 2, start="2026-02-05")
    flipped["label"] = 1.0 - flipped["label"]
    stream = pd.concat([calm, flipped], ignore_index=True)

    results, state = run_monitor(monitor, stream)
    again, _ = run_monitor(monitor, _classifier_log(500, 3, start="2026-03-01"), state)

    flags = [CONCEPT_SHIFT_KEY in r.unreliable for r in results]
    assert flags[:4] == [False] * 4
    assert flags[5:] == [True] * (len(flags) - 5)  # from the second contradicting chunk on
    assert all(CONCEPT_SHIFT_KEY in r.unreliable for r in again)  # until the reference is refit
    assert all("performance:roc_auc" not in r.values for r in results[5:])
