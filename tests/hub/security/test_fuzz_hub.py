"""A short schemathesis profile of the hub's OpenAPI (the authz sweep is test_matrix.py).

The long run (``make bench BENCH_ARGS=reliability_hub``: 10,000 cases) writes
``benchmarks/results/reliability.json``; this profile keeps the same checks in the suite.
"""

from __future__ import annotations

import os

from benchmarks.bench_reliability_hub import fuzz_hub, seeded_hub

#: The CI profile (>= 500 cases); MILLWRIGHT_TEST_FUZZ_CASES overrides it locally.
CASES = int(os.environ.get("MILLWRIGHT_TEST_FUZZ_CASES") or 500)


def test_schemathesis_finds_no_server_error_and_no_schema_violation() -> None:
    with seeded_hub() as hub:
        stats = fuzz_hub(hub, cases=CASES, seed=18)
    assert stats.cases >= CASES
    assert (stats.server_errors, stats.schema_violations) == (0, 0), stats.examples
    assert stats.statuses[422] > 0  # negative data reached validation, not only happy paths
