"""The chain's arithmetic: canonical entry text, entry hashes, and verification of a stream.

Pure functions over plain tuples (no database, no ORM), so the same code checks the
database, an export, or a page stream from the API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

#: ``prev_hash`` of the first entry.
GENESIS = "0" * 64

_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode
# The C string encoder json uses for ensure_ascii=False: same output as _encode on a str.
_string: Callable[[str], str] = json.encoder.encode_basestring


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 text, NaN and Infinity refused."""
    return _encode(value)


def format_time(at: dt.datetime) -> str:
    """ISO 8601 UTC with microseconds, the form an entry's time is hashed and stored in."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Row(NamedTuple):
    """An entry as stored, in column order."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    before_json: str | None
    after_json: str | None
    reason: str | None
    flags_json: str
    prev_hash: str
    entry_hash: str


#: Columns in :class:`Row` order (for queries that stream rows).
COLUMNS = Row._fields


def body(
    seq: int,
    at: str,
    actor: str,
    action: str,
    subject: str,
    before_json: str | None,
    after_json: str | None,
    reason: str | None,
    flags_json: str,
) -> str:
    """Return the entry's canonical JSON, equal to ``canonical()`` of its fields as one object.

    Built by concatenation from already-canonical parts: verification runs this once per
    entry, and re-encoding whole documents would dominate its cost.
    """
    return (
        f'{{"action":{_string(action)},"actor":{_string(actor)},'
        f'"after":{after_json or "null"},"at":"{at}","before":{before_json or "null"},'
        f'"flags":{flags_json},"reason":{"null" if reason is None else _string(reason)},'
        f'"seq":{seq},"subject":{_string(subject)}}}'
    )


def entry_hash(prev_hash: str, entry_body: str) -> str:
    """sha256 hex of the previous entry's hash followed by this entry's canonical JSON."""
    return hashlib.sha256((prev_hash + entry_body).encode()).hexdigest()


def _rehash(row: Row, seq: int) -> str:
    return entry_hash(
        row.prev_hash,
        body(
            seq,
            row.at,
            row.actor,
            row.action,
            row.subject,
            row.before_json,
            row.after_json,
            row.reason,
            row.flags_json,
        ),
    )


@dataclasses.dataclass(frozen=True)
class Verification:
    """What verifying a chain found.

    ``kind`` is ``edited``, ``deleted``, ``inserted``, ``reordered`` or ``truncated`` when
    ``ok`` is false; ``seq`` is the first entry concerned and ``problem`` says it in words.
    """

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    kind: str | None = None
    seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return dataclasses.asdict(self)


def verify(rows: Iterable[Sequence[Any]], expect_head: str | None = None) -> Verification:
    """Recompute the chain over ``rows`` (in ``seq`` order) and name the first break.

    Parameters
    ----------
    rows
        Every entry from the first, as tuples in :data:`COLUMNS` order.
    expect_head
        A head hash recorded earlier: it must still be in the chain (the chain may have
        grown since), otherwise the tail was cut or rewritten.

    Returns
    -------
    Verification
        ``ok`` with the head, or the first entry that was edited, deleted, inserted or
        reordered.
    """
    prev, prev2 = GENESIS, GENESIS
    expected = 1
    seen_head = expect_head is None
    sha256, string = hashlib.sha256, _string
    it = iter(rows)
    for r in it:
        # The hot loop: plain tuples and inlined hashing (this runs a million times).
        seq, at, actor, action, subject, before, after, reason, flags, prev_hash, stored = r
        digest = sha256(
            (
                f'{prev_hash}{{"action":{string(action)},"actor":{string(actor)},'
                f'"after":{after or "null"},"at":"{at}","before":{before or "null"},'
                f'"flags":{flags},"reason":{"null" if reason is None else string(reason)},'
                f'"seq":{seq},"subject":{string(subject)}}}'
            ).encode()
        ).hexdigest()
        if seq != expected or prev_hash != prev or digest != stored:
            following = next(it, None)
            return _broken(
                Row(*r),
                Row(*following) if following is not None else None,
                expected,
                prev,
                prev2,
                intact=digest == stored,
            )
        prev2, prev = prev, stored
        if not seen_head and prev == expect_head:
            seen_head = True
        expected += 1
    count = expected - 1
    if not seen_head:
        return Verification(
            False,
            count,
            count,
            prev,
            "truncated",
            expected,
            f"the recorded head {expect_head} is not in the chain: it now ends at entry "
            f"{count}, so entries from {expected} on were removed from the tail "
            "(or the chain was rewritten)",
        )
    return Verification(True, count, count, prev)


def _broken(
    row: Row, following: Row | None, expected: int, prev: str, prev2: str, *, intact: bool
) -> Verification:
    count = expected - 1

    def broken(kind: str, seq: int, problem: str) -> Verification:
        return Verification(False, count, count, prev, kind, seq, problem)

    if row.seq != expected:
        if row.seq > expected:
            missing = (
                f"entry {expected}"
                if row.seq == expected + 1
                else f"entries {expected}..{row.seq - 1}"
            )
            return broken(
                "deleted",
                expected,
                f"{missing} deleted: the chain jumps from entry {expected - 1} to entry {row.seq}",
            )
        return broken("reordered", row.seq, f"entry {row.seq} appears after entry {count}")
    return _diagnose(row, following, prev, prev2, intact, broken)


def _diagnose(
    row: Row,
    following: Row | None,
    prev: str,
    prev2: str,
    intact: bool,
    broken: Callable[[str, int, str], Verification],
) -> Verification:
    """Name what happened at the first entry that does not chain onto its predecessor."""
    seq = row.seq
    if (
        following is not None
        and following.prev_hash == prev
        and row.prev_hash == following.entry_hash
    ):
        return broken(
            "reordered",
            seq,
            f"entries {seq} and {seq + 1} were reordered "
            f"(entry {seq + 1} is the one that follows entry {seq - 1})",
        )
    if not intact and _rehash(row, seq + 1) == row.entry_hash:
        return broken(
            "deleted",
            seq,
            f"an entry was deleted before entry {seq + 1} and the entries after it "
            f"renumbered (entry {seq + 1} now has number {seq})",
        )
    if not intact and row.prev_hash == prev2 and _rehash(row, seq - 1) == row.entry_hash:
        return broken(
            "inserted",
            seq - 1,
            f"entry {seq - 1} was inserted: the entry that was {seq - 1} was renumbered "
            f"{seq} to make room",
        )
    if not intact:
        return broken(
            "edited", seq, f"entry {seq} was edited: its content no longer hashes to its hash"
        )
    return broken(
        "edited",
        seq - 1,
        f"entry {seq - 1} was edited and its hash recomputed: entry {seq} still names "
        "the original hash",
    )


def flags_text(flags: Sequence[str]) -> str:
    """Canonical text of an entry's flags (sorted, unique)."""
    return canonical(sorted(set(flags)))


def document_text(document: Mapping[str, Any] | None) -> str | None:
    """Canonical text of a before/after document, or None."""
    return None if document is None else canonical(dict(document))
