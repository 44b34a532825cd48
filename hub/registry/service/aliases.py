"""Plant aliases of a model: set, read, delete, list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import (
    Conflict,
    ErrorCode,
    InvalidInput,
    NotFound,
)
from federation.schemas.registry import (
    AliasName,
)
from hub.audit import service as audit_service
from hub.db import commit_or_conflict, utcnow
from hub.registry.models import (
    Alias,
    BaselineModel,
    ModelVersion,
)
from hub.registry.service.baseline_models import get_model_or_raise
from hub.registry.service.plants import get_plant_or_raise
from hub.registry.service.versions import get_version_or_raise


def list_aliases_of(
    *, session: Session, plant_ids: list[str] | None, alias: AliasName
) -> list[Alias]:
    """Return every plant's ``alias`` pointer (e.g. the champions of the fleet) in one query."""
    stmt = select(Alias).where(Alias.alias == alias.value)
    if plant_ids is not None:
        stmt = stmt.where(Alias.plant_id.in_(plant_ids))
    return list(session.scalars(stmt.order_by(Alias.plant_id, Alias.model_id)))


def set_alias(
    *, session: Session, plant_id: str, model: str, alias: AliasName, version_id: int, actor: str
) -> Alias:
    """Point a plant's challenger or shadow alias of ``model`` at a version (idempotent PUT).

    The champion alias is not set here: it is written only by the governance flow
    (``POST /api/v1/promotions``), through :func:`point_alias`.

    Raises
    ------
    Conflict
        ``promotion_required`` when ``alias`` is the champion.
    NotFound
        When the plant, model or version does not exist.
    InvalidInput
        When the version belongs to another model or was fine-tuned for another plant.
    """
    refuse_champion(alias)
    row = point_alias(
        session=session,
        plant_id=plant_id,
        model=model,
        alias=alias,
        version_id=version_id,
        actor=actor,
    )
    commit_or_conflict(session, detail="the alias was changed concurrently; retry")
    return row


def refuse_champion(alias: AliasName) -> None:
    """Raise ``promotion_required`` for the champion alias (written only by governance)."""
    if alias == AliasName.CHAMPION:
        raise Conflict(
            "the champion alias is set only through a promotion: POST /api/v1/promotions "
            "(gate + approvals), or an admin break-glass POST /api/v1/promotions/break-glass.",
            code=ErrorCode.PROMOTION_REQUIRED,
        )


def point_alias(
    *,
    session: Session,
    plant_id: str,
    model: str,
    alias: AliasName,
    version_id: int,
    actor: str,
    promotion_id: int | None = None,
    flags: Sequence[str] = (),
) -> Alias:
    """Point an alias at a version inside the caller's transaction (flush only, no commit).

    A change is appended to the audit trail (``alias.set``, with the promotion that made it
    and any ``flags``) in the same transaction.

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
    before = None if row is None else {"version_id": row.version_id}
    if row is None:
        row = Alias(
            plant_id=plant_id, model=model_row, alias=alias.value, version=version, updated_by=actor
        )
        session.add(row)
    elif row.version_id != version_id:
        row.version = version
        row.updated_at = utcnow()
        row.updated_by = actor
    session.flush()
    if before != {"version_id": version_id}:
        audit_service.append(
            session=session,
            actor=actor,
            action="alias.set",
            subject=alias_subject(plant_id, model, alias),
            before=before,
            after={"version_id": version_id}
            if promotion_id is None
            else {"version_id": version_id, "promotion_id": promotion_id},
            flags=flags,
        )
    return row


def find_alias(*, session: Session, plant_id: str, model_id: int, alias: AliasName) -> Alias | None:
    """Return a plant's alias of a model by model id, or None."""
    return session.get(Alias, (plant_id, model_id, alias.value))


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


def alias_subject(plant_id: str, model: str, alias: AliasName) -> str:
    """How an alias is named on the audit trail."""
    return f"alias/{plant_id}/{model}/{alias.value}"


def delete_alias(
    *, session: Session, plant_id: str, model: str, alias: AliasName, actor: str = "system"
) -> None:
    """Remove a plant's challenger or shadow alias (champion: ``promotion_required``)."""
    refuse_champion(alias)
    row = get_alias_or_raise(session=session, plant_id=plant_id, model=model, alias=alias)
    audit_service.append(
        session=session,
        actor=actor,
        action="alias.delete",
        subject=alias_subject(plant_id, model, alias),
        before={"version_id": row.version_id},
    )
    session.delete(row)
    session.commit()


def list_aliases(*, session: Session, plant_id: str) -> list[Alias]:
    """Every alias of a plant, by model and alias name."""
    get_plant_or_raise(session=session, plant_id=plant_id)
    stmt = select(Alias).where(Alias.plant_id == plant_id).order_by(Alias.model_id, Alias.alias)
    return list(session.scalars(stmt).unique())


def drop_alias(*, session: Session, plant_id: str, model_id: int, alias: AliasName) -> bool:
    """Remove a challenger or shadow alias inside the caller's transaction (flush only).

    Returns
    -------
    bool
        Whether there was one.
    """
    refuse_champion(alias)
    row = session.get(Alias, (plant_id, model_id, alias.value))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def list_alias_rows(
    *,
    session: Session,
    alias: AliasName,
    model_id: int | None = None,
    plant_id: str | None = None,
) -> list[Alias]:
    """Every alias of one name across the fleet (optionally one model or plant), by plant."""
    stmt = select(Alias).where(Alias.alias == alias.value)
    if model_id is not None:
        stmt = stmt.where(Alias.model_id == model_id)
    if plant_id is not None:
        stmt = stmt.where(Alias.plant_id == plant_id)
    return list(session.scalars(stmt.order_by(Alias.plant_id, Alias.model_id)).unique())


def alias_heads(
    *,
    session: Session,
    alias: AliasName,
    model_id: int | None = None,
    plant_id: str | None = None,
) -> list[Any]:
    """Every alias of one name as plain rows, by plant then model (one query, no ORM objects).

    Each row has ``plant_id``, ``model_id``, ``model`` (name), ``updated_at`` and the
    version's ``id``, ``version``, ``parent_id``, ``created_at``,
    ``training_data_fingerprint`` and ``recipe_id``: what a fleet-wide listing shows, at a
    quarter of the cost of loading every alias with its version and model.
    """
    stmt = (
        select(
            Alias.plant_id, Alias.model_id, BaselineModel.name.label("model"), Alias.updated_at,
            ModelVersion.id, ModelVersion.version, ModelVersion.parent_id,
            ModelVersion.created_at, ModelVersion.training_data_fingerprint,
            ModelVersion.recipe_id,
        )
        .join(ModelVersion, ModelVersion.id == Alias.version_id)
        .join(BaselineModel, BaselineModel.id == Alias.model_id)
        .where(Alias.alias == alias.value)
    )  # fmt: skip
    if model_id is not None:
        stmt = stmt.where(Alias.model_id == model_id)
    if plant_id is not None:
        stmt = stmt.where(Alias.plant_id == plant_id)
    return list(session.execute(stmt.order_by(Alias.plant_id, Alias.model_id)).all())
