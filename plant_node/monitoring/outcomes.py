"""Turn late ground truth into per-row labels for the prediction log.

Labels arrive as outcomes: a maintenance record ("unit 17 failed at cycle 212") labels every
earlier prediction of that unit with its true remaining useful life; a QA verdict labels one
prediction. The node stores outcomes, and before each monitoring run joins them into the
log with these functions, so realized metrics are computed beside the estimates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plant_node.monitoring.chunking import LogColumns


def label_from_failure(
    log: pd.DataFrame,
    *,
    columns: LogColumns,
    unit: str,
    failed_at: float,
    cycle: str = "cycle",
    cap: float | None = 125.0,
) -> pd.DataFrame:
    """Label a unit's predictions with its true RUL once its failure is known.

    Parameters
    ----------
    log
        Prediction-log rows (any units).
    columns
        Column names of the log.
    unit
        The unit that failed.
    failed_at
        Cycle (or other life counter in ``cycle``) at which it failed.
    cycle
        Column holding the unit's life counter.
    cap
        RUL cap of the model's target (piecewise-linear RUL), ``None`` for no cap.

    Returns
    -------
    pandas.DataFrame
        A copy with ``columns.label`` set on that unit's rows up to the failure.

    Raises
    ------
    ValueError
        If the unit has no prediction, or a prediction lies after the reported failure.
    """
    out = log.copy()
    if columns.label not in out:
        out[columns.label] = np.nan
    mine = out[columns.unit].astype(str) == str(unit)
    if not mine.any():
        raise ValueError(f"no prediction for unit {unit!r}")
    if (out.loc[mine, cycle] > failed_at).any():
        raise ValueError(f"unit {unit!r} has predictions after its reported failure")
    rul = failed_at - out.loc[mine, cycle].astype(float)
    out.loc[mine, columns.label] = rul.clip(upper=cap) if cap is not None else rul
    return out


def tally_failure_alarms(
    alert_starts: list[pd.Timestamp], failures: list[pd.Timestamp], *, horizon: pd.Timedelta
) -> tuple[int, int]:
    """Count alerts that preceded a real failure within ``horizon`` (true) and the rest (false).

    Parameters
    ----------
    alert_starts
        When each alert's breach began.
    failures
        When recorded failures happened.
    horizon
        How far ahead of a failure an alert still counts as a warning of it.

    Returns
    -------
    tuple[int, int]
        ``(true_alarms, false_alarms)``.
    """
    true = sum(any(a <= f <= a + horizon for f in failures) for a in alert_starts)
    return true, len(alert_starts) - true
