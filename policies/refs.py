"""Policy identifiers: slugs and ``id@version`` references."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, min_length=1, max_length=100)]

_REF = re.compile(r"^(?P<id>[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?)@(?P<version>[1-9][0-9]{0,8})$")


def format_ref(policy_id: str, version: int) -> str:
    """Return the reference ``id@version`` of a policy document.

    Parameters
    ----------
    policy_id
        The document's slug.
    version
        Its version, ``>= 1``.

    Returns
    -------
    str
        For example ``"promotion-default@3"``.

    Raises
    ------
    ValueError
        If the id is not a slug or the version is not a positive integer.
    """
    ref = f"{policy_id}@{version}"
    if isinstance(version, bool) or not isinstance(version, int) or not _REF.match(ref):
        raise ValueError(f"not a policy reference: {ref!r} (want <slug>@<version >= 1>)")
    return ref


def parse_ref(ref: str) -> tuple[str, int]:
    """Split ``"id@version"`` into its id and version.

    Parameters
    ----------
    ref
        A reference such as ``"promotion-default@3"``.

    Returns
    -------
    tuple[str, int]
        ``("promotion-default", 3)``.

    Raises
    ------
    ValueError
        If ``ref`` is not ``<slug>@<version >= 1>``.
    """
    match = _REF.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise ValueError(f"not a policy reference: {ref!r} (want <slug>@<version >= 1>)")
    return match["id"], int(match["version"])
