"""Governance shapes; the wire models are defined once in :mod:`federation.schemas.governance`."""

from federation.schemas.governance import (
    BreakGlassCreate,
    DecisionRead,
    LifecycleList,
    LifecycleRead,
    LifecycleState,
    PolicyDiff,
    PolicyPage,
    PolicyPublished,
    PolicyRead,
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionStatus,
    SignatureCreate,
    SignatureMeaning,
    SignatureRead,
)

__all__ = [
    "BreakGlassCreate",
    "DecisionRead",
    "LifecycleList",
    "LifecycleRead",
    "LifecycleState",
    "PolicyDiff",
    "PolicyPage",
    "PolicyPublished",
    "PolicyRead",
    "PromotionCreate",
    "PromotionPage",
    "PromotionRead",
    "PromotionStatus",
    "SignatureCreate",
    "SignatureMeaning",
    "SignatureRead",
]
