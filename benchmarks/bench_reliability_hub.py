"""Hub reliability: an authorization sweep and schemathesis fuzzing of the hub's OpenAPI.

* ``authz.hub``: every route of the app x every role (and no token), with the decision
  table of ``tests/hub/auth/test_matrix.py``. A leak is a 2xx for a caller the table denies
  (or a plant token reaching another plant). Target ``leaks == 0``.
* ``fuzz.hub``: schemathesis generates requests for every operation of ``/openapi.json``
  (positive and negative data). An admin token that the fuzzer may not revoke sends them
  in-process (ASGI), against a seeded SQLite hub. Each answer is checked: a 5xx is a
  ``server_errors``, and a body that breaks the documented response schema is a
  ``schema_violations``. Targets ``cases >= 10,000``, ``server_errors == 0`` and
  ``schema_violations == 0``.

The keys are merged into ``benchmarks/results/reliability.json``, which the node side
(``bench_reliability.py``) also writes, as ``{"authz": {"hub": ...}, "fuzz": {"hub": ...}}``.
``--quick`` runs 1,000 fuzz cases and only prints; ``MILLWRIGHT_BENCH_FUZZ_CASES`` overrides
the count (the JSON records the cases actually run).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "reliability.json"
FUZZ_CASES = 10_000
#: Override of the case count (the 10,000-case run takes minutes on an idle machine).
CASES_ENV = "MILLWRIGHT_BENCH_FUZZ_CASES"


@dataclass
class SeededHub:
    """A hub app on a migrated temporary SQLite database, with data and one token per role."""

    client: TestClient
    app: Any
    tokens: Any
    admin_token_id: int


@contextmanager
def seeded_hub(workdir: Path | None = None) -> Iterator[SeededHub]:
    """Yield a seeded in-process hub (the matrix's data: plants, a model, an artifact)."""
    from federation.schemas.auth import Role, TokenCreate
    from hub import migrations
    from hub.auth import service as auth_service
    from hub.config import HubSettings
    from hub.main import create_app
    from tests.hub import factories
    from tests.hub.auth.test_matrix import BLOB, DIGEST
    from tests.hub.fixtures import Tokens

    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="mw-reliability-")) if own else workdir
    assert root is not None
    try:
        settings = HubSettings(
            database_url=f"sqlite:///{root / 'hub.db'}",
            artifact_root=root / "artifacts",
            max_upload_bytes=64 * 1024,
            log_json=True,
            access_log=False,
            log_level="CRITICAL",
        )
        migrations.upgrade(settings)
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            factory = app.state.session_factory
            with factory() as session:
                factories.plant(session, "fd001")
                factories.plant(session, "fd002")
                factories.model(session)
                factories.recipe(session)
                made = {}
                for role in Role:
                    created = auth_service.create_token(
                        session=session,
                        token_in=TokenCreate(
                            role=role, plant_id="fd001" if role == Role.PLANT else None
                        ),
                        actor="bench",
                    )
                    made[role.value] = created
            tokens = Tokens(**{k: v.token for k, v in made.items()})
            h = {"Authorization": f"Bearer {tokens.admin}"}
            client.put(f"/api/v1/artifacts/sha256/{DIGEST}", content=BLOB, headers=h)
            with factory() as session:
                factories.version(session, plant_id="fd001", artifact_digest=DIGEST)
            yield SeededHub(client, app, tokens, made["admin"].id)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def authz_sweep(hub: SeededHub) -> dict[str, Any]:
    """Call every route as every role and anonymously; count 2xx answers the table denies."""
    from federation.schemas.auth import Role
    from tests.hub.auth.test_matrix import EXPECTED, PUBLIC, _call, _url, route_table

    routes = route_table(hub.app)
    calls = leaks = 0
    leaked: list[str] = []
    for method, path in sorted(routes):
        allowed = EXPECTED.get((method, path))
        if allowed is None or allowed == PUBLIC:
            continue
        assert isinstance(allowed, set)
        callers: list[tuple[str, dict[str, str], str]] = [("anonymous", {}, _url(path))]
        for role in Role:
            token = hub.tokens.for_role(role.value)
            callers.append((role.value, {"Authorization": f"Bearer {token}"}, _url(path)))
        if Role.PLANT in allowed and "{plant_id}" in path:
            plant = {"Authorization": f"Bearer {hub.tokens.plant}"}
            callers.append(("plant->other plant", plant, _url(path, plant_id="fd002")))
        for who, headers, url in callers:
            status = _call(hub.client, method, url, headers)
            calls += 1
            permitted = who in {r.value for r in allowed}
            if 200 <= status < 300 and not permitted:
                leaks += 1
                leaked.append(f"{method} {path} as {who}: {status}")
    covered = len([r for r in routes if r in EXPECTED])
    return {
        "routes": len(routes),
        "routes_covered": covered,
        "calls": calls,
        "leaks": leaks,
        "leaked": leaked[:20],
    }


@dataclass
class FuzzStats:
    """What one fuzzing pass saw."""

    cases: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (status counts as strings, at most 20 failing examples)."""
        return {
            "cases": self.cases,
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "examples": self.examples[:20],
        }


def fuzz_hub(hub: SeededHub, *, cases: int, seed: int = 0) -> FuzzStats:
    """Run about ``cases`` schemathesis cases spread evenly over every operation."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from schemathesis.checks import not_a_server_error
    from schemathesis.python import asgi
    from schemathesis.specs.openapi.checks import response_schema_conformance

    # The spec is not public: it is read with the fuzzer's own token.
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", hub.app, headers={"Authorization": f"Bearer {hub.tokens.admin}"}
    )
    session = asgi.get_client(hub.app)  # one in-process client for every case
    # an operation the loader cannot build raises here, so it is never skipped silently
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    per_operation = max(1, cases // len(operations))
    stats = FuzzStats()
    headers = {"Authorization": f"Bearer {hub.tokens.admin}"}
    own_id = hub.admin_token_id

    # One strategy per operation, built once: building it (regex-driven strings, lazy
    # validation) costs far more than drawing a case, and rebuilding it on every round was
    # what made the hub's fuzzing slow (about 0.2 s per case, against about 0.02 s now).
    strategies = {id(operation): operation.as_strategy() for operation in operations}

    def fuzz_operation(operation: Any, examples: int, round_seed: int) -> None:
        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.seed(round_seed)
        @given(case=strategies[id(operation)])
        def one(case: Any) -> None:
            # The fuzzer's own token is not revocable by the fuzzer (it would 401 the rest).
            if case.method == "DELETE" and (case.path_parameters or {}).get("token_id") == own_id:
                return
            label = f"{case.method} {case.formatted_path}"
            try:
                response = case.call(session=session, headers=headers)
            except Exception as exc:  # noqa: BLE001 - the in-process client re-raises a 500
                stats.cases += 1
                stats.server_errors += 1
                stats.statuses[500] += 1
                stats.examples.append(f"5xx {label}: {type(exc).__name__}: {str(exc)[:200]}")
                return
            stats.cases += 1
            stats.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:  # noqa: BLE001 - any check failure is counted
                stats.server_errors += 1
                stats.examples.append(f"5xx {label}: {str(exc)[:200]}")
                return
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:  # noqa: BLE001
                stats.schema_violations += 1
                stats.examples.append(f"schema {label}: {str(exc)[:200]}")

        one()

    # Rounds with fresh seeds until the budget is spent: operations with a small input
    # space stop early, so later rounds make up the difference.
    for round_number in range(50):
        if stats.cases >= cases:
            break
        remaining = cases - stats.cases
        examples = max(1, min(per_operation, remaining // len(operations) + 1))
        for operation in operations:
            fuzz_operation(operation, examples, seed + round_number)
    return stats


def merge_results(update: dict[str, Any], path: Path = RESULTS) -> dict[str, Any]:
    """Merge nested keys into the reliability JSON (the node side writes the same file)."""
    current: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def merge(into: dict[str, Any], new: dict[str, Any]) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(current, update)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return current


def run(quick: bool = False) -> dict[str, Any]:
    """Run the sweep and the fuzzer; print a table; write the JSON unless ``quick``."""
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    with seeded_hub() as hub:
        authz = authz_sweep(hub)
    with seeded_hub() as hub:
        cases = int(os.environ.get(CASES_ENV) or (1_000 if quick else FUZZ_CASES))
        fuzz = fuzz_hub(hub, cases=cases).as_dict()
    fuzz["seconds"] = round(time.perf_counter() - started, 1)
    fuzz["load_average"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    result = {"authz": {"hub": authz}, "fuzz": {"hub": fuzz}}
    print(f"{'figure':32} {'value':>10}  target")
    print(f"{'authz.hub.routes_covered':32} {authz['routes_covered']:>10}  {authz['routes']}")
    print(f"{'authz.hub.calls':32} {authz['calls']:>10}")
    print(f"{'authz.hub.leaks':32} {authz['leaks']:>10}  0")
    print(f"{'fuzz.hub.cases':32} {fuzz['cases']:>10}  >= {FUZZ_CASES}")
    print(f"{'fuzz.hub.server_errors':32} {fuzz['server_errors']:>10}  0")
    print(f"{'fuzz.hub.schema_violations':32} {fuzz['schema_violations']:>10}  0")
    for line in [*authz["leaked"], *fuzz["examples"]]:
        print("  ", line)
    if not quick:
        merge_results(result)
    return result
