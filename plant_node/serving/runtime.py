"""Torch-free OpenVINO runtime: verified loading, CPU compilation, hot swap, fail-safe chain.

Each baseline served by the node has one :class:`ModelRuntime`. It holds the current and the
previous compiled version in one tuple that is replaced in a single assignment, so a request
that already read the tuple finishes on the version it started with while new requests see
the new one: nothing in flight fails during a swap. When a version cannot answer, the chain
moves to the previous version and then to the baseline's rule-based fallback, and every such
step is reported through ``on_event`` (the service turns them into alerts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from federation.errors import IntegrityMismatch, InvalidInput, Unavailable
from plant_node.serving.fallback import FallbackRule

log = logging.getLogger("millwright.node.runtime")

Rows = Sequence[Mapping[str, Any]]
FloatArray = npt.NDArray[np.float32]
MANIFEST_NAMES: tuple[str, ...] = ("metadata.json", "manifest.json")
# Written by the model cache into each installed version; its folder name is the registry
# version, which wins over whatever the export's metadata calls itself.
CACHE_MARKER = ".installed"
# Also written by the cache: the sha256 of the manifest and the recipe, taken when the
# version was verified and installed; a cached version is loaded only while they still match.
INTEGRITY_FILE = ".integrity.json"
# Written by the cache for a version installed from the hub: the registry's model name
# (``cmapss-rul-cnn``), which wins over the export's own (``cmapss``), so the node's
# reports and retraining requests name the model as the hub's registry does.
REGISTRY_FILE = "registry.json"
SIDE_FILES: tuple[str, ...] = (*MANIFEST_NAMES, "recipe.json", REGISTRY_FILE)
CHUNK = 1 << 20


class Featurizer(Protocol):
    """Turns raw records into the model's input array (``baselines.features`` in production)."""

    def __call__(self, items: Sequence[Any], /) -> npt.NDArray[Any]:
        """Return the model input batch for ``items`` (one row per item)."""
        ...


FeaturizerFactory = Callable[["ModelManifest"], Featurizer]


@dataclass(frozen=True)
class ModelManifest:
    """What an exported model directory declares about itself.

    Attributes
    ----------
    name, version
        Registry name and version of the model.
    baseline
        Which baseline it serves (``ai4i``, ``cmapss``).
    xml, weights
        File names of the OpenVINO IR inside the directory.
    sha256
        Expected digest of every file that is loaded, by file name.
    task
        ``classification`` (output is a failure probability) or ``regression``.
    precision
        Which IR of the export is loaded (``int8`` or ``fp32``).
    metadata
        The whole manifest document (feature state, thresholds, precision, ...).
    """

    name: str
    version: str
    baseline: str
    xml: str
    weights: str
    sha256: dict[str, str]
    task: str = "classification"
    precision: str = "fp32"
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, precision: str = "int8", default_version: str = ""
    ) -> ModelManifest:
        """Build from a manifest document.

        Two layouts are read: the ``baselines.export`` format (``format_version`` 1, with
        ``files`` keyed by precision, each with ``xml``/``bin`` and their ``*_sha256``), of
        which ``precision`` is preferred and FP32 is the fallback (an IR whose export parity
        check failed is passed over while another is available: it broke the recipe's
        accuracy tolerance); and a flat layout with ``xml``, ``bin`` and a ``sha256`` map by
        file name.

        Parameters
        ----------
        data
            The parsed manifest.
        precision
            Preferred precision when the export holds several.
        default_version
            Version to use when the document names none (the cache folder name).

        Returns
        -------
        ModelManifest
            The manifest.
        """
        files = data.get("files")
        state = data.get("feature_state") or {}
        kind = str(state.get("kind", "")) if isinstance(state, Mapping) else ""
        baseline = str(data.get("baseline") or kind.removesuffix("-features") or data.get("name"))
        if isinstance(files, Mapping) and any(isinstance(v, Mapping) for v in files.values()):
            chosen = _pick_precision(files, data.get("parity"), precision)
            entry = files[chosen]
            xml, weights = str(entry["xml"]), str(entry["bin"])
            digests = {xml: str(entry["xml_sha256"]), weights: str(entry["bin_sha256"])}
        else:
            chosen = str(data.get("precision", "fp32"))
            xml = str(data.get("xml") or "model.xml")
            weights = str(data.get("bin") or data.get("weights") or "model.bin")
            digests = {str(k): str(v) for k, v in dict(data.get("sha256") or {}).items()}
        version = data.get("version") or data.get("model_version") or default_version
        if not version:
            raise KeyError("version")
        default_task = "regression" if baseline == "cmapss" else "classification"
        return cls(
            name=str(data.get("name") or data.get("model_name") or baseline),
            version=str(version),
            baseline=baseline,
            xml=xml,
            weights=weights,
            sha256=digests,
            task=str(data.get("task", default_task)),
            precision=chosen,
            metadata=dict(data),
        )


def _pick_precision(files: Mapping[str, Any], parity: Any, preferred: str) -> str:
    order = [p for p in dict.fromkeys((preferred, "fp32", "int8", *files)) if p in files]
    checks = parity if isinstance(parity, Mapping) else {}
    failed = {p for p, e in checks.items() if isinstance(e, Mapping) and e.get("passed") is False}
    chosen = next((p for p in order if p not in failed), order[0])
    if chosen != preferred and preferred in failed:
        log.warning(
            "serving %s instead of %s: the %s IR failed its export parity check (%s)",
            chosen, preferred, preferred, checks[preferred],
        )  # fmt: skip
    return chosen


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(model_dir: Path, precision: str = "int8") -> ModelManifest:
    """Read the manifest of an exported model directory (see :meth:`ModelManifest.from_dict`).

    Raises
    ------
    InvalidInput
        If the directory holds no readable manifest.
    """
    for name in MANIFEST_NAMES:
        path = model_dir / name
        if path.is_file():
            try:
                manifest = ModelManifest.from_dict(
                    json.loads(path.read_text()),
                    precision=precision,
                    default_version=model_dir.name,
                )
                registry = model_dir / REGISTRY_FILE
                if registry.is_file():
                    name = str(json.loads(registry.read_text())["model"])
                    manifest = dataclasses.replace(manifest, name=name)
                return manifest
            except (KeyError, ValueError, TypeError) as exc:
                raise InvalidInput(f"Model manifest {path} is malformed: {exc}") from exc
    raise InvalidInput(f"No model manifest ({' or '.join(MANIFEST_NAMES)}) in {model_dir}.")


def verify_model_dir(model_dir: Path, manifest: ModelManifest) -> None:
    """Check every IR file against its declared sha256 before anything reads it.

    Raises
    ------
    IntegrityMismatch
        If a file is missing, undeclared, or its bytes do not match.
    """
    for fname in (manifest.xml, manifest.weights):
        expected = manifest.sha256.get(fname)
        path = model_dir / fname
        if expected is None:
            raise IntegrityMismatch(
                f"Manifest of {manifest.version} declares no sha256 for {fname}."
            )
        if not path.is_file():
            raise IntegrityMismatch(f"{fname} of model {manifest.version} is missing.")
        actual = sha256_file(path)
        if actual != expected.lower():
            raise IntegrityMismatch(
                f"{fname} of model {manifest.name} {manifest.version} does not match its sha256.",
                diagnostic=f"expected {expected}, got {actual}",
            )


def record_side_files(model_dir: Path) -> None:
    """Write the sha256 of the manifest and recipe files the directory holds (cache install)."""
    digests = {n: sha256_file(model_dir / n) for n in SIDE_FILES if (model_dir / n).is_file()}
    (model_dir / INTEGRITY_FILE).write_text(json.dumps(digests, sort_keys=True))


def verify_side_files(model_dir: Path) -> None:
    """Check a cached version's manifest and recipe against the digests taken at install.

    Raises
    ------
    IntegrityMismatch
        If the record is missing or unreadable, or a file changed, appeared or disappeared.
    """
    try:
        recorded = json.loads((model_dir / INTEGRITY_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise IntegrityMismatch(
            f"Cached model {model_dir.name} has no readable integrity record; reinstall it."
        ) from exc
    if not isinstance(recorded, dict):
        raise IntegrityMismatch(f"Cached model {model_dir.name} has a malformed integrity record.")
    for name in SIDE_FILES:
        path = model_dir / name
        expected = recorded.get(name)
        if expected is None and not path.is_file():
            continue
        if expected is None or not path.is_file() or sha256_file(path) != expected:
            raise IntegrityMismatch(
                f"{name} of cached model {model_dir.name} changed since it was installed."
            )


class LoadedModel:
    """One compiled model version with small pools of reusable infer requests (thread-safe).

    Two lanes: ``live`` answers requests, ``explain`` scores Shapley coalitions after the
    response. With one stream per compiled model (the line-PC config) OpenVINO runs one
    inference at a time per compiled model, so a live request sharing it with the explainer
    waits behind a coalition batch; the explain lane therefore gets its own compiled copy,
    compiled on its first use (a warm fallback version that never answers never pays for it),
    and the explainer thread runs at a lower OS priority.

    Parameters
    ----------
    manifest
        The version's manifest.
    compiled
        ``openvino.CompiledModel`` of the live lane.
    featurize
        Raw records to model input.
    pool_size
        Infer requests kept ready per lane; callers beyond that wait for a free one.
    compile_explain
        Compiles the explain lane's copy on first use; the live model is shared when None.
    """

    def __init__(
        self,
        manifest: ModelManifest,
        compiled: Any,
        featurize: Featurizer,
        pool_size: int = 2,
        compile_explain: Callable[[], Any] | None = None,
    ) -> None:
        self.manifest = manifest
        self.compiled = compiled
        self.featurize = featurize
        self._pool_size = pool_size
        self._compile_explain = compile_explain
        self._lane_lock = threading.Lock()
        self._pools: dict[str, queue.SimpleQueue[Any]] = {"live": self._pool(compiled)}
        # Static dims of the input (None where dynamic), checked before every call because
        # OpenVINO can return an empty result instead of raising on a mismatched shape.
        self.input_dims: tuple[int | None, ...] = tuple(
            None if d.is_dynamic else d.get_length() for d in compiled.input(0).partial_shape
        )
        self.loaded_at = time.time()

    def _pool(self, compiled: Any) -> queue.SimpleQueue[Any]:
        pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self._pool_size):
            pool.put(compiled.create_infer_request())
        return pool

    def _lane(self, lane: str) -> queue.SimpleQueue[Any]:
        pool = self._pools.get(lane)
        if pool is None:
            if lane != "explain":
                raise ValueError(f"unknown inference lane {lane!r}")
            with self._lane_lock:
                pool = self._pools.get(lane)
                if pool is None:
                    factory = self._compile_explain
                    pool = self._pool(factory() if factory is not None else self.compiled)
                    self._pools[lane] = pool
        return pool

    @property
    def version(self) -> str:
        """Model version string."""
        return self.manifest.version

    def infer(self, inputs: npt.NDArray[Any], *, lane: str = "live") -> npt.NDArray[np.float64]:
        """Run the compiled model on a batch; return one score per row (first output).

        Parameters
        ----------
        inputs
            Batch whose first axis is the row axis.
        lane
            ``live`` (requests) or ``explain`` (the post-response explainer).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_rows,)`` when the model has one output per row, else ``(n_rows, k)``.
        """
        if len(inputs.shape) != len(self.input_dims) or any(
            want is not None and want != got
            for want, got in zip(self.input_dims, inputs.shape, strict=True)
        ):
            raise ValueError(
                f"model {self.version} expects input {self.input_dims}, got {tuple(inputs.shape)}"
            )
        pool = self._lane(lane)
        request = pool.get()
        try:
            request.infer({0: np.ascontiguousarray(inputs, dtype=np.float32)})
            out = np.array(request.get_output_tensor(0).data, dtype=np.float64, copy=True)
        finally:
            pool.put(request)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"model {self.version} returned {out.shape[0]} rows for {inputs.shape[0]}"
            )
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(f"model {self.version} produced non-finite outputs")
        return out

    def predict_rows(self, rows: Rows) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
        """Featurize ``rows`` with this version's own pipeline state, then infer."""
        features = self.featurize(rows)
        return features, self.infer(features)


@dataclass(frozen=True)
class RuntimeEvent:
    """Something an operator should hear about (becomes an alert in the outbox)."""

    kind: str  # load_failed | inference_failed | fallback_rule | swapped
    baseline: str
    version: str | None
    detail: str


@dataclass(frozen=True)
class Scored:
    """What the fail-safe chain produced for one batch."""

    scores: npt.NDArray[np.float64]
    features: npt.NDArray[Any] | None
    name: str
    version: str
    served_by: str  # current | previous | fallback
    model: LoadedModel | None

    @property
    def fallback(self) -> bool:
        """True unless the current version answered."""
        return self.served_by != "current"


def default_compile_config(threads: int = 1, hint: str = "LATENCY") -> dict[str, Any]:
    """OpenVINO CPU properties for a line PC: latency hint, one stream, bounded threads."""
    return {
        "PERFORMANCE_HINT": hint,
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        # Same numerics as the export's parity check (no silent bf16 on newer CPUs).
        "INFERENCE_PRECISION_HINT": "f32",
    }


class ModelRuntime:
    """Serves one baseline: load, verify, compile, hot-swap, and answer through the chain.

    Parameters
    ----------
    baseline
        The baseline this runtime serves.
    featurizer_factory
        Builds the featurizer of a version from its manifest.
    fallback
        Rule used when no model version can answer.
    compile_config
        OpenVINO properties for ``compile_model``.
    on_event
        Called with every :class:`RuntimeEvent`; must not raise.
    core
        Shared ``openvino.Core`` (one per process is enough).
    precision
        Preferred IR precision when an export holds several.
    """

    def __init__(
        self,
        baseline: str,
        *,
        featurizer_factory: FeaturizerFactory,
        fallback: FallbackRule | None = None,
        compile_config: dict[str, Any] | None = None,
        on_event: Callable[[RuntimeEvent], None] | None = None,
        core: Any | None = None,
        precision: str = "int8",
    ) -> None:
        import openvino as ov

        self.baseline = baseline
        self.fallback = fallback
        self._featurizer_factory = featurizer_factory
        self._config = compile_config or default_compile_config()
        self._on_event = on_event
        self._core = core or ov.Core()
        self.precision = precision
        self._slots: tuple[LoadedModel | None, LoadedModel | None] = (None, None)
        self._write_lock = threading.Lock()

    @property
    def current(self) -> LoadedModel | None:
        """The version answering requests."""
        return self._slots[0]

    @property
    def previous(self) -> LoadedModel | None:
        """The version kept warm to take over if the current one fails."""
        return self._slots[1]

    def _emit(self, kind: str, version: str | None, detail: str) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(RuntimeEvent(kind, self.baseline, version, detail))
        except Exception:  # alerting must never break serving
            log.exception("runtime event handler failed")

    def load(self, model_dir: Path) -> LoadedModel:
        """Verify and compile a model directory without activating it.

        Raises
        ------
        IntegrityMismatch
            If a file does not match its sha256 (nothing is read by OpenVINO then).
        InvalidInput
            If the manifest is missing or the IR does not compile.
        """
        cached = (model_dir / CACHE_MARKER).is_file()
        if cached:  # metadata.json and recipe.json too, before either is read
            verify_side_files(model_dir)
        manifest = read_manifest(model_dir, self.precision)
        if cached:
            manifest = dataclasses.replace(manifest, version=model_dir.name)
        verify_model_dir(model_dir, manifest)
        try:
            model = self._core.read_model(
                str(model_dir / manifest.xml), str(model_dir / manifest.weights)
            )
            compiled = self._core.compile_model(model, "CPU", self._config)
            featurize = self._featurizer_factory(manifest)
        except Exception as exc:
            raise InvalidInput(
                f"Model {manifest.name} {manifest.version} could not be compiled: {exc}"
            ) from exc
        core, config = self._core, self._config

        def compile_explain() -> Any:
            return core.compile_model(model, "CPU", config)

        return LoadedModel(manifest, compiled, featurize, compile_explain=compile_explain)

    def activate(self, loaded: LoadedModel) -> None:
        """Make ``loaded`` current and the old current the previous (one atomic assignment)."""
        with self._write_lock:
            current, _ = self._slots
            if current is not None and current.version == loaded.version:
                self._slots = (loaded, self._slots[1])
            else:
                self._slots = (loaded, current)
        self._emit(
            "swapped", loaded.version, f"now serving {loaded.manifest.name} {loaded.version}"
        )

    def load_and_activate(self, model_dir: Path) -> LoadedModel:
        """Load, verify and hot-swap; on failure the serving versions stay as they were.

        Raises
        ------
        IntegrityMismatch, InvalidInput
            As :meth:`load`; an alert event is emitted first.
        """
        try:
            loaded = self.load(model_dir)
        except Exception as exc:
            self._emit("load_failed", model_dir.name, str(exc))
            raise
        self.activate(loaded)
        return loaded

    def set_previous(self, loaded: LoadedModel | None) -> None:
        """Put a warm previous version behind the current one (used when starting from cache)."""
        with self._write_lock:
            self._slots = (self._slots[0], loaded)

    def predict(self, rows: Rows) -> Scored:
        """Score ``rows`` through current → previous → rule-based fallback.

        Raises
        ------
        Unavailable
            Only if no model version answers and the baseline has no fallback rule.
        """
        current, previous = self._slots  # one read: a concurrent swap cannot mix versions
        for served_by, model in (("current", current), ("previous", previous)):
            if model is None:
                continue
            try:
                features, scores = model.predict_rows(rows)
            except Exception as exc:
                log.warning("%s %s failed at inference: %s", self.baseline, model.version, exc)
                self._emit("inference_failed", model.version, f"{type(exc).__name__}: {exc}")
                continue
            return Scored(scores, features, model.manifest.name, model.version, served_by, model)
        if self.fallback is None:
            raise Unavailable(
                f"No model version of {self.baseline} can answer and it has no fallback rule."
            )
        self._emit("fallback_rule", None, f"answered by rule {self.fallback.name}")
        scores = self.fallback.predict(rows)
        return Scored(scores, None, self.fallback.name, "rule", "fallback", None)

    def readiness(self) -> dict[str, Any]:
        """Report what would answer right now."""
        current, previous = self._slots
        return {
            "current": current.version if current else None,
            "previous": previous.version if previous else None,
            "fallback": self.fallback.name if self.fallback else None,
            "ok": current is not None or previous is not None or self.fallback is not None,
        }
