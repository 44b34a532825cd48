"""A SuperLink and one SuperNode per plant on this machine, started and stopped together.

Used by the demo, ``millwright federation up`` and the tests. On a real site each plant
node starts its own SuperNode with :func:`federation.flower.processes.start_supernode`;
this class is the same steps in one place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from federation.flower.certs import NodeKeyFiles, TlsFiles, generate_node_keys, generate_tls
from federation.flower.environment import apply_to_current_process
from federation.flower.processes import (
    FlowerProcessError,
    ManagedProcess,
    SuperLinkSpec,
    SuperNodeSpec,
    start_superlink,
    start_supernode,
    wait_for_superlink,
)
from federation.flower.settings import FlowerSettings

if TYPE_CHECKING:
    from federation.flower.control import ControlClient


@dataclass(frozen=True)
class PlantSite:
    """A plant taking part: its id, where its (local-only) data lives, its runtime port.

    ``runtime_port`` None means ``supernode_base_port + index`` from the settings.
    """

    plant_id: str
    data_dir: Path | None = None
    runtime_port: int | None = None


def ensure_certificates(settings: FlowerSettings) -> TlsFiles:
    """Return the deployment's TLS files, generating them on first use."""
    files = TlsFiles(
        ca_cert=settings.certs_dir / "ca.crt",
        server_cert=settings.certs_dir / "server.pem",
        server_key=settings.certs_dir / "server.key",
    )
    if files.ca_cert.exists() and files.server_cert.exists() and files.server_key.exists():
        return files
    return generate_tls(settings.certs_dir, hosts=settings.server_hosts)


def ensure_node_keys(settings: FlowerSettings, plant_id: str) -> NodeKeyFiles:
    """Return a plant's SuperNode key pair, generating it on first use."""
    keys_dir = settings.certs_dir / "supernodes"
    files = NodeKeyFiles(private_key=keys_dir / plant_id, public_key=keys_dir / f"{plant_id}.pub")
    if files.private_key.exists() and files.public_key.exists():
        return files
    return generate_node_keys(keys_dir, plant_id)


class LocalFederation:
    """SuperLink + SuperNodes for ``plants``, TLS and node authentication as configured.

    Parameters
    ----------
    settings : FlowerSettings
        Ports, TLS, node authentication, state directory.
    plants : list[PlantSite]
        One SuperNode is started per plant, with ``plant-id`` and ``data-dir`` in its
        node config.
    """

    def __init__(self, settings: FlowerSettings, plants: list[PlantSite]) -> None:
        if settings.node_auth and not settings.tls:
            raise ValueError("SuperNode authentication requires TLS")
        self.settings = settings
        self.plants = list(plants)
        self.tls: TlsFiles | None = None
        self.superlink: ManagedProcess | None = None
        self.supernodes: dict[str, ManagedProcess] = {}
        self.node_plants: dict[int, str] = {}
        self._runtime_ports: dict[str, int] = {}
        self._control: ControlClient | None = None
        apply_to_current_process(flwr_home=settings.var_dir / "cli-home")

    @property
    def root_certificate(self) -> Path | None:
        """CA certificate clients verify the SuperLink with (None when insecure)."""
        return None if self.tls is None else self.tls.ca_cert

    @property
    def control(self) -> ControlClient:
        """Control API client of the running SuperLink."""
        if self._control is None:
            from federation.flower.control import ControlClient

            self._control = ControlClient(
                self.settings.superlink_address,
                self.root_certificate,
                allow_insecure=not self.settings.tls,  # a local, loopback federation
            )
        return self._control

    def __enter__(self) -> LocalFederation:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, timeout: float = 90.0) -> None:
        """Start the SuperLink, register and start every SuperNode, wait until online."""
        s = self.settings
        self.tls = ensure_certificates(s) if s.tls else None
        self._start_superlink(timeout=timeout)
        for index, plant in enumerate(self.plants):
            port = plant.runtime_port or s.supernode_base_port + index
            self.start_node(plant, runtime_port=port)
        self.wait_for_nodes(len(self.plants), timeout=timeout)

    def _superlink_spec(self) -> SuperLinkSpec:
        s = self.settings
        state_dir = s.var_dir / "superlink"
        return SuperLinkSpec(
            host=s.superlink_host,
            port=s.superlink_port,
            state_dir=state_dir,
            tls=self.tls,
            enable_node_auth=s.node_auth,
            database=state_dir / "state.db" if s.superlink_database else None,
        )

    def _start_superlink(self, *, timeout: float) -> None:
        spec = self._superlink_spec()
        self.superlink = start_superlink(spec, log_dir=self.settings.logs_dir)
        wait_for_superlink(self.superlink, spec, timeout=timeout)

    def kill_superlink(self) -> None:
        """SIGKILL the SuperLink, its SuperExec and their ServerApps at once (a crashed host)."""
        if self.superlink is not None:
            self.superlink.kill()

    def restart_superlink(self, *, timeout: float = 90.0) -> None:
        """Start the SuperLink again (same port, certificates, state) after it died or was killed.

        With its state database the SuperLink still knows every SuperNode and they reconnect
        by themselves. Without one it forgot their registrations and the SuperNodes give up
        on it and exit, so each is registered and started again.

        Raises
        ------
        FlowerProcessError
            If the SuperLink does not come up or the SuperNodes are not back online in time.
        """
        if self.superlink is not None:
            self.superlink.stop()
        self._start_superlink(timeout=timeout)
        forgot = not self.settings.superlink_database
        if forgot:
            self.node_plants = {}
        for plant_id, process in list(self.supernodes.items()):
            if forgot or not process.is_running():
                process.stop()
                site = next(p for p in self.plants if p.plant_id == plant_id)
                self.start_node(site, runtime_port=self._runtime_ports[plant_id])
        self.wait_for_nodes(len(self.supernodes), timeout=timeout)

    def start_node(self, plant: PlantSite, *, runtime_port: int) -> ManagedProcess:
        """Register (when authenticating) and start one plant's SuperNode."""
        s = self.settings
        key: Path | None = None
        if s.node_auth:
            keys = ensure_node_keys(s, plant.plant_id)
            # A SuperLink with a state database keeps registrations across restarts.
            known = {n.name: n.node_id for n in self.control.list_nodes()}
            node_id = known.get(plant.plant_id)
            if node_id is None:
                node_id = self.control.register_node(keys.public_key, name=plant.plant_id)
            self.node_plants[node_id] = plant.plant_id
            key = keys.private_key
        node_config: dict[str, str | int | float] = {}
        if plant.data_dir is not None:
            node_config["data-dir"] = str(plant.data_dir.resolve())
        process = start_supernode(
            SuperNodeSpec(
                plant_id=plant.plant_id,
                superlink_address=s.superlink_address,
                runtime_port=runtime_port,
                state_dir=s.var_dir / "supernodes" / plant.plant_id,
                root_certificate=self.root_certificate,
                auth_private_key=key,
                node_config=node_config,
            ),
            log_dir=s.logs_dir,
        )
        self.supernodes[plant.plant_id] = process
        self._runtime_ports[plant.plant_id] = runtime_port
        return process

    def wait_for_nodes(self, count: int, *, timeout: float = 90.0) -> None:
        """Block until ``count`` SuperNodes are online.

        Raises
        ------
        FlowerProcessError
            If a SuperNode exits or they are not online within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.supernodes.values():
                if not process.is_running():
                    raise FlowerProcessError(
                        f"{process.name} exited with {process.popen.returncode}:\n"
                        + process.log_tail()
                    )
            online = [n for n in self.control.list_nodes() if n.status == "online"]
            if len(online) >= count:
                return
            time.sleep(0.5)
        raise FlowerProcessError(f"fewer than {count} SuperNodes online after {timeout}s")

    def kill_node(self, plant_id: str) -> None:
        """Kill a plant's SuperNode and its children at once (a crashed plant)."""
        self.supernodes[plant_id].kill()

    def stop(self) -> None:
        """Stop every SuperNode, then the SuperLink."""
        if self._control is not None:
            self._control.close()
            self._control = None
        for process in self.supernodes.values():
            process.stop()
        if self.superlink is not None:
            self.superlink.stop()
