"""Schemathesis against the node's own OpenAPI document, with a line key (short profile).

Every operation gets generated requests; a 5xx is a server error, and a response that breaks
the document (undocumented status, wrong content type, body off its schema, headers) is a
schema violation. "Schema-valid request rejected" is not counted: a record can be valid JSON
for ``dict`` and still break the data contract (422 by design). The key is a ``line`` key,
which cannot revoke itself (the node has no key routes: keys are managed from its CLI).
The reliability benchmark runs 10,000 cases (``fuzz.node``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks
from schemathesis.core.failures import Failure, FailureGroup

from plant_node.config import NodeSettings
from plant_node.db import upgrade_database
from plant_node.main import create_app
from tests.plant_node.keys import BOOTSTRAP, LINE_KEY

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def fuzz_node(cases: int, seed: int = 18) -> dict[str, Any]:
    """Run about ``cases`` generated requests spread over the node's operations."""
    headers = {"Authorization": f"Bearer {LINE_KEY}"}
    out: dict[str, Any] = {
        "cases": 0, "server_errors": 0, "schema_violations": 0, "problems": [], "seconds": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        node = NodeSettings(
            plant_id="fuzz",
            data_dir=Path(tmp),
            outbox_enabled=False,
            scheduler_enabled=False,
            bootstrap_keys=BOOTSTRAP,
            hub_url="http://127.0.0.1:9",  # nothing listens: reloads serve the cache
            explain="off",
            sqlite_synchronous="NORMAL",  # fuzzing tests answers, not durability: no fsync
        )
        upgrade_database(node.db_url)
        app = create_app(node)
        with TestClient(app):
            schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)
            operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
            for index, operation in enumerate(operations):
                # An operation with few distinct inputs (no parameters) ends early; what it
                # leaves of the budget goes to the ones after it.
                per_op = max(1, -(-(cases - out["cases"]) // (len(operations) - index)))

                @settings(
                    max_examples=per_op,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy())
                def one(case: Any) -> None:
                    out["cases"] += 1
                    response = case.call(headers=headers)
                    if response.status_code >= 500:
                        out["server_errors"] += 1
                    try:
                        case.validate_response(response, checks=CHECKS, headers=headers)
                    except (FailureGroup, Failure) as exc:
                        if response.status_code < 500:
                            out["schema_violations"] += 1
                        if len(out["problems"]) < 20:
                            out["problems"].append(
                                f"{case.operation.label} -> {response.status_code}: "
                                f"{str(exc)[:300]}"
                            )

                started = time.perf_counter()
                one()
                out["seconds"][operation.label] = round(time.perf_counter() - started, 2)
    return out


def test_fuzz_the_node_api_short_profile() -> None:
    result = fuzz_node(520)

    assert result["cases"] >= 500
    assert result["server_errors"] == 0, result["problems"]
    assert result["schema_violations"] == 0, result["problems"]
