"""The anonymized metrics report a plant node sends to the hub's cross-plant registry.

Anonymous by construction: the report holds aggregates only (metrics, drift scores, counts,
percentiles), every model refuses unknown fields, floats must be finite, unit ids appear
only as keyed pseudonyms (:func:`pseudonymize`, HMAC-SHA256 with a key the plant keeps), and
a report cannot be built for a window or chunk with fewer rows than the policy minimum
(``n_rows >= min_rows_policy`` is validated, so the hub can check it too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    model_validator,
)

Pseudonym = Annotated[str, StringConstraints(pattern=r"^u_[0-9a-f]{16}$")]
PlantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
VersionLabel = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")]
#: Feature, metric and rule names: identifiers, never free text that could carry a value.
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_*][A-Za-z0-9_.:*-]{0,79}$")]
Score = Annotated[float, Field(ge=0.0)]


class ReportModel(BaseModel):
    """Base of the report models: unknown fields refused, finite floats only, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AlertKindName(StrEnum):
    """What an alert watched."""

    PERFORMANCE = "performance"
    DRIFT = "drift"
    INTEGRITY = "integrity"


class MetricValue(ReportModel):
    """One performance metric: nannyml's estimate with its bounds, and the realized value."""

    metric: Name
    estimated: float | None = None
    lower: float | None = None
    upper: float | None = None
    realized: float | None = Field(None, description="Null until enough labels have arrived.")
    n_labels: NonNegativeInt = 0
    unreliable: list[Name] = Field(
        default_factory=list,
        max_length=16,
        description="Rules (integrity or multivariate drift) the chunk breached, which put "
        "its inputs outside what the estimator learned on; the estimate is then null.",
    )

    @model_validator(mode="after")
    def _no_estimate_when_unreliable(self) -> Self:
        if self.unreliable and self.estimated is not None:
            raise ValueError("an estimate flagged unreliable must not carry a value")
        return self


class DriftScores(ReportModel):
    """Univariate drift of one column against the reference period."""

    js: Score | None = None
    ks: Score | None = None
    wasserstein: Score | None = None
    psi: Score | None = None


class FeatureDrift(ReportModel):
    """Drift of one feature over the window (mean over chunks) and whether any chunk drifted."""

    feature: Name
    scores: DriftScores
    drifted_chunks: NonNegativeInt = 0


class ChunkSummary(ReportModel):
    """Aggregates of one chunk of the window."""

    chunk: NonNegativeInt
    start: dt.datetime
    end: dt.datetime
    n_rows: NonNegativeInt
    metrics: list[MetricValue] = Field(default_factory=list)
    multivariate_drift: Score | None = None
    drifted_features: list[Name] = Field(default_factory=list)


class IntegrityCounts(ReportModel):
    """Data-integrity counts over the window."""

    null_values: dict[Name, NonNegativeInt] = Field(default_factory=dict)
    out_of_range: dict[Name, NonNegativeInt] = Field(default_factory=dict)
    contract_violations: dict[Name, NonNegativeInt] = Field(default_factory=dict)
    stuck_sensors: dict[Name, NonNegativeInt] = Field(
        default_factory=dict, description="Units with a flat sensor, per feature."
    )
    stuck_units: list[Pseudonym] = Field(default_factory=list, max_length=1000)
    missing_rows: NonNegativeInt = 0
    late_rows: NonNegativeInt = 0


class LatencyPercentiles(ReportModel):
    """Serving latency in milliseconds (p50: median of chunk medians; p95/p99: worst chunk)."""

    p50: Score
    p95: Score
    p99: Score


class AlertSummary(ReportModel):
    """One alert raised in the window: what moved, by how much, since when, top features."""

    key: Name
    kind: AlertKindName
    since: dt.datetime | None = None
    value: float
    reference_mean: float
    sigmas: float | None = Field(None, description="Null when the reference did not vary.")
    top_features: list[Name] = Field(default_factory=list, max_length=3)


class AlertCounts(ReportModel):
    """Alert counts of the window, and how many alarms labels have confirmed or refuted."""

    raised: NonNegativeInt = 0
    cleared: NonNegativeInt = 0
    open: NonNegativeInt = 0
    true_alarms: NonNegativeInt = 0
    false_alarms: NonNegativeInt = 0
    by_kind: dict[AlertKindName, NonNegativeInt] = Field(default_factory=dict)


class ImpactMethod(StrEnum):
    """How the node decided which failures were caught, missed or falsely alarmed."""

    #: C-MAPSS: a unit was warned when its predicted RUL crossed the maintenance threshold
    #: before it failed; a failed unit never warned is missed; a warned unit that did not
    #: fail within the threshold is a false alarm.
    RUL_THRESHOLD = "rul_threshold"
    #: AI4I: every alarm (positive prediction) confirmed by a QA failure label is caught,
    #: one refuted is false, a labelled failure without an alarm is missed.
    ALARM_OUTCOME = "alarm_outcome"


class ImpactCounts(ReportModel):
    """Business outcome counts of the window, computed by the node from its own outcomes.

    Only counts travel, never unit ids. Small windows are suppressed: the counts describe at
    least ``min_units_policy`` labelled units (or samples), else the node sends no impact.
    """

    schema_version: Literal["1"] = "1"
    method: ImpactMethod
    units: NonNegativeInt = Field(description="Labelled units (or samples) the counts cover.")
    min_units_policy: Annotated[int, Field(ge=1)]
    caught: NonNegativeInt = Field(0, description="Failures warned of in time.")
    missed: NonNegativeInt = Field(0, description="Failures that came without a warning.")
    false_alarms: NonNegativeInt = Field(0, description="Warnings not followed by a failure.")
    threshold: float | None = Field(
        None, description="Maintenance threshold (RUL cycles) or alarm probability used."
    )

    @model_validator(mode="after")
    def _small_counts_are_suppressed(self) -> Self:
        if self.units < self.min_units_policy:
            raise ValueError(
                f"impact counts over {self.units} units are below the policy minimum of "
                f"{self.min_units_policy} and must not be reported"
            )
        if self.caught + self.missed + self.false_alarms > self.units:
            raise ValueError("impact counts exceed the units they cover")
        return self


class MetricsReport(ReportModel):
    """One plant's anonymized monitoring report for one model version and time window."""

    schema_version: Literal["1"] = "1"
    report_id: uuid.UUID = Field(
        description="Keyed by a plant-held secret; the hub de-duplicates on (plant, id)."
    )
    revision: NonNegativeInt = Field(
        0,
        description="Bumped when the plant re-sends the window because labels arrived after "
        "it was sent (realized metrics, confirmed alarms); the hub keeps the highest.",
    )
    plant_id: PlantId
    model_name: ModelName
    model_version: VersionLabel
    window_start: dt.datetime
    window_end: dt.datetime
    n_rows: NonNegativeInt
    min_rows_policy: Annotated[int, Field(ge=1)]
    suppressed_chunks: NonNegativeInt = Field(
        0, description="Chunks left out because they had fewer rows than the policy minimum."
    )
    chunks: list[ChunkSummary] = Field(default_factory=list)
    drift: list[FeatureDrift] = Field(default_factory=list)
    prediction_drift: DriftScores | None = None
    integrity: IntegrityCounts = Field(default_factory=IntegrityCounts)
    latency_ms: LatencyPercentiles | None = None
    alerts: AlertCounts = Field(default_factory=AlertCounts)
    alert_details: list[AlertSummary] = Field(default_factory=list, max_length=100)
    open_alert_keys: list[Name] | None = Field(
        None,
        max_length=100,
        description="Keys of the rules whose alert is still open at the end of the window "
        "(optional, added after schema 1: null means the node did not say). The hub closes an "
        "alert it holds open for this plant and version when a report lists it no longer.",
    )
    impact: ImpactCounts | None = Field(
        None,
        description="Optional (added in impact schema 1; reports without it stay valid): "
        "failures caught, missed and false alarms in the window.",
    )

    @model_validator(mode="after")
    def _small_windows_are_suppressed(self) -> Self:
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        if self.n_rows < self.min_rows_policy:
            raise ValueError(
                f"a window of {self.n_rows} rows is below the policy minimum of "
                f"{self.min_rows_policy} rows and must not be reported"
            )
        small = [c.chunk for c in self.chunks if c.n_rows < self.min_chunk_rows]
        if small:
            raise ValueError(f"chunks {small} have fewer rows than the policy minimum")
        if sum(c.n_rows for c in self.chunks) > self.n_rows:
            raise ValueError("chunk rows exceed the window's rows")
        return self

    @property
    def min_chunk_rows(self) -> int:
        """Smallest chunk a report may describe (the same policy minimum)."""
        return self.min_rows_policy


def pseudonymize(unit_id: str, key: bytes) -> str:
    """Return the keyed pseudonym of a unit id: ``u_`` + 16 hex of HMAC-SHA256.

    The same unit always maps to the same pseudonym at one plant, so the hub can count
    units over time, but without the plant's key it cannot recover the id or link units
    across plants.

    Parameters
    ----------
    unit_id
        The plant's own unit or asset id.
    key
        The plant-held secret (at least 16 bytes).

    Returns
    -------
    str
        The pseudonym.

    Raises
    ------
    ValueError
        If the key is shorter than 16 bytes.
    """
    if len(key) < 16:
        raise ValueError("the pseudonymization key must be at least 16 bytes")
    digest = hmac.new(key, unit_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"u_{digest[:16]}"


def report_id(
    *,
    plant_id: str,
    model_name: str,
    model_version: str,
    start: dt.datetime,
    end: dt.datetime,
    secret: bytes,
) -> uuid.UUID:
    """Return the id of a window's report: stable at one plant, unpredictable to anyone else.

    The id is an HMAC-SHA256 of plant, model, version and window under a plant-held secret
    (never sent), so a re-sent report keeps its id and is a duplicate, while another plant
    cannot compute the id of a report this plant has not delivered yet. The hub also scopes
    ids per plant, so even a leaked id cannot displace this plant's report.

    Parameters
    ----------
    plant_id, model_name, model_version, start, end
        What the report is about.
    secret
        The plant-held secret (at least 16 bytes).

    Returns
    -------
    uuid.UUID
        A version-5-shaped UUID made of the first 16 bytes of the HMAC.

    Raises
    ------
    ValueError
        If the secret is shorter than 16 bytes.
    """
    if len(secret) < 16:
        raise ValueError("the report id secret must be at least 16 bytes")
    name = (
        f"report-id|{plant_id}|{model_name}|{model_version}|{start.isoformat()}|{end.isoformat()}"
    )
    digest = hmac.new(secret, name.encode("utf-8"), hashlib.sha256).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


__all__ = [
    "AlertCounts",
    "AlertKindName",
    "AlertSummary",
    "ChunkSummary",
    "DriftScores",
    "FeatureDrift",
    "ImpactCounts",
    "ImpactMethod",
    "IntegrityCounts",
    "LatencyPercentiles",
    "MetricValue",
    "MetricsReport",
    "pseudonymize",
    "report_id",
]
