"""Governance benchmark: the audit chain's cost, forks, verification speed and tamper cases.

Runs in-process against a migrated hub database on SQLite and, when a server is reachable
(``MILLWRIGHT_BENCH_POSTGRES_URL`` or ``MILLWRIGHT_TEST_POSTGRES_URL``), PostgreSQL in a
throw-away database. Writes ``benchmarks/results/governance.json``: top-level ``sqlite``
and ``postgresql`` objects. Each measure in :data:`MEASURES` adds its own keys, and keys
written by an earlier run that this run does not produce are kept, so another measure
(``promotion_p95_ms``) can live in the same file;
``MILLWRIGHT_BENCH_GOVERNANCE_ONLY=measure_verify,...`` runs only the measures named.

- ``audit_append_p95_ms``: p95 of the time a write spends in :func:`hub.audit.service.append`,
  the cost the trail adds to the write's transaction, 8 concurrent writers each committing
  its own write plus entry. On SQLite that is taking the write lock, reading the head and
  inserting the chained entry; on PostgreSQL inserting the entry into ``audit_pending``,
  while a sealer thread (the hub's loop: woken by each commit) chains them meanwhile.
  ``audit_seal_lag_p95_ms`` is how long a committed entry waited to be chained (PostgreSQL;
  the n-th commit is matched with the seal pass that brought the chain to n entries).
  ``write_p95_ms_without_audit`` / ``..._with_audit`` are the whole transactions.
- ``audit_chain_forks``: entries sharing a predecessor, plus breaks found by verification,
  after 8 writers x 2,000 entries (must be 0).
- ``audit_verify_entries_per_s``: :func:`hub.audit.service.verify` over >= 1,000,000 entries.
- ``tamper_cases`` / ``tamper_cases_detected``: edit, edit with a recomputed hash, delete,
  insert, reorder, and truncate-tail against a recorded head; detected = right kind and row.
- ``promotion_p95_ms``: ``POST /api/v1/promotions`` (request + evidence + gate + decision
  record, one transaction) at 10,000 versions; see :mod:`benchmarks.governance_promotions`.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from benchmarks.governance_promotions import measure_promotion
from hub import migrations
from hub.audit import chain
from hub.audit import service as audit_service
from hub.audit.models import AuditEntry
from hub.config import HubSettings
from hub.db import make_engine, make_session_factory, utcnow
from hub.idempotency.models import IdempotencyRecord
from tests.hub.audit import tamper

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "governance.json"
TARGETS = {
    "audit_append_p95_ms": ("<=", 2.0),
    "audit_verify_entries_per_s": (">=", 100_000),
    "promotion_p95_ms": ("<=", 20.0),
}
WRITERS = 8


def _postgres_base() -> str | None:
    url = os.environ.get("MILLWRIGHT_BENCH_POSTGRES_URL") or os.environ.get(
        "MILLWRIGHT_TEST_POSTGRES_URL"
    )
    return HubSettings(database_url=url).database_url if url else None


@contextmanager
def _postgres_database(base: str) -> Iterator[str]:
    name = f"mw_gov_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh(url: str) -> Engine:
    with make_engine(HubSettings(database_url=url)).begin() as conn:
        tamper.unguard(conn)  # the append-only triggers (SQLite: dropped for good)
        conn.execute(text("DELETE FROM audit_entries"))
        conn.execute(text("DELETE FROM audit_pending"))
        conn.execute(text("DELETE FROM idempotency_keys"))
    # A long busy timeout: on a loaded machine a SQLite writer can wait seconds for its turn.
    return make_engine(
        HubSettings(database_url=url, db_pool_size=WRITERS + 2, sqlite_busy_timeout_ms=120_000)
    )


def _p95(samples: list[float]) -> float:
    return round(statistics.quantiles(samples, n=100)[94] * 1000, 3)


class _BenchSealer:
    """The hub's sealer loop (:class:`hub.audit.sealer.Sealer`), recording each pass."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.passes: list[tuple[float, int]] = []  # (time after the pass, chain length)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        total, last = 0, False
        while not last:
            self.wake.wait(1.0)
            self.wake.clear()
            last = self.stopping.is_set()  # a pass that starts after every commit
            total += audit_service.seal(bind=self.engine)
            self.passes.append((time.perf_counter(), total))

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join()

    def lags(self, commits: list[float]) -> list[float]:
        """Seconds from the n-th commit to the pass that made the chain n entries long."""
        out, i = [], 0
        for n, committed in enumerate(sorted(commits), start=1):
            while i < len(self.passes) and self.passes[i][1] < n:
                i += 1
            if i < len(self.passes):
                out.append(max(0.0, self.passes[i][0] - committed))
        return out


def _writers(
    engine: Engine, per_writer: int, audited: bool, sealer: _BenchSealer | None = None
) -> tuple[list[float], list[float], list[float], list[float]]:
    """8 threads, each committing ``per_writer`` writes (+ an entry when ``audited``).

    Returns the seconds spent in each append (wall, then the thread's CPU), per
    transaction, and the times of the commits.
    """
    factory = make_session_factory(engine)
    append_s: list[float] = []
    txn_s: list[float] = []
    cpu_s: list[float] = []
    commits: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        mine_append: list[float] = []
        mine_txn: list[float] = []
        mine_cpu: list[float] = []
        mine_commits: list[float] = []
        barrier.wait()
        try:
            for i in range(per_writer):
                started = time.perf_counter()
                with factory() as session:
                    key = f"{'a' if audited else 'p'}-{n}-{i}"
                    session.execute(
                        insert(IdempotencyRecord).values(
                            actor=f"w{n}",
                            key=key,
                            scope="bench",
                            request_hash="0" * 64,
                            resource_ref=key,
                            created_at=utcnow(),
                            created_by="bench",
                        )
                    )
                    if audited:
                        t0, c0 = time.perf_counter(), time.thread_time()
                        audit_service.append(
                            session=session,
                            actor=f"bench:w{n}",
                            action="version.create",
                            subject=f"version/{key}",
                            after={"writer": n, "i": i},
                        )
                        mine_append.append(time.perf_counter() - t0)
                        mine_cpu.append(time.thread_time() - c0)
                    session.commit()
                done = time.perf_counter()
                if sealer is not None:
                    sealer.wake.set()
                mine_commits.append(done)
                mine_txn.append(done - started)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        with lock:
            append_s.extend(mine_append)
            txn_s.extend(mine_txn)
            cpu_s.extend(mine_cpu)
            commits.extend(mine_commits)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return append_s, cpu_s, txn_s, commits


def measure_append_and_forks(url: str, out: dict[str, Any], quick: bool) -> None:
    """audit_append_p95_ms, audit_chain_forks, audit_entries (8 writers x 2,000)."""
    per_writer = 200 if quick else 2000
    engine = _fresh(url)
    try:
        _, _, plain, _ = _writers(engine, per_writer // 8, audited=False)
        sealer = _BenchSealer(engine)
        sealer.thread.start()
        started = time.perf_counter()
        appends, cpu, audited, commits = _writers(engine, per_writer, audited=True, sealer=sealer)
        elapsed = time.perf_counter() - started
        sealer.stop()
        with make_session_factory(engine)() as session:
            left = audit_service.unsealed(session=session)
            final = audit_service.seal(bind=engine)
            entries = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
            shared = entries - (
                session.scalar(select(func.count(func.distinct(AuditEntry.prev_hash)))) or 0
            )
            result = audit_service.verify(session=session)
    finally:
        engine.dispose()
    out["audit_append_p95_ms"] = _p95(appends)
    out["audit_append_p50_ms"] = round(statistics.median(appends) * 1000, 3)
    out["audit_append_cpu_p95_ms"] = _p95(cpu)
    out["load_average_1m"] = round(os.getloadavg()[0], 1)
    if engine.dialect.name == "postgresql":
        lags = sealer.lags(commits)
        out["audit_seal_lag_p95_ms"] = _p95(lags)
        out["audit_seal_lag_p50_ms"] = round(statistics.median(lags) * 1000, 3)
        out["audit_seal_passes"] = len(sealer.passes)
        out["audit_unsealed_after_writers"] = left
        out["audit_sealed_at_the_end"] = final
    out["write_p95_ms_without_audit"] = _p95(plain)
    out["write_p95_ms_with_audit"] = _p95(audited)
    out["write_p50_ms_without_audit"] = round(statistics.median(plain) * 1000, 3)
    out["write_p50_ms_with_audit"] = round(statistics.median(audited) * 1000, 3)
    out["audit_writes_per_s"] = round(len(audited) / elapsed)
    out["audit_chain_forks"] = shared + (0 if result.ok else 1)
    out["audit_entries"] = entries
    out["audit_writers"] = WRITERS


def _bulk_chain(engine: Engine, n: int) -> str:
    """Write a valid chain of ``n`` entries straight through the driver; return its head."""
    cols = chain.COLUMNS
    prev = chain.GENESIS
    at = chain.format_time(utcnow())
    postgres = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if not postgres:  # the hub's connections run pysqlite in autocommit: one transaction
            cur.execute("BEGIN")
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            if postgres:
                with cur.copy(f"COPY audit_entries ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
            else:
                cur.executemany(
                    f"INSERT INTO audit_entries ({', '.join(cols)}) VALUES "
                    f"({', '.join('?' for _ in cols)})",
                    batch,
                )
            batch.clear()

        for seq in range(1, n + 1):
            after = f'{{"version_id":{seq}}}'
            fields = (
                seq,
                at,
                "bench",
                "alias.set",
                f"alias/p{seq % 50}/m/champion",
                None,
                after,
                None,
                "[]",
            )
            digest = chain.entry_hash(prev, chain.body(*fields))
            batch.append((*fields, prev, digest))
            prev = digest
            if len(batch) == 50_000:
                flush()
        if batch:
            flush()
        if postgres:
            raw.commit()
        else:
            cur.execute("COMMIT")
    finally:
        raw.close()
    return prev


def measure_verify(url: str, out: dict[str, Any], quick: bool) -> None:
    """audit_verify_entries_per_s over >= 1,000,000 entries."""
    n = 100_000 if quick else 1_000_000
    engine = _fresh(url)
    try:
        head = _bulk_chain(engine, n)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE audit_entries"))
        with make_session_factory(engine)() as session:
            started, cpu = time.perf_counter(), time.process_time()
            result = audit_service.verify(session=session, expect_head=head)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        engine.dispose()
    assert result.ok and result.entries == n, result
    out["audit_verify_entries"] = n
    out["audit_verify_seconds"] = round(elapsed, 2)
    out["audit_verify_entries_per_s"] = round(n / elapsed)
    # The verifier's own CPU (fetching and hashing; the database server's work excluded):
    # what the rate would be on an idle core.
    out["audit_verify_entries_per_client_cpu_s"] = round(n / cpu)


def measure_tamper(url: str, out: dict[str, Any], quick: bool) -> None:
    """tamper_cases, tamper_cases_detected (each case on a fresh 1,000-entry chain)."""
    detected = []
    for case, (attack, kind, _) in sorted(tamper.CASES.items()):
        engine = _fresh(url)
        try:
            head = _bulk_chain(engine, 1000)
            with engine.begin() as conn:
                attack(conn, 500)
            with make_session_factory(engine)() as session:
                result = audit_service.verify(session=session, expect_head=head)
        finally:
            engine.dispose()
        if not result.ok and result.kind == kind and result.seq == 500:
            detected.append(case)
        else:
            print(f"  tamper case {case} NOT detected as {kind} at 500: {result}")
    out["tamper_cases"] = len(tamper.CASES)
    out["tamper_cases_detected"] = len(detected)
    out["tamper_case_names"] = sorted(tamper.CASES)


#: Each measure fills its keys into the backend's dict; other helpers append theirs.
MEASURES: list[Callable[[str, dict[str, Any], bool], None]] = [
    measure_tamper,
    measure_append_and_forks,
    measure_verify,
    measure_promotion,
]


def bench_backend(url: str, quick: bool) -> dict[str, Any]:
    """Migrate ``url`` and run every measure on it."""
    migrations.upgrade(HubSettings(database_url=url))
    out: dict[str, Any] = {}
    only = set(filter(None, os.environ.get("MILLWRIGHT_BENCH_GOVERNANCE_ONLY", "").split(",")))
    for measure in MEASURES:
        if only and measure.__name__ not in only:
            continue
        started = time.perf_counter()
        measure(url, out, quick)
        print(f"  {measure.__name__}: {time.perf_counter() - started:.1f} s", flush=True)
    return out


def _print(results: dict[str, Any]) -> None:
    keys = sorted({k for r in results.values() if r for k in r if k != "tamper_case_names"})
    print(f"{'':34}{'sqlite':>14}{'postgresql':>14}")
    for key in keys:
        row = f"{key:34}"
        for backend in ("sqlite", "postgresql"):
            value = (results.get(backend) or {}).get(key)
            mark = ""
            if key in TARGETS and value is not None:
                op, target = TARGETS[key]
                mark = " ok" if (value <= target if op == "<=" else value >= target) else " !!"
            row += f"{'-' if value is None else value:>11}{mark:<3}"
        print(row)


def run(quick: bool) -> dict[str, Any]:
    """Run every measure on every reachable backend and merge the results file."""
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mw-bench-gov-") as tmp:
        print("sqlite ...", flush=True)
        results["sqlite"] = bench_backend(f"sqlite:///{Path(tmp) / 'hub.db'}", quick)
    base = _postgres_base()
    if base is None:
        print("postgresql: skipped (set MILLWRIGHT_BENCH_POSTGRES_URL or ..._TEST_POSTGRES_URL)")
    else:
        with _postgres_database(base) as url:
            print("postgresql ...", flush=True)
            results["postgresql"] = bench_backend(url, quick)
    merged = {
        backend: {**(previous.get(backend) or {}), **(results.get(backend) or {})}
        for backend in ("sqlite", "postgresql")
    }
    _print(merged)
    if not quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = RESULTS.with_suffix(".json.tmp")
        tmp_path.write_text(json.dumps(merged, indent=2) + "\n")
        tmp_path.replace(RESULTS)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return merged
