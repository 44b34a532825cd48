"""Retraining shapes; the wire models are defined once in :mod:`federation.schemas.retraining`."""

from federation.schemas.retraining import (
    CandidateOutcome,
    RetrainingChain,
    RetrainingCondition,
    RetrainingDecision,
    RetrainingRequestCreate,
    RetrainingRequestPage,
    RetrainingRequestRead,
)

__all__ = [
    "CandidateOutcome",
    "RetrainingChain",
    "RetrainingCondition",
    "RetrainingDecision",
    "RetrainingRequestCreate",
    "RetrainingRequestPage",
    "RetrainingRequestRead",
]
