"""Connector fixtures: the serving fixtures (models in the cache), MQTT clients, a line mapping."""

from __future__ import annotations

import copy
import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.plant_node.serving.conftest import (  # noqa: F401 - fixtures
    ai4i_records,
    ai4i_state,
    cmapss_records,
    cmapss_state,
    served_settings,
)

SHARED_BROKER = ("127.0.0.1", 1883)
AI4I_FIELDS = {
    "type": "type",
    "air_temperature_k": {"source": "air.temperature", "unit": "K"},
    "process_temperature_k": {"source": "process_temperature_k", "unit": "K"},
    "rotational_speed_rpm": "rotational_speed_rpm",
    "torque_nm": "torque_nm",
    "tool_wear_min": "tool_wear_min",
}


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


class Listener:
    """A paho client collecting the messages of some topics (QoS 1)."""

    def __init__(self, port: int, topics: list[str], host: str = "127.0.0.1") -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        subscribed = queue.Queue[int]()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, json.loads(m.payload)))
        self.client.on_subscribe = lambda *a: subscribed.put(1)
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        subscribed.get(timeout=5)

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def next(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def listener_factory() -> Iterator[Callable[..., Listener]]:
    made: list[Listener] = []

    def make(port: int, topics: list[str]) -> Listener:
        made.append(Listener(port, topics))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def write_mapping(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def ai4i_line(prefix: str, port: int, **extra: Any) -> dict[str, Any]:
    return {
        "line": "mill-l",
        "baseline": "ai4i",
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "client_id": f"mw-{prefix.replace('/', '-')}",
            "topics": [
                {"topic": f"{prefix}/parts/+", "fields": copy.deepcopy(AI4I_FIELDS)},
                {
                    "topic": f"{prefix}/spb",
                    "format": "sparkplug_b",
                    "fields": copy.deepcopy(AI4I_FIELDS),
                },
            ],
            "result_topic": f"{prefix}/predictions",
            "alert_topic": f"{prefix}/alerts",
            "backoff": {"initial_s": 0.05, "max_s": 0.3},
        },
        **extra,
    }


def ai4i_message(record: dict[str, Any]) -> dict[str, Any]:
    msg = {k: v for k, v in record.items() if k != "air_temperature_k"}
    msg["air"] = {"temperature": {"value": record["air_temperature_k"], "unit": "K"}}
    return msg


@pytest.fixture
def prefix() -> str:
    return f"mwtest/{uuid.uuid4().hex[:10]}"
