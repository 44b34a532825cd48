"""Wire models of the hub's cross-plant metrics registry: receipts and read shapes.

The report a plant sends is :class:`~federation.schemas.metrics_report.MetricsReport`; the
hub answers with a :class:`MetricsReportReceipt` and flattens every report into
:class:`MetricObservationRead` rows, one number each, so plants can be compared.

How a report becomes observations (``kind`` / ``metric`` / ``subject``):

- ``estimated``: each chunk's estimate of a performance metric (``metric`` e.g. ``rmse``),
  with ``lower``/``upper`` confidence bounds; window = the chunk.
- ``realized``: the same metric computed from labels, once they arrived; window = the chunk.
- ``drift``: per feature (``subject`` = feature) the window's ``js``, ``ks``,
  ``wasserstein``, ``psi`` and ``drifted_chunks``; prediction drift has the same metrics
  with ``subject`` = ``prediction``; ``multivariate`` per chunk (no subject).
- ``integrity``: ``null_values``, ``out_of_range``, ``contract_violations`` and
  ``stuck_sensors`` per feature or rule (``subject``), and window totals ``missing_rows``,
  ``late_rows``, ``stuck_units``, ``n_rows``, ``suppressed_chunks``.
- ``latency``: ``p50``, ``p95``, ``p99`` in milliseconds.
- ``alerts``: ``raised``, ``cleared``, ``open``, ``true_alarms``, ``false_alarms``, and
  ``raised`` per alert kind (``subject`` = ``performance``, ``drift`` or ``integrity``).
- ``impact`` (when the node sent business counts): ``units``, ``caught``, ``missed``,
  ``false_alarms`` over the window.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from pydantic import Field

from federation.schemas.common import Page, WireModel
from federation.schemas.metrics_report import MetricsReport


class MetricKind(StrEnum):
    """Which part of a report an observation comes from."""

    ESTIMATED = "estimated"
    REALIZED = "realized"
    DRIFT = "drift"
    INTEGRITY = "integrity"
    LATENCY = "latency"
    ALERTS = "alerts"
    IMPACT = "impact"


class MetricsReportReceipt(WireModel):
    """The hub's acknowledgement of a report; the same receipt is returned on a re-send."""

    report_id: uuid.UUID
    plant_id: str
    model_name: str
    model_version: str
    window_start: dt.datetime
    window_end: dt.datetime
    revision: int = Field(0, description="Revision of the report the hub now holds.")
    observations: int = Field(description="Metric observations the report was stored as.")
    received_at: dt.datetime = Field(description="When the hub stored the revision it holds.")
    duplicate: bool = Field(
        False, description="True when this report id had already been stored (nothing new)."
    )


class MetricObservationRead(WireModel):
    """One number of one report, ready to compare across plants."""

    id: int
    report_id: uuid.UUID
    plant_id: str
    model_name: str
    model_version: str
    kind: MetricKind
    metric: str
    subject: str | None = Field(
        None, description="Feature, contract rule or alert kind the value is about, if any."
    )
    chunk: int | None = Field(None, description="Chunk index for chunk-level values.")
    window_start: dt.datetime
    window_end: dt.datetime
    value: float
    lower: float | None = None
    upper: float | None = None


class MetricObservationPage(Page[MetricObservationRead]):
    """A page of observations ordered by window start (then id)."""


class MetricSummary(WireModel):
    """The latest observation of every plant x model x kind x metric x subject."""

    items: list[MetricObservationRead]
    truncated: bool = Field(
        False, description="True when more series matched than the hub returns at once."
    )


class MetricsReportBatch(WireModel):
    """Up to the hub's batch limit of one plant's reports, stored all or nothing."""

    reports: list[MetricsReport] = Field(min_length=1)


class MetricsReportBatchReceipt(WireModel):
    """The hub's acknowledgement of a batch: one receipt per report, in the batch's order."""

    accepted: int = Field(description="Reports (or higher revisions) stored by this batch.")
    duplicates: int = Field(description="Reports that were already stored (nothing new).")
    receipts: list[MetricsReportReceipt]


class DailyPoint(WireModel):
    """A series' mean over one UTC day (sum / count of its values that day)."""

    plant_id: str
    model_name: str
    kind: MetricKind
    metric: str
    day: dt.date
    mean: float
    count: int


class DailySeries(WireModel):
    """Daily means of one model's metric for the plants asked for, ordered by plant and day."""

    items: list[DailyPoint]


class MonthlyTotal(WireModel):
    """The sum of a series over one month (e.g. failures caught at a plant in 2026-11)."""

    plant_id: str
    model_name: str
    kind: MetricKind
    metric: str
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    total: float


class MonthlyTotals(WireModel):
    """Monthly totals ordered by plant, model, month and metric."""

    items: list[MonthlyTotal]
