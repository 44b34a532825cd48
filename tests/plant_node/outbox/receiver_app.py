"""A stand-in for the hub's events endpoint, run as a separate process by the outbox tests.

It mirrors the hub's contract (``federation.schemas.events``): ``POST
/api/v1/plants/{plant_id}/events`` takes ``{"events": [{id, kind, occurred_at, payload}]}``,
stores the batch all-or-none, is idempotent by event id, and answers ``{"accepted",
"duplicates"}``. Every accepted event is committed to a SQLite file before the response, so
the tests can read what the "hub" holds even after killing things.

Environment: ``RECEIVER_DB`` (SQLite path), ``RECEIVER_DELAY_S`` (sleep after committing,
before answering, so a killed sender often dies between "accepted" and "recorded"),
``RECEIVER_DUPLICATE_STATUS`` (200, like the hub, or 409 for a batch of known ids only).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
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
async def receive(plant_id: str, request: Request) -> JSONResponse:
    body: dict[str, Any] = await request.json()
    accepted, duplicates = 0, []
    with _lock:
        _conn.execute("BEGIN IMMEDIATE")
        for event in body["events"]:
            _conn.execute("INSERT INTO requests (key) VALUES (?)", (event["id"],))
            outbox = event["payload"]["outbox"]
            try:
                _conn.execute(
                    "INSERT INTO accepted (event_id, plant_id, stream, seq, body) "
                    "VALUES (?,?,?,?,?)",
                    (event["id"], plant_id, outbox["stream"], outbox["seq"], json.dumps(event)),
                )
                accepted += 1
            except sqlite3.IntegrityError:
                duplicates.append(event["id"])
        _conn.execute("COMMIT")
    if DELAY_S:
        time.sleep(DELAY_S)
    status = DUPLICATE_STATUS if duplicates and not accepted else 200
    return JSONResponse({"accepted": accepted, "duplicates": duplicates}, status)
