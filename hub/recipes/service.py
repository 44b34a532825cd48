"""Recipe versions: create drafts, edit drafts, publish (after which they never change)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation.errors import Conflict, ErrorCode, NotFound
from federation.schemas.recipes import RecipeCreate, RecipeStatus, RecipeUpdate
from hub.audit import service as audit_service
from hub.db import commit_or_conflict, utcnow
from hub.idempotency import service as idempotency_service
from hub.idempotency.service import IdempotencyKey
from hub.pagination import decode_token, scalar_page
from hub.recipes.models import Recipe


def get_recipe(*, session: Session, recipe_id: int) -> Recipe | None:
    """Return the recipe version with this id, or None."""
    return session.get(Recipe, recipe_id)


def get_recipe_or_raise(*, session: Session, recipe_id: int) -> Recipe:
    """Return the recipe version with this id.

    Raises
    ------
    NotFound
        When no recipe version has this id.
    """
    recipe = get_recipe(session=session, recipe_id=recipe_id)
    if recipe is None:
        raise NotFound(f"recipe {recipe_id} does not exist; list recipes to find its id.")
    return recipe


def published_ids(*, session: Session, recipe_ids: Iterable[int]) -> dict[int, str]:
    """Map each existing id among ``recipe_ids`` to its status (one query)."""
    ids = sorted(set(recipe_ids))
    if not ids:
        return {}
    rows = session.execute(select(Recipe.id, Recipe.status).where(Recipe.id.in_(ids)))
    return {rid: status for rid, status in rows}


def _spec(recipe_in: RecipeCreate) -> dict[str, Any]:
    return recipe_in.model_dump(mode="json", exclude={"name", "version"})


def create_recipe(
    *, session: Session, recipe_in: RecipeCreate, actor: str, idem: IdempotencyKey | None = None
) -> Recipe:
    """Create a draft recipe version (``version`` defaults to the next free number).

    Re-sending an identical body for an explicit ``(name, version)`` returns the existing
    recipe; a different body for an existing one is a conflict.

    Raises
    ------
    Conflict
        ``already_exists`` when ``(name, version)`` exists with other content.
    """
    scope = "create_recipe"
    req_hash = idempotency_service.request_hash(scope, recipe_in)
    ref = idempotency_service.find_replay(
        session=session, idem=idem, scope=scope, req_hash=req_hash
    )
    if ref is not None:
        return get_recipe_or_raise(session=session, recipe_id=int(ref))
    version = recipe_in.version
    if version is None:
        latest = session.scalar(
            select(func.max(Recipe.version)).where(Recipe.name == recipe_in.name)
        )
        version = (latest or 0) + 1
    else:
        existing = session.scalars(
            select(Recipe).where(Recipe.name == recipe_in.name, Recipe.version == version)
        ).first()
        if existing is not None:
            same = all(getattr(existing, k) == v for k, v in _spec(recipe_in).items())
            if not same:
                raise Conflict(
                    f"recipe '{recipe_in.name}' version {version} already exists with different "
                    "content; create the next version instead.",
                    code=ErrorCode.ALREADY_EXISTS,
                )
            return existing
    recipe = Recipe(name=recipe_in.name, version=version, created_by=actor, **_spec(recipe_in))
    session.add(recipe)
    session.flush()
    idempotency_service.remember(
        session=session, idem=idem, scope=scope, req_hash=req_hash, resource_ref=str(recipe.id)
    )
    commit_or_conflict(
        session, detail=f"recipe '{recipe_in.name}' version {version} was created concurrently"
    )
    return recipe


def update_recipe(*, session: Session, recipe_id: int, recipe_in: RecipeUpdate) -> Recipe:
    """Change a draft recipe.

    Raises
    ------
    NotFound
        When the recipe does not exist.
    Conflict
        When it is already published (published recipes are immutable).
    """
    recipe = get_recipe_or_raise(session=session, recipe_id=recipe_id)
    if recipe.status == RecipeStatus.PUBLISHED:
        raise Conflict(
            f"recipe '{recipe.name}' version {recipe.version} is published and immutable; "
            "create a new version with the changes."
        )
    for key, value in recipe_in.model_dump(mode="json", exclude_unset=True).items():
        if value is not None:
            setattr(recipe, key, value)
    session.commit()
    return recipe


def publish_recipe(*, session: Session, recipe_id: int, actor: str = "system") -> Recipe:
    """Publish a draft; publishing a published recipe again is a no-op."""
    recipe = get_recipe_or_raise(session=session, recipe_id=recipe_id)
    if recipe.status != RecipeStatus.PUBLISHED:
        recipe.status = RecipeStatus.PUBLISHED.value
        recipe.published_at = utcnow()
        audit_service.append(
            session=session,
            actor=actor,
            action="recipe.publish",
            subject=f"recipe/{recipe.id}",
            before={"status": RecipeStatus.DRAFT.value},
            after={"status": recipe.status, "name": recipe.name, "version": recipe.version},
        )
        session.commit()
    return recipe


def list_recipes(
    *,
    session: Session,
    name: str | None,
    status: RecipeStatus | None,
    page_size: int,
    page_token: str | None,
) -> tuple[list[Recipe], str | None]:
    """One page of recipe versions ordered by id, with the token of the next page."""
    filters = {"name": name, "status": status}
    after = decode_token(page_token, filters, int)
    stmt = select(Recipe)
    if name:
        stmt = stmt.where(Recipe.name == name)
    if status:
        stmt = stmt.where(Recipe.status == status.value)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=Recipe.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )
