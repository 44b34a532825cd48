"""Recipe schemas: defined once in :mod:`federation.schemas.recipes`, re-exported here."""

from federation.schemas.recipes import (
    Gate,
    RecipeCreate,
    RecipePage,
    RecipeRead,
    RecipeSpec,
    RecipeStatus,
    RecipeUpdate,
)

__all__ = [
    "Gate",
    "RecipeCreate",
    "RecipePage",
    "RecipeRead",
    "RecipeSpec",
    "RecipeStatus",
    "RecipeUpdate",
]
