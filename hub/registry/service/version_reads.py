"""Version reads as plain rows: filtered pages, single reads, alias targets."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from federation.errors import (
    NotFound,
)
from federation.schemas.registry import (
    AliasName,
    VersionPage,
    VersionRead,
)
from hub.pagination import decode_token, encode_token
from hub.registry import pg_pages
from hub.registry.models import (
    Alias,
    BaselineModel,
    ModelVersion,
    VersionTag,
)
from hub.registry.service.baseline_models import get_model_or_raise
from hub.registry.service.plants import get_plant_or_raise


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
    rows = [read_from_row(r) for r in result.mappings().all()]
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
    stmt = version_rows()
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
def version_rows() -> Any:
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
    row = session.execute(version_rows().where(ModelVersion.id == version_id)).mappings().first()
    if row is None:
        raise NotFound(f"model version {version_id} does not exist; list versions to find its id.")
    return read_from_row(row)


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
        version_rows()
        .join(Alias, Alias.version_id == ModelVersion.id)
        .where(Alias.plant_id == plant_id, BaselineModel.name == model, Alias.alias == alias.value)
    )
    row = session.execute(stmt).mappings().first()
    if row is None:
        get_plant_or_raise(session=session, plant_id=plant_id)
        get_model_or_raise(session=session, name=model)
        raise NotFound(f"plant '{plant_id}' has no '{alias.value}' alias for '{model}'.")
    return read_from_row(row)


def read_from_row(row: Any) -> VersionRead:
    """Build the wire entity of a version from a :func:`version_rows` row."""
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
