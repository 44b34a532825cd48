"""OpenVINO runtime: sha256 before loading, hot swap under load, the fail-safe chain, the cache."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from federation.errors import ErrorCode, IntegrityMismatch, Unavailable
from plant_node.serving.cache import ModelCache
from plant_node.serving.fallback import ConstantRule
from plant_node.serving.runtime import ModelManifest, ModelRuntime, RuntimeEvent
from plant_node.serving.sync import Assignment, start_from_cache, sync_champion
from tests.plant_node.serving.irs import build_logistic_ir, logistic, rows_featurizer

NAMES = ("a", "b", "c")
W1, W2 = [0.5, -1.0, 2.0], [-0.3, 0.7, 0.1]


def _factory(manifest: ModelManifest) -> Any:
    return rows_featurizer(manifest.metadata.get("input_names", NAMES))


def _runtime(events: list[RuntimeEvent] | None = None, fallback: Any = None) -> ModelRuntime:
    sink = events.append if events is not None else None
    return ModelRuntime("toy", featurizer_factory=_factory, fallback=fallback, on_event=sink)


def _rows(n: int, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [dict(zip(NAMES, map(float, r), strict=True)) for r in rng.normal(size=(n, 3))]


def _x(rows: list[dict[str, float]]) -> np.ndarray:
    return np.asarray([[r[n] for n in NAMES] for r in rows])


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    return build_logistic_ir(tmp_path / "v1", W1, 0.1, version="1", extra={"input_names": NAMES})


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    return build_logistic_ir(tmp_path / "v2", W2, -0.2, version="2", extra={"input_names": NAMES})


def test_predict_matches_the_model(v1: Path) -> None:
    runtime = _runtime()
    runtime.load_and_activate(v1)
    rows = _rows(16)

    scored = runtime.predict(rows)

    assert scored.served_by == "current" and not scored.fallback
    assert scored.version == "1"
    np.testing.assert_allclose(scored.scores, logistic(_x(rows), W1, 0.1), rtol=1e-5)


def test_tampered_weights_are_refused_before_loading(v1: Path, v2: Path) -> None:
    events: list[RuntimeEvent] = []
    runtime = _runtime(events)
    runtime.load_and_activate(v1)
    blob = bytearray((v2 / "model.bin").read_bytes())
    blob[0] ^= 0xFF
    (v2 / "model.bin").write_bytes(bytes(blob))

    with pytest.raises(IntegrityMismatch) as exc:
        runtime.load_and_activate(v2)

    assert exc.value.code == ErrorCode.INTEGRITY_MISMATCH
    assert runtime.current is not None and runtime.current.version == "1"
    assert [e.kind for e in events] == ["swapped", "load_failed"]


def test_hot_swap_never_fails_in_flight_requests(v1: Path, v2: Path) -> None:
    runtime = _runtime()
    loaded = [runtime.load(v1), runtime.load(v2)]
    runtime.activate(loaded[0])
    rows = _rows(8)
    expected = {"1": logistic(_x(rows), W1, 0.1), "2": logistic(_x(rows), W2, -0.2)}
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                scored = runtime.predict(rows)
                np.testing.assert_allclose(scored.scores, expected[scored.version], rtol=1e-5)
                assert scored.served_by == "current"
                seen.add(scored.version)
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        runtime.activate(loaded[i % 2])
        stop.wait(0.002)
    stop.set()
    for t in threads:
        t.join()

    assert errors == []
    assert seen == {"1", "2"}


def test_chain_current_then_previous_then_rule(v1: Path, tmp_path: Path) -> None:
    events: list[RuntimeEvent] = []
    runtime = _runtime(events, fallback=ConstantRule(0.25, name="assume-ok"))
    # v3 expects 4 inputs but the featurizer gives 3: it compiles, then fails at inference.
    broken = build_logistic_ir(
        tmp_path / "v3", [1, 1, 1, 1], version="3", extra={"input_names": NAMES}
    )
    runtime.load_and_activate(v1)
    runtime.load_and_activate(broken)
    rows = _rows(4)

    by_previous = runtime.predict(rows)
    runtime.set_previous(None)
    by_rule = runtime.predict(rows)

    assert (by_previous.served_by, by_previous.version, by_previous.fallback) == (
        "previous",
        "1",
        True,
    )
    np.testing.assert_allclose(by_previous.scores, logistic(_x(rows), W1, 0.1), rtol=1e-5)
    assert by_rule.served_by == "fallback" and by_rule.name == "assume-ok"
    assert by_rule.scores.tolist() == [0.25] * 4
    kinds = [e.kind for e in events]
    assert kinds.count("inference_failed") == 2 and kinds[-1] == "fallback_rule"


def test_no_model_and_no_rule_is_unavailable_not_a_crash() -> None:
    with pytest.raises(Unavailable) as exc:
        _runtime().predict(_rows(1))

    assert exc.value.status == 503


class _Hub:
    def __init__(self, src: dict[str, Path], *, down: bool = False) -> None:
        self.src, self.down = src, down

    def list_assignments(self) -> list[Assignment]:
        if self.down:
            raise ConnectionError("hub unreachable")
        return [Assignment("toy", "champion", "toy-logistic", v) for v in self.src]

    def download(self, assignment: Assignment, dest_dir: Path) -> None:
        import shutil

        shutil.copytree(self.src[assignment.version], dest_dir, dirs_exist_ok=True)


def test_sync_installs_from_hub_then_serves_from_cache_when_hub_is_down(
    v1: Path, v2: Path, tmp_path: Path
) -> None:
    cache = ModelCache(tmp_path / "cache", keep=2)
    first = sync_champion(_runtime(), cache, _Hub({"1": v1}))
    second = sync_champion(_runtime(), cache, _Hub({"2": v2}))

    runtime = _runtime()
    source, versions = sync_champion(runtime, cache, _Hub({}, down=True))

    assert first == ("hub", ["1"])
    assert second == ("hub", ["2", "1"])
    assert (source, versions) == ("cache", ["2", "1"])
    assert runtime.current is not None and runtime.current.version == "2"
    assert runtime.previous is not None and runtime.previous.version == "1"


def test_cache_keeps_last_n_and_skips_damaged_entries(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", keep=2)
    for v in ("1", "2", "3"):
        cache.install(build_logistic_ir(tmp_path / f"src{v}", W1, version=v))

    removed = cache.prune("toy")
    newest = cache.versions("toy")[0]
    (newest / "model.bin").write_bytes(b"garbage")
    runtime = _runtime()
    loaded = start_from_cache(runtime, cache)

    assert [p.name for p in removed] == ["1"]
    assert [p.name for p in cache.versions("toy")] == ["3", "2"]
    assert loaded == ["2"]


def test_recorded_champion_wins_over_a_newer_cached_challenger(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", keep=3)
    for v in ("1", "2"):
        cache.install(build_logistic_ir(tmp_path / f"src{v}", W1, version=v))
    cache.set_champion("toy", "1")

    loaded = start_from_cache(_runtime(), cache)

    assert loaded == ["1", "2"]


def test_hub_model_source_unpacks_artifacts_into_the_cache(tmp_path: Path) -> None:
    import io
    import tarfile
    from types import SimpleNamespace

    from plant_node.serving.hub_source import HubModelSource

    src = build_logistic_ir(tmp_path / "export", W1, version="7", baseline="toy")
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w:gz") as tar:
        tar.add(src, arcname="export")

    class FakeHub:
        def get_assignments(self, plant_id: str) -> object:
            item = SimpleNamespace(model="ai4i", alias="champion", version="7", artifact_digest="d")
            return SimpleNamespace(items=[item])

        def download_artifact(self, digest: str, dest: Path) -> int:
            dest.write_bytes(blob.getvalue())
            return len(blob.getvalue())

    source = HubModelSource(FakeHub(), "plant-1")
    cache = ModelCache(tmp_path / "cache")
    runtime = ModelRuntime("ai4i", featurizer_factory=_factory)

    origin, versions = sync_champion(runtime, cache, source)

    assert (origin, versions) == ("hub", ["7"])
    assert cache.champion("ai4i") == "7"


def test_cached_version_is_named_by_the_registry(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache")
    path = cache.install(build_logistic_ir(tmp_path / "src", W1, version="export-label"), "2026.1")

    assert _runtime().load(path).version == "2026.1"


def _fp32_and_int8_export(tmp_path: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    """An export directory in the ``baselines.export`` layout: the same toy IR as FP32 and INT8."""
    import json
    import shutil

    d = build_logistic_ir(tmp_path / "exp", W1, version="1")
    for ext in ("xml", "bin"):
        shutil.copy(d / f"model.{ext}", d / f"model_int8.{ext}")
        (d / f"model.{ext}").rename(d / f"model_fp32.{ext}")
    digests = json.loads((d / "metadata.json").read_text())["sha256"]
    entry = {"xml_sha256": digests["model.xml"], "bin_sha256": digests["model.bin"]}
    files = {
        p: {"xml": f"model_{p}.xml", "bin": f"model_{p}.bin", **entry} for p in ("fp32", "int8")
    }
    return d, files


def test_export_layout_prefers_int8_and_falls_back_to_fp32(tmp_path: Path) -> None:
    import json

    from plant_node.serving.runtime import read_manifest

    d, files = _fp32_and_int8_export(tmp_path)
    (d / "metadata.json").write_text(
        json.dumps({"format_version": 1, "version": "1", "baseline": "toy", "files": files})
    )

    int8 = read_manifest(d, "int8")
    fp32 = read_manifest(d, "fp32")
    del files["int8"]
    (d / "metadata.json").write_text(
        json.dumps({"format_version": 1, "version": "1", "files": files})
    )
    only_fp32 = read_manifest(d, "int8")

    assert (int8.precision, int8.xml) == ("int8", "model_int8.xml")
    assert (fp32.precision, fp32.xml) == ("fp32", "model_fp32.xml")
    assert only_fp32.precision == "fp32"
    assert _runtime().load(d).manifest.precision == "fp32"


def test_an_int8_ir_that_failed_its_parity_check_is_not_served(tmp_path: Path) -> None:
    import json

    from plant_node.serving.runtime import read_manifest

    d, files = _fp32_and_int8_export(tmp_path)

    def manifest(parity: dict[str, object]) -> str:
        doc = {"format_version": 1, "version": "1", "files": files, "parity": parity}
        (d / "metadata.json").write_text(json.dumps(doc))
        return read_manifest(d, "int8").precision

    int8_ok = {"degradation": 0.01, "tolerance": 0.02, "passed": True}
    int8_bad = {"degradation": 0.025, "tolerance": 0.02, "passed": False}
    fp32_ok = {"passed": True}
    assert manifest({"fp32": fp32_ok, "int8": int8_ok}) == "int8"
    assert manifest({"fp32": fp32_ok, "int8": int8_bad}) == "fp32"
    assert _runtime().load(d).manifest.precision == "fp32"
    # Nothing else to serve: the failed IR is still better than no model.
    assert manifest({"fp32": {"passed": False}, "int8": int8_bad}) == "int8"


def test_a_version_from_the_hub_serves_under_the_registry_model_name(
    v1: Path, tmp_path: Path
) -> None:
    # The export calls itself "toy-logistic"; the hub's registry names the model "toy-rul-cnn".
    # Reports and retraining requests name the served model, and the hub joins them to its
    # registry by that name (the demo's fleet page showed each plant twice before).
    class Renamed(_Hub):
        def list_assignments(self) -> list[Assignment]:
            return [Assignment("toy", "champion", "toy-rul-cnn", v) for v in self.src]

    cache = ModelCache(tmp_path / "cache")
    runtime = _runtime()
    sync_champion(runtime, cache, Renamed({"1": v1}))
    assert runtime.current is not None and runtime.current.manifest.name == "toy-rul-cnn"

    restarted = _runtime()  # the cache keeps the name (integrity-checked with the manifest)
    start_from_cache(restarted, cache)
    assert restarted.current is not None and restarted.current.manifest.name == "toy-rul-cnn"

    local = ModelCache(tmp_path / "local").install(v1, "1")  # a local install keeps the export's
    assert _runtime().load(local).manifest.name == "toy-logistic"
