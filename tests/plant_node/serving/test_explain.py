"""Shapley attributions: efficiency, symmetry, dummy, and the sampled estimator's stated error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plant_node.serving.explain import exact_shapley, sampled_shapley, shapley, signal_groups
from plant_node.serving.runtime import ModelRuntime
from tests.plant_node.serving.irs import build_logistic_ir


def _nonlinear(w: np.ndarray) -> callable:  # type: ignore[valid-type]
    def f(batch: np.ndarray) -> np.ndarray:
        z = batch.reshape(batch.shape[0], -1)
        return np.tanh(z @ w) + 0.5 * z[:, 0] * z[:, 1] - 0.3 * np.sin(z[:, 2] * z[:, -1])

    return f


def test_exact_is_efficient_on_a_nonlinear_function() -> None:
    rng = np.random.default_rng(1)
    x, b, w = rng.normal(size=6), rng.normal(size=6), rng.normal(size=6)
    f = _nonlinear(w)

    attr = exact_shapley(f, x, b)

    assert attr.method == "exact" and attr.n_evaluations == 64
    assert attr.values.sum() == pytest.approx(f(x[None])[0] - f(b[None])[0], abs=1e-12)
    assert attr.value == pytest.approx(f(x[None])[0])


def test_exact_linear_and_pure_interaction_closed_forms() -> None:
    w = np.array([1.0, -2.0, 0.5])
    x, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, -1.0])

    linear = exact_shapley(lambda z: z @ w, x, b)
    product = exact_shapley(lambda z: z[:, 0] * z[:, 1], np.array([2.0, 3.0, 9.0]), np.zeros(3))

    np.testing.assert_allclose(linear.values, w * (x - b))
    np.testing.assert_allclose(product.values, [3.0, 3.0, 0.0])


def test_symmetry_and_dummy() -> None:
    def f(z: np.ndarray) -> np.ndarray:  # symmetric in signals 0 and 1, ignores signal 3
        return np.exp(0.3 * (z[:, 0] + z[:, 1])) * z[:, 2] + z[:, 0] * z[:, 1]

    x, b = np.array([1.5, 1.5, -0.7, 42.0]), np.array([0.2, 0.2, 0.3, -5.0])

    attr = exact_shapley(f, x, b)

    assert attr.values[0] == pytest.approx(attr.values[1], abs=1e-12)
    assert attr.values[3] == pytest.approx(0.0, abs=1e-12)


def test_sampled_is_efficient_and_its_stated_error_covers_the_truth() -> None:
    rng = np.random.default_rng(7)
    x, b, w = rng.normal(size=8), rng.normal(size=8), rng.normal(size=8)
    f = _nonlinear(w)
    truth = exact_shapley(f, x, b).values

    covered, total, worst = 0, 0, 0.0
    for seed in range(30):
        est = sampled_shapley(f, x, b, n_permutations=24, rng=np.random.default_rng(seed))
        assert est.values.sum() == pytest.approx(f(x[None])[0] - f(b[None])[0], abs=1e-12)
        assert est.stderr is not None
        z = np.abs(est.values - truth) / np.maximum(est.stderr, 1e-12)
        covered += int(np.sum(z <= 2.0))
        total += z.size
        worst = max(worst, float(z.max()))

    assert covered / total >= 0.85  # nominal ~95% for +-2 standard errors
    assert worst < 6.0


def test_window_signals_are_whole_sensor_channels() -> None:
    # C-MAPSS shape: a 30-cycle window of 10 sensors; a signal is one sensor over the window.
    rng = np.random.default_rng(3)
    x, b = rng.normal(size=(30, 10)), np.zeros((30, 10))
    w = rng.normal(size=(30, 10)) / 10

    def f(batch: np.ndarray) -> np.ndarray:
        s = (batch * w).sum(axis=(1, 2))
        return 1 / (1 + np.exp(-s)) + 0.1 * batch[:, -1, 0] * batch[:, -1, 1]

    exact = exact_shapley(f, x, b)
    est = sampled_shapley(f, x, b, n_permutations=64, rng=np.random.default_rng(0))

    assert len(signal_groups(x.shape)) == 10 and exact.values.shape == (10,)
    assert est.values.sum() == pytest.approx(exact.values.sum(), abs=1e-12)
    assert est.stderr is not None
    assert np.all(np.abs(est.values - exact.values) <= 4 * est.stderr + 1e-9)


def test_shapley_picks_the_method_by_signal_count() -> None:
    f = lambda z: z.reshape(z.shape[0], -1).sum(axis=1)  # noqa: E731

    few = shapley(f, np.ones(4), np.zeros(4), max_exact_signals=6)
    many = shapley(f, np.ones(9), np.zeros(9), max_exact_signals=6, rng=np.random.default_rng(0))

    assert (few.method, many.method) == ("exact", "permutation")
    np.testing.assert_allclose(many.values, np.ones(9))  # additive: every permutation agrees


def test_efficiency_with_the_compiled_openvino_model(tmp_path: Path) -> None:
    weights = [0.8, -1.2, 0.4, 2.0, -0.5, 0.1]
    runtime = ModelRuntime("toy", featurizer_factory=lambda m: lambda rows: rows)
    model = runtime.load(build_logistic_ir(tmp_path / "m", weights, 0.3))
    x = np.array([1.0, 0.5, -1.0, 0.2, 2.0, -0.3], dtype=np.float32)
    b = np.zeros(6, dtype=np.float32)

    attr = exact_shapley(model.infer, x, b)

    fx, fb = model.infer(x[None])[0], model.infer(b[None])[0]
    assert attr.values.sum() == pytest.approx(fx - fb, abs=1e-5)


def test_compose_keeps_ungrouped_positions_from_x_and_exact_matches_the_definition() -> None:
    from plant_node.serving.explain import compose, plan_exact

    x, base = np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(4)
    groups = [np.array([0, 2]), np.array([1])]  # position 3 belongs to no signal
    coalitions = np.array([[False, False], [True, False], [False, True], [True, True]])

    batch = compose(x, base, coalitions, groups)
    again = compose(x * 2, base, coalitions, groups)  # the cached layout serves a new input

    assert batch.tolist() == [[0, 0, 0, 4], [1, 0, 3, 4], [0, 2, 0, 4], [1, 2, 3, 4]]
    assert again.tolist() == [[0, 0, 0, 8], [2, 0, 6, 8], [0, 4, 0, 8], [2, 4, 6, 8]]

    def f(b: np.ndarray) -> np.ndarray:  # an interaction between the two signals
        return b[:, 0] * b[:, 1] + b[:, 2] + b[:, 3]

    attr = plan_exact(x, base, groups).run(f)
    # Two players: phi_A = (v(A) - v({}) + v(AB) - v(B)) / 2, and the same for B.
    v = {"": 4.0, "A": 7.0, "B": 4.0, "AB": 9.0}
    assert attr.values.tolist() == pytest.approx(
        [(v["A"] - v[""] + v["AB"] - v["B"]) / 2, (v["B"] - v[""] + v["AB"] - v["A"]) / 2]
    )
