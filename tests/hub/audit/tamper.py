"""What an attacker with write access to the database does to the audit table.

Each attack first switches off the append-only triggers, as the database's owner can (on
PostgreSQL for its own transaction, on SQLite by dropping them): the triggers stop mistakes
and ordinary accounts, the hash chain is what catches the owner.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text

from hub.audit import chain


def unguard(conn: Connection) -> None:
    """Switch off the append-only triggers of ``audit_entries`` for ``conn``'s transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_delete"))


def edit(conn: Connection, seq: int) -> None:
    unguard(conn)
    conn.execute(text("UPDATE audit_entries SET reason = 'forged' WHERE seq = :s"), {"s": seq})


def edit_and_rehash(conn: Connection, seq: int) -> None:
    unguard(conn)
    row = chain.Row(*conn.execute(_ROW, {"s": seq}).one())
    forged = row._replace(actor="someone-else")
    digest = chain.entry_hash(forged.prev_hash, chain.body(*forged[:9]))
    conn.execute(
        text("UPDATE audit_entries SET actor = :a, entry_hash = :h WHERE seq = :s"),
        {"a": forged.actor, "h": digest, "s": seq},
    )


def delete(conn: Connection, seq: int) -> None:
    unguard(conn)
    conn.execute(text("DELETE FROM audit_entries WHERE seq = :s"), {"s": seq})


def insert(conn: Connection, seq: int) -> None:
    """Insert a well-formed forged entry at ``seq``, renumbering the entries after it."""
    unguard(conn)
    prev = conn.execute(_ROW, {"s": seq - 1}).one()
    conn.execute(text("UPDATE audit_entries SET seq = -seq WHERE seq >= :s"), {"s": seq})
    conn.execute(text("UPDATE audit_entries SET seq = 1 - seq WHERE seq < 0"))
    values = dict(
        seq=seq,
        at=prev.at,
        actor="admin:intruder",
        action="alias.set",
        subject="alias/fd001/turbofan-rul/champion",
        before_json=None,
        after_json='{"version_id":666}',
        reason=None,
        flags_json="[]",
    )
    digest = chain.entry_hash(prev.entry_hash, chain.body(**values))  # type: ignore[arg-type]
    conn.execute(
        text(
            "INSERT INTO audit_entries (seq, at, actor, action, subject, before_json, after_json,"
            " reason, flags_json, prev_hash, entry_hash) VALUES (:seq, :at, :actor, :action,"
            " :subject, :before_json, :after_json, :reason, :flags_json, :prev_hash, :entry_hash)"
        ),
        {**values, "prev_hash": prev.entry_hash, "entry_hash": digest},
    )


def reorder(conn: Connection, seq: int) -> None:
    """Swap entries ``seq`` and ``seq + 1``."""
    unguard(conn)
    conn.execute(text("UPDATE audit_entries SET seq = -1 WHERE seq = :s"), {"s": seq})
    conn.execute(text("UPDATE audit_entries SET seq = :s WHERE seq = :n"), {"s": seq, "n": seq + 1})
    conn.execute(text("UPDATE audit_entries SET seq = :n WHERE seq = -1"), {"n": seq + 1})


def truncate(conn: Connection, seq: int) -> None:
    """Cut the tail from ``seq`` on."""
    unguard(conn)
    conn.execute(text("DELETE FROM audit_entries WHERE seq >= :s"), {"s": seq})


_ROW = text(f"SELECT {', '.join(chain.COLUMNS)} FROM audit_entries WHERE seq = :s")

#: case -> (tamper, the kind verification must report, the seq it must name)
CASES: dict[str, tuple[Callable[[Connection, int], None], str, int]] = {
    "edit": (edit, "edited", 0),
    "edit_and_rehash": (edit_and_rehash, "edited", 0),
    "delete": (delete, "deleted", 0),
    "insert": (insert, "inserted", 0),
    "reorder": (reorder, "reordered", 0),
    "truncate": (truncate, "truncated", 0),
}
