"""The scheduled job over a growing FD001 log: incremental, complete chunks, reports published."""

import pandas as pd

from plant_node.monitoring.engine import MonitorConfig, fit_monitor, run_monitor, save_monitor
from plant_node.monitoring.jobs import run_monitoring_job
from tests.plant_node.monitoring.conftest import COLUMNS


def test_job_ticks_process_each_row_once_and_publish_reports(fd001, tmp_path):
    monitor = fit_monitor(fd001["reference"], columns=COLUMNS, config=MonitorConfig(chunk_size=500))
    save_monitor(monitor, tmp_path / "monitor.pkl")
    log = fd001["stable"].copy()
    log.loc[log.index >= 2500, "s11"] += 2.0 * monitor.drift.features["s11"].std
    arrived = {"n": 0}
    published = []

    def read_rows(after):
        rows = log.iloc[: arrived["n"]]
        return rows if after is None else rows[rows["timestamp"] > pd.Timestamp(after)]

    outcomes = []
    for n in (1200, 2600, 4100, len(log)):
        arrived["n"] = n
        outcomes.append(
            run_monitoring_job(
                read_rows=read_rows,
                publish=published.append,
                monitor_path=tmp_path / "monitor.pkl",
                state_path=tmp_path / "state.pkl",
                plant_id="plant-a",
                model_name="cmapss-rul",
                model_version="1.0",
                pseudonym_key=b"k" * 32,
                min_rows=400,
            )
        )

    ticked = [r for o in outcomes for r in o.results]
    at_once, _ = run_monitor(monitor, log)
    # the same chunks as one run over the whole log, minus its incomplete last chunk
    assert [(r.chunk, r.n_rows) for r in ticked] == [(r.chunk, r.n_rows) for r in at_once[:-1]]
    assert [r.values for r in ticked] == [r.values for r in at_once[:-1]]
    assert at_once[-1].n_rows < 500 <= min(r.n_rows for r in ticked)
    assert len(published) == 4 and len({r.report_id for r in published}) == 4
    raised = [a for o in outcomes for a in o.raised]
    assert raised and raised[0].top_features[0][0] == "s11"
    assert published[2].alerts.raised >= 1
    # every report names the rules still open at its end (the hub closes the ones it lacks)
    for report, outcome in zip(published, outcomes, strict=True):
        assert report.open_alert_keys == sorted(a.key for a in outcome.state.alerts.open_alerts())
        assert report.alerts.open == len(report.open_alert_keys)
    assert published[0].open_alert_keys == []
    assert set(published[2].open_alert_keys) >= {a.key for a in published[2].alert_details}
