"""Event schemas: defined once in :mod:`federation.schemas.events`, re-exported here."""

from federation.schemas.events import (
    EventIngestResult,
    PlantEventBatch,
    PlantEventCreate,
    PlantEventPage,
    PlantEventRead,
)

__all__ = [
    "EventIngestResult",
    "PlantEventBatch",
    "PlantEventCreate",
    "PlantEventPage",
    "PlantEventRead",
]
