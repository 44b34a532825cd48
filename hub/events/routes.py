"""HTTP routes of plant events (the plant node outbox delivers here)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.config import API_PREFIX
from hub.deps import PageSizeDep, SessionDep, SettingsDep
from hub.events import service
from hub.events.permissions import ReadEvents, WriteEvents
from hub.events.schemas import EventIngestResult, PlantEventBatch, PlantEventPage

router = APIRouter(prefix=API_PREFIX, tags=["events"])


@router.post(
    "/plants/{plant_id}/events", response_model=EventIngestResult, dependencies=[WriteEvents]
)
def ingest_events(
    plant_id: str, batch_in: PlantEventBatch, session: SessionDep, settings: SettingsDep
) -> EventIngestResult:
    """Deliver events of a plant; ids already received are reported as duplicates."""
    return service.ingest_events(
        session=session,
        plant_id=plant_id,
        events_in=batch_in.events,
        max_batch=settings.max_batch_size,
    )


@router.get("/plants/{plant_id}/events", response_model=PlantEventPage, dependencies=[ReadEvents])
def list_events(
    plant_id: str,
    session: SessionDep,
    page_size: PageSizeDep,
    kind: str | None = None,
    page_token: str | None = None,
) -> PlantEventPage:
    """List a plant's events in the order received."""
    rows, token = service.list_events(
        session=session, plant_id=plant_id, kind=kind, page_size=page_size, page_token=page_token
    )
    return PlantEventPage(items=[service.to_read(r) for r in rows], next_page_token=token)
