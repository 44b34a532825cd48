"""The mapping file of one line (YAML, validated): where readings come from, where answers go.

One file describes one line: the baseline it feeds, the contract fields each reading fills,
and one or both connectors (``mqtt``, ``opcua``) with their security, outputs and buffering.
``docs/connectors.md`` documents every key with a full example of each connector.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from federation.errors import InvalidInput

ContractField = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
_MQTT_WILDCARD = re.compile(r"[#+]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Buffering(_Strict):
    """Bounds of what a connector holds while its peer is away or the node is behind.

    ``max_pending`` answers (predictions, alerts) wait for the broker or server; past it the
    oldest is dropped, counted, and an alert is queued for the hub. ``max_batch`` readings are
    scored in one model call when they arrive together (a burst); ``max_queue`` readings wait
    to be scored, past which new readings are dropped and counted (back-pressure).
    ``linger_ms`` waits that long after a burst's first reading for more (0: score at once).
    """

    max_pending: int = Field(default=10_000, ge=1, le=1_000_000)
    max_queue: int = Field(default=5_000, ge=1, le=1_000_000)
    max_batch: int = Field(default=64, ge=1, le=1024)
    linger_ms: float = Field(default=0.0, ge=0.0, le=1000.0)


class Backoff(_Strict):
    """Reconnect delays: ``initial_s`` doubling up to ``max_s`` (with up to 20% jitter)."""

    initial_s: float = Field(default=0.2, gt=0, le=60)
    max_s: float = Field(default=10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be at least initial_s")
        return self


class FieldSource(_Strict):
    """Where one contract field comes from and the unit it must arrive in.

    ``source`` is a JSON key (dots walk into objects), a Sparkplug B metric name, or an OPC UA
    node id, depending on the connector. A payload that states another unit (a JSON
    ``{"value": .., "unit": ..}`` object, a Sparkplug ``engUnit`` property) is quarantined.
    """

    source: str = Field(min_length=1, max_length=256)
    unit: str | None = Field(default=None, max_length=32)


def _sources(raw: dict[str, Any]) -> dict[str, Any]:
    # A bare string is shorthand for {"source": <string>}.
    return {k: {"source": v} if isinstance(v, str) else v for k, v in raw.items()}


class Fields(_Strict):
    """Contract field → source, plus constants every reading of the line shares."""

    fields: dict[ContractField, FieldSource] = Field(min_length=1, max_length=256)
    constants: dict[ContractField, str | int | float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("fields"), dict):
            return {**data, "fields": _sources(data["fields"])}
        return data

    @model_validator(mode="after")
    def _disjoint(self) -> Fields:
        both = set(self.fields) & set(self.constants)
        if both:
            raise ValueError(f"fields and constants both set {sorted(both)}")
        for name, value in self.constants.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"constant {name} is not a finite number")
        return self


class MqttTls(_Strict):
    """TLS to the broker: CA bundle, optional client certificate and key (mutual TLS)."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> MqttTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttTopic(Fields):
    """One subscribed topic: its payload format and the fields a message fills.

    ``echo`` names payload keys (JSON) or metrics (Sparkplug B) copied into the answer as they
    came, so the MES can match an answer to its part (a serial number, a sequence number).
    """

    topic: str = Field(min_length=1, max_length=512)
    format: Literal["json", "sparkplug_b"] = "json"
    echo: list[str] = Field(default_factory=list, max_length=16)


class MqttConnectorConfig(_Strict):
    """An MQTT 5 connection with a persistent session (QoS 1 both ways).

    Without ``topics`` the connection only publishes the answers of the line's other
    connector (an OPC UA line whose predictions the MES reads over MQTT).
    """

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTls | None = None
    keepalive_s: int = Field(default=30, ge=2, le=3600)
    session_expiry_s: int = Field(default=3600, ge=0, le=2**32 - 1)
    topics: list[MqttTopic] = Field(default_factory=list, max_length=64)
    result_topic: str = Field(min_length=1, max_length=512)
    alert_topic: str | None = Field(default=None, min_length=1, max_length=512)
    backoff: Backoff = Backoff()

    @model_validator(mode="after")
    def _topics(self) -> MqttConnectorConfig:
        for name in ("result_topic", "alert_topic"):
            value = getattr(self, name)
            if value is not None and _MQTT_WILDCARD.search(value):
                raise ValueError(f"{name} {value!r} must not contain a wildcard")
        seen = [t.topic for t in self.topics]
        if len(set(seen)) != len(seen):
            raise ValueError("a topic is listed twice")
        if self.result_topic in seen or (self.alert_topic and self.alert_topic in seen):
            raise ValueError("the result and alert topics must not be subscribed topics")
        return self


class OpcuaSecurity(_Strict):
    """Secure channel: policy, mode and the client's certificate and key.

    ``server_certificate`` pins the server (recommended); without it the client reads the
    certificate from the server's endpoint list.
    """

    policy: Literal["Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"] = (
        "Basic256Sha256"
    )
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: Path
    private_key: Path
    server_certificate: Path | None = None
    application_uri: str = Field(default="urn:millwright:node", min_length=1, max_length=256)


class OpcuaOutputs(_Strict):
    """Node ids the connector writes after each prediction (any may be left out)."""

    prediction: str | None = None
    alarm: str | None = None
    version: str | None = None
    prediction_id: str | None = None


class OpcuaConnectorConfig(Fields):
    """A client session with one data-change subscription over the configured nodes.

    Readings are assembled from the nodes' values sharing one source timestamp; a reading
    whose nodes have not all changed within ``assembly_timeout_s`` is quarantined.
    """

    endpoint: str = Field(pattern=r"^opc\.tcp://")
    security: OpcuaSecurity | None = None
    username: str | None = None
    password: SecretStr | None = None
    publishing_interval_ms: float = Field(default=20.0, gt=0, le=60_000)
    assembly_timeout_s: float = Field(default=2.0, gt=0, le=600)
    watchdog_s: float = Field(default=1.0, gt=0, le=60)
    outputs: OpcuaOutputs = OpcuaOutputs()
    backoff: Backoff = Backoff()

    @model_validator(mode="after")
    def _node_ids(self) -> OpcuaConnectorConfig:
        ids = [f.source for f in self.fields.values()]
        if len(set(ids)) != len(ids):
            raise ValueError("two fields read the same node id")
        for node_id in [*ids, *(v for v in self.outputs.model_dump().values() if v)]:
            if not re.match(r"^(ns=\d+;)?[isgb]=.+$", node_id):
                raise ValueError(f"{node_id!r} is not an OPC UA node id (ns=<n>;s=<name>)")
        return self


class AlarmRule(_Strict):
    """When a prediction raises an alarm: a label of 1, or a score past a bound."""

    score_above: float | None = None
    score_below: float | None = None
    on_label: bool = True


class LineMapping(_Strict):
    """One line's mapping file.

    ``window`` keeps the last cycles of each ``unit`` and scores the unit's window on every
    reading (C-MAPSS); without it every reading is scored alone (AI4I). With ``cycle_field``,
    a reading that does not follow its unit's last cycle by one starts the window afresh
    (a quarantined cycle would otherwise leave a gap the contract rejects for a whole window).
    """

    line: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    baseline: str = Field(min_length=1, max_length=64)
    window: int | None = Field(default=None, ge=1, le=1024)
    unit_field: ContractField = "unit"
    cycle_field: ContractField | None = None
    max_units: int = Field(default=1000, ge=1, le=100_000)
    alarm: AlarmRule = AlarmRule()
    buffer: Buffering = Buffering()
    mqtt: MqttConnectorConfig | None = None
    opcua: OpcuaConnectorConfig | None = None

    @model_validator(mode="after")
    def _some_connector(self) -> LineMapping:
        if self.mqtt is None and self.opcua is None:
            raise ValueError("configure at least one connector (mqtt, opcua)")
        if self.opcua is None and self.mqtt is not None and not self.mqtt.topics:
            raise ValueError("nothing feeds the line: give mqtt topics or an opcua section")
        if self.window is not None:
            for fields in self._field_sets():
                if self.unit_field not in fields.fields and self.unit_field not in (
                    fields.constants
                ):
                    raise ValueError(f"a windowed line needs the {self.unit_field!r} field")
        return self

    def _field_sets(self) -> list[Fields]:
        sets: list[Fields] = list(self.mqtt.topics) if self.mqtt else []
        return [*sets, *([self.opcua] if self.opcua else [])]


def parse_mapping(data: Any, *, origin: str = "mapping") -> LineMapping:
    """Validate a parsed mapping document.

    Raises
    ------
    InvalidInput
        With one entry per problem (``field`` is the dotted key path).
    """
    try:
        return LineMapping.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(root)", "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidInput(f"{origin} is not a valid line mapping", errors=errors) from None


def load_mapping(path: Path) -> LineMapping:
    """Read and validate a YAML mapping file; relative certificate paths are the file's.

    Raises
    ------
    InvalidInput
        If the file is not YAML or not a valid mapping.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"cannot read mapping {path}: {exc}", errors=[{"field": "(file)", "message": str(exc)}]
        ) from None
    mapping = parse_mapping(data, origin=str(path))
    return _resolve_paths(mapping, path.parent)


def _resolve_paths(mapping: LineMapping, base: Path) -> LineMapping:
    def fix(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else base / p

    update: dict[str, Any] = {}
    if mapping.opcua is not None and mapping.opcua.security is not None:
        sec = mapping.opcua.security
        changes = {
            k: fix(getattr(sec, k))
            for k in ("certificate", "private_key", "server_certificate")
            if fix(getattr(sec, k)) is not None
        }
        update["opcua"] = mapping.opcua.model_copy(
            update={"security": sec.model_copy(update=changes)}
        )
    if mapping.mqtt is not None and mapping.mqtt.tls is not None:
        tls = mapping.mqtt.tls
        changes = {
            k: fix(getattr(tls, k))
            for k in ("ca_file", "cert_file", "key_file")
            if fix(getattr(tls, k)) is not None
        }
        update["mqtt"] = mapping.mqtt.model_copy(update={"tls": tls.model_copy(update=changes)})
    return mapping.model_copy(update=update) if update else mapping
