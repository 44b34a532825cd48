"""Retraining flows: the scheduled trigger evaluation, and the policy the node runs by."""

from __future__ import annotations

import functools
import logging
import math

from sqlalchemy.orm import Session, sessionmaker

from plant_node.config import NodeSettings
from plant_node.retraining import service
from plant_node.retraining.schemas import FiringRead
from policies.retraining import RetrainingPolicy

log = logging.getLogger("millwright.node.retraining")


@functools.lru_cache(maxsize=8)
def _policy(ref_or_path: str) -> RetrainingPolicy:
    return service.load_policy(ref_or_path)


def policy_of(settings: NodeSettings) -> RetrainingPolicy:
    """Return the node's retraining policy (``MILLWRIGHT_NODE_RETRAINING_POLICY``)."""
    return _policy(settings.retraining_policy)


def label_budget(settings: NodeSettings) -> int:
    """Return the labels per day the queue may ask for (the policy's ``label_budget_per_day``)."""
    return policy_of(settings).label_budget_per_day


def reference_chunks(settings: NodeSettings) -> int:
    """Return how many first chunks of a champion make its reference period."""
    return max(1, math.ceil(settings.monitor_reference_rows / settings.monitor_chunk_size))


def evaluate_triggers(
    settings: NodeSettings, factory: sessionmaker[Session]
) -> list[FiringRead]:
    """Evaluate the policy's triggers on monitoring's records; return the new firings.

    The ``retraining.evaluate`` job of the node's scheduler.
    """
    policy = policy_of(settings)
    with factory() as session:
        checks = service.evaluate(
            session=session, policy=policy, plant_id=settings.plant_id,
            metric_chunks=settings.retraining_metric_chunks,
            reference_chunks=reference_chunks(settings),
            known_failure_types=settings.retraining_known_failure_types,
        )
    fired = [c.firing for c in checks if c.firing is not None and c.new]
    for check in checks:
        if check.refusal is not None:
            log.info("trigger %s on %s held: %s", check.trigger, check.baseline, check.refusal)
    for firing in fired:
        log.warning(
            "retraining requested: %s on %s %s (%s)", firing.trigger, firing.baseline,
            firing.model_version, firing.summary,
        )
    return fired
