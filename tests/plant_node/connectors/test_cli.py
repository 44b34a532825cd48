"""``millwright node connect``: a bad mapping exits 2 naming the key; a good one scores."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from plant_node.cli import app
from plant_node.config import NodeSettings
from plant_node.db import make_engine, make_session_factory
from plant_node.serving import service as serving_service
from tests.plant_node.connectors.conftest import (
    SHARED_BROKER,
    ai4i_line,
    ai4i_message,
    write_mapping,
)


def test_bad_mapping_exits_2_with_the_key(tmp_path: Path) -> None:
    doc = ai4i_line("p", 1883)
    del doc["mqtt"]["client_id"]
    mapping = write_mapping(tmp_path / "line.yaml", doc)
    result = CliRunner().invoke(app, ["connect", "--config", str(mapping)])
    assert result.exit_code == 2
    assert "mqtt.client_id: Field required" in result.output


def test_connect_scores_messages_into_the_node_log(
    served_settings: NodeSettings,
    tmp_path: Path,
    prefix: str,
    ai4i_records: list[dict[str, Any]],
    listener_factory: Any,
    monkeypatch: Any,
) -> None:
    monkeypatch.setenv("MILLWRIGHT_NODE_DATABASE_URL", served_settings.db_url)
    mapping = write_mapping(tmp_path / "line.yaml", ai4i_line(prefix, SHARED_BROKER[1]))
    peer = listener_factory(SHARED_BROKER[1], [f"{prefix}/predictions"])
    answers: list[Any] = []
    done = threading.Event()

    def line() -> None:  # a part every 0.2 s until the first answer comes back
        while not done.is_set() and not answers:
            peer.publish(f"{prefix}/parts/a", json.dumps(ai4i_message(ai4i_records[0])))
            try:
                answers.append(peer.next(timeout=0.2)[1])
            except Exception:  # noqa: BLE001 - queue.Empty: not connected yet
                pass

    timer = threading.Thread(target=line)
    timer.start()
    result = CliRunner().invoke(
        app,
        ["connect", "--config", str(mapping), "--plant", "plant-t",
         "--data-dir", str(served_settings.data_path), "--run-for", "2.5", "--format", "json"],
    )  # fmt: skip
    done.set()
    timer.join()
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events][:2] == ["models", "connected"]
    assert events[-1]["event"] == "stopped" and events[-1]["counts"]["predicted"] >= 1
    assert answers[0]["line"] == "mill-l" and answers[0]["model_version"] == "1"
    engine = make_engine(served_settings.db_url)
    with make_session_factory(engine)() as session:  # the node's own prediction log
        row = serving_service.get_prediction(
            session=session, prediction_id=answers[0]["prediction_id"]
        )
        assert row is not None and row.inputs == ai4i_records[0]
    engine.dispose()
