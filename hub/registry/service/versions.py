"""Version registration (single and batch) and lookups of version rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session, aliased, lazyload

from federation.errors import (
    Conflict,
    ErrorCode,
    InvalidInput,
    NotFound,
)
from federation.schemas.recipes import RecipeStatus
from federation.schemas.registry import (
    AliasName,
    VersionCreate,
    VersionRead,
)
from federation.schemas.rollouts import WebhookEvent
from hub.audit import service as audit_service
from hub.db import commit_or_conflict, utcnow
from hub.idempotency import service as idempotency_service
from hub.idempotency.service import IdempotencyKey
from hub.recipes import service as recipe_service
from hub.registry.models import (
    Alias,
    Artifact,
    BaselineModel,
    ModelVersion,
    Plant,
    VersionTag,
)
from hub.registry.service.baseline_models import get_model_or_raise
from hub.registry.service.plants import get_plant_or_raise
from hub.webhooks import service as webhooks_service


def get_version(*, session: Session, version_id: int) -> ModelVersion | None:
    """Return the version with this id, or None."""
    return session.get(ModelVersion, version_id)


def versions_by_ids(*, session: Session, version_ids: Iterable[int]) -> dict[int, ModelVersion]:
    """Return the versions with these ids in one query (unknown ids are absent)."""
    wanted = sorted({v for v in version_ids if v})
    if not wanted:
        return {}
    rows = session.scalars(select(ModelVersion).where(ModelVersion.id.in_(wanted))).unique()
    return {row.id: row for row in rows}


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
    audit_service.append_batch(
        session=session,
        entries=[
            audit_service.entry(
                actor=actor,
                action="version.create",
                subject=f"version/{vid}",
                after={
                    "id": vid,
                    "model": v.model,
                    "version": v.version,
                    "plant_id": v.plant_id,
                    "parent_id": v.parent_id,
                    "recipe_id": v.recipe_id,
                    "artifact_digest": v.artifact_digest,
                },
            )
            for vid, v in zip(new_ids, new_inputs, strict=True)
        ],
    )
    webhooks_service.enqueue_many(
        session=session,
        event=WebhookEvent.VERSION_REGISTERED,
        items=[
            {
                "version_id": vid,
                "model": v.model,
                "version": v.version,
                "plant_id": v.plant_id,
                "parent_id": v.parent_id,
                "artifact_digest": v.artifact_digest,
            }
            for vid, v in zip(new_ids, new_inputs, strict=True)
        ],
    )
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


class PromotionTarget(NamedTuple):
    """What a promotion of a version at a plant reads from the registry, in one query."""

    version: ModelVersion
    plant: Plant
    #: The plant's current champion of the version's model, if any.
    champion: Alias | None
    #: The version's artifact row (held here: the session keeps rows only while referenced).
    artifact: Artifact | None


def promotion_target_or_raise(
    *, session: Session, version_id: int, plant_id: str
) -> PromotionTarget:
    """Return the version, the plant and the plant's champion of that model, in one query.

    The version's artifact row comes along into the session (so :func:`get_artifact`
    and :func:`blob_matches_digest` need no query of their own).

    Raises
    ------
    NotFound
        When the version does not exist or the plant is not enrolled.
    """
    champion = aliased(Alias)
    stmt = (
        select(ModelVersion, Plant, Artifact, champion)
        .select_from(ModelVersion)
        .outerjoin(Plant, Plant.id == plant_id)
        .outerjoin(Artifact, Artifact.digest == ModelVersion.artifact_digest)
        .outerjoin(
            champion,
            and_(
                champion.plant_id == plant_id,
                champion.model_id == ModelVersion.model_id,
                champion.alias == AliasName.CHAMPION.value,
            ),
        )
        .where(ModelVersion.id == version_id)
        # The champion's own joined loads are inner joins, which would drop the row when
        # there is no champion: load its model and version on access instead.
        .options(lazyload(champion.model), lazyload(champion.version))
    )
    row = session.execute(stmt).unique().first()
    version = (
        row[0] if row is not None else get_version_or_raise(session=session, version_id=version_id)
    )
    plant = row[1] if row is not None and row[1] is not None else None
    if plant is None:
        plant = get_plant_or_raise(session=session, plant_id=plant_id)
    if row is None:
        return PromotionTarget(version, plant, None, None)
    return PromotionTarget(version, plant, row[3], row[2])
