"""Auth schemas: defined once in :mod:`federation.schemas.auth`, re-exported here."""

from federation.schemas.auth import (
    Principal,
    Role,
    TokenCreate,
    TokenCreated,
    TokenPage,
    TokenRead,
    UserCreate,
    UserPage,
    UserRead,
)

__all__ = [
    "Principal",
    "Role",
    "TokenCreate",
    "TokenCreated",
    "TokenPage",
    "TokenRead",
    "UserCreate",
    "UserPage",
    "UserRead",
]
