"""Federation evaluation on C-MAPSS FD001-FD004 (see ``federation.evaluation``)."""

from __future__ import annotations

from pathlib import Path

from federation.evaluation import QUICK, REDUCED, RESULTS_PATH, evaluate_federation, markdown_table


def run(quick: bool) -> dict:
    out = RESULTS_PATH if not quick else Path("benchmarks/results/federation.quick.json.tmp")
    # The published budget (minutes); the full one takes hours: run it through the CLI.
    doc = evaluate_federation(QUICK if quick else REDUCED, out)
    print(markdown_table(doc))
    print("targets:", doc["targets"])
    return doc
