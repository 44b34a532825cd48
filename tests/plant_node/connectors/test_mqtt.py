"""MQTT connector inside the node: good, bad and Sparkplug B messages; reconnect; broker down."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from plant_node.config import NodeSettings
from plant_node.connectors.mqtt import sparkplug
from plant_node.main import create_app
from tests.plant_node.connectors.conftest import (
    SHARED_BROKER,
    ai4i_line,
    ai4i_message,
    wait_for,
    write_mapping,
)
from tests.plant_node.connectors.peers import Mosquitto
from tests.plant_node.keys import auth
from tests.plant_node.serving.conftest import logistic_score


def _connected(client: TestClient) -> bool:
    items = client.get("/v1/connectors").json()["connectors"]
    return bool(items) and all(c["state"] == "connected" for c in items)


def _metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _app(settings: NodeSettings, mapping: Path) -> TestClient:
    return TestClient(
        create_app(settings.model_copy(update={"connectors": [mapping]})), headers=auth()
    )


def test_good_bad_and_sparkplug_messages(
    served_settings: NodeSettings,
    tmp_path: Path,
    prefix: str,
    ai4i_records: list[dict[str, Any]],
    ai4i_state: Any,
    listener_factory: Any,
) -> None:
    mapping = write_mapping(tmp_path / "line.yaml", ai4i_line(prefix, SHARED_BROKER[1]))
    peer = listener_factory(SHARED_BROKER[1], [f"{prefix}/predictions", f"{prefix}/alerts"])
    with _app(served_settings, mapping) as client:
        wait_for(lambda: _connected(client))
        record = ai4i_records[0]
        peer.publish(f"{prefix}/parts/station-1", json.dumps(ai4i_message(record)))
        topic, answer = peer.next()
        assert topic == f"{prefix}/predictions"
        assert answer["line"] == "mill-l" and answer["source"] == f"{prefix}/parts/station-1"
        assert answer["score"] == pytest.approx(logistic_score(ai4i_state, record), abs=1e-4)
        # The same prediction, by the same id, is in the node's prediction log.
        logged = client.get(f"/v1/predictions/{answer['prediction_id']}").json()
        assert logged["inputs"] == record
        assert logged["score"] == answer["score"]

        bad = {
            "malformed_payload": b"{not json",
            "not_finite": json.dumps({**ai4i_message(record), "torque_nm": float("nan")}),
            "wrong_type": json.dumps({**ai4i_message(record), "torque_nm": [1, 2]}),
            "unit_mismatch": json.dumps(
                {**ai4i_message(record), "air": {"temperature": {"value": 25, "unit": "degC"}}}
            ),
            "missing_field": json.dumps({"type": "L"}),
            "contract_violation": json.dumps({**ai4i_message(record), "torque_nm": 900.0}),
        }
        for payload in bad.values():
            peer.publish(f"{prefix}/parts/station-2", payload)
        # The subscriber is alive after them: a good message (Sparkplug B this time) scores.
        metrics = {k: v for k, v in record.items() if k != "air_temperature_k"}
        metrics["air.temperature"] = record["air_temperature_k"]
        spb = sparkplug.encode(metrics, timestamp_ms=1, units={"air.temperature": "K"})
        peer.publish(f"{prefix}/spb", spb)
        topic, answer = peer.next()
        assert topic == f"{prefix}/predictions" and answer["source"] == f"{prefix}/spb"
        assert answer["score"] == pytest.approx(logistic_score(ai4i_state, record), abs=1e-4)

        for reason in bad:
            assert _metric(
                client, "millwright_node_connector_quarantined_total",
                line="mill-l", connector="mqtt", reason=reason,
            ) == 1.0, reason  # fmt: skip
        assert _metric(client, "millwright_node_quarantined_batches_total", baseline="ai4i") == 6
        status = client.get("/v1/connectors").json()["connectors"][0]
        assert status["counts"]["predicted"] == 2 and status["counts"]["quarantined"] == 6
        assert status["counts"]["received"] == 8
        assert status["lag_ms"]["p99"] is not None and status["last_error"]


def test_reconnects_and_receives_what_was_sent_while_away(
    served_settings: NodeSettings,
    tmp_path: Path,
    prefix: str,
    ai4i_records: list[dict[str, Any]],
    listener_factory: Any,
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        doc = ai4i_line(prefix, broker.port)
        doc["mqtt"]["backoff"] = {"initial_s": 1.0, "max_s": 1.0}  # away long enough to publish
        mapping = write_mapping(tmp_path / "line.yaml", doc)
        with _app(served_settings, mapping) as client:
            wait_for(lambda: _connected(client))
            broker.stop()
            wait_for(lambda: not _connected(client))
            broker.start()  # same port, sessions restored from its persistence file
            peer = listener_factory(broker.port, [f"{prefix}/predictions"])
            for record in ai4i_records[:5]:  # QoS 1, while the node is still backing off
                peer.publish(f"{prefix}/parts/s1", json.dumps(ai4i_message(record)))
            assert not _connected(client)  # all five reached the broker while the node was away
            answers = [peer.next()[1] for _ in range(5)]
            ids = {a["prediction_id"] for a in answers}
            assert len(ids) == 5
            status = client.get("/v1/connectors").json()["connectors"][0]
            assert status["reconnects"] >= 1 and status["state"] == "connected"
            assert _metric(client, "millwright_node_connector_reconnects_total") >= 1
    finally:
        broker.stop()
