"""Pre-serialised JSON responses for hot read routes.

Returning a wire model from a route makes FastAPI dump it, validate it again against
``response_model`` and serialise it (three passes, the validation in a thread-pool hop for
sync routes). Hot read routes return :func:`json_response` instead; ``response_model``
stays on the decorator, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """Serialise a wire model once, straight to a JSON response."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
