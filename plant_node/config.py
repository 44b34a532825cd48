"""NodeSettings: the plant node's one typed settings object (env prefix ``MILLWRIGHT_NODE_``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from federation.tls import require_secure_url
from plant_node.auth.schemas import BootstrapKey

PLACEHOLDER_TOKENS = frozenset({"", "changeme", "change-me", "secret", "token", "dev-token"})


class RolloutMode(StrEnum):
    """How a challenger model shares traffic with the champion."""

    SHADOW = "shadow"
    CANARY = "canary"
    FULL = "full"


class NodeSettings(BaseSettings):
    """Everything a plant node reads from its environment.

    Paths left unset are derived from ``data_dir``, which itself defaults to
    ``var/node-<plant_id>/``, so two nodes on one machine never share a database.
    """

    model_config = SettingsConfigDict(
        env_prefix="MILLWRIGHT_NODE_", env_file=None, extra="ignore", validate_default=True
    )

    environment: Literal["development", "production"] = "development"
    plant_id: str = Field(default="plant-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    hub_url: str = "http://127.0.0.1:8100"
    hub_token: SecretStr | None = None
    hub_timeout_s: float = Field(default=5.0, gt=0)
    # TLS to the hub: the CA that signed the hub's certificate is pinned (system CAs are not
    # trusted when it is set); a client certificate is presented when the hub requires mTLS.
    hub_ca_file: Path | None = None
    hub_client_cert: Path | None = None
    hub_client_key: Path | None = None

    # Keys hashed into the node's database on start (JSON list of {role, name, key}), so a
    # node can start with credentials (demo, tests, provisioning); see `millwright node
    # create-key` for the usual way. A bootstrap key revoked with revoke-key stays revoked.
    bootstrap_keys: list[BootstrapKey] = Field(default_factory=list)

    # Request body limits in bytes, enforced while the body streams in (413 before buffering).
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_predict_body_bytes: int = Field(default=8_000_000, ge=1024)
    # What quarantine keeps of a rejected batch (the sha256 of the whole batch is kept too).
    quarantine_excerpt_bytes: int = Field(default=16_384, ge=256)
    # Model artifacts: limits of an unpacked archive (a decompression bomb is refused).
    artifact_max_bytes: int = Field(default=512_000_000, ge=1024)
    artifact_max_members: int = Field(default=1000, ge=1)
    artifact_max_ratio: float = Field(default=200.0, gt=1)

    host: str = "127.0.0.1"
    port: int = Field(default=8200, ge=0, le=65535)
    # TLS of the node's own listener (`millwright node serve --certfile --keyfile`): line and
    # engineer keys cross the plant network; production refuses plain HTTP off loopback.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    tls_client_ca: Path | None = None

    data_dir: Path | None = None
    model_cache_dir: Path | None = None
    database_url: str | None = None
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    # FULL: every commit (one per group of concurrent predictions) fsyncs the WAL, so an
    # acknowledged prediction survives power loss too; NORMAL survives a killed process only.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    # Serving.
    keep_model_versions: int = Field(default=3, ge=1)
    inference_threads: int = Field(default=1, ge=1)
    performance_hint: Literal["LATENCY", "THROUGHPUT"] = "LATENCY"
    serving_precision: Literal["int8", "fp32"] = "int8"
    max_batch_size: int = Field(default=1024, ge=1)
    explain: Literal["inline", "deferred", "off"] = "deferred"
    explain_exact_max_signals: int = Field(default=10, ge=1, le=16)
    explain_permutations: int = Field(default=16, ge=2)
    # An explanation stored later than this after its prediction counts as late (/metrics).
    explain_deadline_s: float = Field(default=1.0, gt=0)
    alert_cooldown_s: float = Field(default=300.0, ge=0)
    warm_fallbacks: bool = False
    # Line connectors run in the serving process (plant_node.connectors): mapping files,
    # comma-separated in MILLWRIGHT_NODE_CONNECTORS.
    connectors: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # Staged rollout.
    rollout_mode: RolloutMode = RolloutMode.SHADOW
    canary_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    rollback_min_samples: int = Field(default=50, ge=1)
    rollback_max_error_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    rollback_max_p99_ms: float = Field(default=50.0, gt=0)
    rollback_max_disagreement: float = Field(default=0.2, ge=0.0, le=1.0)

    # Store-and-forward outbox.
    outbox_enabled: bool = True
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)
    outbox_base_delay_s: float = Field(default=0.5, gt=0)
    outbox_max_delay_s: float = Field(default=300.0, gt=0)
    outbox_batch_size: int = Field(default=100, ge=1)
    outbox_retention_days: float = Field(default=30.0, gt=0)
    # Disk budget of the outbox rows (payloads and keys, MB). Over it, the budget job frees
    # delivered rows, then thins and finally drops unsent metrics reports; alerts, feedback,
    # rollout and retraining records are never dropped (see plant_node.outbox.jobs).
    outbox_max_mb: float = Field(default=256.0, gt=0)
    outbox_budget_interval_s: float = Field(default=600.0, gt=0)
    scheduler_enabled: bool = True
    # The scheduler runs in its own process (``millwright node scheduler``); True runs it
    # inside ``serve`` instead (one uvicorn worker), for a single-process node.
    scheduler_in_serve: bool = False
    scheduler_misfire_grace_s: float = Field(default=600.0, ge=1)
    scheduler_workers: int = Field(default=2, ge=1, le=16)

    # Retraining triggers (plant_node.retraining): a ``retraining`` policy document, by a
    # standard ref (``retraining-default@1``) or a YAML file path, evaluated every interval.
    retraining_enabled: bool = True
    retraining_policy: str = "retraining-default@1"
    retraining_interval_s: float = Field(default=900.0, gt=0)
    # Chunks whose estimated metric is averaged against the reference (smooths one bad chunk).
    retraining_metric_chunks: int = Field(default=3, ge=1, le=1000)
    # Failure types the champion was trained on (comma-separated); empty: those seen in
    # operator feedback before the champion's first prediction.
    retraining_known_failure_types: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Seconds between conditional polls of the hub's assignments (plant_node.serving.follow, a
    # thread of the serving process).
    hub_poll_interval_s: float = Field(default=10.0, gt=0)
    # Seconds between the follower's rollout.stats reports (plant_node.serving.stats; 0: none)
    # and the longest gap between two reports whose counts did not move (a heartbeat below
    # the hub's node_stale_seconds keeps an idle node from looking stale).
    rollout_stats_interval_s: float = Field(default=30.0, ge=0)
    rollout_stats_heartbeat_s: float = Field(default=300.0, gt=0)

    # Monitoring (plant_node.monitoring.flows). Chunks of logged champion predictions per
    # baseline and model version; the reference is the first ``monitor_reference_rows``
    # predictions of that version, fitted once they are all labelled.
    monitoring_enabled: bool = True
    monitor_interval_s: float = Field(default=3600.0, gt=0)
    monitor_chunk_size: int = Field(default=500, ge=10)
    monitor_chunk_period: str | None = None
    monitor_reference_rows: int = Field(default=2000, ge=20)
    monitor_batch_rows: int = Field(default=20_000, ge=100)
    monitor_min_rows: int = Field(default=100, ge=1)
    monitor_expected_interval_s: float = Field(default=0.0, ge=0)
    monitor_alarm_horizon_h: float = Field(default=72.0, gt=0)
    monitor_timeout_s: float = Field(default=900.0, gt=0)
    monitor_pseudonym_key: SecretStr | None = None

    @field_validator("retraining_known_failure_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("connectors", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("hub_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("hub_url must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _derive_paths_and_check_secrets(self) -> NodeSettings:
        if self.data_dir is None:
            self.data_dir = Path("var") / f"node-{self.plant_id}"
        if self.model_cache_dir is None:
            self.model_cache_dir = self.data_dir / "models"
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'node.db'}"
        if (self.hub_client_cert is None) != (self.hub_client_key is None):
            raise ValueError("MILLWRIGHT_NODE_HUB_CLIENT_CERT and _HUB_CLIENT_KEY go together")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("MILLWRIGHT_NODE_TLS_CERTFILE and _TLS_KEYFILE go together")
        if self.tls_client_ca is not None and self.tls_certfile is None:
            raise ValueError("MILLWRIGHT_NODE_TLS_CLIENT_CA (mTLS) needs _TLS_CERTFILE/_KEYFILE")
        if self.environment == "production":
            # The token must never cross a network in clear text.
            require_secure_url(self.hub_url, what="MILLWRIGHT_NODE_HUB_URL")
            token = self.hub_token.get_secret_value() if self.hub_token else ""
            if token.lower() in PLACEHOLDER_TOKENS:
                raise ValueError(
                    "MILLWRIGHT_NODE_HUB_TOKEN must be set to the plant's real token in production"
                )
        return self

    @property
    def data_path(self) -> Path:
        """The node's data directory (always set after validation)."""
        assert self.data_dir is not None
        return self.data_dir

    @property
    def cache_path(self) -> Path:
        """The model cache directory (always set after validation)."""
        assert self.model_cache_dir is not None
        return self.model_cache_dir

    @property
    def db_url(self) -> str:
        """The SQLAlchemy database URL (always set after validation)."""
        assert self.database_url is not None
        return self.database_url

    def ensure_dirs(self) -> None:
        """Create the data and model cache directories (and the SQLite file's folder)."""
        self.data_path.mkdir(parents=True, exist_ok=True)
        self.cache_path.mkdir(parents=True, exist_ok=True)
        if self.db_url.startswith("sqlite:///"):
            Path(self.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
