"""Test peers: an asyncua server as the plant's PLC (own thread and loop), a private Mosquitto."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua

from plant_node.connectors.opcua.certs import make_certificate

NS_URI = "urn:millwright:test:plc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Plc:
    """An OPC UA server with input variables (the line's tags) and output variables.

    Runs in its own thread and event loop so the node under test keeps its own loop.
    """

    def __init__(
        self,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        *,
        secure_dir: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.inputs, self.outputs = inputs, outputs
        self.port = port or free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/plc/"
        self.secure_dir = secure_dir
        self.cert: Path | None = None
        if secure_dir is not None:
            self.cert, self.key = make_certificate(
                secure_dir, "plc", "urn:millwright:test:plc", server=True
            )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: Server | None = None
        self.running = False
        self.nodes: dict[str, Any] = {}
        self.written: list[tuple[float, str, Any]] = []

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @staticmethod
    def node_id(name: str) -> str:
        return f"ns=2;s=Line.{name}"

    async def _start(self) -> None:
        if self._server is not None:  # a restart: the address space (and values) survive
            await self._server.start()
            self.running = True
            await self._watch_outputs()
            return
        server = Server()  # init() builds the standard address space: seconds, so only once
        await server.init()
        server.set_endpoint(self.endpoint)
        if self.cert is not None:
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            await server.load_certificate(str(self.cert))
            await server.load_private_key(str(self.key))
        idx = await server.register_namespace(NS_URI)
        assert idx == 2
        line = await server.nodes.objects.add_object(ua.NodeId("Line", idx), "Line")
        for name, initial in {**self.inputs, **self.outputs}.items():
            var = await line.add_variable(ua.NodeId(f"Line.{name}", idx), name, initial)
            await var.set_writable()
            self.nodes[name] = var
        await server.start()
        self._server = server
        self.running = True
        await self._watch_outputs()

    async def _watch_outputs(self) -> None:
        assert self._server is not None
        plc = self

        class Handler:
            def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                name = node.nodeid.Identifier.removeprefix("Line.")
                plc.written.append((time.monotonic(), name, val))

        sub = await self._server.create_subscription(5, Handler())
        await sub.subscribe_data_change([self.nodes[n] for n in self.outputs])

    def start(self) -> Plc:
        self.call(self._start())
        return self

    def stop(self) -> None:
        """Stop serving: sockets close, sessions and subscriptions are gone."""
        if self._server is not None and self.running:
            self.call(self._server.stop())
            self.running = False

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _write(self, values: dict[str, Any], ts: datetime) -> None:
        assert self._server is not None
        for name, value in values.items():
            variant = self._variant(name, value)
            await self._server.write_attribute_value(
                self.nodes[name].nodeid, ua.DataValue(variant, SourceTimestamp=ts)
            )

    def _variant(self, name: str, value: Any) -> ua.Variant:
        initial = self.inputs.get(name, self.outputs.get(name))
        if isinstance(initial, float):
            return ua.Variant(float(value), ua.VariantType.Double)
        if isinstance(initial, int) and not isinstance(initial, bool):
            return ua.Variant(int(value), ua.VariantType.Int64)
        return ua.Variant(value)

    def write(self, values: dict[str, Any], ts: datetime | None = None) -> datetime:
        ts = ts or datetime.now(UTC)
        self.call(self._write(values, ts))
        return ts

    def outputs_of(self, name: str) -> list[Any]:
        return [v for _, n, v in self.written if n == name]


class Mosquitto:
    """A private broker on a free port, with persistence so its sessions survive a restart."""

    def __init__(self, directory: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.exe = exe
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"user {getpass.getuser()}\n"  # as root it would drop to 'mosquitto' and save nothing
            f"persistence_location {directory}/\nautosave_interval 1\n"
            "max_queued_messages 100000\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto saves its persistence file first
            self.process.wait(10)
            self.process = None
