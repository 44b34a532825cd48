"""Monitoring before labels arrive: data integrity, drift, performance estimation, alerts.

Importing this package is cheap: nannyml loads only when
:mod:`plant_node.monitoring.estimation` is imported, which the serving path never does.
"""

from plant_node.monitoring.chunking import CHUNK_COLUMN, LogColumns, assign_chunks, iter_chunks

__all__ = ["CHUNK_COLUMN", "LogColumns", "assign_chunks", "iter_chunks"]
