"""HubSettings: the hub's only reader of the environment (prefix ``MILLWRIGHT_HUB_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")
#: Every REST route of the hub lives under this prefix.
API_PREFIX = "/api/v1"


class HubSettings(BaseSettings):
    """Typed settings of the hub deployable.

    Every field reads ``MILLWRIGHT_HUB_<FIELD>``; the database URL also accepts the
    project-wide ``MILLWRIGHT_DATABASE_URL``. Tests build their own instance instead of
    patching the environment.
    """

    model_config = SettingsConfigDict(
        env_prefix="MILLWRIGHT_HUB_", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "production"] = Field(
        "development",
        description="development or production (production refuses an in-memory database).",
    )
    database_url: str = Field(
        f"sqlite:///{DEFAULT_VAR_DIR / 'hub' / 'hub.db'}",
        validation_alias=AliasChoices(
            "database_url", "MILLWRIGHT_HUB_DATABASE_URL", "MILLWRIGHT_DATABASE_URL"
        ),
        description="SQLAlchemy URL: SQLite file (embedded) or PostgreSQL (psycopg 3).",
    )
    artifact_root: Path = Field(
        DEFAULT_VAR_DIR / "hub" / "artifacts",
        description="Directory of the content-addressed artifact store (sha256/ab/cd/<digest>).",
    )
    max_upload_bytes: int = Field(
        512 * 1024 * 1024, gt=0, description="Largest artifact upload accepted, in bytes."
    )
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest request body of a route without its own limit."
    )
    max_batch_body_bytes: int = Field(
        8 * 1024 * 1024,
        gt=0,
        description=(
            "Largest body of a batch route (versions/batch, plant events, metrics-report batches)."
        ),
    )
    max_recipe_body_bytes: int = Field(
        128 * 1024, gt=0, description="Largest body of a recipe create or update."
    )
    default_page_size: int = Field(50, gt=0, description="Page size when a list omits it.")
    max_page_size: int = Field(500, gt=0, description="Largest page size a list returns.")
    max_batch_size: int = Field(
        1000, gt=0, description="Most model versions or events accepted in one batch request."
    )
    idempotency_ttl_hours: float = Field(
        24.0,
        gt=0,
        description="Hours an Idempotency-Key replays its first result; older keys count as new.",
    )
    auth_cache_seconds: float = Field(
        0.0,
        ge=0,
        description=(
            "Seconds a verified token is remembered in-process (0, the default: off, so a "
            "revocation applies to the next request on every hub process)."
        ),
    )
    public_docs: bool = Field(
        False,
        description=(
            "Serve /docs and /openapi.json without a token (development only); otherwise "
            "/openapi.json needs a valid token and /docs is not served."
        ),
    )
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="How long SQLite waits on a locked database before failing."
    )
    db_pool_size: int = Field(10, gt=0, description="Database connection pool size.")
    campaign_superlink: str | None = Field(
        None,
        description="host:port of the SuperLink's Control API; unset: campaigns stay queued.",
    )
    campaign_superlink_root_cert: Path | None = Field(
        None,
        description="CA certificate of the SuperLink's TLS (unset: insecure, loopback in "
        "development only).",
    )
    campaign_work_dir: Path = Field(
        DEFAULT_VAR_DIR / "hub" / "campaigns",
        description="Where campaign runs write results, weights and exports.",
    )
    campaigns_in_scheduler: bool = Field(
        False,
        description="Drive campaigns from `millwright hub scheduler` (job `campaigns.advance`) "
        "instead of a thread in the web process.",
    )
    campaign_poll_seconds: float = Field(
        1.0, gt=0, description="How often the campaign worker checks running campaigns."
    )
    tls_certfile: Path | None = Field(
        None, description="PEM server certificate: `hub serve` speaks HTTPS (TLS 1.2+)."
    )
    tls_keyfile: Path | None = Field(None, description="PEM private key of `tls_certfile`.")
    tls_client_ca: Path | None = Field(
        None, description="CA of client certificates: when set, every client needs one (mTLS)."
    )
    ui_secret: SecretStr | None = Field(
        None,
        description="Key that signs dashboard session cookies (unset: a random key per "
        "process, so sessions end when the hub restarts).",
    )
    ui_session_hours: float = Field(
        8.0, gt=0, le=24 * 7, description="Hours a dashboard session lasts after sign-in."
    )
    cost_policy_file: Path | None = Field(
        None,
        description="YAML of the plants' cost policies (kind: cost) the business-impact "
        "page prices outcomes with; unset: counts only, no money.",
    )
    fleet_worker: bool = Field(
        True, description="Run the rollout engine and the webhook sender in the hub process."
    )
    retraining_gate: str = Field(
        "promotion-default@1",
        description="Promotion gate (id@version) a retrained candidate must pass; a gate with "
        "`approvals.required: 0` promotes it automatically, signed by the system identity.",
    )
    retraining_rounds: int = Field(
        3, ge=1, le=100, description="Rounds of the campaign a retraining decision starts."
    )
    rollout_poll_seconds: float = Field(
        2.0, gt=0, description="How often the rollout engine advances active rollouts."
    )
    node_stale_seconds: float = Field(
        900.0, gt=0, description="A plant silent longer than this is `stale` in the inventory."
    )
    node_stale_check_seconds: float = Field(
        60.0,
        gt=0,
        description="How often the hub scheduler's job liveness.check_nodes looks for plants "
        "silent beyond node_stale_seconds (webhooks node.stale / node.recovered).",
    )
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often the webhook sender drains the delivery outbox."
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, description="Seconds a receiver has to answer one delivery."
    )
    webhook_backoff_seconds: float = Field(
        2.0, gt=0, description="Delay before the first retry; doubles after each failure."
    )
    webhook_max_attempts: int = Field(
        8, gt=0, description="Attempts after which a delivery is marked failed."
    )
    host: str = Field("127.0.0.1", description="Interface `millwright hub serve` binds.")
    port: int = Field(8100, gt=0, lt=65536, description="Port `millwright hub serve` binds.")
    log_level: str = Field("INFO", description="Root log level (DEBUG, INFO, WARNING, ...).")
    log_json: bool = Field(True, description="Emit one JSON object per log line.")
    access_log: bool = Field(True, description="Log one line per HTTP request.")

    @field_validator("database_url")
    @classmethod
    def _normalise_driver(cls, value: str) -> str:
        # psycopg 3 is the only PostgreSQL driver we ship; accept the common spellings.
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _check_limits(self) -> HubSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        if self.environment == "production" and self.is_sqlite and ":memory:" in self.database_url:
            raise ValueError("an in-memory database cannot back a production hub")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together")
        if self.tls_client_ca is not None and self.tls_certfile is None:
            raise ValueError("tls_client_ca (mTLS) needs tls_certfile and tls_keyfile")
        if (
            self.environment == "production"
            and self.campaign_superlink
            and self.campaign_superlink_root_cert is None
        ):
            raise ValueError(
                "a production hub refuses an insecure Control API: set "
                "MILLWRIGHT_HUB_CAMPAIGN_SUPERLINK_ROOT_CERT to the SuperLink's CA"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is an embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """Filesystem path of the SQLite database, or None for other backends."""
        if not self.is_sqlite:
            return None
        raw = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        return Path(raw.split("?", 1)[0]) if raw and raw != ":memory:" else None
