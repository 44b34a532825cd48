"""HTTP routes of recipes."""

from __future__ import annotations

from fastapi import APIRouter

from hub.config import API_PREFIX
from hub.deps import ActorDep, IdempotencyDep, PageSizeDep, SessionDep
from hub.recipes import service
from hub.recipes.permissions import ReadRecipes, WriteRecipes
from hub.recipes.schemas import RecipeCreate, RecipePage, RecipeRead, RecipeStatus, RecipeUpdate

router = APIRouter(prefix=API_PREFIX, tags=["recipes"])


@router.post("/recipes", response_model=RecipeRead, status_code=201, dependencies=[WriteRecipes])
def create_recipe(
    recipe_in: RecipeCreate, session: SessionDep, actor: ActorDep, idem: IdempotencyDep
) -> object:
    """Create a draft recipe version."""
    return service.create_recipe(session=session, recipe_in=recipe_in, actor=actor, idem=idem)


@router.get("/recipes", response_model=RecipePage, dependencies=[ReadRecipes])
def list_recipes(
    session: SessionDep,
    page_size: PageSizeDep,
    name: str | None = None,
    status: RecipeStatus | None = None,
    page_token: str | None = None,
) -> RecipePage:
    """List recipe versions, optionally of one name or status."""
    rows, token = service.list_recipes(
        session=session, name=name, status=status, page_size=page_size, page_token=page_token
    )
    return RecipePage(items=[RecipeRead.model_validate(r) for r in rows], next_page_token=token)


@router.get("/recipes/{recipe_id}", response_model=RecipeRead, dependencies=[ReadRecipes])
def get_recipe(recipe_id: int, session: SessionDep) -> object:
    """Get one recipe version."""
    return service.get_recipe_or_raise(session=session, recipe_id=recipe_id)


@router.patch("/recipes/{recipe_id}", response_model=RecipeRead, dependencies=[WriteRecipes])
def update_recipe(recipe_id: int, recipe_in: RecipeUpdate, session: SessionDep) -> object:
    """Change a draft recipe (published recipes answer 409)."""
    return service.update_recipe(session=session, recipe_id=recipe_id, recipe_in=recipe_in)


@router.post("/recipes/{recipe_id}/publish", response_model=RecipeRead, dependencies=[WriteRecipes])
def publish_recipe(recipe_id: int, session: SessionDep, actor: ActorDep) -> object:
    """Publish a draft; from then on it never changes."""
    return service.publish_recipe(session=session, recipe_id=recipe_id, actor=actor)
