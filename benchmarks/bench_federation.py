"""Federation evaluation on C-MAPSS FD001-FD004 (see ``federation.evaluation``)."""

from __future__ import annotations

from pathlib import Path

from federation.evaluation import FULL, QUICK, RESULTS_PATH, evaluate_federation, markdown_table


def run(quick: bool) -> dict:
    out = RESULTS_PATH if not quick else Path("benchmarks/results/federation.quick.json.tmp")
    doc = evaluate_federation(QUICK if quick else FULL, out)
    print(markdown_table(doc))
    print("targets:", doc["targets"])
    return doc
