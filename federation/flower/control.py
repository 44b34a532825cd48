"""A small client for the SuperLink's Control API (register nodes, start and watch runs).

It wraps flwr's own ``ControlHttpClient`` (the one ``flwr run`` and ``flwr supernode
register`` use) so the hub and the CLI need no ``flwr`` subprocess per call. Import this
module only after :func:`federation.flower.environment.apply_to_current_process`: flwr
reads ``FLWR_SUPERGRID_API_URL`` when its constants module is first imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from flwr.cli.build import build_fab_from_disk
from flwr.cli.config_utils import load_and_validate
from flwr.cli.typing import SuperLinkConnection
from flwr.cli.utils import init_http_client_from_connection
from flwr.common.config import get_metadata_from_config
from flwr.common.constant import FAB_CONFIG_FILE
from flwr.common.serde import fab_to_proto, run_from_proto, user_config_to_proto
from flwr.proto.control_pb2 import (  # pylint: disable=no-name-in-module
    ListNodesRequest,
    ListRunsRequest,
    RegisterNodeRequest,
    StartRunRequest,
    StopRunRequest,
)
from flwr.supercore.error.base import ApiErrorCode, FlowerError
from flwr.supercore.fab import Fab
from flwr.supercore.primitives.asymmetric import public_key_to_bytes

from federation.flower.runner import RunNotFound
from federation.tls import InsecureTransport, is_loopback_host

RunConfigValue = str | int | float | bool


@dataclass(frozen=True)
class NodeStatus:
    """A SuperNode as the SuperLink sees it."""

    node_id: int
    name: str
    status: str


@dataclass(frozen=True)
class RunState:
    """Status of a Flower run: ``status`` is pending/starting/running/finished."""

    run_id: int
    status: str
    sub_status: str
    details: str

    @property
    def finished(self) -> bool:
        """True once the run reached a final state."""
        return self.status == "finished"

    @property
    def succeeded(self) -> bool:
        """True if the run finished and completed."""
        return self.finished and self.sub_status == "completed"


class ControlClient:
    """Control API client bound to one SuperLink.

    Parameters
    ----------
    address : str
        ``host:port`` of the SuperLink.
    root_certificate : Path | None
        CA certificate that signed the SuperLink's certificate; None for an insecure
        (plain HTTP) SuperLink, which needs ``allow_insecure`` and a loopback address.
    allow_insecure : bool
        Explicit development opt-in to an insecure SuperLink on loopback.

    Raises
    ------
    InsecureTransport
        No root certificate, and not an explicitly allowed loopback SuperLink.
    """

    def __init__(
        self, address: str, root_certificate: Path | None, *, allow_insecure: bool = False
    ) -> None:
        if root_certificate is None:
            host = address.rsplit(":", 1)[0]
            if not (allow_insecure and is_loopback_host(host)):
                raise InsecureTransport(
                    f"the Control API at {address} would be used without TLS: set its root "
                    "certificate (MILLWRIGHT_HUB_CAMPAIGN_SUPERLINK_ROOT_CERT, --root-cert); "
                    "an insecure SuperLink is allowed only on loopback in development"
                )
        self.address = address
        connection = SuperLinkConnection(
            name="millwright",
            address=address,
            root_certificates=None if root_certificate is None else str(root_certificate),
            insecure=root_certificate is None,
        )
        # flwr prints "Using SuperLink: ..." to stdout; keep ours clean for --format json.
        with contextlib.redirect_stdout(io.StringIO()):
            self._client = init_http_client_from_connection(connection)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def register_node(self, public_key_path: Path, *, name: str) -> int:
        """Register a SuperNode's OpenSSH public key; return its node id."""
        key = serialization.load_ssh_public_key(public_key_path.read_bytes())
        response = self._client.RegisterNode(
            RegisterNodeRequest(
                public_key=public_key_to_bytes(key),  # type: ignore[arg-type]
                name=name,
            )
        )
        return int(response.node_id)

    def list_nodes(self) -> list[NodeStatus]:
        """Return every SuperNode the SuperLink knows, with its status."""
        response = self._client.ListNodes(ListNodesRequest())
        return [
            NodeStatus(node_id=int(n.node_id), name=n.name, status=n.status)
            for n in response.nodes_info
        ]

    def start_run(self, app_dir: Path, run_config: dict[str, RunConfigValue]) -> int:
        """Package ``app_dir`` as a FAB, start it with ``run_config``; return the run id."""
        config, _warnings = load_and_validate(app_dir / FAB_CONFIG_FILE)
        if config is None:
            raise ValueError(f"{app_dir / FAB_CONFIG_FILE} is not a valid Flower app config")
        fab_bytes = build_fab_from_disk(app_dir)
        fab = Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})
        get_metadata_from_config(config)  # validates publisher/name/version
        response = self._client.StartRun(
            StartRunRequest(
                fab=fab_to_proto(fab),
                override_config=user_config_to_proto(dict[str, Any](run_config)),
                federation="",
            )
        )
        if not response.HasField("run_id"):
            raise RuntimeError("SuperLink did not start the run")
        return int(response.run_id)

    def run_state(self, run_id: int) -> RunState:
        """Return the current status of run ``run_id``.

        Raises
        ------
        RunNotFound
            The SuperLink answers that it has no such run.
        """
        try:
            response = self._client.ListRuns(ListRunsRequest(run_id=run_id))
        except httpx.HTTPStatusError as err:
            if _flower_error_code(err) == ApiErrorCode.RUN_ID_NOT_FOUND:
                raise RunNotFound(run_id, self.address) from err
            raise
        run = run_from_proto(response.run_dict[run_id])
        return RunState(
            run_id=run_id,
            status=run.status.status,
            sub_status=run.status.sub_status,
            details=run.status.details,
        )

    def stop_run(self, run_id: int) -> None:
        """Ask the SuperLink to stop run ``run_id``."""
        self._client.StopRun(StopRunRequest(run_id=run_id))


def _flower_error_code(err: httpx.HTTPStatusError) -> int | None:
    """Return the ``ApiErrorCode`` of a Control API error answer (None if it has none)."""
    flower_error = FlowerError.from_json(err.response.text)
    return None if flower_error is None else flower_error.code
