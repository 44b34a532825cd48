"""MQTT connector: subscribe to a line's topics, score each message, publish answers with QoS 1.

The session is persistent (MQTT 5, ``clean_start`` false, a session expiry): while the node is
away, the broker keeps the QoS 1 readings of its subscriptions and delivers them when it
reconnects, with exponential backoff. Answers wait in a bounded buffer while the broker is
away; past the bound the oldest are dropped, counted, and an alert is queued for the hub. A bad
message is quarantined with its reason and never stops the subscriber.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import time
from collections import deque
from typing import Any

import aiomqtt
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plant_node.connectors.base import Connector
from plant_node.connectors.flows import Answer, LineFlows
from plant_node.connectors.mapping import MqttConnectorConfig, MqttTopic
from plant_node.connectors.mqtt import sparkplug
from plant_node.connectors.readings import (
    MALFORMED,
    Reading,
    Rejected,
    build_record,
    echoed,
    from_json,
    parse_json,
)
from plant_node.connectors.readings import preview as payload_preview

# Answers published concurrently (each waits for its PUBACK).
PUBLISH_WINDOW = 64
# Answers waiting this long with none acknowledged: the connection is treated as lost.
STALL_S = 5.0


def _tls_context(cfg: MqttConnectorConfig) -> ssl.SSLContext | None:
    if cfg.tls is None:
        return None
    ctx = ssl.create_default_context(cafile=str(cfg.tls.ca_file))
    if cfg.tls.cert_file is not None and cfg.tls.key_file is not None:
        ctx.load_cert_chain(str(cfg.tls.cert_file), str(cfg.tls.key_file))
    return ctx


def decode(
    topic: MqttTopic, payload: bytes, aliases: dict[int, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the contract record of one message of ``topic``, and the values it echoes.

    Raises
    ------
    Rejected
        If the payload is malformed or its values do not fit the mapping.
    """
    if topic.format == "json":
        doc = parse_json(payload)
        return from_json(topic, doc), echoed(doc, topic.echo)
    try:
        metrics = sparkplug.decode(payload, aliases)
    except sparkplug.SparkplugError as exc:
        raise Rejected(MALFORMED, str(exc)) from None
    record = build_record(topic, {name: (m.value, m.unit) for name, m in metrics.items()})
    return record, echoed({k: m.value for k, m in metrics.items()}, topic.echo)


class MqttConnector(Connector):
    """One line's MQTT broker connection.

    Parameters
    ----------
    flows
        The line's scoring flows.
    config
        The ``mqtt`` section of the line's mapping.
    """

    kind = "mqtt"

    def __init__(self, flows: LineFlows, config: MqttConnectorConfig) -> None:
        super().__init__(flows, f"mqtt://{config.host}:{config.port}")
        self.config = config
        self._out: deque[tuple[int, str, bytes]] = deque()
        self._lag_of: dict[int, Answer] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._aliases: dict[str, dict[int, str]] = {}
        self._topics = [(aiomqtt.Wildcard(t.topic), t) for t in config.topics]

    def backoff(self) -> tuple[float, float]:
        """Reconnect delays of the mapping."""
        return self.config.backoff.initial_s, self.config.backoff.max_s

    def pending_answers(self) -> int:
        """Answers waiting for the broker."""
        return len(self._out)

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.session_expiry_s
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=cfg.client_id,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password else None,
            protocol=aiomqtt.ProtocolVersion.V5,
            # Never clean: the broker keeps the session (and its queued QoS 1 readings)
            # across our reconnects and restarts for session_expiry_s.
            clean_start=False if cfg.session_expiry_s else MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
            keepalive=cfg.keepalive_s,
            tls_context=_tls_context(cfg),
            timeout=10.0,
            # Unbounded here: the receiver moves each message on at once, and the bound that
            # counts what it drops is ours (buffer.max_queue); aiomqtt's would drop silently.
            max_queued_incoming_messages=None,
        )

    async def _session(self, first: bool) -> None:
        async with self._client() as client:
            if self.config.topics:
                await client.subscribe([(t.topic, 1) for t in self.config.topics])
            self.mark_connected(reconnect=not first)
            tasks = [
                asyncio.create_task(self._receiver(client)),
                asyncio.create_task(self._publisher(client)),
                asyncio.create_task(self._watchdog()),
            ]
            stop = asyncio.create_task(self._stop.wait())
            try:
                done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in [*tasks, stop]:
                    task.cancel()
                await asyncio.gather(*tasks, stop, return_exceptions=True)
                self._salvage(client)
            for task in tasks:  # a lost connection ends both; re-raise for the backoff loop
                if task in done and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    async def _watchdog(self) -> None:
        """End a session whose answers stopped being acknowledged (a half-open connection).

        Seen after a broker restart under load: the client neither noticed the loss nor got
        PUBACKs. A new client resumes the session and publishes what is still buffered.
        """
        def progress() -> tuple[int, int]:  # a busy connection that still delivers is alive
            return self.status.counts["published"], self.status.counts["received"]

        published, since = progress(), time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            now = progress()
            if now != published or not self._out:
                published, since = now, time.monotonic()
            elif time.monotonic() - since > STALL_S:
                raise ConnectionError(f"no PUBACK for {STALL_S:.0f} s with answers waiting")

    def _salvage(self, client: aiomqtt.Client) -> None:
        """Take over what the ending client received and acknowledged but we had not read.

        paho acknowledges a QoS 1 message on arrival; those still in aiomqtt's queue when the
        session ends would be lost with the client object (the broker will not resend them).
        """
        pending = getattr(client, "_queue", None)
        while pending is not None:
            try:
                message = pending.get_nowait()
            except asyncio.QueueEmpty:
                break
            self._receive(str(message.topic), message.topic, message.payload)

    async def _receiver(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._receive(str(message.topic), message.topic, message.payload)
        raise ConnectionError("the broker closed the connection")

    def _receive(self, name: str, topic: aiomqtt.Topic, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
        spec = next((s for w, s in self._topics if topic.matches(w)), None)
        if spec is None:  # a topic of an older session's subscription: not ours any more
            return
        try:
            record, echo = decode(spec, bytes(raw), self._aliases.setdefault(name, {}))
        except Rejected as exc:
            self.reject(exc, {"topic": name, "payload": payload_preview(bytes(raw))})
            return
        self.offer(Reading(record, name, meta=echo))

    # -- answers ----------------------------------------------------------------------------

    def deliver(self, answers: list[Answer]) -> None:
        """Queue the answers' messages (result topic, and the alert topic on an alarm)."""
        line = self.line
        for answer in answers:
            body = answer.message(line)
            self._push(self.config.result_topic, json.dumps(body).encode(), answer)
            if answer.alarm and self.config.alert_topic:
                alert = {"kind": "prediction_alarm", **body}
                self._push(self.config.alert_topic, json.dumps(alert).encode(), None)
        self._wake.set()

    def _push(self, topic: str, payload: bytes, answer: Answer | None) -> None:
        if len(self._out) >= self.buffer.max_pending:
            dropped, _, _ = self._out.popleft()
            self._lag_of.pop(dropped, None)
            self.status.counts["dropped_answers"] += 1
            self._m_dropped_answer.inc()
            self.flows.alert(
                "connector_dropped",
                f"broker {self.status.peer} away: {self.buffer.max_pending} answers buffered, "
                f"older ones are being dropped ({self.status.counts['dropped_answers']} so far)",
                connector=self.kind,
            )
        seq = next(self._seq)
        self._out.append((seq, topic, payload))
        if answer is not None:
            self._lag_of[seq] = answer
        self._m_pending.set(len(self._out))

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            if not self._out:
                self._wake.clear()
                await self._wake.wait()
            batch = list(itertools.islice(self._out, PUBLISH_WINDOW))
            await asyncio.wait_for(
                asyncio.gather(*(client.publish(t, p, qos=1) for _, t, p in batch)),
                timeout=STALL_S * 2,
            )
            last = batch[-1][0]
            while self._out and self._out[0][0] <= last:  # the drop may have removed some
                seq, _, _ = self._out.popleft()
                answer = self._lag_of.pop(seq, None)
                if answer is not None:
                    self.record_lag(answer)
            self.status.counts["published"] += len(batch)
            self._m_pending.set(len(self._out))
