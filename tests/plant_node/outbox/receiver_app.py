"""A stand-in for the hub's events endpoint, run as a separate process by the outbox tests.

It mirrors the hub's contract: ``POST /api/v1/plants/{plant_id}/events`` is idempotent by
event id (the ``Idempotency-Key`` header). Every accepted event is committed to a SQLite file
before the response, so the tests can read what the "hub" holds even after killing things.

Environment: ``RECEIVER_DB`` (SQLite path), ``RECEIVER_DELAY_S`` (sleep after committing,
before answering, so a killed sender often dies between "accepted" and "recorded"),
``RECEIVER_DUPLICATE_STATUS`` (200 or 409 for a key it already holds).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

DB_PATH = os.environ.get("RECEIVER_DB", "receiver.db")
DELAY_S = float(os.environ.get("RECEIVER_DELAY_S", "0"))
DUPLICATE_STATUS = int(os.environ.get("RECEIVER_DUPLICATE_STATUS", "200"))

_lock = threading.Lock()
_conn = sqlite3.connect(DB_PATH, check_same_thread=False, isolation_level=None)
_conn.execute("PRAGMA journal_mode=WAL")
_conn.execute(
    "CREATE TABLE IF NOT EXISTS accepted (n INTEGER PRIMARY KEY AUTOINCREMENT, "
    "event_id TEXT UNIQUE NOT NULL, plant_id TEXT, stream TEXT, seq INTEGER, body TEXT)"
)
_conn.execute("CREATE TABLE IF NOT EXISTS requests (n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT)")

app = FastAPI()


@app.post("/api/v1/plants/{plant_id}/events")
async def receive(
    plant_id: str, request: Request, idempotency_key: str = Header(...)
) -> JSONResponse:
    body: dict[str, Any] = await request.json()
    assert body["event_id"] == idempotency_key
    with _lock:
        _conn.execute("INSERT INTO requests (key) VALUES (?)", (idempotency_key,))
        try:
            _conn.execute(
                "INSERT INTO accepted (event_id, plant_id, stream, seq, body) VALUES (?,?,?,?,?)",
                (idempotency_key, plant_id, body["stream"], body["seq"], json.dumps(body)),
            )
            status = 201
        except sqlite3.IntegrityError:
            status = DUPLICATE_STATUS
    if DELAY_S:
        time.sleep(DELAY_S)
    return JSONResponse({"event_id": idempotency_key, "duplicate": status != 201}, status)
