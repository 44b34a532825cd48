"""Plants: enrollment, lookup, descriptive updates, listing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import (
    Conflict,
    ErrorCode,
    NotFound,
)
from federation.schemas.registry import (
    PlantCreate,
    PlantUpdate,
)
from hub.audit import service as audit_service
from hub.db import commit_or_conflict
from hub.idempotency import service as idempotency_service
from hub.idempotency.service import IdempotencyKey
from hub.pagination import decode_token, scalar_page
from hub.registry.models import (
    Plant,
)


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
    audit_service.append(
        session=session,
        actor=actor,
        action="plant.enroll",
        subject=f"plant/{plant.id}",
        after={"id": plant.id, **fields},
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
