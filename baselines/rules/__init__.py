"""Rule-based fallbacks per baseline (numpy only): serving's last resort when no model loads."""

from __future__ import annotations

from baselines.rules.ai4i import RuleResult, evaluate_rules, predict_rows
from baselines.rules.cmapss import HealthIndexRule, fit_health_index

__all__ = ["HealthIndexRule", "RuleResult", "evaluate_rules", "fit_health_index", "predict_rows"]
