"""Demo step: the audit chain verifies, then an edited row is caught and named.

The demo plays an intruder with write access to the hub's SQLite file: it drops the
trigger that refuses updates of the audit table (as the file's owner can), changes the
version one ``alias.set`` entry says a champion was pointed at, runs ``millwright hub
audit verify`` (which fails naming that entry), then puts the row and the trigger back.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from federation.demo.context import DemoContext, DemoError


def sqlite_path(database_url: str) -> Path | None:
    """Return the file behind a ``sqlite:///`` URL, or None for any other database."""
    for prefix in ("sqlite+pysqlite:///", "sqlite:///"):
        if database_url.startswith(prefix):
            return Path(database_url.removeprefix(prefix))
    return None


_NO_UPDATE = (
    "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused'); END"
)


def tamper_entry(db: Path, action: str = "alias.set") -> tuple[int, str | None, str]:
    """Rewrite the ``after`` document of the last ``action`` entry in place.

    Returns ``(seq, original after_json, forged after_json)`` so the row can be restored.
    """
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT seq, after_json FROM audit_entries WHERE action = ? ORDER BY seq DESC LIMIT 1",
            (action,),
        ).fetchone()
        if row is None:
            raise DemoError(f"the audit trail has no '{action}' entry to tamper with")
        seq, original = row
        forged = '{"version_id":999999}'
        conn.execute("DROP TRIGGER IF EXISTS audit_entries_no_update")
        conn.execute("UPDATE audit_entries SET after_json = ? WHERE seq = ?", (forged, seq))
    return int(seq), original, forged


def restore_entry(db: Path, seq: int, after_json: str | None) -> None:
    """Put an entry's ``after`` document back as it was, and the append-only trigger."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_entries SET after_json = ? WHERE seq = ?", (after_json, seq))
        conn.execute(_NO_UPDATE)


def _verify(ctx: DemoContext) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # --local: check the database file itself, the one the intruder edits.
        [sys.executable, "-m", "millwright", "hub", "audit", "verify", "--local"],
        cwd=ctx.workdir,
        env=ctx.env,
        capture_output=True,
        text=True,
        check=False,
    )


def verify_and_tamper_audit(ctx: DemoContext) -> None:
    """``audit verify`` passes and prints the head; an edited row then makes it fail."""
    intact = _verify(ctx)
    if intact.returncode != 0:
        raise DemoError(f"the audit chain should verify: {intact.stderr.strip()}")
    ctx.console.print(intact.stdout.strip())
    url = ctx.env.get("MILLWRIGHT_HUB_DATABASE_URL") or ctx.env.get("MILLWRIGHT_DATABASE_URL", "")
    db = sqlite_path(url)
    if db is None:
        ctx.console.print("hub database is not SQLite: the tamper demonstration is skipped")
        return
    seq, original, forged = tamper_entry(db)
    ctx.console.print(
        f"[yellow]dropped the append-only trigger and edited audit entry {seq} directly in "
        f"{db.name}[/yellow]: after {original} "
        f"-> {forged}"
    )
    try:
        broken = _verify(ctx)
    finally:
        restore_entry(db, seq, original)
    if broken.returncode == 0 or f"entry {seq}" not in broken.stderr:
        raise DemoError(f"audit verify should have named entry {seq}: {broken.stderr.strip()}")
    ctx.console.print(f"[red]{broken.stderr.strip()}[/red] (exit {broken.returncode})")
    ctx.console.print(f"entry {seq} restored")
