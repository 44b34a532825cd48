"""SIGKILL a real node scheduler process mid-job, restart it: no duplicate run, none missed.

The job store and the run ledger live in the node's SQLite database (made by Alembic).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from plant_node.db import make_engine, make_session_factory
from plant_node.scheduling import service as ledger
from plant_node.scheduling.models import APSCHEDULER_JOBS

SCRIPT = Path(__file__).with_name("sched_proc.py")
ROOT = Path(__file__).resolve().parents[3]


def _start(url: str, data_dir: Path, journal: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), url, str(data_dir), str(journal)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _lines(journal: Path) -> list[list[str]]:
    return [line.split() for line in journal.read_text().splitlines()] if journal.exists() else []


def _wait(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_sigkill_mid_job_then_restart(tmp_path: Path, migrated_db_file: Path) -> None:
    db = tmp_path / "node.db"
    shutil.copy(migrated_db_file, db)
    url = f"sqlite:///{db}"
    journal = tmp_path / "journal.txt"
    engine = make_engine(url)
    factory = make_session_factory(engine)

    first = _start(url, tmp_path, journal)
    try:
        # mid-job: the second run has started and not ended
        _wait(lambda: [w[0] for w in _lines(journal)].count("start") == 2, 30)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    with factory() as session:
        runs = ledger.list_runs(session=session, job="drill.slow")
        stored_next = session.execute(select(APSCHEDULER_JOBS.c.next_run_time)).scalar_one()
    assert [r.status for r in runs] == ["running", "ok"]  # newest first: killed mid-run
    interrupted = runs[0].scheduled_at
    assert datetime.fromtimestamp(stored_next, UTC) > interrupted  # APScheduler moved on

    second = _start(url, tmp_path, journal)
    try:
        _wait(lambda: [w[0] for w in _lines(journal)].count("end") >= 4, 30)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0, second.stderr.read().decode() if second.stderr else ""
    with factory() as session:
        runs = ledger.list_runs(session=session, job="drill.slow")
    runs.sort(key=lambda r: r.scheduled_at)
    engine.dispose()

    slots = Counter(r.scheduled_at for r in runs)
    assert max(slots.values()) == 1  # each slot claimed once
    assert all(r.status == "ok" for r in runs), [(r.scheduled_at, r.status) for r in runs]
    # the interrupted slot ran again, once, by the restarted process
    recovered = next(r for r in runs if r.scheduled_at == interrupted)
    assert recovered.pid == second.pid
    # the first process journalled 2 starts and 1 end; everything else is the second's
    lines = _lines(journal)
    by_pid = Counter((w[0], int(w[1])) for w in lines)
    assert by_pid[("start", first.pid)] == 2 and by_pid[("end", first.pid)] == 1
    assert by_pid[("start", second.pid)] == by_pid[("end", second.pid)] == len(runs) - 1
    # nothing missed: the slot due while the node was down ran (coalesced into one run, inside
    # the grace), and after it every 2 s slot ran, without a gap
    after = [r.scheduled_at for r in runs if r.scheduled_at > interrupted]
    assert after, "no run after the restart"
    assert after[0] >= datetime.fromtimestamp(stored_next, UTC)
    first_after = next(r for r in runs if r.scheduled_at == after[0])
    assert first_after.scheduled_at <= first_after.started_at
    assert (first_after.started_at - first_after.scheduled_at).total_seconds() < 30  # grace
    gaps = [(b - a).total_seconds() for a, b in zip(after, after[1:], strict=False)]
    assert all(abs(g - 2.0) < 0.01 for g in gaps), gaps
