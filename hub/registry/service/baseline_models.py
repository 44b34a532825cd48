"""Baseline models: registration, lookup, listing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import (
    Conflict,
    ErrorCode,
    NotFound,
)
from federation.schemas.registry import (
    BaselineModelCreate,
)
from hub.db import commit_or_conflict
from hub.idempotency import service as idempotency_service
from hub.idempotency.service import IdempotencyKey
from hub.pagination import decode_token, scalar_page
from hub.registry.models import (
    BaselineModel,
)


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
