"""HTTP routes of fleet operations: rollouts, rollbacks, the inventory (translation only)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from federation.schemas.rollouts import (
    InventoryList,
    InventoryStatus,
    RollbackCreate,
    RollbackRead,
    RollbackResult,
    RolloutAction,
    RolloutCreate,
    RolloutPage,
    RolloutRead,
    RolloutStatus,
)
from hub.config import API_PREFIX
from hub.deps import ArtifactStoreDep, IdPath, PageSizeDep, PrincipalDep, SessionDep, SettingsDep
from hub.rollouts import flows, inventory, service
from hub.rollouts.permissions import ReadFleet, RunRollouts

router = APIRouter(prefix=API_PREFIX, tags=["fleet"])


@router.post("/rollouts", response_model=RolloutRead, status_code=201, dependencies=[RunRollouts])
def start_rollout(
    body: RolloutCreate, session: SessionDep, principal: PrincipalDep, store: ArtifactStoreDep
) -> RolloutRead:
    """Start a staged rollout of a version under a rollout plan; the hub's engine drives it."""
    row = flows.start_rollout(session=session, principal=principal, rollout_in=body, store=store)
    return service.rollout_read(session=session, rollout=row, steps=True)


@router.get("/rollouts", response_model=RolloutPage, dependencies=[ReadFleet])
def list_rollouts(
    session: SessionDep,
    page_size: PageSizeDep,
    status: RolloutStatus | None = None,
    model: str | None = None,
    page_token: str | None = None,
) -> RolloutPage:
    """List rollouts in start order, optionally of one status or model."""
    rows, token = service.list_rollouts(
        session=session, status=status, model=model, page_size=page_size, page_token=page_token
    )
    return RolloutPage(
        items=[service.rollout_read(session=session, rollout=r) for r in rows],
        next_page_token=token,
    )


@router.get("/rollouts/{rollout_id}", response_model=RolloutRead, dependencies=[ReadFleet])
def get_rollout(rollout_id: IdPath, session: SessionDep) -> RolloutRead:
    """One rollout with its plants and every recorded step."""
    row = service.get_rollout_or_raise(session=session, rollout_id=rollout_id)
    return service.rollout_read(session=session, rollout=row, steps=True)


def _action(
    action: Literal["pause", "resume", "abort"],
    rollout_id: IdPath,
    body: RolloutAction | None,
    session: SessionDep,
    principal: PrincipalDep,
) -> RolloutRead:
    row = flows.set_status(
        session=session,
        principal=principal,
        rollout_id=rollout_id,
        action=action,
        reason="" if body is None else body.reason,
    )
    return service.rollout_read(session=session, rollout=row, steps=True)


@router.post("/rollouts/{rollout_id}/pause", response_model=RolloutRead, dependencies=[RunRollouts])
def pause_rollout(
    rollout_id: IdPath,
    session: SessionDep,
    principal: PrincipalDep,
    body: RolloutAction | None = None,
) -> RolloutRead:
    """Stop advancing a running rollout (plants stay where they are)."""
    return _action("pause", rollout_id, body, session, principal)


@router.post(
    "/rollouts/{rollout_id}/resume", response_model=RolloutRead, dependencies=[RunRollouts]
)
def resume_rollout(
    rollout_id: IdPath,
    session: SessionDep,
    principal: PrincipalDep,
    body: RolloutAction | None = None,
) -> RolloutRead:
    """Continue a paused or halted rollout."""
    return _action("resume", rollout_id, body, session, principal)


@router.post("/rollouts/{rollout_id}/abort", response_model=RolloutRead, dependencies=[RunRollouts])
def abort_rollout(
    rollout_id: IdPath,
    session: SessionDep,
    principal: PrincipalDep,
    body: RolloutAction | None = None,
) -> RolloutRead:
    """Abort: roll back the current wave's plants, skip the rest."""
    return _action("abort", rollout_id, body, session, principal)


@router.post(
    "/rollbacks", response_model=RollbackResult, status_code=201, dependencies=[RunRollouts]
)
def rollback(body: RollbackCreate, session: SessionDep, principal: PrincipalDep) -> RollbackResult:
    """Point champion back, at one plant or the whole fleet, to the previous (or named) version."""
    rows = flows.rollback(session=session, principal=principal, body=body)
    return RollbackResult(items=[service.rollback_read(session=session, row=r) for r in rows])


@router.get("/rollbacks/{rollback_id}", response_model=RollbackRead, dependencies=[ReadFleet])
def get_rollback(rollback_id: IdPath, session: SessionDep) -> RollbackRead:
    """One plant's rollback; ``confirmed_at`` is set once its node reports serving the version."""
    row = flows.get_rollback_or_raise(session=session, rollback_id=rollback_id)
    return service.rollback_read(session=session, row=row)


@router.get("/inventory", response_model=InventoryList, dependencies=[ReadFleet])
def get_inventory(
    session: SessionDep,
    settings: SettingsDep,
    plant: str | None = None,
    model: str | None = None,
    status: InventoryStatus | None = None,
) -> InventoryList:
    """Which model runs where, trained when, on what data, validated when, since when."""
    return InventoryList(
        items=inventory.inventory(
            session=session,
            plant_id=plant,
            model=model,
            status=status,
            stale_after_s=settings.node_stale_seconds,
        )
    )
