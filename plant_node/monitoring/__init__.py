"""Monitoring before labels arrive: data integrity, drift, performance estimation, alerts.

``chunking`` (log columns, chunks) · ``drift`` (JS, KS, Wasserstein, PSI, PCA) ·
``calibration`` (block-bootstrap thresholds) · ``detectors`` (CUSUM) · ``guards`` (when an
estimate cannot be trusted) ·
``integrity`` (nulls, ranges, contracts, stuck sensors, gaps, late rows) · ``estimation``
(nannyml CBPE / DLE, realized metrics) · ``alerts`` (control-chart rules) · ``outcomes``
(labels from failures) · ``engine`` (fit / run the monitor) · ``service`` (outcomes, chunk
and alert records) · ``logframe`` (the log as a frame) · ``flows`` (the node's run) ·
``report`` (the hub report) ·
``jobs`` (the scheduled tick, in a child process).

Importing this package is cheap: nannyml loads only when
:mod:`plant_node.monitoring.estimation` is imported, which the serving path never does.
"""

from plant_node.monitoring.chunking import CHUNK_COLUMN, LogColumns, assign_chunks, iter_chunks

__all__ = ["CHUNK_COLUMN", "LogColumns", "assign_chunks", "iter_chunks"]
