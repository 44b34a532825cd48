"""Pydantic wire models for every HTTP payload that crosses the plant/hub boundary.

Submodules: :mod:`~federation.schemas.registry`, :mod:`~federation.schemas.recipes`,
:mod:`~federation.schemas.auth`, :mod:`~federation.schemas.events`,
:mod:`~federation.schemas.health`, :mod:`~federation.schemas.common`.
"""
