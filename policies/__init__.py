"""Governance policy documents and their evaluator (imports nothing of Millwright's).

Documents are YAML validated by pydantic (:func:`parse_policy`), referenced as ``id@version``;
rules are typed (:class:`Gate`: evidence path, comparator, threshold, scope); a central
document bounds what a plant may override (:func:`apply_overrides`); :func:`evaluate` is pure
and explains itself (:class:`Decision`).
"""

from policies.base import OverrideBound, PolicyKind
from policies.canonical import canonical_json, document_sha256, evidence_sha256, sha256_of
from policies.cost import CostPolicy
from policies.evaluation import Decision, RuleResult, Verdict, check_gate, evaluate
from policies.evidence import KNOWN_EVIDENCE, KNOWN_METRICS, Evidence, is_known_metric
from policies.legacy import upgrade_legacy_gates
from policies.library import standard_document, standard_documents
from policies.overrides import OverrideRefused, apply_overrides
from policies.parsing import PolicyDocument, PolicyValidationError, parse_policy, validate_policy
from policies.promotion import ApprovalRule, PromotionGatePolicy
from policies.refs import format_ref, parse_ref
from policies.retention import RecordClass, RetentionPolicy
from policies.retraining import RetrainingPolicy
from policies.rollout import FailureHandling, RolloutPolicy, ShiftWindow, Wave
from policies.rules import Comparator, Gate, Scope, ScopeLevel
from policies.sharing import DataSharingPolicy

__all__ = [
    "KNOWN_EVIDENCE",
    "KNOWN_METRICS",
    "ApprovalRule",
    "Comparator",
    "CostPolicy",
    "DataSharingPolicy",
    "Decision",
    "Evidence",
    "FailureHandling",
    "Gate",
    "OverrideBound",
    "OverrideRefused",
    "PolicyDocument",
    "PolicyKind",
    "PolicyValidationError",
    "PromotionGatePolicy",
    "RecordClass",
    "RetentionPolicy",
    "RetrainingPolicy",
    "RolloutPolicy",
    "RuleResult",
    "Scope",
    "ScopeLevel",
    "ShiftWindow",
    "Verdict",
    "Wave",
    "apply_overrides",
    "canonical_json",
    "check_gate",
    "document_sha256",
    "evaluate",
    "evidence_sha256",
    "format_ref",
    "is_known_metric",
    "parse_policy",
    "parse_ref",
    "sha256_of",
    "standard_document",
    "standard_documents",
    "upgrade_legacy_gates",
    "validate_policy",
]
