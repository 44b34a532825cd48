"""The standard policy documents shipped under ``policies/documents/``."""

from __future__ import annotations

from functools import cache
from importlib import resources

from policies.parsing import PolicyDocument, parse_policy
from policies.refs import parse_ref


@cache
def standard_documents() -> dict[str, PolicyDocument]:
    """Return every shipped document by ``id@version``.

    Returns
    -------
    dict[str, PolicyDocument]
        E.g. ``{"promotion-default@1": PromotionGatePolicy(...), ...}``.

    Raises
    ------
    PolicyValidationError
        If a shipped file is malformed (a test parses every one).
    """
    out: dict[str, PolicyDocument] = {}
    folder = resources.files("policies") / "documents"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            doc = parse_policy(entry.read_bytes())
            out[doc.ref] = doc
    return out


def standard_document(ref: str) -> PolicyDocument:
    """Return one shipped document.

    Parameters
    ----------
    ref
        ``id@version``, e.g. ``"promotion-default@1"``.

    Returns
    -------
    PolicyDocument
        The document.

    Raises
    ------
    KeyError
        If no shipped document has that reference.
    """
    parse_ref(ref)
    try:
        return standard_documents()[ref]
    except KeyError:
        shipped = ", ".join(standard_documents())
        raise KeyError(f"no standard policy {ref}; shipped: {shipped}") from None
