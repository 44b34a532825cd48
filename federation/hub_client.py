"""Typed HTTP client of the hub, used by data scientists, the CLI and plant nodes.

One method per endpoint, returning :mod:`federation.schemas` models. Error responses are
rebuilt into the same :class:`~federation.errors.MillwrightError` subclasses the hub raised.
Creates that may be retried carry an ``Idempotency-Key`` that stays the same across retries.
Pass ``client=`` to reuse a connection pool, or a FastAPI ``TestClient`` in tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from federation.errors import MillwrightError, Unavailable, error_from_problem
from federation.schemas.audit import AuditEntryRead, AuditPage, AuditVerification
from federation.schemas.auth import (
    Principal,
    Role,
    TokenCreate,
    TokenCreated,
    TokenPage,
    TokenRead,
    UserCreate,
    UserPage,
    UserRead,
)
from federation.schemas.campaigns import CampaignCreate, CampaignPage, CampaignRead
from federation.schemas.events import (
    EventIngestResult,
    PlantEventBatch,
    PlantEventCreate,
    PlantEventPage,
    PlantEventRead,
)
from federation.schemas.governance import (
    BreakGlassCreate,
    LifecycleList,
    PolicyDiff,
    PolicyPage,
    PolicyPublished,
    PolicyRead,
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionStatus,
    SignatureCreate,
    SignatureMeaning,
)
from federation.schemas.health import Readiness
from federation.schemas.metrics_registry import (
    MetricKind,
    MetricObservationPage,
    MetricObservationRead,
    MetricsReportReceipt,
    MetricSummary,
)
from federation.schemas.metrics_report import MetricsReport
from federation.schemas.recipes import RecipeCreate, RecipePage, RecipeRead, RecipeUpdate
from federation.schemas.registry import (
    AliasList,
    AliasName,
    AliasRead,
    AliasSet,
    ArtifactRead,
    AssignmentList,
    BaselineModelCreate,
    BaselineModelPage,
    BaselineModelRead,
    PlantCreate,
    PlantPage,
    PlantRead,
    PlantUpdate,
    TagSet,
    VersionBatchCreate,
    VersionBatchRead,
    VersionCreate,
    VersionDiff,
    VersionPage,
    VersionRead,
)
from federation.schemas.retraining import (
    RetrainingChain,
    RetrainingRequestCreate,
    RetrainingRequestPage,
    RetrainingRequestRead,
)
from federation.schemas.rollouts import (
    InventoryList,
    RollbackCreate,
    RollbackRead,
    RollbackResult,
    RolloutAction,
    RolloutCreate,
    RolloutPage,
    RolloutRead,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookDeliveryRead,
    WebhookEvent,
    WebhookPage,
    WebhookRotate,
)
from federation.tls import client_context

M = TypeVar("M", bound=BaseModel)
API = "/api/v1"
_RETRY_STATUSES = {502, 503, 504}
_CHUNK = 1024 * 1024


class HubClient:
    """Client of one hub.

    Parameters
    ----------
    base_url
        Hub root URL, e.g. ``http://127.0.0.1:8100`` (ignored when ``client`` has its own).
    token
        Bearer token sent on every request.
    client
        An existing ``httpx.Client`` (or ``TestClient``); the caller keeps ownership.
    timeout
        Seconds per request when this object creates its own client.
    retries
        Extra attempts for connection errors and 502/503/504 on safe or idempotent calls.
    backoff
        Seconds before the first retry; doubles each time.
    ca_file
        PEM CA to pin for an ``https://`` hub (instead of the system store); the demo and
        plant nodes pass the CA that signed the hub's certificate.
    client_cert
        ``(certificate, key)`` to present when the hub requires mutual TLS.

    Examples
    --------
    >>> with HubClient("http://127.0.0.1:8100", token="mw_...") as hub:  # doctest: +SKIP
    ...     for plant in hub.iter_plants():
    ...         print(plant.id)
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8100",
        *,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.2,
        ca_file: str | Path | None = None,
        client_cert: tuple[str | Path, str | Path] | None = None,
    ) -> None:
        self._owns_client = client is None
        if client is None:
            verify: ssl.SSLContext | bool = True
            if ca_file is not None or client_cert is not None:
                cert, key = client_cert if client_cert is not None else (None, None)
                verify = client_context(ca_file, client_cert=cert, client_key=key)
            client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, verify=verify)
        self._client = client
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.backoff = backoff

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Close the underlying client if this object created it."""
        if self._owns_client:
            self._client.close()

    def with_token(self, token: str) -> HubClient:
        """Return a client of the same hub (same connection pool) acting with ``token``."""
        return HubClient(
            client=self._client, token=token, retries=self.retries, backoff=self.backoff
        )

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | Callable[[], Any] | None = None,
        headers: dict[str, str] | None = None,
        retry: bool = False,
        stream: bool = False,
    ) -> httpx.Response:
        all_headers = {**self._headers, **(headers or {})}
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = 1 + (self.retries if retry else 0)
        delay = self.backoff
        for attempt in range(attempts):
            body = content() if callable(content) else content
            try:
                request = self._client.build_request(
                    method, path, json=json, params=clean_params, content=body, headers=all_headers
                )
                response = self._client.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise Unavailable(
                    f"the hub at {self._client.base_url} is unreachable: {exc}"
                ) from exc
            if response.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                response.close()
                time.sleep(delay)
                delay *= 2
                continue
            if response.status_code >= 400:
                raise self._error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _error(response: httpx.Response) -> MillwrightError:
        if not response.is_stream_consumed:
            response.read()
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500] or response.reason_phrase}
        if not isinstance(body, dict):
            body = {"detail": str(body)}
        return error_from_problem(body, response.status_code)

    def _get(self, path: str, model: type[M], params: dict[str, Any] | None = None) -> M:
        return model.model_validate_json(self._send("GET", path, params=params, retry=True).content)

    def _create(self, path: str, payload: BaseModel, model: type[M], method: str = "POST") -> M:
        key = {"Idempotency-Key": str(uuid.uuid4())}
        response = self._send(
            method,
            path,
            json=payload.model_dump(mode="json", exclude_unset=False),
            headers=key,
            retry=True,
        )
        return model.model_validate_json(response.content)

    def _write(self, method: str, path: str, payload: BaseModel | None, model: type[M]) -> M:
        body = payload.model_dump(mode="json", exclude_unset=True) if payload is not None else None
        return model.model_validate_json(self._send(method, path, json=body).content)

    def _iterate(self, fetch: Callable[[str | None], Any]) -> Iterator[Any]:
        token: str | None = None
        while True:
            page = fetch(token)
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    # ------------------------------------------------------------ health & auth

    def ready(self) -> Readiness:
        """Readiness of the hub (raises :class:`Unavailable` when not ready)."""
        return self._get("/readyz", Readiness)

    def whoami(self) -> Principal:
        """Return the principal of this client's token."""
        return self._get(f"{API}/whoami", Principal)

    def create_token(
        self,
        role: Role,
        *,
        plant_id: str | None = None,
        name: str = "",
        username: str | None = None,
    ) -> TokenCreated:
        """Mint a token (admin only) for ``username`` (else a new service user); shown once."""
        payload = TokenCreate(role=role, plant_id=plant_id, name=name, username=username)
        return self._write("POST", f"{API}/tokens", payload, TokenCreated)

    def list_tokens(self) -> TokenPage:
        """Every token's metadata (admin only)."""
        return self._get(f"{API}/tokens", TokenPage)

    def revoke_token(self, token_id: int) -> TokenRead:
        """Revoke a token (admin only); the last active admin token cannot be revoked."""
        return self._write("DELETE", f"{API}/tokens/{token_id}", None, TokenRead)

    def list_audit(
        self,
        *,
        action: str | None = None,
        subject: str | None = None,
        actor: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> AuditPage:
        """One page of the audit chain in order (admin and executive only)."""
        params = {
            "action": action,
            "subject": subject,
            "actor": actor,
            "since": since,
            "until": until,
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._get(
            f"{API}/audit", AuditPage, {k: v for k, v in params.items() if v is not None}
        )

    def verify_audit(self, *, expect_head: str | None = None) -> AuditVerification:
        """Have the hub recompute its audit chain (admin and executive only)."""
        params = {"expect_head": expect_head} if expect_head else None
        return self._get(f"{API}/audit/verify", AuditVerification, params)

    def iter_audit(self, **filters: Any) -> Iterator[AuditEntryRead]:
        """Every audit entry matching ``filters`` (see :meth:`list_audit`), page by page."""
        return self._iterate(lambda token: self.list_audit(page_token=token, **filters))

    def create_user(self, user: UserCreate) -> UserRead:
        """Add a user account (admin only)."""
        return self._write("POST", f"{API}/users", user, UserRead)

    def list_users(self) -> UserPage:
        """Every user account (admin only)."""
        return self._get(f"{API}/users", UserPage)

    # ------------------------------------------------------------ plants

    def create_plant(self, plant: PlantCreate) -> PlantRead:
        """Enroll a plant (safe to retry; identical re-enrollment is a no-op)."""
        return self._create(f"{API}/plants", plant, PlantRead)

    def get_plant(self, plant_id: str) -> PlantRead:
        """One plant."""
        return self._get(f"{API}/plants/{plant_id}", PlantRead)

    def update_plant(self, plant_id: str, update: PlantUpdate) -> PlantRead:
        """Change a plant's descriptive fields."""
        return self._write("PATCH", f"{API}/plants/{plant_id}", update, PlantRead)

    def list_plants(
        self,
        *,
        site: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> PlantPage:
        """One page of plants."""
        params = {"site": site, "page_size": page_size, "page_token": page_token}
        return self._get(f"{API}/plants", PlantPage, params)

    def iter_plants(
        self, *, site: str | None = None, page_size: int | None = None
    ) -> Iterator[PlantRead]:
        """Every plant, following ``next_page_token``."""
        return self._iterate(
            lambda t: self.list_plants(site=site, page_size=page_size, page_token=t)
        )

    # ------------------------------------------------------------ baseline models

    def create_model(self, model: BaselineModelCreate) -> BaselineModelRead:
        """Register a baseline model (safe to retry)."""
        return self._create(f"{API}/models", model, BaselineModelRead)

    def get_model(self, name: str) -> BaselineModelRead:
        """One baseline model."""
        return self._get(f"{API}/models/{name}", BaselineModelRead)

    def list_models(
        self,
        *,
        dataset: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> BaselineModelPage:
        """One page of baseline models."""
        params = {"dataset": dataset, "page_size": page_size, "page_token": page_token}
        return self._get(f"{API}/models", BaselineModelPage, params)

    def iter_models(self, *, dataset: str | None = None) -> Iterator[BaselineModelRead]:
        """Every baseline model."""
        return self._iterate(lambda t: self.list_models(dataset=dataset, page_token=t))

    # ------------------------------------------------------------ recipes

    def create_recipe(self, recipe: RecipeCreate) -> RecipeRead:
        """Create a draft recipe version (safe to retry)."""
        return self._create(f"{API}/recipes", recipe, RecipeRead)

    def get_recipe(self, recipe_id: int) -> RecipeRead:
        """One recipe version."""
        return self._get(f"{API}/recipes/{recipe_id}", RecipeRead)

    def update_recipe(self, recipe_id: int, update: RecipeUpdate) -> RecipeRead:
        """Change a draft recipe."""
        return self._write("PATCH", f"{API}/recipes/{recipe_id}", update, RecipeRead)

    def publish_recipe(self, recipe_id: int) -> RecipeRead:
        """Publish a draft recipe (idempotent)."""
        return self._write("POST", f"{API}/recipes/{recipe_id}/publish", None, RecipeRead)

    def list_recipes(
        self, *, name: str | None = None, status: str | None = None, page_token: str | None = None
    ) -> RecipePage:
        """One page of recipe versions."""
        params = {"name": name, "status": status, "page_token": page_token}
        return self._get(f"{API}/recipes", RecipePage, params)

    def iter_recipes(
        self, *, name: str | None = None, status: str | None = None
    ) -> Iterator[RecipeRead]:
        """Every recipe version."""
        return self._iterate(lambda t: self.list_recipes(name=name, status=status, page_token=t))

    # ------------------------------------------------------------ campaigns

    def create_campaign(self, campaign: CampaignCreate) -> CampaignRead:
        """Queue a federated campaign (safe to retry: one Idempotency-Key for every attempt)."""
        return self._create(f"{API}/campaigns", campaign, CampaignRead)

    def get_campaign(self, campaign_id: int) -> CampaignRead:
        """One campaign with its per-round metrics and results."""
        return self._get(f"{API}/campaigns/{campaign_id}", CampaignRead)

    def list_campaigns(
        self, *, status: str | None = None, page_token: str | None = None
    ) -> CampaignPage:
        """One page of campaigns (without round records), optionally of one status."""
        params = {"status": status, "page_token": page_token}
        return self._get(f"{API}/campaigns", CampaignPage, params)

    def iter_campaigns(self, *, status: str | None = None) -> Iterator[CampaignRead]:
        """Every campaign, optionally of one status."""
        return self._iterate(lambda t: self.list_campaigns(status=status, page_token=t))

    def cancel_campaign(self, campaign_id: int) -> CampaignRead:
        """Cancel a queued or running campaign (cancelling twice is harmless)."""
        return self._write("POST", f"{API}/campaigns/{campaign_id}/cancel", None, CampaignRead)

    # ------------------------------------------------------------ artifacts

    def upload_artifact(
        self, source: bytes | Path, *, media_type: str = "application/octet-stream"
    ) -> ArtifactRead:
        """Upload bytes or a file under its sha256 (streamed from disk; safe to retry)."""
        if isinstance(source, bytes):
            digest = hashlib.sha256(source).hexdigest()
            content: bytes | Callable[[], Any] = source
        else:
            path = Path(source)
            digest = _file_sha256(path)

            def content() -> Iterator[bytes]:
                return _iter_file(path)

        response = self._send(
            "PUT",
            f"{API}/artifacts/sha256/{digest}",
            content=content,
            headers={"Content-Type": media_type},
            retry=True,
        )
        return ArtifactRead.model_validate_json(response.content)

    def get_artifact(self, digest: str) -> ArtifactRead:
        """Return an artifact's metadata."""
        return self._get(f"{API}/artifacts/sha256/{digest}/metadata", ArtifactRead)

    def download_artifact(self, digest: str, dest: Path | BinaryIO) -> int:
        """Stream an artifact into ``dest`` (a path or binary file) and verify its sha256.

        Returns
        -------
        int
            Number of bytes written.

        Raises
        ------
        IntegrityMismatch
            When the received bytes do not hash to ``digest`` (a path destination is removed).
        """
        from federation.errors import IntegrityMismatch

        hasher = hashlib.sha256()
        size = 0
        response = self._send("GET", f"{API}/artifacts/sha256/{digest}", retry=True, stream=True)
        own = isinstance(dest, Path | str)
        fh: BinaryIO = open(dest, "wb") if own else dest  # type: ignore[arg-type, assignment]  # noqa: SIM115
        try:
            for chunk in response.iter_bytes(_CHUNK):
                hasher.update(chunk)
                fh.write(chunk)
                size += len(chunk)
        finally:
            response.close()
            if own:
                fh.close()
        if hasher.hexdigest() != digest:
            if own:
                Path(dest).unlink(missing_ok=True)  # type: ignore[arg-type]
            raise IntegrityMismatch(
                f"downloaded bytes hash to sha256:{hasher.hexdigest()}, expected sha256:{digest}"
            )
        return size

    # ------------------------------------------------------------ versions

    def create_version(self, version: VersionCreate) -> VersionRead:
        """Register a model version (safe to retry)."""
        return self._create(f"{API}/versions", version, VersionRead)

    def create_versions(self, versions: list[VersionCreate]) -> list[VersionRead]:
        """Register many versions in one transaction (safe to retry)."""
        batch = VersionBatchCreate(versions=versions)
        return self._create(f"{API}/versions/batch", batch, VersionBatchRead).items

    def get_version(self, version_id: int) -> VersionRead:
        """One version by id."""
        return self._get(f"{API}/versions/{version_id}", VersionRead)

    def get_version_by_label(self, model: str, version: str) -> VersionRead:
        """One version by model name and version label."""
        return self._get(f"{API}/models/{model}/versions/{version}", VersionRead)

    def list_versions(
        self,
        *,
        model: str | None = None,
        plant_id: str | None = None,
        tag: str | None = None,
        recipe_id: int | None = None,
        parent_id: int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> VersionPage:
        """One page of versions, newest first; ``tag`` is ``key`` or ``key=value``."""
        params = {
            "model": model,
            "plant_id": plant_id,
            "tag": tag,
            "recipe_id": recipe_id,
            "parent_id": parent_id,
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._get(f"{API}/versions", VersionPage, params)

    def iter_versions(self, **filters: Any) -> Iterator[VersionRead]:
        """Every version matching the filters of :meth:`list_versions`."""
        filters.pop("page_token", None)
        return self._iterate(lambda t: self.list_versions(page_token=t, **filters))

    def diff_versions(self, a_id: int, b_id: int) -> VersionDiff:
        """Return what changed from version ``a_id`` to ``b_id``."""
        return self._get(f"{API}/versions/{a_id}/diff/{b_id}", VersionDiff)

    def set_tag(self, version_id: int, key: str, value: str) -> VersionRead:
        """Set one tag on a version."""
        return self._write(
            "PUT", f"{API}/versions/{version_id}/tags/{key}", TagSet(value=value), VersionRead
        )

    def delete_tag(self, version_id: int, key: str) -> VersionRead:
        """Remove one tag from a version."""
        return self._write("DELETE", f"{API}/versions/{version_id}/tags/{key}", None, VersionRead)

    # ------------------------------------------------------------ aliases & assignments

    def set_alias(self, plant_id: str, model: str, alias: AliasName, version_id: int) -> AliasRead:
        """Point a plant's challenger or shadow alias at a version (idempotent PUT).

        The champion is set only through :meth:`promote` (``promotion_required`` otherwise).
        """
        path = f"{API}/plants/{plant_id}/aliases/{model}/{alias.value}"
        response = self._send(
            "PUT", path, json=AliasSet(version_id=version_id).model_dump(), retry=True
        )
        return AliasRead.model_validate_json(response.content)

    def get_alias(self, plant_id: str, model: str, alias: AliasName) -> VersionRead:
        """Return the version a plant's alias points at."""
        return self._get(f"{API}/plants/{plant_id}/aliases/{model}/{alias.value}", VersionRead)

    def delete_alias(self, plant_id: str, model: str, alias: AliasName) -> None:
        """Remove a plant's alias."""
        self._send("DELETE", f"{API}/plants/{plant_id}/aliases/{model}/{alias.value}")

    def list_aliases(self, plant_id: str) -> AliasList:
        """Every alias of a plant."""
        return self._get(f"{API}/plants/{plant_id}/aliases", AliasList)

    def get_assignments(self, plant_id: str) -> AssignmentList:
        """Return what a plant should run: aliases with versions and artifact digests."""
        return self._get(f"{API}/plants/{plant_id}/assignments", AssignmentList)

    def poll_assignments(
        self, plant_id: str, etag: str | None = None
    ) -> tuple[AssignmentList | None, str | None]:
        """Conditional fetch of a plant's assignments.

        Returns ``(None, etag)`` when they did not change since ``etag`` (HTTP 304), else the
        assignments with their new ETag.
        """
        headers = {"If-None-Match": etag} if etag else None
        response = self._send(
            "GET", f"{API}/plants/{plant_id}/assignments", headers=headers, retry=True
        )
        tag = response.headers.get("etag")
        if response.status_code == 304:
            return None, tag or etag
        return AssignmentList.model_validate_json(response.content), tag

    # ------------------------------------------------------------ plant events

    def post_events(self, plant_id: str, events: list[PlantEventCreate]) -> EventIngestResult:
        """Deliver events; safe to retry because each event carries its own id."""
        body = PlantEventBatch(events=events).model_dump(mode="json")
        response = self._send("POST", f"{API}/plants/{plant_id}/events", json=body, retry=True)
        return EventIngestResult.model_validate_json(response.content)

    def list_events(
        self, plant_id: str, *, kind: str | None = None, page_token: str | None = None
    ) -> PlantEventPage:
        """One page of a plant's events."""
        params = {"kind": kind, "page_token": page_token}
        return self._get(f"{API}/plants/{plant_id}/events", PlantEventPage, params)

    def iter_events(self, plant_id: str, *, kind: str | None = None) -> Iterator[PlantEventRead]:
        """Every event of a plant, oldest first."""
        return self._iterate(lambda t: self.list_events(plant_id, kind=kind, page_token=t))

    # ------------------------------------------------------------ metrics registry

    def submit_metrics_report(
        self, plant_id: str, report: MetricsReport, *, idempotency_key: str
    ) -> MetricsReportReceipt:
        """Deliver a plant's metrics report (safe to retry with the same key).

        Re-sending a stored report returns its first receipt with ``duplicate=True``.

        Raises
        ------
        Conflict
            When the report id was already stored with different content (do not retry).
        InvalidInput
            When the hub refuses the report (schema, or a plant other than ``plant_id``).
        """
        response = self._send(
            "POST",
            f"{API}/plants/{plant_id}/metrics-reports",
            json=report.model_dump(mode="json"),
            headers={"Idempotency-Key": idempotency_key},
            retry=True,
        )
        return MetricsReportReceipt.model_validate_json(response.content)

    def submit_retraining_request(
        self, plant_id: str, request: RetrainingRequestCreate
    ) -> RetrainingRequestRead:
        """Deliver a plant's retraining request (safe to retry: its ``id`` is the key).

        A redelivered request returns the stored one with the hub's decision.

        Raises
        ------
        Conflict
            When the id was already stored with different content (do not retry).
        InvalidInput
            When the hub refuses the request (schema).
        Forbidden
            When the plant does not run the model it names.
        """
        response = self._send(
            "POST",
            f"{API}/plants/{plant_id}/retraining-requests",
            json=request.model_dump(mode="json"),
            headers={"Idempotency-Key": request.id},
            retry=True,
        )
        return RetrainingRequestRead.model_validate_json(response.content)

    def get_metrics_report(self, plant_id: str, report_id: str) -> MetricsReport:
        """One stored report, as the plant sent it."""
        return self._get(f"{API}/plants/{plant_id}/metrics-reports/{report_id}", MetricsReport)

    def list_metrics(
        self,
        *,
        plant_id: str | None = None,
        model: str | None = None,
        model_version: str | None = None,
        metric: str | None = None,
        kind: MetricKind | str | None = None,
        subject: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> MetricObservationPage:
        """One page of metric observations ordered by window; windows start in [start, end)."""
        params = _metric_filters(plant_id, model, model_version, metric, kind, subject, start, end)
        params.update(page_size=page_size, page_token=page_token)
        return self._get(f"{API}/metrics", MetricObservationPage, params)

    def iter_metrics(self, **filters: Any) -> Iterator[MetricObservationRead]:
        """Every observation matching the filters of :meth:`list_metrics`."""
        filters.pop("page_token", None)
        return self._iterate(lambda t: self.list_metrics(page_token=t, **filters))

    def summarize_metrics(
        self,
        *,
        plant_id: str | None = None,
        model: str | None = None,
        model_version: str | None = None,
        metric: str | None = None,
        kind: MetricKind | str | None = None,
        subject: str | None = None,
    ) -> MetricSummary:
        """Return the latest value of every plant x model x kind x metric x subject series."""
        params = _metric_filters(plant_id, model, model_version, metric, kind, subject, None, None)
        return self._get(f"{API}/metrics/summary", MetricSummary, params)

    # ------------------------------------------------------------ governance: policies

    def publish_policy(self, document: str | bytes) -> PolicyPublished:
        """Publish a policy document (YAML or JSON text); ``created`` is False if identical.

        Raises
        ------
        InvalidInput
            When the document does not validate; ``errors`` has one entry per path.
        Conflict
            When the same ``id@version`` was published with other content.
        """
        body = document.encode() if isinstance(document, str) else document
        response = self._send(
            "POST",
            f"{API}/policies",
            content=body,
            headers={"Content-Type": "application/yaml"},
            retry=True,
        )
        return PolicyPublished.model_validate_json(response.content)

    def list_policies(
        self,
        *,
        kind: str | None = None,
        policy_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> PolicyPage:
        """One page of published policies."""
        params = {
            "kind": kind,
            "policy_id": policy_id,
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._get(f"{API}/policies", PolicyPage, params)

    def iter_policies(self, **filters: Any) -> Iterator[PolicyRead]:
        """Every published policy matching the filters of :meth:`list_policies`."""
        filters.pop("page_token", None)
        return self._iterate(lambda t: self.list_policies(page_token=t, **filters))

    def get_policy(self, ref: str) -> PolicyRead:
        """One published policy by ``id@version``."""
        return self._get(f"{API}/policies/{quote(ref, safe='@')}", PolicyRead)

    def diff_policies(self, a: str, b: str) -> PolicyDiff:
        """Return what changed from policy ``a`` to ``b`` (both ``id@version``)."""
        return self._get(f"{API}/policies/diff", PolicyDiff, {"a": a, "b": b})

    # ------------------------------------------------------------ governance: promotions

    def request_promotion(self, promotion: PromotionCreate) -> PromotionRead:
        """Ask for a promotion; the answer is ``refused`` (with reasons) or pending approval."""
        return self._write("POST", f"{API}/promotions", promotion, PromotionRead)

    def promote(
        self,
        version_id: int,
        plant_id: str,
        *,
        policy: str,
        alias: AliasName = AliasName.CHAMPION,
        reason: str = "",
    ) -> PromotionRead:
        """Shorthand for :meth:`request_promotion`."""
        return self.request_promotion(
            PromotionCreate(
                version_id=version_id, plant_id=plant_id, alias=alias, policy=policy, reason=reason
            )
        )

    def get_promotion(self, promotion_id: int) -> PromotionRead:
        """One promotion request with its evidence, decision and signatures."""
        return self._get(f"{API}/promotions/{promotion_id}", PromotionRead)

    def list_promotions(
        self,
        *,
        plant_id: str | None = None,
        status: PromotionStatus | str | None = None,
        version_id: int | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> PromotionPage:
        """One page of promotion requests."""
        params = {
            "plant_id": plant_id,
            "status": None if status is None else str(status),
            "version_id": version_id,
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._get(f"{API}/promotions", PromotionPage, params)

    def iter_promotions(self, **filters: Any) -> Iterator[PromotionRead]:
        """Every promotion request matching the filters of :meth:`list_promotions`."""
        filters.pop("page_token", None)
        return self._iterate(lambda t: self.list_promotions(page_token=t, **filters))

    def approve_promotion(
        self,
        promotion_id: int,
        *,
        signing_secret: str,
        meaning: SignatureMeaning | None = None,
        comment: str = "",
    ) -> PromotionRead:
        """Sign an approval with this client's token plus the signer's signing secret.

        Raises
        ------
        Forbidden
            ``four_eyes`` when the signer requested the promotion.
        Unauthenticated
            ``signature_invalid`` for a wrong signing secret.
        Conflict
            When the request is decided or its evidence changed (``evidence_changed``).
        """
        body = SignatureCreate(signing_secret=signing_secret, meaning=meaning, comment=comment)
        return self._write("POST", f"{API}/promotions/{promotion_id}/approve", body, PromotionRead)

    def reject_promotion(
        self, promotion_id: int, *, signing_secret: str, comment: str = ""
    ) -> PromotionRead:
        """Sign a rejection (same two components as :meth:`approve_promotion`)."""
        body = SignatureCreate(signing_secret=signing_secret, comment=comment)
        return self._write("POST", f"{API}/promotions/{promotion_id}/reject", body, PromotionRead)

    def break_glass(
        self,
        version_id: int,
        plant_id: str,
        *,
        reason: str,
        alias: AliasName = AliasName.CHAMPION,
    ) -> PromotionRead:
        """Admin override: set the alias without gate or approvals (flagged on the trail)."""
        body = BreakGlassCreate(
            version_id=version_id, plant_id=plant_id, alias=alias, reason=reason
        )
        return self._write("POST", f"{API}/promotions/break-glass", body, PromotionRead)

    def plant_lifecycle(self, plant_id: str) -> LifecycleList:
        """Where each version stands at a plant."""
        return self._get(f"{API}/plants/{plant_id}/lifecycle", LifecycleList)

    # ------------------------------------------------------------ fleet

    # ------------------------------------------------------------ retraining

    def request_retraining(
        self, plant_id: str, request: RetrainingRequestCreate
    ) -> RetrainingRequestRead:
        """Send a fired trigger; the hub decides (a redelivery returns the stored decision)."""
        return self._write(
            "POST", f"{API}/plants/{plant_id}/retraining-requests", request, RetrainingRequestRead
        )

    def get_retraining_request(self, plant_id: str, request_id: str) -> RetrainingRequestRead:
        """One retraining request of a plant with the hub's decision."""
        return self._get(
            f"{API}/plants/{plant_id}/retraining-requests/{request_id}", RetrainingRequestRead
        )

    def list_retraining_requests(
        self,
        *,
        plant_id: str | None = None,
        model: str | None = None,
        decision: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> RetrainingRequestPage:
        """One page of retraining requests, newest first."""
        params = {
            "plant_id": plant_id,
            "model": model,
            "decision": decision,
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._get(f"{API}/retraining-requests", RetrainingRequestPage, params)

    def iter_retraining_requests(self, **filters: Any) -> Iterator[RetrainingRequestRead]:
        """Every retraining request matching the filters of :meth:`list_retraining_requests`."""
        filters.pop("page_token", None)
        return self._iterate(lambda t: self.list_retraining_requests(page_token=t, **filters))

    def retraining_chain(self, plant_id: str, request_id: str) -> RetrainingChain:
        """Request -> decision -> candidate -> promotion of one retraining request."""
        return self._get(
            f"{API}/plants/{plant_id}/retraining-requests/{request_id}/chain", RetrainingChain
        )

    def why_version(self, version_id: int) -> RetrainingChain:
        """Return the retraining chain that produced a version ("why did this model change?")."""
        return self._get(f"{API}/versions/{version_id}/retraining-chain", RetrainingChain)

    def start_rollout(self, rollout: RolloutCreate) -> RolloutRead:
        """Start a staged rollout under a rollout plan (the hub's engine drives it)."""
        return self._write("POST", f"{API}/rollouts", rollout, RolloutRead)

    def get_rollout(self, rollout_id: int) -> RolloutRead:
        """One rollout with its plants and steps."""
        return self._get(f"{API}/rollouts/{rollout_id}", RolloutRead)

    def list_rollouts(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> RolloutPage:
        """One page of rollouts."""
        params = {
            "status": status,
            "model": model,
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._get(f"{API}/rollouts", RolloutPage, params)

    def iter_rollouts(self, **filters: Any) -> Iterator[RolloutRead]:
        """Every rollout matching the filters of :meth:`list_rollouts`."""
        filters.pop("page_token", None)
        return self._iterate(lambda t: self.list_rollouts(page_token=t, **filters))

    def rollout_action(self, rollout_id: int, action: str, *, reason: str = "") -> RolloutRead:
        """``pause``, ``resume`` or ``abort`` a rollout."""
        if action not in ("pause", "resume", "abort"):
            raise ValueError(f"unknown rollout action {action!r}")
        return self._write(
            "POST",
            f"{API}/rollouts/{rollout_id}/{action}",
            RolloutAction(reason=reason),
            RolloutRead,
        )

    def rollback(
        self,
        model: str,
        *,
        plant: str | None = None,
        fleet: bool = False,
        to: int | None = None,
        reason: str = "",
    ) -> RollbackResult:
        """Point champion back at one plant (``plant``) or every plant (``fleet=True``)."""
        body = RollbackCreate(model=model, plant=plant, fleet=fleet, to=to, reason=reason)
        return self._write("POST", f"{API}/rollbacks", body, RollbackResult)

    def get_rollback(self, rollback_id: int) -> RollbackRead:
        """One plant's rollback, with ``confirmed_at`` once the node reports serving it."""
        return self._get(f"{API}/rollbacks/{rollback_id}", RollbackRead)

    def inventory(
        self, *, plant: str | None = None, model: str | None = None, status: str | None = None
    ) -> InventoryList:
        """Which model runs where, trained when, on what data, validated when, since when."""
        params = {"plant": plant, "model": model, "status": status}
        return self._get(f"{API}/inventory", InventoryList, params)

    def create_webhook(
        self, url: str, events: list[WebhookEvent], *, description: str = ""
    ) -> WebhookCreated:
        """Subscribe ``url`` to event types; the answer carries the signing secret, once."""
        body = WebhookCreate(url=url, events=events, description=description)
        return self._write("POST", f"{API}/webhooks", body, WebhookCreated)

    def list_webhooks(self) -> WebhookPage:
        """List the webhook subscriptions (without secrets)."""
        return self._get(f"{API}/webhooks", WebhookPage)

    def delete_webhook(self, webhook_id: int) -> None:
        """Remove a subscription."""
        self._send("DELETE", f"{API}/webhooks/{webhook_id}")

    def list_webhook_deliveries(
        self, webhook_id: int, *, status: str | None = None, page_token: str | None = None
    ) -> WebhookDeliveryPage:
        """One page of a subscription's deliveries, each with its attempt log."""
        params = {"status": status, "page_token": page_token}
        return self._get(f"{API}/webhooks/{webhook_id}/deliveries", WebhookDeliveryPage, params)

    def redeliver_webhook(self, webhook_id: int, delivery_id: int) -> WebhookDeliveryRead:
        """Queue a delivery again (same webhook-id, fresh attempt budget)."""
        path = f"{API}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
        return self._write("POST", path, None, WebhookDeliveryRead)

    def rotate_webhook_secret(
        self, webhook_id: int, *, grace_seconds: float = 86400.0
    ) -> WebhookCreated:
        """Rotate the signing secret (shown once); the old one signs for ``grace_seconds``."""
        body = WebhookRotate(grace_seconds=grace_seconds)
        return self._write(
            "POST", f"{API}/webhooks/{webhook_id}/rotate-secret", body, WebhookCreated
        )


def _metric_filters(
    plant_id: str | None,
    model: str | None,
    model_version: str | None,
    metric: str | None,
    kind: MetricKind | str | None,
    subject: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> dict[str, Any]:
    return {
        "plant_id": plant_id,
        "model": model,
        "model_version": model_version,
        "metric": metric,
        "kind": None if kind is None else str(kind),
        "subject": subject,
        "from": None if start is None else start.isoformat(),
        "to": None if end is None else end.isoformat(),
    }


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _iter_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from iter(lambda: fh.read(_CHUNK), b"")
