"""Settings of the Flower deployment (ports, TLS, where state and logs go)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FlowerSettings(BaseSettings):
    """Where and how the SuperLink and the SuperNodes run (prefix ``MILLWRIGHT_FLOWER_``).

    Ports avoid Flower's defaults (8000 for the SuperLink HTTP API, 9094 for a
    SuperNode's Runtime API): 8000 is too common a port on a plant PC.
    """

    model_config = SettingsConfigDict(env_prefix="MILLWRIGHT_FLOWER_", extra="ignore")

    var_dir: Path = Field(default=Path("var/flower"), description="state, certificates, logs")
    superlink_host: str = "127.0.0.1"
    superlink_port: int = Field(default=9092, ge=1, le=65535)
    supernode_base_port: int = Field(
        default=9200, ge=1, le=65535, description="SuperNode i serves its Runtime API on base+i"
    )
    tls: bool = Field(default=True, description="False means --insecure (unit tests only)")
    node_auth: bool = Field(default=True, description="SuperNode authentication (needs TLS)")
    superlink_database: bool = Field(
        default=True,
        description="keep the SuperLink's state (SuperNode registrations, runs) in "
        "<var_dir>/superlink/state.db; in memory, a restarted SuperLink forgets its SuperNodes",
    )
    server_hosts: list[str] = Field(
        default_factory=list, description="extra names/IPs in the SuperLink certificate"
    )

    @property
    def superlink_address(self) -> str:
        """``host:port`` of the SuperLink."""
        return f"{self.superlink_host}:{self.superlink_port}"

    @property
    def certs_dir(self) -> Path:
        """Directory of the CA, the server certificate and the SuperNode keys."""
        return self.var_dir / "certs"

    @property
    def logs_dir(self) -> Path:
        """Directory of the process log files."""
        return self.var_dir / "logs"
