"""Sparkplug B payloads: the message types of Eclipse Tahu's ``sparkplug_b.proto``, and decoding.

No ``protoc`` is available where Millwright is built, so the descriptor of
``org.eclipse.tahu.protobuf.Payload`` is declared here with ``descriptor_pb2``, field by field
with the names, numbers and types of the Sparkplug B specification (Eclipse Tahu, EPL-2.0), and
the protobuf runtime builds the message classes from it. The wire format is therefore the one
every Sparkplug B edge node speaks; DataSet and Template values (fields 17 and 18 of a metric)
are not declared and are kept as unknown fields, so a metric carrying one reads as no value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"
_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
# Sparkplug B data type numbers (the comment block of the schema's Payload message).
DATATYPES = {
    "Int8": 1, "Int16": 2, "Int32": 3, "Int64": 4, "UInt8": 5, "UInt16": 6, "UInt32": 7,
    "UInt64": 8, "Float": 9, "Double": 10, "Boolean": 11, "String": 12, "DateTime": 13,
    "Text": 14, "UUID": 15, "DataSet": 16, "Bytes": 17, "File": 18, "Template": 19,
}  # fmt: skip
_SIGNED_32 = {1: 8, 2: 16, 3: 32}  # Int8/16/32 ride in uint32 as two's complement
_SIGNED_64 = {4}


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: int,
    *,
    label: int = _OPT,
    type_name: str | None = None,
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name is not None:
        f.type_name = f".{PACKAGE}.Payload.{type_name}"
    if oneof is not None:
        f.oneof_index = oneof


def _value_oneof(msg: descriptor_pb2.DescriptorProto, first: int, names: list[str]) -> None:
    """Declare the scalar members of a ``value`` oneof, numbered from ``first``."""
    msg.oneof_decl.add(name="value")
    types = {
        "int_value": _F.TYPE_UINT32, "long_value": _F.TYPE_UINT64, "float_value": _F.TYPE_FLOAT,
        "double_value": _F.TYPE_DOUBLE, "boolean_value": _F.TYPE_BOOL,
        "string_value": _F.TYPE_STRING, "bytes_value": _F.TYPE_BYTES,
    }  # fmt: skip
    for i, name in enumerate(names):
        _field(msg, name, first + i, types[name], oneof=0)


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="millwright/sparkplug_b.proto", package=PACKAGE, syntax="proto2"
    )
    payload = fd.message_type.add(name="Payload")
    scalars = ["int_value", "long_value", "float_value", "double_value", "boolean_value",
               "string_value"]  # fmt: skip

    prop_value = payload.nested_type.add(name="PropertyValue")
    _field(prop_value, "type", 1, _F.TYPE_UINT32)
    _field(prop_value, "is_null", 2, _F.TYPE_BOOL)
    _value_oneof(prop_value, 3, scalars)
    _field(prop_value, "propertyset_value", 9, _F.TYPE_MESSAGE, type_name="PropertySet", oneof=0)

    prop_set = payload.nested_type.add(name="PropertySet")
    _field(prop_set, "keys", 1, _F.TYPE_STRING, label=_REP)
    _field(prop_set, "values", 2, _F.TYPE_MESSAGE, label=_REP, type_name="PropertyValue")

    meta = payload.nested_type.add(name="MetaData")
    for number, (name, ftype) in enumerate(
        [
            ("is_multi_part", _F.TYPE_BOOL),
            ("content_type", _F.TYPE_STRING),
            ("size", _F.TYPE_UINT64),
            ("seq", _F.TYPE_UINT64),
            ("file_name", _F.TYPE_STRING),
            ("file_type", _F.TYPE_STRING),
            ("md5", _F.TYPE_STRING),
            ("description", _F.TYPE_STRING),
        ],  # fmt: skip
        start=1,
    ):
        _field(meta, name, number, ftype)

    metric = payload.nested_type.add(name="Metric")
    _field(metric, "name", 1, _F.TYPE_STRING)
    _field(metric, "alias", 2, _F.TYPE_UINT64)
    _field(metric, "timestamp", 3, _F.TYPE_UINT64)
    _field(metric, "datatype", 4, _F.TYPE_UINT32)
    _field(metric, "is_historical", 5, _F.TYPE_BOOL)
    _field(metric, "is_transient", 6, _F.TYPE_BOOL)
    _field(metric, "is_null", 7, _F.TYPE_BOOL)
    _field(metric, "metadata", 8, _F.TYPE_MESSAGE, type_name="MetaData")
    _field(metric, "properties", 9, _F.TYPE_MESSAGE, type_name="PropertySet")
    _value_oneof(metric, 10, [*scalars, "bytes_value"])

    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(payload, "metrics", 2, _F.TYPE_MESSAGE, label=_REP, type_name="Metric")
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    return fd


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
#: The ``Payload`` message class (``Payload.Metric`` etc. are its nested classes).
Payload: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.Payload"))


class SparkplugError(ValueError):
    """A payload that is not a Sparkplug B message, or a metric the line cannot use."""


@dataclass(frozen=True)
class MetricValue:
    """One decoded metric: its value (None when null), engineering unit, timestamp (ms)."""

    value: Any
    unit: str | None
    timestamp_ms: int | None


def _metric_value(metric: Any) -> Any:
    if metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(metric, kind)
    dtype = metric.datatype
    if kind == "int_value" and dtype in _SIGNED_32:
        bits = _SIGNED_32[dtype]
        value &= (1 << bits) - 1
        if value >= 1 << (bits - 1):
            value -= 1 << bits
    elif kind == "long_value" and dtype in _SIGNED_64 and value >= 1 << 63:
        value -= 1 << 64
    elif kind == "bytes_value":
        raise SparkplugError(f"metric {metric.name or metric.alias} carries bytes")
    return value


def _unit(metric: Any) -> str | None:
    props = metric.properties
    for key, value in zip(props.keys, props.values, strict=False):
        if key == "engUnit" and value.WhichOneof("value") == "string_value":
            return str(value.string_value)
    return None


def decode(raw: bytes, aliases: dict[int, str] | None = None) -> dict[str, MetricValue]:
    """Decode a Sparkplug B payload into metric name → value.

    A BIRTH message binds aliases to names; pass the same ``aliases`` dict to every call of a
    device so that later DATA messages carrying only aliases decode by name.

    Raises
    ------
    SparkplugError
        If the bytes are not a Payload or a metric has neither a known name nor alias.
    """
    msg = Payload()
    try:
        msg.ParseFromString(raw)
    except Exception as exc:  # protobuf raises DecodeError (a Message error) on bad bytes
        raise SparkplugError(f"not a Sparkplug B payload: {exc}") from None
    aliases = {} if aliases is None else aliases
    out: dict[str, MetricValue] = {}
    for metric in msg.metrics:
        name = metric.name
        if name and metric.HasField("alias"):
            aliases[int(metric.alias)] = name
        elif not name and metric.HasField("alias"):
            name = aliases.get(int(metric.alias), "")
        if not name:
            raise SparkplugError(f"metric with unknown alias {metric.alias}")
        ts = int(metric.timestamp) if metric.HasField("timestamp") else None
        out[name] = MetricValue(_metric_value(metric), _unit(metric), ts)
    return out


def encode(
    values: dict[str, Any], *, timestamp_ms: int, seq: int = 0, units: dict[str, str] | None = None
) -> bytes:
    """Build a Sparkplug B DATA payload of named metrics (Double, Int64, Boolean or String).

    Used by tests, the benchmark and anyone wiring a simulated edge node.
    """
    msg = Payload(timestamp=timestamp_ms, seq=seq)
    for name, value in values.items():
        metric = msg.metrics.add(name=name, timestamp=timestamp_ms)
        if isinstance(value, bool):
            metric.datatype, metric.boolean_value = DATATYPES["Boolean"], value
        elif isinstance(value, int):
            metric.datatype, metric.long_value = DATATYPES["Int64"], value % (1 << 64)
        elif isinstance(value, float):
            metric.datatype, metric.double_value = DATATYPES["Double"], value
        elif isinstance(value, str):
            metric.datatype, metric.string_value = DATATYPES["String"], value
        elif value is None:
            metric.datatype, metric.is_null = DATATYPES["Double"], True
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as a Sparkplug metric")
        unit = (units or {}).get(name)
        if unit is not None:
            metric.properties.keys.append("engUnit")
            metric.properties.values.add(type=DATATYPES["String"], string_value=unit)
    data: bytes = msg.SerializeToString()
    return data
