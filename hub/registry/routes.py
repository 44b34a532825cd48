"""HTTP routes of the registry: translate requests into service calls, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from federation.errors import PayloadTooLarge
from federation.schemas.common import Sha256
from hub.config import API_PREFIX
from hub.deps import (
    ActorDep,
    ArtifactStoreDep,
    IdempotencyDep,
    IdPath,
    IdQuery,
    PageSizeDep,
    SessionDep,
    SettingsDep,
)
from hub.registry import service
from hub.registry.permissions import (
    ManagePlants,
    ReadArtifact,
    ReadAssignments,
    ReadPlant,
    ReadRegistry,
    WriteRegistry,
)
from hub.registry.schemas import (
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
from hub.responses import json_response

router = APIRouter(prefix=API_PREFIX, tags=["registry"])
DigestPath = Annotated[Sha256, Path(description="Lowercase hex sha256 of the artifact bytes.")]

# ---------------------------------------------------------------- plants


@router.post("/plants", response_model=PlantRead, status_code=201, dependencies=[ManagePlants])
def create_plant(
    plant_in: PlantCreate, session: SessionDep, actor: ActorDep, idem: IdempotencyDep
) -> object:
    """Enroll a plant (idempotent on its id)."""
    return service.create_plant(session=session, plant_in=plant_in, actor=actor, idem=idem)


@router.get("/plants", response_model=PlantPage, dependencies=[ReadRegistry])
def list_plants(
    session: SessionDep,
    page_size: PageSizeDep,
    site: str | None = None,
    page_token: str | None = None,
) -> Response:
    """List plants, optionally of one site."""
    rows, token = service.list_plants(
        session=session, site=site, page_size=page_size, page_token=page_token
    )
    page = PlantPage(items=[PlantRead.model_validate(r) for r in rows], next_page_token=token)
    return json_response(page)


@router.get("/plants/{plant_id}", response_model=PlantRead, dependencies=[ReadPlant])
def get_plant(plant_id: str, session: SessionDep) -> object:
    """Get one plant."""
    return service.get_plant_or_raise(session=session, plant_id=plant_id)


@router.patch("/plants/{plant_id}", response_model=PlantRead, dependencies=[ManagePlants])
def update_plant(plant_id: str, plant_in: PlantUpdate, session: SessionDep) -> object:
    """Change a plant's name, site, lines or hardware profile."""
    return service.update_plant(session=session, plant_id=plant_id, plant_in=plant_in)


# ---------------------------------------------------------------- baseline models


@router.post(
    "/models", response_model=BaselineModelRead, status_code=201, dependencies=[WriteRegistry]
)
def create_model(
    model_in: BaselineModelCreate, session: SessionDep, actor: ActorDep, idem: IdempotencyDep
) -> object:
    """Register a baseline model (idempotent on its name)."""
    return service.create_model(session=session, model_in=model_in, actor=actor, idem=idem)


@router.get("/models", response_model=BaselineModelPage, dependencies=[ReadRegistry])
def list_models(
    session: SessionDep,
    page_size: PageSizeDep,
    dataset: str | None = None,
    page_token: str | None = None,
) -> BaselineModelPage:
    """List baseline models."""
    rows, token = service.list_models(
        session=session, dataset=dataset, page_size=page_size, page_token=page_token
    )
    return BaselineModelPage(
        items=[BaselineModelRead.model_validate(r) for r in rows], next_page_token=token
    )


@router.get("/models/{model_name}", response_model=BaselineModelRead, dependencies=[ReadRegistry])
def get_model(model_name: str, session: SessionDep) -> object:
    """Get one baseline model."""
    return service.get_model_or_raise(session=session, name=model_name)


@router.get(
    "/models/{model_name}/versions/{version}",
    response_model=VersionRead,
    dependencies=[ReadRegistry],
)
def get_version_by_label(model_name: str, version: str, session: SessionDep) -> VersionRead:
    """Get a version by its label, e.g. ``/models/turbofan-rul/versions/1.5``."""
    return service.get_version_by_label_or_raise(
        session=session, model=model_name, version=version
    ).to_read()


# ---------------------------------------------------------------- artifacts


@router.put(
    "/artifacts/sha256/{digest}",
    response_model=ArtifactRead,
    status_code=201,
    dependencies=[WriteRegistry],
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
async def upload_artifact(
    digest: DigestPath,
    request: Request,
    session: SessionDep,
    store: ArtifactStoreDep,
    settings: SettingsDep,
    actor: ActorDep,
    content_type: Annotated[str, Header()] = "application/octet-stream",
    content_length: Annotated[int | None, Header()] = None,
) -> object:
    """Upload artifact bytes under their sha256 (streamed; size-capped; idempotent)."""
    if content_length is not None and content_length > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"The upload declares {content_length} bytes; the hub accepts at most "
            f"{settings.max_upload_bytes} (MILLWRIGHT_HUB_MAX_UPLOAD_BYTES)."
        )
    staged = await store.stage(request.stream(), max_bytes=settings.max_upload_bytes)
    return await run_in_threadpool(
        service.register_artifact,
        session=session,
        store=store,
        staged=staged,
        declared_digest=digest,
        media_type=content_type,
        actor=actor,
    )


@router.get("/artifacts/sha256/{digest}", response_class=FileResponse, dependencies=[ReadArtifact])
def download_artifact(
    digest: DigestPath, session: SessionDep, store: ArtifactStoreDep
) -> FileResponse:
    """Download artifact bytes; ``X-Content-SHA256`` lets the caller verify them."""
    artifact = service.get_artifact_or_raise(session=session, digest=digest)
    path = service.stored_blob_or_raise(store=store, artifact=artifact)
    return FileResponse(
        path,
        media_type=artifact.media_type,
        headers={"X-Content-SHA256": digest, "ETag": f'"sha256:{digest}"'},
    )


@router.get(
    "/artifacts/sha256/{digest}/metadata", response_model=ArtifactRead, dependencies=[ReadArtifact]
)
def get_artifact(digest: DigestPath, session: SessionDep) -> object:
    """Get an artifact's size, media type and provenance."""
    return service.get_artifact_or_raise(session=session, digest=digest)


# ---------------------------------------------------------------- versions


@router.post("/versions", response_model=VersionRead, status_code=201, dependencies=[WriteRegistry])
def create_version(
    version_in: VersionCreate, session: SessionDep, actor: ActorDep, idem: IdempotencyDep
) -> VersionRead:
    """Register a model version with its lineage (idempotent on model + version)."""
    return service.create_version(session=session, version_in=version_in, actor=actor, idem=idem)


@router.post(
    "/versions/batch",
    response_model=VersionBatchRead,
    status_code=201,
    dependencies=[WriteRegistry],
)
def create_versions(
    batch_in: VersionBatchCreate,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    idem: IdempotencyDep,
) -> VersionBatchRead:
    """Register many versions in one transaction (all or none)."""
    rows = service.create_versions(
        session=session,
        versions_in=batch_in.versions,
        actor=actor,
        idem=idem,
        max_batch=settings.max_batch_size,
    )
    return VersionBatchRead(items=rows)


@router.get("/versions", response_model=VersionPage, dependencies=[ReadRegistry])
def list_versions(
    session: SessionDep,
    page_size: PageSizeDep,
    model: str | None = None,
    plant_id: str | None = None,
    tag: Annotated[str | None, "key or key=value"] = None,
    recipe_id: IdQuery = None,
    parent_id: IdQuery = None,
    page_token: str | None = None,
) -> Response:
    """List versions newest first by model, plant, tag (``key``/``key=value``), recipe, parent."""
    filters = service.VersionFilters(model, plant_id, tag, recipe_id, parent_id)
    body = service.render_versions_page(
        session=session, filters=filters, page_size=page_size, page_token=page_token
    )
    return Response(body, media_type="application/json")


@router.get("/versions/{version_id}", response_model=VersionRead, dependencies=[ReadRegistry])
def get_version(version_id: IdPath, session: SessionDep) -> Response:
    """Get one version with its lineage."""
    return json_response(service.get_version_read_or_raise(session=session, version_id=version_id))


@router.get(
    "/versions/{version_id}/diff/{other_id}",
    response_model=VersionDiff,
    dependencies=[ReadRegistry],
)
def diff_versions(version_id: IdPath, other_id: IdPath, session: SessionDep) -> Response:
    """Compare version ``version_id`` with ``other_id`` field by field."""
    return json_response(service.diff_versions(session=session, a_id=version_id, b_id=other_id))


@router.put(
    "/versions/{version_id}/tags/{key}", response_model=VersionRead, dependencies=[WriteRegistry]
)
def set_tag(version_id: IdPath, key: str, tag_in: TagSet, session: SessionDep) -> VersionRead:
    """Set one tag on a version."""
    return service.set_tag(
        session=session, version_id=version_id, key=key, value=tag_in.value
    ).to_read()


@router.delete(
    "/versions/{version_id}/tags/{key}", response_model=VersionRead, dependencies=[WriteRegistry]
)
def delete_tag(version_id: IdPath, key: str, session: SessionDep) -> VersionRead:
    """Remove one tag from a version."""
    return service.delete_tag(session=session, version_id=version_id, key=key).to_read()


# ---------------------------------------------------------------- aliases & assignments


@router.get("/plants/{plant_id}/aliases", response_model=AliasList, dependencies=[ReadPlant])
def list_aliases(plant_id: str, session: SessionDep) -> AliasList:
    """Every alias of a plant."""
    return AliasList(
        items=[a.to_read() for a in service.list_aliases(session=session, plant_id=plant_id)]
    )


@router.get(
    "/plants/{plant_id}/aliases/{model_name}/{alias}",
    response_model=VersionRead,
    dependencies=[ReadPlant],
)
def get_alias(plant_id: str, model_name: str, alias: AliasName, session: SessionDep) -> Response:
    """Return the version a plant's alias points at."""
    return json_response(
        service.get_alias_version_or_raise(
            session=session, plant_id=plant_id, model=model_name, alias=alias
        )
    )


@router.put(
    "/plants/{plant_id}/aliases/{model_name}/{alias}",
    response_model=AliasRead,
    dependencies=[WriteRegistry],
)
def set_alias(
    plant_id: str,
    model_name: str,
    alias: AliasName,
    alias_in: AliasSet,
    session: SessionDep,
    actor: ActorDep,
) -> AliasRead:
    """Point a plant's challenger or shadow alias at a version (champion: promotions only)."""
    return service.set_alias(
        session=session,
        plant_id=plant_id,
        model=model_name,
        alias=alias,
        version_id=alias_in.version_id,
        actor=actor,
    ).to_read()


@router.delete(
    "/plants/{plant_id}/aliases/{model_name}/{alias}",
    status_code=204,
    response_class=Response,
    dependencies=[WriteRegistry],
)
def delete_alias(
    plant_id: str, model_name: str, alias: AliasName, session: SessionDep, actor: ActorDep
) -> Response:
    """Remove a plant's alias."""
    service.delete_alias(
        session=session, plant_id=plant_id, model=model_name, alias=alias, actor=actor
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/plants/{plant_id}/assignments", response_model=AssignmentList, dependencies=[ReadAssignments]
)
def list_assignments(
    plant_id: str,
    session: SessionDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> AssignmentList | Response:
    """List what a plant should run: each alias with its version and artifact digest.

    The answer carries an ``ETag``; a node polling with ``If-None-Match`` gets ``304`` and no
    body while nothing changed, so it can poll often and cheaply.
    """
    assignments = service.list_assignments(session=session, plant_id=plant_id)
    tag = service.assignments_etag(assignments)
    if if_none_match is not None and tag in (t.strip() for t in if_none_match.split(",")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return assignments
