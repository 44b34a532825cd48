"""Registry use cases: plants, baseline models, artifacts, versions, tags, aliases, diffs.

Every public function takes the session first (keyword-only), returns rows or raises a
:class:`~federation.errors.MillwrightError`. Use cases commit once; helpers only flush.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, exists, insert, or_, select
from sqlalchemy.orm import Session

from federation.errors import (
    Conflict,
    ErrorCode,
    IntegrityMismatch,
    InvalidInput,
    NotFound,
    Unavailable,
)
from federation.schemas.recipes import RecipeStatus
from federation.schemas.registry import (
    AliasName,
    Assignment,
    AssignmentList,
    BaselineModelCreate,
    FieldChange,
    PlantCreate,
    PlantUpdate,
    VersionCreate,
    VersionDiff,
    VersionPage,
    VersionRead,
)
from hub.db import commit_or_conflict, utcnow
from hub.idempotency import service as idempotency_service
from hub.idempotency.service import IdempotencyKey
from hub.pagination import decode_token, encode_token, scalar_page
from hub.recipes import service as recipe_service
from hub.registry import pg_pages
from hub.registry.artifacts import ArtifactStore, StagedBlob
from hub.registry.models import (
    Alias,
    Artifact,
    BaselineModel,
    ModelVersion,
    Plant,
    VersionTag,
)

log = logging.getLogger("millwright.hub.registry")

# ---------------------------------------------------------------- plants


def get_plant(*, session: Session, plant_id: str) -> Plant | None:
    """Return the plant with this id, or None."""
    return session.get(Plant, plant_id)


def get_plant_or_raise(*, session: Session, plant_id: str) -> Plant:
    """Return the plant with this id.

    Raises
    ------
    NotFound
        When no plant is enrolled under this id.
    """
    plant = get_plant(session=session, plant_id=plant_id)
    if plant is None:
        raise NotFound(f"plant '{plant_id}' is not enrolled; list plants to see the valid ids.")
    return plant


def _plant_fields(plant_in: PlantCreate | PlantUpdate) -> dict[str, Any]:
    return plant_in.model_dump(
        mode="json", exclude={"id"}, exclude_unset=isinstance(plant_in, PlantUpdate)
    )


def create_plant(
    *, session: Session, plant_in: PlantCreate, actor: str, idem: IdempotencyKey | None = None
) -> Plant:
    """Enroll a plant; re-sending the same body for an enrolled id returns it unchanged.

    Raises
    ------
    Conflict
        ``already_exists`` when the id is enrolled with different fields.
    """
    scope = "create_plant"
    req_hash = idempotency_service.request_hash(scope, plant_in)
    ref = idempotency_service.find_replay(
        session=session, idem=idem, scope=scope, req_hash=req_hash
    )
    if ref is not None:
        return get_plant_or_raise(session=session, plant_id=ref)
    fields = _plant_fields(plant_in)
    existing = get_plant(session=session, plant_id=plant_in.id)
    if existing is not None:
        if any(getattr(existing, k) != v for k, v in fields.items()):
            raise Conflict(
                f"plant '{plant_in.id}' is already enrolled with different details; "
                "use PATCH to change it.",
                code=ErrorCode.ALREADY_EXISTS,
            )
        return existing
    plant = Plant(id=plant_in.id, created_by=actor, **fields)
    session.add(plant)
    session.flush()
    idempotency_service.remember(
        session=session, idem=idem, scope=scope, req_hash=req_hash, resource_ref=plant.id
    )
    commit_or_conflict(session, detail=f"plant '{plant_in.id}' was enrolled concurrently; retry")
    return plant


def update_plant(*, session: Session, plant_id: str, plant_in: PlantUpdate) -> Plant:
    """Change a plant's descriptive fields."""
    plant = get_plant_or_raise(session=session, plant_id=plant_id)
    for key, value in _plant_fields(plant_in).items():
        if value is not None:
            setattr(plant, key, value)
    session.commit()
    return plant


def list_plants(
    *, session: Session, site: str | None, page_size: int, page_token: str | None
) -> tuple[list[Plant], str | None]:
    """One page of plants ordered by id, with the token of the next page."""
    filters = {"site": site}
    after = decode_token(page_token, filters, str)
    stmt = select(Plant)
    if site:
        stmt = stmt.where(Plant.site == site)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=Plant.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )


# ---------------------------------------------------------------- baseline models


def get_model(*, session: Session, name: str) -> BaselineModel | None:
    """Return the baseline model with this name, or None."""
    return session.scalars(select(BaselineModel).where(BaselineModel.name == name)).first()


def get_model_by_id(*, session: Session, model_id: int) -> BaselineModel | None:
    """Return the baseline model with this id, or None."""
    return session.get(BaselineModel, model_id)


def get_model_or_raise(*, session: Session, name: str) -> BaselineModel:
    """Return the baseline model with this name.

    Raises
    ------
    NotFound
        When no baseline model has this name.
    """
    model = get_model(session=session, name=name)
    if model is None:
        raise NotFound(f"baseline model '{name}' does not exist; list models to see the names.")
    return model


def create_model(
    *,
    session: Session,
    model_in: BaselineModelCreate,
    actor: str,
    idem: IdempotencyKey | None = None,
) -> BaselineModel:
    """Register a baseline model; the same body for an existing name returns it.

    Raises
    ------
    Conflict
        ``already_exists`` when the name exists with different fields.
    """
    scope = "create_model"
    req_hash = idempotency_service.request_hash(scope, model_in)
    ref = idempotency_service.find_replay(
        session=session, idem=idem, scope=scope, req_hash=req_hash
    )
    if ref is not None:
        return get_model_or_raise(session=session, name=ref)
    fields = model_in.model_dump(mode="json")
    existing = get_model(session=session, name=model_in.name)
    if existing is not None:
        if any(getattr(existing, k) != v for k, v in fields.items()):
            raise Conflict(
                f"baseline model '{model_in.name}' already exists with different details.",
                code=ErrorCode.ALREADY_EXISTS,
            )
        return existing
    model = BaselineModel(created_by=actor, **fields)
    session.add(model)
    session.flush()
    idempotency_service.remember(
        session=session, idem=idem, scope=scope, req_hash=req_hash, resource_ref=model.name
    )
    commit_or_conflict(session, detail=f"baseline model '{model_in.name}' was created concurrently")
    return model


def list_models(
    *, session: Session, dataset: str | None, page_size: int, page_token: str | None
) -> tuple[list[BaselineModel], str | None]:
    """One page of baseline models ordered by id."""
    filters = {"dataset": dataset}
    after = decode_token(page_token, filters, int)
    stmt = select(BaselineModel)
    if dataset:
        stmt = stmt.where(BaselineModel.dataset == dataset)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=BaselineModel.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )


# ---------------------------------------------------------------- artifacts


def get_artifact(*, session: Session, digest: str) -> Artifact | None:
    """Return the artifact row for this digest, or None."""
    return session.get(Artifact, digest)


def get_artifact_or_raise(*, session: Session, digest: str) -> Artifact:
    """Return the artifact row for this digest.

    Raises
    ------
    NotFound
        When no artifact with this digest was uploaded.
    """
    artifact = get_artifact(session=session, digest=digest)
    if artifact is None:
        raise NotFound(f"artifact sha256:{digest} was never uploaded; upload it first.")
    return artifact


def _blob_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _blob_intact(store: ArtifactStore, artifact: Artifact) -> bool:
    return _blob_size(store.path_for(artifact.digest)) == artifact.size_bytes


def stored_blob_or_raise(*, store: ArtifactStore, artifact: Artifact) -> Path:
    """Return the path of an artifact's bytes, checked against the row before streaming.

    The row outlives its blob when someone deletes or truncates files under the store
    directory; serving that would fail mid-response (a bare 500) or send wrong bytes.

    Raises
    ------
    Unavailable
        When the blob is missing or its size differs from the registered size.
    """
    path = store.path_for(artifact.digest)
    size = _blob_size(path)
    if size != artifact.size_bytes:
        found = "missing" if size is None else f"{size} bytes, registered {artifact.size_bytes}"
        log.error("artifact blob damaged", extra={"digest": artifact.digest, "found": found})
        raise Unavailable(
            f"artifact sha256:{artifact.digest} is registered but its bytes in the artifact "
            f"store are {found}; restore the blob from backup or re-upload the same bytes."
        )
    return path


def register_artifact(
    *,
    session: Session,
    store: ArtifactStore,
    staged: StagedBlob,
    declared_digest: str,
    media_type: str,
    actor: str,
) -> Artifact:
    """Accept a staged upload: check its digest, insert the row, then publish the bytes.

    The row is committed before the rename so a blob is never visible without its row;
    if the rename fails the row is removed again. Uploading existing bytes is a no-op.

    Raises
    ------
    IntegrityMismatch
        When the bytes do not hash to ``declared_digest`` (nothing is kept).
    """
    if staged.digest != declared_digest:
        store.discard(staged)
        raise IntegrityMismatch(
            f"The uploaded bytes hash to sha256:{staged.digest}, not the declared "
            f"sha256:{declared_digest}; the upload was discarded. Re-send the exact file.",
            errors=[{"declared": declared_digest, "actual": staged.digest}],
        )
    existing = get_artifact(session=session, digest=declared_digest)
    if existing is not None:
        if _blob_intact(store, existing):
            store.discard(staged)
        else:  # heal a store that lost or truncated the blob: these bytes hash right
            store.commit(staged)
            log.warning("artifact blob restored by upload", extra={"digest": declared_digest})
        return existing
    artifact = Artifact(
        digest=declared_digest,
        size_bytes=staged.size_bytes,
        media_type=media_type,
        created_by=actor,
    )
    session.add(artifact)
    try:
        commit_or_conflict(
            session, detail=f"artifact sha256:{declared_digest} was uploaded concurrently"
        )
    except Conflict:
        store.discard(staged)
        raise
    try:
        store.commit(staged)
    except OSError:
        store.discard(staged)
        session.delete(artifact)
        session.commit()
        raise
    return artifact


def artifact_assigned_to_plant(*, session: Session, digest: str, plant_id: str) -> bool:
    """Tell whether a plant may fetch this artifact (its alias or its version uses it)."""
    via_alias = exists().where(
        Alias.plant_id == plant_id,
        Alias.version_id == ModelVersion.id,
        ModelVersion.artifact_digest == digest,
    )
    via_version = exists().where(
        ModelVersion.plant_id == plant_id, ModelVersion.artifact_digest == digest
    )
    return bool(session.scalar(select(or_(via_alias, via_version))))


# ---------------------------------------------------------------- versions


def get_version(*, session: Session, version_id: int) -> ModelVersion | None:
    """Return the version with this id, or None."""
    return session.get(ModelVersion, version_id)


def get_version_or_raise(*, session: Session, version_id: int) -> ModelVersion:
    """Return the version with this id.

    Raises
    ------
    NotFound
        When no version has this id.
    """
    version = get_version(session=session, version_id=version_id)
    if version is None:
        raise NotFound(f"model version {version_id} does not exist; list versions to find its id.")
    return version


def get_version_by_label_or_raise(*, session: Session, model: str, version: str) -> ModelVersion:
    """Return version ``version`` of baseline model ``model``.

    Raises
    ------
    NotFound
        When the model or the version does not exist.
    """
    stmt = (
        select(ModelVersion)
        .join(BaselineModel, ModelVersion.model_id == BaselineModel.id)
        .where(BaselineModel.name == model, ModelVersion.version == version)
    )
    row = session.scalars(stmt).unique().first()
    if row is None:
        get_model_or_raise(session=session, name=model)
        raise NotFound(f"baseline model '{model}' has no version '{version}'.")
    return row


def _lineage_fields(version_in: VersionCreate) -> dict[str, Any]:
    return version_in.model_dump(mode="json", exclude={"model", "version", "tags"})


def _same_version(existing: ModelVersion, version_in: VersionCreate) -> bool:
    read = existing.to_read()
    wanted = version_in.model_dump(mode="json", exclude={"model", "version"})
    return all(getattr(read, k) == v for k, v in wanted.items())


def _check_references(session: Session, versions: list[VersionCreate]) -> dict[str, BaselineModel]:
    """Validate every foreign reference of a batch with one query per kind."""
    names = {v.model for v in versions}
    models = {
        m.name: m
        for m in session.scalars(select(BaselineModel).where(BaselineModel.name.in_(names)))
    }
    for name in sorted(names - set(models)):
        raise NotFound(f"baseline model '{name}' does not exist; create it before its versions.")
    plant_ids = {v.plant_id for v in versions if v.plant_id}
    if plant_ids:
        found = set(session.scalars(select(Plant.id).where(Plant.id.in_(plant_ids))))
        for pid in sorted(plant_ids - found):
            raise NotFound(
                f"plant '{pid}' is not enrolled; enroll it before registering its versions."
            )
    parent_ids = {v.parent_id for v in versions if v.parent_id is not None}
    if parent_ids:
        parents: dict[int, int] = {
            vid: mid
            for vid, mid in session.execute(
                select(ModelVersion.id, ModelVersion.model_id).where(
                    ModelVersion.id.in_(parent_ids)
                )
            )
        }
        for v in versions:
            if v.parent_id is None:
                continue
            if v.parent_id not in parents:
                raise NotFound(
                    f"parent version {v.parent_id} of '{v.model}' {v.version} does not exist."
                )
            if parents[v.parent_id] != models[v.model].id:
                raise InvalidInput(f"parent version {v.parent_id} is not a version of '{v.model}'.")
    statuses = recipe_service.published_ids(
        session=session, recipe_ids=(v.recipe_id for v in versions if v.recipe_id is not None)
    )
    for v in versions:
        if v.recipe_id is None:
            continue
        if v.recipe_id not in statuses:
            raise NotFound(f"recipe {v.recipe_id} does not exist.")
        if statuses[v.recipe_id] != RecipeStatus.PUBLISHED:
            raise Conflict(
                f"recipe {v.recipe_id} is a draft; publish it before training versions on it."
            )
    digests = {v.artifact_digest for v in versions if v.artifact_digest}
    if digests:
        found_digests = set(
            session.scalars(select(Artifact.digest).where(Artifact.digest.in_(digests)))
        )
        for d in sorted(digests - found_digests):
            raise NotFound(f"artifact sha256:{d} was never uploaded; upload the artifact first.")
    return models


def _existing_versions(
    session: Session, models: dict[str, BaselineModel], versions: list[VersionCreate]
) -> dict[tuple[int, str], ModelVersion]:
    by_model: dict[int, set[str]] = {}
    for v in versions:
        by_model.setdefault(models[v.model].id, set()).add(v.version)
    clauses = [
        (ModelVersion.model_id == mid) & ModelVersion.version.in_(labels)
        for mid, labels in by_model.items()
    ]
    rows = session.scalars(select(ModelVersion).where(or_(*clauses)))
    return {(r.model_id, r.version): r for r in rows}


def create_versions(
    *,
    session: Session,
    versions_in: list[VersionCreate],
    actor: str,
    idem: IdempotencyKey | None = None,
    max_batch: int = 1000,
) -> list[VersionRead]:
    """Register versions in one transaction; all are stored or none.

    ``(model, version)`` is the natural key: an identical existing version is returned as
    is, so a retried batch is harmless.

    Raises
    ------
    InvalidInput
        When the batch is too large or names the same version twice.
    NotFound
        When a model, plant, parent, recipe or artifact it references does not exist.
    Conflict
        ``already_exists`` when a version exists with different content; ``conflict`` when
        its recipe is still a draft.
    """
    if len(versions_in) > max_batch:
        raise InvalidInput(f"A batch holds at most {max_batch} versions; split it.")
    keys = [(v.model, v.version) for v in versions_in]
    if len(set(keys)) != len(keys):
        raise InvalidInput("The batch names the same (model, version) twice.")
    scope = "create_versions"
    req_hash = idempotency_service.request_hash(
        scope, {"versions": [v.model_dump(mode="json") for v in versions_in]}
    )
    ref = idempotency_service.find_replay(
        session=session, idem=idem, scope=scope, req_hash=req_hash
    )
    if ref is not None:
        ids = [int(i) for i in ref.split(",")]
        found = {
            r.id: r for r in session.scalars(select(ModelVersion).where(ModelVersion.id.in_(ids)))
        }
        return [found[i].to_read() for i in ids]
    models = _check_references(session, versions_in)
    existing = _existing_versions(session, models, versions_in)
    out: list[VersionRead | None] = []
    new_inputs: list[VersionCreate] = []
    for v in versions_in:
        model = models[v.model]
        old = existing.get((model.id, v.version))
        if old is not None:
            if not _same_version(old, v):
                raise Conflict(
                    f"'{v.model}' version '{v.version}' already exists with different lineage; "
                    "versions are immutable, register a new version label.",
                    code=ErrorCode.ALREADY_EXISTS,
                )
            out.append(old.to_read())
            continue
        new_inputs.append(v)
        out.append(None)
    # Core bulk inserts (one executemany per table) instead of ORM unit-of-work objects:
    # the batch endpoint exists for throughput, and nothing else touches these rows here.
    now = utcnow()
    params = [
        {
            "model_id": models[v.model].id,
            "version": v.version,
            "created_by": actor,
            "created_at": now,
            "tags": dict(v.tags),
            **_lineage_fields(v),
        }
        for v in new_inputs
    ]
    new_ids: list[int] = []
    if params:
        stmt = insert(ModelVersion).returning(ModelVersion.id, sort_by_parameter_order=True)
        new_ids = list(session.scalars(stmt, params))
        tag_params = [
            {"version_id": vid, "key": key, "value": value}
            for vid, v in zip(new_ids, new_inputs, strict=True)
            for key, value in v.tags.items()
        ]
        if tag_params:
            session.execute(insert(VersionTag), tag_params)
    fresh = iter(
        VersionRead(
            id=vid,
            model=v.model,
            version=v.version,
            tags=dict(v.tags),
            created_at=now,
            created_by=actor,
            **_lineage_fields(v),
        )
        for vid, v in zip(new_ids, new_inputs, strict=True)
    )
    reads = [read if read is not None else next(fresh) for read in out]
    idempotency_service.remember(
        session=session,
        idem=idem,
        scope=scope,
        req_hash=req_hash,
        resource_ref=",".join(str(r.id) for r in reads),
    )
    commit_or_conflict(session, detail="a version in this batch was registered concurrently; retry")
    return reads


def create_version(
    *, session: Session, version_in: VersionCreate, actor: str, idem: IdempotencyKey | None = None
) -> VersionRead:
    """Register one version (see :func:`create_versions`)."""
    return create_versions(session=session, versions_in=[version_in], actor=actor, idem=idem)[0]


def list_versions(
    *, session: Session, filters: VersionFilters, page_size: int, page_token: str | None
) -> tuple[list[VersionRead], str | None]:
    """One page of versions, newest first, filtered by model, plant, tag, recipe or parent.

    ``tag`` is ``key`` (has the tag) or ``key=value``. Pages are read as plain rows, not ORM
    objects: building identity-mapped instances would dominate the cost of a page.

    Raises
    ------
    NotFound
        When the model or plant filtered on does not exist.
    InvalidInput
        When the page token is malformed or was issued for other filters.
    """
    stmt, params = _filtered_versions(session, filters, page_token, page_size)
    # Core execution on the session's connection: these are plain rows, and the ORM result
    # layer costs more than it gives.
    result = session.connection().execute(stmt, params)
    rows = [_read_from_row(r) for r in result.mappings().all()]
    if not rows:
        _name_missing_filter_targets(session, filters)
    more = len(rows) > page_size
    token = encode_token(rows[page_size - 1].id, filters.as_dict()) if more else None
    return rows[:page_size], token


def render_versions_page(
    *, session: Session, filters: VersionFilters, page_size: int, page_token: str | None
) -> str:
    """Return the JSON body of :func:`list_versions`'s page (a ``VersionPage``).

    PostgreSQL renders the items itself (:mod:`hub.registry.pg_pages`); other databases go
    through :func:`list_versions` and pydantic. Same filters, tokens and errors either way.
    """
    if session.get_bind().dialect.name != "postgresql":
        rows, token = list_versions(
            session=session, filters=filters, page_size=page_size, page_token=page_token
        )
        return VersionPage(items=rows, next_page_token=token).model_dump_json()
    stmt, params = _filtered_versions(session, filters, page_token, page_size)
    items, last_id = pg_pages.render_page(session, stmt, params, page_size)
    if items == "[]":
        _name_missing_filter_targets(session, filters)
    token = encode_token(last_id, filters.as_dict()) if last_id is not None else None
    return f'{{"items":{items},"next_page_token":{json.dumps(token)}}}'


@dataclasses.dataclass(frozen=True)
class VersionFilters:
    """What a version list is filtered on; ``tag`` is ``key`` (has the tag) or ``key=value``."""

    model: str | None = None
    plant_id: str | None = None
    tag: str | None = None
    recipe_id: int | None = None
    parent_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the filters a page token is bound to."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _QueryShape:
    """Which filters a version query has: statements are built once per shape, not per request."""

    model: bool
    plant: bool
    tag_key: bool
    tag_value: bool
    recipe: bool
    parent: bool
    after: bool
    postgresql: bool


def _filtered_versions(
    session: Session, filters: VersionFilters, page_token: str | None, page_size: int
) -> tuple[Any, dict[str, Any]]:
    """Return the query for one page plus one row of matching versions, and its parameters."""
    after = decode_token(page_token, filters.as_dict(), int)
    key, sep, value = (filters.tag or "").partition("=")
    shape = _QueryShape(
        model=bool(filters.model),
        plant=bool(filters.plant_id),
        tag_key=bool(filters.tag),
        tag_value=bool(filters.tag and sep),
        recipe=filters.recipe_id is not None,
        parent=filters.parent_id is not None,
        after=after is not None,
        postgresql=session.get_bind().dialect.name == "postgresql",
    )
    params = {
        "model": filters.model,
        "plant_id": filters.plant_id,
        "tag_key": key,
        "tag_value": value,
        "recipe_id": filters.recipe_id,
        "parent_id": filters.parent_id,
        "after": after,
        "limit": page_size + 1,
    }
    return _versions_statement(shape), params


@functools.cache
def _versions_statement(shape: _QueryShape) -> Any:
    # Building and cache-keying this statement per request cost as much as running it.
    stmt = _version_rows()
    if shape.model:
        stmt = stmt.where(BaselineModel.name == bindparam("model"))
    if shape.plant:
        stmt = stmt.where(ModelVersion.plant_id == bindparam("plant_id"))
    if shape.tag_key:
        match = select(VersionTag.version_id).where(
            VersionTag.version_id == ModelVersion.id, VersionTag.key == bindparam("tag_key")
        )
        if shape.tag_value:
            match = match.where(VersionTag.value == bindparam("tag_value"))
        if shape.postgresql:
            # OFFSET 0 keeps PostgreSQL from flattening EXISTS into a semi-join that, with
            # stale statistics after a bulk load, scans every row carrying the tag; as a
            # per-row probe it uses the (version_id, key) primary key instead.
            match = match.offset(0)
        stmt = stmt.where(match.exists())
    if shape.recipe:
        stmt = stmt.where(ModelVersion.recipe_id == bindparam("recipe_id"))
    if shape.parent:
        stmt = stmt.where(ModelVersion.parent_id == bindparam("parent_id"))
    if shape.after:
        stmt = stmt.where(ModelVersion.id < bindparam("after"))
    return stmt.order_by(ModelVersion.id.desc()).limit(bindparam("limit"))


def _name_missing_filter_targets(session: Session, filters: VersionFilters) -> None:
    # An empty page is where a typo in a filter would hide; name it instead.
    if filters.model:
        get_model_or_raise(session=session, name=filters.model)
    if filters.plant_id:
        get_plant_or_raise(session=session, plant_id=filters.plant_id)


@functools.cache
def _version_rows() -> Any:
    """Select every version column plus its model's name, for plain-row reads.

    Built once: statements are immutable, and rebuilding this one per request cost more
    than executing its cached compiled form.
    """
    return select(*ModelVersion.__table__.c, BaselineModel.name.label("model_name")).join(
        BaselineModel, ModelVersion.model_id == BaselineModel.id
    )


def get_version_read_or_raise(*, session: Session, version_id: int) -> VersionRead:
    """Return the wire entity of a version in one plain-row query (the hot read path).

    Raises
    ------
    NotFound
        When no version has this id.
    """
    row = session.execute(_version_rows().where(ModelVersion.id == version_id)).mappings().first()
    if row is None:
        raise NotFound(f"model version {version_id} does not exist; list versions to find its id.")
    return _read_from_row(row)


def get_alias_version_or_raise(
    *, session: Session, plant_id: str, model: str, alias: AliasName
) -> VersionRead:
    """Return the version a plant's alias points at, in one plain-row query.

    Raises
    ------
    NotFound
        When the plant, model or alias does not exist.
    """
    stmt = (
        _version_rows()
        .join(Alias, Alias.version_id == ModelVersion.id)
        .where(Alias.plant_id == plant_id, BaselineModel.name == model, Alias.alias == alias.value)
    )
    row = session.execute(stmt).mappings().first()
    if row is None:
        get_plant_or_raise(session=session, plant_id=plant_id)
        get_model_or_raise(session=session, name=model)
        raise NotFound(f"plant '{plant_id}' has no '{alias.value}' alias for '{model}'.")
    return _read_from_row(row)


def _read_from_row(row: Any) -> VersionRead:
    return VersionRead(
        id=row["id"],
        model=row["model_name"],
        version=row["version"],
        plant_id=row["plant_id"],
        parent_id=row["parent_id"],
        recipe_id=row["recipe_id"],
        artifact_digest=row["artifact_digest"],
        training_data_fingerprint=row["training_data_fingerprint"],
        code_version=row["code_version"],
        hyperparameters=row["hyperparameters"],
        metrics=row["metrics"],
        tags=row["tags"],
        description=row["description"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def set_tag(*, session: Session, version_id: int, key: str, value: str) -> ModelVersion:
    """Set (or overwrite) one tag on a version."""
    version = get_version_or_raise(session=session, version_id=version_id)
    for tag in version.tag_rows:
        if tag.key == key:
            tag.value = value
            break
    else:
        version.tag_rows.append(VersionTag(key=key, value=value))
    version.tags = {**version.tags, key: value}
    commit_or_conflict(session, detail=f"tag '{key}' was changed concurrently; retry")
    return version


def delete_tag(*, session: Session, version_id: int, key: str) -> ModelVersion:
    """Remove one tag from a version.

    Raises
    ------
    NotFound
        When the version or the tag does not exist.
    """
    version = get_version_or_raise(session=session, version_id=version_id)
    if key not in version.tags:
        raise NotFound(f"model version {version_id} has no tag '{key}'.")
    version.tag_rows = [t for t in version.tag_rows if t.key != key]
    version.tags = {k: v for k, v in version.tags.items() if k != key}
    session.commit()
    return version


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in value:
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    else:
        out[prefix] = value


def diff_versions(*, session: Session, a_id: int, b_id: int) -> VersionDiff:
    """Compare two versions field by field; nested fields use dotted paths.

    Raises
    ------
    NotFound
        When either version does not exist.
    """
    result = session.execute(_version_rows().where(ModelVersion.id.in_({a_id, b_id})))
    found = {read.id: read for read in map(_read_from_row, result.mappings())}
    for missing in (a_id, b_id):
        if missing not in found:
            raise NotFound(f"model version {missing} does not exist; list versions to find its id.")
    a, b = found[a_id], found[b_id]
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    skip = {"id"}
    dump_a, dump_b = a.model_dump(mode="json"), b.model_dump(mode="json")
    for field in VersionRead.model_fields:
        if field in skip:
            continue
        _flatten(field, dump_a[field], flat_a)
        _flatten(field, dump_b[field], flat_b)
    changes = [
        FieldChange(field=key, a=flat_a.get(key), b=flat_b.get(key))
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key) != flat_b.get(key)
    ]
    return VersionDiff(a=a, b=b, changes=changes)


# ---------------------------------------------------------------- aliases


def set_alias(
    *, session: Session, plant_id: str, model: str, alias: AliasName, version_id: int, actor: str
) -> Alias:
    """Point a plant's alias of ``model`` at a version (PUT semantics: idempotent).

    Raises
    ------
    NotFound
        When the plant, model or version does not exist.
    InvalidInput
        When the version belongs to another model or was fine-tuned for another plant.
    """
    get_plant_or_raise(session=session, plant_id=plant_id)
    model_row = get_model_or_raise(session=session, name=model)
    version = get_version_or_raise(session=session, version_id=version_id)
    if version.model_id != model_row.id:
        raise InvalidInput(
            f"version {version_id} is a version of '{version.model.name}', not of '{model}'."
        )
    if version.plant_id is not None and version.plant_id != plant_id:
        raise InvalidInput(
            f"version {version_id} was fine-tuned for plant '{version.plant_id}'; it cannot be "
            f"an alias of plant '{plant_id}'."
        )
    row = session.get(Alias, (plant_id, model_row.id, alias.value))
    if row is None:
        row = Alias(
            plant_id=plant_id, model=model_row, alias=alias.value, version=version, updated_by=actor
        )
        session.add(row)
    elif row.version_id != version_id:
        row.version = version
        row.updated_at = utcnow()
        row.updated_by = actor
    commit_or_conflict(session, detail="the alias was changed concurrently; retry")
    return row


def get_alias_or_raise(*, session: Session, plant_id: str, model: str, alias: AliasName) -> Alias:
    """Return a plant's alias of a model.

    Raises
    ------
    NotFound
        When the plant, model or alias does not exist.
    """
    stmt = (
        select(Alias)
        .join(BaselineModel, Alias.model_id == BaselineModel.id)
        .where(Alias.plant_id == plant_id, BaselineModel.name == model, Alias.alias == alias.value)
    )
    row = session.scalars(stmt).unique().first()
    if row is None:
        # One query on the hot path; the precise reason only when there is a miss.
        get_plant_or_raise(session=session, plant_id=plant_id)
        get_model_or_raise(session=session, name=model)
        raise NotFound(f"plant '{plant_id}' has no '{alias.value}' alias for '{model}'.")
    return row


def delete_alias(*, session: Session, plant_id: str, model: str, alias: AliasName) -> None:
    """Remove a plant's alias of a model."""
    row = get_alias_or_raise(session=session, plant_id=plant_id, model=model, alias=alias)
    session.delete(row)
    session.commit()


def list_aliases(*, session: Session, plant_id: str) -> list[Alias]:
    """Every alias of a plant, by model and alias name."""
    get_plant_or_raise(session=session, plant_id=plant_id)
    stmt = select(Alias).where(Alias.plant_id == plant_id).order_by(Alias.model_id, Alias.alias)
    return list(session.scalars(stmt).unique())


def list_assignments(*, session: Session, plant_id: str) -> AssignmentList:
    """List what a plant should run: each alias with its version, artifact digest and size."""
    aliases = list_aliases(session=session, plant_id=plant_id)
    digests = {a.version.artifact_digest for a in aliases if a.version.artifact_digest}
    sizes = _artifact_sizes(session, digests)
    items = [
        Assignment(
            model=a.model.name,
            alias=AliasName(a.alias),
            version_id=a.version_id,
            version=a.version.version,
            recipe_id=a.version.recipe_id,
            artifact_digest=a.version.artifact_digest,
            artifact_size_bytes=sizes.get(a.version.artifact_digest or ""),
            updated_at=a.updated_at,
        )
        for a in aliases
    ]
    return AssignmentList(plant_id=plant_id, items=items)


def _artifact_sizes(session: Session, digests: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    rows = session.execute(
        select(Artifact.digest, Artifact.size_bytes).where(Artifact.digest.in_(wanted))
    )
    return {digest: size for digest, size in rows}


def list_aliases_of(
    *, session: Session, plant_ids: list[str] | None, alias: AliasName
) -> list[Alias]:
    """Return every plant's ``alias`` pointer (e.g. the champions of the fleet) in one query."""
    stmt = select(Alias).where(Alias.alias == alias.value)
    if plant_ids is not None:
        stmt = stmt.where(Alias.plant_id.in_(plant_ids))
    return list(session.scalars(stmt.order_by(Alias.plant_id, Alias.model_id)))


def plants_by_ids(*, session: Session, plant_ids: list[str] | None) -> list[Plant]:
    """Return the plants named (all when None), ordered by id, in one query."""
    stmt = select(Plant).order_by(Plant.id)
    if plant_ids is not None:
        stmt = stmt.where(Plant.id.in_(plant_ids))
    return list(session.scalars(stmt))
