"""OPC UA connector inside the node, against an asyncua server as the PLC (Basic256Sha256)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from plant_node.config import NodeSettings
from plant_node.connectors.opcua.certs import make_certificate
from plant_node.db import make_engine, make_session_factory
from plant_node.main import create_app
from plant_node.outbox.models import OutboxItem
from tests.plant_node.connectors.conftest import wait_for, write_mapping
from tests.plant_node.connectors.peers import Mosquitto, Plc
from tests.plant_node.connectors.test_mqtt import _metric
from tests.plant_node.keys import auth

CMAPSS_FIELDS = ["unit", "cycle", "setting_1", "setting_2", "setting_3",
                 *(f"s{i}" for i in range(1, 22))]  # fmt: skip
OUTPUTS = {"rul": 0.0, "alarm": False, "version": "", "prediction_id": ""}


def _line(plc: Plc, certs: tuple[Path, Path], broker_port: int, prefix: str) -> dict[str, Any]:
    return {
        "line": "test-cell-1",
        "baseline": "cmapss",
        "window": 30,
        "cycle_field": "cycle",
        "alarm": {"score_below": 20.0, "on_label": False},
        "buffer": {"max_pending": 3},
        "opcua": {
            "endpoint": plc.endpoint,
            "security": {
                "policy": "Basic256Sha256",
                "mode": "SignAndEncrypt",
                "certificate": str(certs[0]),
                "private_key": str(certs[1]),
                "server_certificate": str(plc.cert),
                "application_uri": "urn:millwright:test:node",
            },
            "fields": {f: Plc.node_id(f) for f in CMAPSS_FIELDS},
            "outputs": {
                "prediction": Plc.node_id("rul"),
                "alarm": Plc.node_id("alarm"),
                "version": Plc.node_id("version"),
                "prediction_id": Plc.node_id("prediction_id"),
            },
            "publishing_interval_ms": 10,
            "assembly_timeout_s": 0.3,
            "watchdog_s": 0.3,
            "backoff": {"initial_s": 0.1, "max_s": 0.5},
        },
        # No topics: the MES reads the PLC's predictions over MQTT.
        "mqtt": {
            "port": broker_port,
            "client_id": f"mw-{prefix.replace('/', '-')}",
            "result_topic": f"{prefix}/predictions",
            "backoff": {"initial_s": 0.1, "max_s": 0.5},
        },
    }


def _status(client: TestClient, kind: str) -> dict[str, Any]:
    items = client.get("/v1/connectors").json()["connectors"]
    return next(c for c in items if c["connector"] == kind)


def test_secure_plc_readings_restart_and_broker_down(
    served_settings: NodeSettings,
    tmp_path: Path,
    prefix: str,
    cmapss_records: list[dict[str, Any]],
    ai4i_records: list[dict[str, Any]],
    listener_factory: Any,
) -> None:
    cycles = [r for r in cmapss_records if r["unit"] == 1]
    inputs = {f: (0 if f in ("unit", "cycle") else 0.0) for f in CMAPSS_FIELDS}
    plc = Plc(inputs, OUTPUTS, secure_dir=tmp_path / "plc").start()
    broker = Mosquitto(tmp_path / "broker").start()
    certs = make_certificate(tmp_path / "node", "node", "urn:millwright:test:node")
    mapping = write_mapping(tmp_path / "line.yaml", _line(plc, certs, broker.port, prefix))
    mes = listener_factory(broker.port, [f"{prefix}/predictions"])
    settings = served_settings.model_copy(update={"connectors": [mapping]})
    try:
        with TestClient(create_app(settings), headers=auth()) as client:
            wait_for(lambda: _status(client, "opcua")["state"] == "connected")
            wait_for(lambda: _status(client, "mqtt")["state"] == "connected")
            ts = datetime.now(UTC)

            def feed(i: int) -> str:
                """Write cycle i (one source timestamp); return the prediction id written back."""
                n = len(plc.outputs_of("prediction_id"))
                plc.write(cycles[i], ts + timedelta(seconds=i))
                wait_for(lambda: len(plc.outputs_of("prediction_id")) > n)
                return str(plc.outputs_of("prediction_id")[-1])

            ids = [feed(i) for i in range(3)]
            logged = client.get(f"/v1/predictions/{ids[-1]}").json()
            assert [c["cycle"] for c in logged["inputs"]["cycles"]] == [
                c["cycle"] for c in cycles[:3]
            ]  # the unit's window so far, assembled from 26 nodes per cycle
            assert plc.outputs_of("rul")[-1] == logged["score"]
            assert plc.outputs_of("version")[-1] == logged["model_version"]
            assert [mes.next()[1]["prediction_id"] for _ in range(3)] == ids

            # A reading whose nodes did not all change: quarantined once assembly times out.
            plc.write({"unit": 1, "cycle": cycles[3]["cycle"]}, ts + timedelta(seconds=3.5))
            wait_for(lambda: _metric(
                client, "millwright_node_connector_quarantined_total", reason="incomplete_reading"
            ) == 1)  # fmt: skip

            # Broker down: answers wait up to max_pending (3), older ones are dropped + alert.
            broker.stop()
            wait_for(lambda: _status(client, "mqtt")["state"] != "connected")
            ids += [feed(i) for i in range(3, 8)]
            mqtt = _status(client, "mqtt")
            assert mqtt["pending_answers"] == 3 and mqtt["counts"]["dropped_answers"] == 2
            assert _metric(client, "millwright_node_connector_dropped_total", what="answer") == 2
            record = {"baseline": "ai4i", "record": ai4i_records[0]}
            assert client.post("/v1/predict", json=record).status_code == 200  # HTTP serves on

            # The PLC restarts: the connector reconnects and subscribes again.
            plc.stop()
            wait_for(lambda: _status(client, "opcua")["state"] != "connected")
            plc.start()
            wait_for(lambda: _status(client, "opcua")["state"] == "connected", timeout=15)
            ids.append(feed(8))
            assert len(set(ids)) == 9
            assert _status(client, "opcua")["reconnects"] >= 1
    finally:
        plc.close()
        broker.stop()
    engine = make_engine(settings.db_url)
    with make_session_factory(engine)() as session:
        kinds = list(session.execute(select(OutboxItem.kind)).scalars())
    engine.dispose()
    assert "alert.connector_dropped" in kinds
