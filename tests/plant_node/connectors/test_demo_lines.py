"""The demo's line mappings are valid mapping files for the node (the demo cannot import it)."""

from __future__ import annotations

from pathlib import Path

from federation.demo import connector_steps as steps
from plant_node.connectors.mapping import load_mapping


class _Plc:
    endpoint = "opc.tcp://127.0.0.1:4840/test-cell-1/"
    cert = Path("plc.der")


def test_demo_mappings_load(tmp_path: Path) -> None:
    peers = steps.LinePeers(plc=_Plc(), prefix="millwright-demo/x")  # type: ignore[arg-type]
    paths = steps._mappings(peers, tmp_path, (tmp_path / "node.der", tmp_path / "node.pem"))
    cell = load_mapping(paths[steps.OPCUA_PLANT])
    mill = load_mapping(paths[steps.MQTT_PLANT])
    assert cell.baseline == "cmapss" and cell.window == 30 and cell.opcua is not None
    assert cell.opcua.security is not None and cell.opcua.security.mode == "SignAndEncrypt"
    assert set(cell.opcua.fields) == set(steps.CMAPSS_FIELDS)
    assert cell.mqtt is not None and not cell.mqtt.topics  # publishes the cell's answers only
    assert mill.baseline == "ai4i" and mill.mqtt is not None
    assert set(mill.mqtt.topics[0].fields) == set(steps.AI4I_FIELDS)
