"""Score the rule-based fallbacks on a plant's test split (for comparison with the models)."""

from __future__ import annotations

from baselines.metrics import f1_score, phm08_score, precision_recall, rmse
from baselines.plants import PlantData
from baselines.recipes import Baseline
from baselines.rules.ai4i import evaluate_rules
from baselines.rules.cmapss import fit_health_index
from baselines.typing import NDArray


def rule_metrics(data: PlantData, y_test: NDArray) -> dict[str, float]:
    """Return the fallback's test metrics (RMSE / PHM08 for C-MAPSS, F1 for AI4I)."""
    if data.baseline is Baseline.CMAPSS:
        rule = fit_health_index(data.x_train, data.y_train)
        pred = rule.predict(data.x_test)
        return {"rmse": rmse(y_test, pred), "phm08_score": phm08_score(y_test, pred)}
    flagged = evaluate_rules(data.extra["test_frame"]).failure
    precision, recall = precision_recall(y_test, flagged)
    return {"f1": f1_score(y_test, flagged), "precision": precision, "recall": recall}


__all__ = ["rule_metrics"]
