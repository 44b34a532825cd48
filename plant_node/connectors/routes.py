"""``GET /v1/connectors``: state, lag, counts and last error of the node's line connectors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from plant_node.auth.permissions import allow_read
from plant_node.connectors.runner import STATE_KEY, ConnectorRunner
from plant_node.deps import StateDep

router = APIRouter(tags=["connectors"])


@router.get("/connectors", dependencies=allow_read)
async def list_connectors(state: StateDep) -> dict[str, Any]:
    """List the connectors running in this node process (none unless configured)."""
    runner = state.extras.get(STATE_KEY)
    items = runner.status() if isinstance(runner, ConnectorRunner) else []
    return {"connectors": items}
