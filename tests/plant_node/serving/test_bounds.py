"""Bounded inputs at serving: quarantine excerpt + sha256, strict JSON types, cached side files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic_core import to_json

from baselines.features import ai4i
from federation.errors import IntegrityMismatch
from plant_node.serving import service as serving_service
from plant_node.serving.cache import ModelCache
from plant_node.serving.runtime import ModelRuntime
from tests.plant_node.serving.conftest import ai4i_model


def test_a_large_rejected_batch_keeps_an_excerpt_and_the_sha256(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    bad = [dict(ai4i_records[i % 20], torque_nm=-5.0, pad="p" * 200) for i in range(1000)]

    response = client.post("/v1/predict", json={"baseline": "ai4i", "records": bad})

    assert response.status_code == 422
    batch_id = response.json()["detail"].split(" as ")[-1].rstrip(".")
    with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
        q = serving_service.get_quarantined(session=session, batch_id=batch_id)
        assert q is not None
        payload, violations = q.payload, q.violations
    whole = b"[" + b",".join(to_json(r) for r in bad) + b"]"
    assert q.n_rows == 1000 and payload["n_records"] == 1000 and payload["truncated"] is True
    assert len(to_json(payload["records"])) <= 16_384 < len(whole) // 10
    assert payload["records"] == bad[: len(payload["records"])] and payload["records"]
    assert payload["bytes"] == len(whole)
    assert payload["sha256"] == hashlib.sha256(whole).hexdigest()
    assert len(violations) <= 200


def test_a_number_sent_as_a_string_is_a_contract_violation(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    as_string = dict(ai4i_records[0], torque_nm=str(ai4i_records[0]["torque_nm"]))
    as_bool = dict(ai4i_records[1], tool_wear_min=True)

    response = client.post("/v1/predict", json={"baseline": "ai4i", "records": [as_string]})
    boolean = client.post("/v1/predict", json={"baseline": "ai4i", "records": [as_bool]})

    assert response.status_code == 422 and response.json()["code"] == "contract_violation"
    assert ("type", "torque_nm") in {(e["rule"], e["column"]) for e in response.json()["errors"]}
    assert boolean.status_code == 422
    assert ("type", "tool_wear_min") in {(e["rule"], e["column"]) for e in boolean.json()["errors"]}


@pytest.mark.parametrize("name", ["metadata.json", "recipe.json"])
def test_a_cached_version_whose_manifest_or_recipe_changed_is_not_loaded(
    tmp_path: Path, ai4i_state: ai4i.Ai4iFeatureState, name: str
) -> None:
    src = ai4i_model(tmp_path / "src", ai4i_state, "1")
    (src / "recipe.json").write_text(json.dumps({"monitoring": {"chunk_size": 500}}))
    cache = ModelCache(tmp_path / "cache")
    installed = cache.install(src, "1", "ai4i")
    runtime = ModelRuntime("ai4i", featurizer_factory=lambda m: lambda items: items)
    runtime.load(installed)  # untouched: loads

    path = installed / name
    data = json.loads(path.read_text())
    data["tampered"] = True  # e.g. a threshold or a feature state edited on disk
    path.write_text(json.dumps(data))

    with pytest.raises(IntegrityMismatch, match=name):
        runtime.load(installed)


def test_the_monitoring_job_ignores_a_cached_recipe_that_changed(
    tmp_path: Path, ai4i_state: ai4i.Ai4iFeatureState
) -> None:
    from plant_node.monitoring.flows import _recipe_intact

    src = ai4i_model(tmp_path / "src", ai4i_state, "1")
    (src / "recipe.json").write_text(json.dumps({"monitoring": {"chunk_size": 500}}))
    installed = ModelCache(tmp_path / "cache").install(src, "1", "ai4i")
    intact = _recipe_intact(installed / "recipe.json")
    (installed / "recipe.json").write_text(json.dumps({"monitoring": {"chunk_size": 5}}))

    assert intact is True
    assert _recipe_intact(installed / "recipe.json") is False
