"""Mapping files: what a valid one reads as, and the error each kind of mistake gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation.errors import ErrorCode, InvalidInput
from plant_node.connectors.mapping import load_mapping, parse_mapping
from plant_node.connectors.mqtt import sparkplug
from plant_node.connectors.readings import UNIT_MISMATCH, Rejected, from_json
from tests.plant_node.connectors.conftest import AI4I_FIELDS, ai4i_line, write_mapping


def _errors(doc: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        parse_mapping(doc)
    assert info.value.code is ErrorCode.INVALID_INPUT
    return {e["field"]: e["message"] for e in info.value.errors}


def test_a_valid_mapping_reads_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    doc = ai4i_line("plant/x", 1883)
    doc["opcua"] = {
        "endpoint": "opc.tcp://plc:4840",
        "security": {"certificate": "certs/node.der", "private_key": "certs/node.pem"},
        "fields": {"torque_nm": "ns=2;s=Torque"},
    }
    mapping = load_mapping(write_mapping(tmp_path / "line.yaml", doc))
    assert mapping.mqtt is not None and mapping.opcua is not None
    assert mapping.mqtt.topics[0].fields["torque_nm"].source == "torque_nm"
    assert mapping.mqtt.session_expiry_s == 3600 and mapping.buffer.max_pending == 10_000
    assert mapping.opcua.security is not None
    assert mapping.opcua.security.certificate == tmp_path / "certs/node.der"
    assert mapping.opcua.security.mode == "SignAndEncrypt"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d.pop("mqtt"), "(root)", "at least one connector"),
        (lambda d: d["mqtt"].pop("client_id"), "mqtt.client_id", "Field required"),
        (lambda d: d["mqtt"].update(result_topic="a/#"), "mqtt", "wildcard"),
        (lambda d: d["mqtt"].update(qos=2), "mqtt.qos", "Extra inputs"),
        (lambda d: d["mqtt"]["topics"][0].update(format="xml"), "mqtt.topics.0.format", "json"),
        (lambda d: d["mqtt"]["topics"][0]["fields"].update({"Bad-Name": "x"}),
         "mqtt.topics.0.fields.Bad-Name.[key]", "pattern"),
        (lambda d: d["buffer"].update(max_pending=0), "buffer.max_pending", "greater than"),
        (lambda d: d.update(window=30), "(root)", "'unit' field"),
        (lambda d: d.update(opcua={"endpoint": "http://plc", "fields": {"a": "ns=2;s=A"}}),
         "opcua.endpoint", "pattern"),
        (lambda d: d.update(opcua={"endpoint": "opc.tcp://plc", "fields": {"a": "Torque"}}),
         "opcua", "not an OPC UA node id"),
    ],
)  # fmt: skip
def test_each_mistake_is_named(change: Any, field: str, message: str) -> None:
    doc = ai4i_line("plant/x", 1883)
    doc["buffer"] = {}
    change(doc)
    errors = _errors(doc)
    assert field in errors, errors
    assert message in errors[field]


def test_unreadable_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "line.yaml"
    path.write_text("line: [unclosed")
    with pytest.raises(InvalidInput):
        load_mapping(path)


def test_json_units_and_sparkplug_round_trip() -> None:
    topic = parse_mapping(ai4i_line("p", 1883)).mqtt.topics[0]  # type: ignore[union-attr]
    assert set(topic.fields) == set(AI4I_FIELDS)
    with pytest.raises(Rejected) as info:
        from_json(topic, json.dumps({
            "type": "L", "air": {"temperature": {"value": 20, "unit": "degC"}},
        }).encode())  # fmt: skip
    assert info.value.reason == UNIT_MISMATCH and info.value.field == "air_temperature_k"
    aliases: dict[int, str] = {}
    birth = sparkplug.Payload(timestamp=1)
    birth.metrics.add(name="torque", alias=7, datatype=sparkplug.DATATYPES["Int8"], int_value=251)
    decoded = sparkplug.decode(birth.SerializeToString(), aliases)
    assert decoded["torque"].value == -5 and aliases == {7: "torque"}  # Int8 two's complement
    data = sparkplug.Payload(timestamp=2)
    data.metrics.add(alias=7, datatype=sparkplug.DATATYPES["Double"], double_value=40.5)
    assert sparkplug.decode(data.SerializeToString(), aliases)["torque"].value == 40.5
    with pytest.raises(sparkplug.SparkplugError):
        sparkplug.decode(b"\xff\xff\xff")
