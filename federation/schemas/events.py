"""Wire models of plant reports: events a plant node's outbox delivers to the hub."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from federation.schemas.common import Identifier, InputModel, Label, Page, WireModel


class PlantEventCreate(InputModel):
    """One event from a plant; ``id`` is chosen by the plant and makes delivery idempotent."""

    id: Identifier = Field(description="Unique event id (e.g. a UUID) set by the sender.")
    kind: Label = Field(min_length=1, max_length=100, description="e.g. drift_alert, serving_stats")
    occurred_at: dt.datetime
    payload: dict[str, Any] = Field(default_factory=dict)


class PlantEventBatch(InputModel):
    """Events delivered together; all are stored or none."""

    events: list[PlantEventCreate] = Field(min_length=1)


class EventIngestResult(WireModel):
    """How many events were new and which ids had already been received."""

    accepted: int
    duplicates: list[str] = Field(default_factory=list)


class PlantEventRead(PlantEventCreate):
    """An event as stored by the hub."""

    plant_id: str
    received_at: dt.datetime


class PlantEventPage(Page[PlantEventRead]):
    """A page of events, oldest first."""
