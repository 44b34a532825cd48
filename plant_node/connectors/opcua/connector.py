"""OPC UA connector: data-change subscriptions on a PLC's nodes; answers written back to it.

One reading is assembled from the configured nodes' values that share a source timestamp (a
PLC writes one scan's tags with one timestamp). Each answer writes the prediction, the alarm,
the model version and the prediction id to the configured output nodes. When the server goes
away (the watchdog notices within ``watchdog_s``), the connector reconnects with backoff and
subscribes again; the server's snapshot of values sent on subscribing is not scored twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto import security_policies

from plant_node.connectors.base import Connector
from plant_node.connectors.flows import Answer, LineFlows
from plant_node.connectors.mapping import OpcuaConnectorConfig
from plant_node.connectors.readings import INCOMPLETE, Reading, Rejected, build_record
from plant_node.db import utcnow

_POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128Sha256RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256Sha256RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
# Source timestamps of partial readings held at once; past it the oldest is quarantined.
MAX_PARTIAL = 1024
SWEEP_S = 0.25


class _Assembler:
    """Node values grouped by source timestamp into complete readings."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.partial: OrderedDict[datetime, tuple[float, dict[str, Any]]] = OrderedDict()

    def add(self, ts: datetime, field: str, value: Any) -> dict[str, Any] | None:
        first, values = self.partial.get(ts) or (time.monotonic(), {})
        values[field] = value
        if len(values) == len(self.fields):
            self.partial.pop(ts, None)
            return values
        self.partial[ts] = (first, values)
        return None

    def expired(self, older_than: float) -> list[tuple[datetime, dict[str, Any]]]:
        out = []
        while self.partial:
            ts, (first, values) = next(iter(self.partial.items()))
            if first > older_than and len(self.partial) <= MAX_PARTIAL:
                break
            self.partial.popitem(last=False)
            out.append((ts, values))
        return out


class OpcuaConnector(Connector):
    """One line's OPC UA server session.

    Parameters
    ----------
    flows
        The line's scoring flows.
    config
        The ``opcua`` section of the line's mapping.
    """

    kind = "opcua"

    def __init__(self, flows: LineFlows, config: OpcuaConnectorConfig) -> None:
        super().__init__(flows, config.endpoint)
        self.config = config
        self._field_of: dict[ua.NodeId, str] = {}
        self._assembler = _Assembler(list(config.fields))
        self._latest: Answer | None = None
        self._wake = asyncio.Event()
        self._last_scored: datetime | None = None
        self._subscribed_at: datetime = utcnow()
        self.resubscribes = 0

    def backoff(self) -> tuple[float, float]:
        """Reconnect delays of the mapping."""
        return self.config.backoff.initial_s, self.config.backoff.max_s

    def pending_answers(self) -> int:
        """1 while an answer waits to be written."""
        return int(self._latest is not None)

    async def _client(self) -> Client:
        cfg = self.config
        client = Client(cfg.endpoint, timeout=5.0, watchdog_intervall=cfg.watchdog_s)
        if cfg.username is not None:
            client.set_user(cfg.username)
        if cfg.password is not None:
            client.set_password(cfg.password.get_secret_value())
        sec = cfg.security
        if sec is not None:
            client.application_uri = sec.application_uri
            await client.set_security(
                _POLICIES[sec.policy],
                certificate=str(sec.certificate),
                private_key=str(sec.private_key),
                server_certificate=str(sec.server_certificate) if sec.server_certificate else None,
                mode=getattr(ua.MessageSecurityMode, sec.mode),
            )
        return client

    async def _session(self, first: bool) -> None:
        cfg = self.config
        client = await self._client()
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            self.status.error(f"connection lost: {type(exc).__name__}: {exc}")
            lost.set()

        client.connection_lost_callback = on_lost
        await client.connect()
        tasks: list[asyncio.Task[None]] = []
        try:
            nodes = [client.get_node(f.source) for f in cfg.fields.values()]
            self._field_of = {n.nodeid: name for n, name in zip(nodes, cfg.fields, strict=True)}
            outputs = {
                name: client.get_node(node_id)
                for name, node_id in cfg.outputs.model_dump().items()
                if node_id is not None
            }
            self._subscribed_at = utcnow()
            subscription = await client.create_subscription(cfg.publishing_interval_ms, self)
            # Trigger on the timestamp too: a tag that keeps its value in a new scan still
            # belongs to that scan's reading (asyncua's public helper takes no filter).
            await subscription._subscribe(
                nodes,
                mfilter=ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp),
                queuesize=256,
                sampling_interval=ua.Double(0),
            )
            self.mark_connected(reconnect=not first)
            if not first:
                self.resubscribes += 1
            tasks = [
                asyncio.create_task(self._writer(client, outputs)),
                asyncio.create_task(self._sweeper()),
            ]
            waits = [asyncio.create_task(self._stop.wait()), asyncio.create_task(lost.wait())]
            done, _ = await asyncio.wait([*waits, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            for t in tasks:
                if t in done and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            if lost.is_set():
                raise ConnectionError(f"lost {cfg.endpoint}")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await asyncio.wait_for(client.disconnect(), timeout=2.0)
            except Exception:  # noqa: BLE001 - the server is usually gone already
                pass

    # -- asyncua subscription handler --------------------------------------------------------

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        """Assemble readings from value changes (asyncua calls this for each)."""
        field = self._field_of.get(node.nodeid)
        if field is None:
            return
        dv = data.monitored_item.Value
        ts = dv.SourceTimestamp or dv.ServerTimestamp or utcnow()
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        values = self._assembler.add(ts, field, val)
        if values is None:
            return
        if self._last_scored is not None and ts <= self._last_scored:
            return  # the snapshot the server sends on (re)subscribing: already scored
        self._last_scored = ts
        sources = {self.config.fields[f].source: (v, None) for f, v in values.items()}
        try:
            record = build_record(self.config, sources)
        except Rejected as exc:
            self.reject(exc, {"source_timestamp": ts.isoformat(), "values": _jsonable(values)})
            return
        meta = {"source_timestamp": ts.isoformat()}
        self.offer(Reading(record, self.config.endpoint, meta=meta, stamp=ts))

    def status_change_notification(self, status: Any) -> None:
        """Record a subscription status change reported by the server."""
        self.status.error(f"subscription status: {status}")

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            older = time.monotonic() - self.config.assembly_timeout_s
            for ts, values in self._assembler.expired(older):
                if ts < self._subscribed_at:
                    continue  # part of the server's snapshot, not a reading of this session
                missing = sorted(set(self.config.fields) - set(values))
                self.reject(
                    Rejected(INCOMPLETE, f"no value of {missing} at {ts.isoformat()}"),
                    {"source_timestamp": ts.isoformat(), "values": _jsonable(values)},
                )

    # -- answers ----------------------------------------------------------------------------

    def deliver(self, answers: list[Answer]) -> None:
        """Keep the newest answer for the writer (a PLC tag holds the latest value only)."""
        self._latest = answers[-1]
        self.status.counts["superseded"] = self.status.counts.get("superseded", 0) + (
            len(answers) - 1
        )
        self._wake.set()

    async def _writer(self, client: Client, outputs: dict[str, Node]) -> None:
        while True:
            if self._latest is None:
                self._wake.clear()
                await self._wake.wait()
            answer = self._latest
            if answer is None:
                continue
            p = answer.prediction
            typed = {
                "prediction": ua.Variant(float(p["score"]), ua.VariantType.Double),
                "alarm": ua.Variant(bool(answer.alarm), ua.VariantType.Boolean),
                "version": ua.Variant(str(p["model_version"]), ua.VariantType.String),
                "prediction_id": ua.Variant(str(p["prediction_id"]), ua.VariantType.String),
            }
            names = list(outputs)
            # Stamped with the reading's source timestamp: the PLC sees which scan it answers.
            ts: Any = answer.reading.stamp  # None for readings from another connector
            if names:
                await client.write_values(
                    [outputs[n] for n in names],
                    [ua.DataValue(typed[n], SourceTimestamp=ts) for n in names],
                )
            if self._latest is answer:
                self._latest = None
            self.status.counts["published"] += 1
            self.record_lag(answer)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, int | float | str | bool | None) else repr(v)
            for k, v in values.items()}  # fmt: skip
