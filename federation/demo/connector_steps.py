"""Demo steps on the line: a turbofan plant fed from an OPC UA PLC, a milling line over MQTT.

The demo plays both peers itself. An ``asyncua`` server stands in for the turbofan test
cell's PLC (Basic256Sha256, Sign & Encrypt, certificates made here); a paho publisher stands in
for the milling line's edge gateway, on Mosquitto at 127.0.0.1:1883 with topics unique to this
run (or a private ``mosquitto`` when none listens there). Each node's connectors run in a
``millwright node connect`` process on that node's own database and model cache, so the
predictions land in the same log as HTTP ones and no HTTP key is needed. The step prints the
predictions arriving on the lines' MQTT topics and the RUL the connector wrote to the PLC.

Three steps, so that no step waits on slow starts: :func:`start_line_peers` (early) builds the
PLC's address space in a background thread (asyncua builds it in pure Python: 2 s of CPU on a
quiet core, 10 s and more on a busy one); :func:`start_line_connectors` (once the nodes have
their champions) starts the two ``node connect`` processes, which connect while the streams
replay; :func:`feed_lines` (after monitoring, so these readings do not enter the monitored
reference periods) feeds both lines and prints the answers.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from federation.demo.context import DemoContext, DemoError, free_port, stop_process

OPCUA_PLANT = "fd001"  # the turbofan plant whose test cell is read over OPC UA
MQTT_PLANT = "ai4i-l"  # the milling line that publishes its parts over MQTT
CMAPSS_FIELDS = ["unit", "cycle", "setting_1", "setting_2", "setting_3",
                 *(f"s{i}" for i in range(1, 22))]  # fmt: skip
AI4I_FIELDS = ["type", "air_temperature_k", "process_temperature_k", "rotational_speed_rpm",
               "torque_nm", "tool_wear_min"]  # fmt: skip
PLC_OUTPUTS: dict[str, Any] = {"rul": 0.0, "alarm": False, "version": "", "prediction_id": ""}
ENGINE_UNIT = 31  # FD001 test engine 31: 196 cycles recorded, the demo plays 40 of them
CYCLES = 40
PARTS = 60
FEED_HZ = 40.0
CONNECT_TIMEOUT_S = 25.0
NODE_URI = "urn:millwright:demo:node"
PLC_URI = "urn:millwright:demo:plc"


def _certificate(directory: Path, name: str, uri: str, server: bool) -> tuple[Path, Path]:
    from asyncua.crypto import cert_gen
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    directory.mkdir(parents=True, exist_ok=True)
    key = cert_gen.generate_private_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")]
    use = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {"organizationName": "Millwright demo"}, names, extended=use
    )
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(encoding=Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return cert_path, key_path


def _ua() -> Any:
    """Return ``asyncua.ua`` (typed loosely: its stubs want its own scalar wrapper types)."""
    from asyncua import ua

    return ua


class DemoPlc:
    """The test cell's PLC: an asyncua server in its own thread and event loop."""

    def __init__(self, cert_dir: Path) -> None:
        self.port = free_port(4840)
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/test-cell-1/"
        self.cert_dir = cert_dir
        self.cert = cert_dir / "plc.der"
        self.key = cert_dir / "plc.pem"
        self.cert_ready = threading.Event()  # the certificate is written before the server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-plc", daemon=True)
        self.thread.start()
        self.nodes: dict[str, Any] = {}
        self.server: Any = None
        self.ready: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), self.loop)

    @staticmethod
    def node_id(name: str) -> str:
        """Return the node id of a tag of the test cell."""
        return f"ns=2;s=TestCell1.{name}"

    async def _start(self) -> None:
        _certificate(self.cert_dir, "plc", PLC_URI, server=True)
        self.cert_ready.set()
        from asyncua.server.server import Server

        ua = _ua()
        server = Server()
        await server.init()
        await server.set_application_uri(PLC_URI)  # the URI its certificate names
        server.set_endpoint(self.endpoint)
        server.set_server_name("Turbofan test cell 1 (Millwright demo PLC)")
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        await server.load_certificate(str(self.cert))
        await server.load_private_key(str(self.key))
        idx = await server.register_namespace("urn:millwright:demo:test-cell-1")
        cell = await server.nodes.objects.add_object(ua.NodeId("TestCell1", idx), "TestCell1")
        tags = {f: (0 if f in ("unit", "cycle") else 0.0) for f in CMAPSS_FIELDS}
        for name, initial in {**tags, **PLC_OUTPUTS}.items():
            var = await cell.add_variable(ua.NodeId(f"TestCell1.{name}", idx), name, initial)
            await var.set_writable()
            self.nodes[name] = var
        await server.start()
        self.server = server

    async def _write(self, values: dict[str, Any], ts: datetime) -> None:
        ua = _ua()
        for name, value in values.items():
            kind = ua.VariantType.Int64 if name in ("unit", "cycle") else ua.VariantType.Double
            dv = ua.DataValue(ua.Variant(value, kind), SourceTimestamp=ts)
            await self.server.write_attribute_value(self.nodes[name].nodeid, dv)

    def write(self, values: dict[str, Any], ts: datetime) -> None:
        """Write one scan's tags with one source timestamp."""
        asyncio.run_coroutine_threadsafe(self._write(values, ts), self.loop).result(10)

    def read(self, name: str) -> Any:
        """Read a tag's current value."""
        return asyncio.run_coroutine_threadsafe(self.nodes[name].read_value(), self.loop).result(5)

    async def _shutdown(self) -> None:
        """Stop the server, then cancel what its sessions left running on the loop."""
        if self.server is not None:
            await self.server.stop()
            self.server = None
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        """Stop the server and its thread, leaving no task pending on its loop."""
        # asyncua's stop can take seconds on a loaded machine; a short wait stopped the loop
        # before the shutdown ran ("coroutine DemoPlc._shutdown was never awaited").
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        try:
            future.result(30)
        except Exception:  # noqa: BLE001 - stopping: its thread is a daemon anyway
            future.cancel()
        self.server = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class LinePeers:
    """What the connector steps share: the PLC, the broker, the run's topic prefix."""

    plc: DemoPlc
    prefix: str
    broker: tuple[str, int] = ("127.0.0.1", 1883)
    #: The CA the broker's certificate comes from (None: the site broker, in the clear).
    ca_file: Path | None = None
    broker_process: subprocess.Popen[bytes] | None = None
    connectors: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)


_PEERS: dict[int, LinePeers] = {}


def start_line_peers(ctx: DemoContext) -> None:
    """Start building the test cell's OPC UA server in the background (done by the nodes)."""
    directory = ctx.var_dir / "connectors"
    directory.mkdir(parents=True, exist_ok=True)
    plc = DemoPlc(directory / "certs")
    _PEERS[id(ctx)] = LinePeers(plc=plc, prefix=f"millwright-demo/{uuid.uuid4().hex[:8]}")
    ctx.console.print(f"test cell PLC (OPC UA, Basic256Sha256 Sign&Encrypt) at {plc.endpoint}")


def _broker(ctx: DemoContext, peers: LinePeers, directory: Path) -> None:
    """Start a private Mosquitto that speaks only TLS, its certificate from the demo CA.

    Every MQTT client of the demo (the connectors, the part publisher, the MES listener)
    pins that CA. Without a ``mosquitto`` to start, the site broker on 127.0.0.1:1883 is used
    in the clear, and the demo says so.
    """
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if ctx.ca_file is None or not Path(exe).exists():
        try:
            socket.create_connection(peers.broker, timeout=0.5).close()
        except OSError:
            raise DemoError("no MQTT broker on 127.0.0.1:1883 and no mosquitto to start") from None
        ctx.console.print("[yellow]MQTT in the clear: no mosquitto to start a TLS broker[/yellow]")
        return
    from federation.flower.certs import issue_certificate

    issued = issue_certificate(ctx.ca_file.parent, directory / "broker", "mqtt-broker")
    port = free_port(8883)
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {ctx.ca_file}\ncertfile {issued.cert}\nkeyfile {issued.key}\n"
        "tls_version tlsv1.2\nallow_anonymous true\npersistence false\n"
        f"user {getpass.getuser()}\n"  # as root it would drop to a user that cannot read the key
    )
    peers.broker_process = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    peers.broker, peers.ca_file = ("127.0.0.1", port), ctx.ca_file
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if peers.broker_process.poll() is not None:
            break
        try:
            socket.create_connection(peers.broker, timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
            continue
        ctx.console.print(f"MQTT broker 127.0.0.1:{port}: TLS only (demo CA pinned)")
        return
    raise DemoError(f"mosquitto (TLS) did not start on port {port} (config {conf})")


def _mappings(peers: LinePeers, directory: Path, node_cert: tuple[Path, Path]) -> dict[str, Path]:
    prefix, (host, port) = peers.prefix, peers.broker
    plc = peers.plc
    tls = {"tls": {"ca_file": str(peers.ca_file)}} if peers.ca_file is not None else {}
    cell = {
        "line": "test-cell-1",
        "baseline": "cmapss",
        "window": 30,
        "cycle_field": "cycle",
        "alarm": {"score_below": 30.0, "on_label": False},
        "opcua": {
            "endpoint": plc.endpoint,
            "security": {
                "policy": "Basic256Sha256",
                "mode": "SignAndEncrypt",
                "certificate": str(node_cert[0]),
                "private_key": str(node_cert[1]),
                "server_certificate": str(plc.cert),
                "application_uri": NODE_URI,
            },
            "fields": {f: DemoPlc.node_id(f) for f in CMAPSS_FIELDS},
            "outputs": {
                o: DemoPlc.node_id(o if o != "prediction" else "rul")
                for o in ("prediction", "alarm", "version", "prediction_id")
            },
            "publishing_interval_ms": 10,
            "backoff": {"initial_s": 0.2, "max_s": 2.0},
        },  # fmt: skip
        "mqtt": {  # the cell's predictions also go to the site's broker for the MES
            "host": host,
            "port": port,
            "client_id": f"{prefix.replace('/', '-')}-fd001",
            "result_topic": f"{prefix}/{OPCUA_PLANT}/test-cell-1/predictions",
            "backoff": {"initial_s": 0.2, "max_s": 2.0},
            **tls,
        },  # fmt: skip
    }
    mill = {
        "line": "L",
        "baseline": "ai4i",
        "mqtt": {
            "host": host, "port": port, "client_id": f"{prefix.replace('/', '-')}-ai4i-l",
            "topics": [{
                "topic": f"{prefix}/{MQTT_PLANT}/L/parts/+",
                "fields": {f: {"source": f, "unit": "K"} if f.endswith("_k") else f
                           for f in AI4I_FIELDS},
            }],
            "result_topic": f"{prefix}/{MQTT_PLANT}/L/predictions",
            "alert_topic": f"{prefix}/{MQTT_PLANT}/L/alerts",
            **tls,
        },
    }  # fmt: skip
    out = {}
    for plant, doc in ((OPCUA_PLANT, cell), (MQTT_PLANT, mill)):
        out[plant] = directory / f"{plant}.yaml"
        out[plant].write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def _start_connect(
    ctx: DemoContext, plant: str, mapping: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "millwright", "node", "connect", "--config", str(mapping),
             "--plant", plant, "--data-dir", str(ctx.node_dir(plant)), "--format", "json"],
            cwd=ctx.workdir, env=ctx.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_connected(procs: dict[str, tuple[Any, Path, int]]) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while time.monotonic() < deadline:
        waiting = []
        for plant, (proc, log, expected) in procs.items():
            text = log.read_text(errors="replace")
            if proc.poll() is not None:
                raise DemoError(
                    f"`node connect` of {plant} exited {proc.returncode}:\n{text[-1500:]}"
                )
            if text.count('"event": "connected"') < expected:
                waiting.append(plant)
        if not waiting:
            return
        time.sleep(0.05)
    raise DemoError(f"the connectors of {waiting} did not connect in {CONNECT_TIMEOUT_S:.0f} s")


def _listener(peers: LinePeers, topics: list[str]) -> tuple[Any, queue.Queue[Any]]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()
    subscribed: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.put((time.monotonic(), m.topic, json.loads(m.payload)))
    client.on_subscribe = lambda *a: subscribed.put(1)
    if peers.ca_file is not None:
        client.tls_set(ca_certs=str(peers.ca_file))
    client.connect(*peers.broker)
    client.loop_start()
    client.subscribe([(t, 1) for t in topics])
    subscribed.get(timeout=5)
    return client, got


def start_line_connectors(ctx: DemoContext) -> None:
    """Start ``node connect`` for both lines on their nodes' databases (connects in background)."""
    peers = _peers(ctx)
    directory = ctx.var_dir / "connectors"
    _broker(ctx, peers, directory)
    if not peers.plc.cert_ready.wait(CONNECT_TIMEOUT_S):
        raise DemoError("the PLC's certificate was not made")
    node_cert = _certificate(directory / "certs", "node", NODE_URI, server=False)
    mappings = _mappings(peers, directory, node_cert)
    for plant, mapping in mappings.items():
        log = ctx.node_dir(plant) / "connect.log"
        peers.connectors[plant] = (_start_connect(ctx, plant, mapping, log), log)
        ctx.console.print(f"{plant}: millwright node connect --config {mapping} (log: {log})")


def feed_lines(ctx: DemoContext) -> None:
    """Feed both lines from their peers and print the predictions arriving on their topics."""
    peers = _peers(ctx)
    started = time.monotonic()
    try:
        from baselines.datasets import load_ai4i, load_cmapss

        engine = load_cmapss("FD001", "test")
        engine = engine[engine["unit"] == ENGINE_UNIT].head(CYCLES)
        cycles = [{k: (int(v) if k in ("unit", "cycle") else float(v)) for k, v in r.items()}
                  for r in engine.to_dict(orient="records")]  # fmt: skip
        ai4i = load_ai4i()
        parts = ai4i[ai4i["type"] == "L"][AI4I_FIELDS].head(PARTS).to_dict(orient="records")
        peers.plc.ready.result(timeout=CONNECT_TIMEOUT_S)  # built in the background
        topics = {
            OPCUA_PLANT: f"{peers.prefix}/{OPCUA_PLANT}/test-cell-1/predictions",
            MQTT_PLANT: f"{peers.prefix}/{MQTT_PLANT}/L/predictions",
        }
        client, got = _listener(peers, list(topics.values()))
        t_listen = time.monotonic()
        _wait_connected(
            {p: (proc, log, 2 if p == OPCUA_PLANT else 1)
             for p, (proc, log) in peers.connectors.items()}
        )  # fmt: skip
        ctx.console.print(
            f"{OPCUA_PLANT} reads {len(CMAPSS_FIELDS)} PLC tags over OPC UA (Basic256Sha256, "
            f"Sign&Encrypt); {MQTT_PLANT} subscribes to {peers.prefix}/{MQTT_PLANT}/L/parts/+ "
            f"(broker {peers.broker[0]}:{peers.broker[1]}, "
            f"{'TLS, demo CA pinned' if peers.ca_file is not None else 'in the clear'})"
        )
        t_up = time.monotonic()
        sent: dict[str, float] = {}
        _feed(peers, client, cycles, parts, sent)
        t_fed = time.monotonic()
        _report(ctx, peers, got, topics, sent, expect={OPCUA_PLANT: len(cycles),
                                                       MQTT_PLANT: len(parts)})  # fmt: skip
        t_done = time.monotonic()
        client.loop_stop()
        client.disconnect()
    finally:
        # Ask both connectors to stop and stop the PLC; the demo's stop_all waits for them.
        for proc, _ in peers.connectors.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        peers.plc.close()
    ctx.console.print(
        f"line step took {time.monotonic() - started:.1f} s (data and PLC "
        f"{t_listen - started:.1f}, connected {t_up - t_listen:.1f}, fed {t_fed - t_up:.1f}, "
        f"answered {t_done - t_fed:.1f}, stopped {time.monotonic() - t_done:.1f})"
    )


def stop_lines(ctx: DemoContext) -> None:
    """Stop the connectors, the private broker (if any) and the PLC (safe to call twice)."""
    peers = _PEERS.pop(id(ctx), None)
    if peers is None:
        return
    for proc, _ in peers.connectors.values():  # all at once: each drains its queue and exits
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    peers.plc.close()
    for proc, _ in peers.connectors.values():
        stop_process(proc)
    stop_process(peers.broker_process)


def _peers(ctx: DemoContext) -> LinePeers:
    peers = _PEERS.get(id(ctx))
    if peers is None:
        raise DemoError("the line peers were not started (start_line_peers)")
    return peers


def _feed(
    peers: LinePeers, client: Any, cycles: list[dict[str, Any]], parts: list[dict[str, Any]],
    sent: dict[str, float],
) -> None:  # fmt: skip
    """Play the PLC scans and the milling parts side by side at FEED_HZ."""
    base = datetime.now(UTC)
    topic = f"{peers.prefix}/{MQTT_PLANT}/L/parts/station-1"
    for i in range(max(len(cycles), len(parts))):
        tick = time.monotonic()
        if i < len(cycles):
            peers.plc.write(cycles[i], base + timedelta(milliseconds=i))
            sent[f"c{cycles[i]['cycle']}"] = tick
        if i < len(parts):
            client.publish(topic, json.dumps({**parts[i], "seq": i}), qos=1)
        time.sleep(max(0.0, 1 / FEED_HZ - (time.monotonic() - tick)))


def _report(
    ctx: DemoContext, peers: LinePeers, got: queue.Queue[Any], topics: dict[str, str],
    sent: dict[str, float], expect: dict[str, int],
) -> None:  # fmt: skip
    by_topic = {t: p for p, t in topics.items()}
    answers: dict[str, list[dict[str, Any]]] = {p: [] for p in topics}
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline and any(len(answers[p]) < n for p, n in expect.items()):
        try:
            _, topic, body = got.get(timeout=0.1)
        except queue.Empty:
            continue
        plant = by_topic[topic]
        answers[plant].append(body)
        if len(answers[plant]) <= 3 or len(answers[plant]) == expect[plant]:
            what = (f"RUL {body['score']:6.1f} cycles" if plant == OPCUA_PLANT
                    else f"failure p={body['score']:.3f} label={body['label']}")  # fmt: skip
            ctx.console.print(
                f"  {topic}  #{len(answers[plant]):>2}  {what}  alarm={body['alarm']}  "
                f"model v{body['model_version']} ({body['served_by']})  "
                f"prediction {body['prediction_id'][:12]}"
            )
    for plant, n in expect.items():
        if not answers[plant]:
            raise DemoError(f"no prediction of {plant} arrived on {topics[plant]}")
        ctx.console.print(
            f"{plant}: {len(answers[plant])}/{n} predictions arrived on {topics[plant]}"
        )
    rul = peers.plc.read("rul")
    version = peers.plc.read("version")
    ctx.console.print(
        f"PLC tags written back over OPC UA: TestCell1.rul={rul:.1f}, TestCell1.version={version}, "
        f"TestCell1.prediction_id={str(peers.plc.read('prediction_id'))[:12]}"
    )
