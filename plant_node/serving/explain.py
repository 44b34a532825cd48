"""Shapley attributions per input signal, computed with the compiled model (numpy + a callable).

A *signal* is a group of input positions switched on or off together: one raw reading for
AI4I, or a whole sensor channel over the 30-cycle window for C-MAPSS. A coalition ``S`` is
scored as ``f`` on the input that takes the signals in ``S`` from ``x`` and the others from
``baseline``; the attribution of signal ``i`` is its Shapley value in that game, so the
attributions always add up to ``f(x) - f(baseline)`` (efficiency).

Two estimators, each evaluating ``f`` in a single batched call:

* :func:`exact_shapley` enumerates all ``2**n`` coalitions (AI4I has 6 signals: 64 rows).
* :func:`sampled_shapley` averages marginal contributions over random permutations taken in
  antithetic pairs (a permutation and its reverse), and reports the standard error of each
  attribution. Every permutation telescopes to ``f(x) - f(baseline)``, so efficiency holds
  exactly for the estimate too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

NDArray = npt.NDArray[Any]
ValueFunction = Callable[[NDArray], NDArray]


@dataclass(frozen=True)
class Attribution:
    """Shapley attributions of one prediction.

    Attributes
    ----------
    values
        One attribution per signal, in signal order.
    base_value
        ``f(baseline)``.
    value
        ``f(x)``; ``values.sum() == value - base_value`` up to float rounding.
    stderr
        Standard error per signal for the sampled estimator, None when exact.
    method
        ``exact`` or ``permutation``.
    n_evaluations
        Rows passed to ``f``.
    """

    values: npt.NDArray[np.float64]
    base_value: float
    value: float
    stderr: npt.NDArray[np.float64] | None
    method: str
    n_evaluations: int

    def to_dict(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """Return a JSON-ready form, with signal names when given."""
        keys = list(names) if names is not None else [str(i) for i in range(len(self.values))]
        out: dict[str, Any] = {
            "method": self.method,
            "base_value": self.base_value,
            "value": self.value,
            "values": dict(zip(keys, map(float, self.values), strict=True)),
            "n_evaluations": self.n_evaluations,
        }
        if self.stderr is not None:
            out["stderr"] = dict(zip(keys, map(float, self.stderr), strict=True))
        return out


def signal_groups(shape: tuple[int, ...]) -> list[npt.NDArray[np.intp]]:
    """Default grouping: one signal per index of the last axis (a feature, or a sensor channel).

    Parameters
    ----------
    shape
        Shape of one input ``x``.

    Returns
    -------
    list[numpy.ndarray]
        Flat indices into ``x.ravel()`` for each signal.
    """
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    return [flat[..., j].ravel() for j in range(shape[-1])]


def _member_matrix(groups: Sequence[NDArray], size: int) -> npt.NDArray[np.bool_]:
    member = np.zeros((len(groups), size), dtype=bool)
    for i, idx in enumerate(groups):
        member[i, np.asarray(idx).ravel()] = True
    if (member.sum(axis=0) > 1).any():
        raise ValueError("signal groups overlap")
    return member


def compose(
    x: NDArray, baseline: NDArray, coalitions: npt.NDArray[np.bool_], groups: Sequence[NDArray]
) -> NDArray:
    """Build the batch of inputs for a set of coalitions.

    Parameters
    ----------
    x, baseline
        The explained input and the reference input (same shape).
    coalitions
        Boolean matrix ``(n_coalitions, n_signals)``: True takes the signal from ``x``.
    groups
        Flat indices of each signal.

    Returns
    -------
    numpy.ndarray
        ``(n_coalitions, *x.shape)``; positions in no group keep ``x``'s value.
    """
    xf, bf = np.ravel(x), np.ravel(baseline)
    owner, assigned = _owners(groups, xf.size)
    from_x = coalitions[:, owner]
    if not assigned.all():
        from_x |= ~assigned[None, :]
    batch = np.where(from_x, xf[None, :], bf[None, :])
    return batch.reshape((coalitions.shape[0], *np.shape(x))).astype(
        np.asarray(x).dtype, copy=False
    )


# Signal layouts seen so far -> (owner, assigned): a model has one layout, so this stays tiny.
_OWNERS: dict[tuple[int, tuple[bytes, ...]], tuple[NDArray, npt.NDArray[np.bool_]]] = {}
_OWNERS_MAX = 64


def _owners(groups: Sequence[NDArray], size: int) -> tuple[NDArray, npt.NDArray[np.bool_]]:
    """Return, per flat position, the signal owning it and whether any does (cached by layout).

    Positions in no group stay with ``x`` (``assigned`` False).
    """
    key = (size, tuple(np.asarray(g, dtype=np.intp).tobytes() for g in groups))
    hit = _OWNERS.get(key)
    if hit is None:
        member = _member_matrix(groups, size)
        hit = (np.argmax(member, axis=0), np.asarray(member.any(axis=0), dtype=bool))
        if len(_OWNERS) >= _OWNERS_MAX:
            _OWNERS.clear()
        _OWNERS[key] = hit
    return hit


def _evaluate(f: ValueFunction, batch: NDArray) -> npt.NDArray[np.float64]:
    out = np.asarray(f(batch), dtype=np.float64)
    if out.ndim > 1:
        out = out.reshape(out.shape[0], -1)[:, 0]
    if out.shape[0] != batch.shape[0]:
        raise ValueError(f"f returned {out.shape[0]} values for {batch.shape[0]} inputs")
    return out


@dataclass(frozen=True)
class ShapleyPlan:
    """The rows an estimator needs scored, and how to turn their scores into attributions.

    Splitting the two lets a caller score the plans of many predictions in one batched call
    of the model (the post-response explainer does) and finish each plan on its slice.

    Attributes
    ----------
    inputs
        ``(k, *x.shape)`` inputs to score with ``f``.
    finish
        Maps the ``k`` scores to the :class:`Attribution`.
    """

    inputs: NDArray
    finish: Callable[[npt.NDArray[np.float64]], Attribution]

    def run(self, f: ValueFunction) -> Attribution:
        """Score the inputs with ``f`` and finish."""
        return self.finish(_evaluate(f, self.inputs))


def plan_exact(
    x: NDArray, baseline: NDArray, groups: Sequence[NDArray] | None = None
) -> ShapleyPlan:
    """Plan of :func:`exact_shapley` (every coalition)."""
    groups = list(groups) if groups is not None else signal_groups(np.shape(x))
    n = len(groups)
    if n > 20:
        raise ValueError(f"{n} signals is too many to enumerate; use sampled_shapley")
    coalitions, weights = _exact_tables(n)

    def finish(v: npt.NDArray[np.float64]) -> Attribution:
        # Every signal's Shapley value at once: a weighted sum over the 2**n coalition scores.
        values = weights @ v
        return Attribution(values, float(v[0]), float(v[-1]), None, "exact", int(v.size))

    return ShapleyPlan(compose(x, baseline, coalitions, groups), finish)


@functools.lru_cache(maxsize=32)
def _exact_tables(n: int) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Return every coalition of ``n`` signals and the ``(n, 2**n)`` Shapley weight matrix.

    Coalition ``c`` is the bit pattern of its index. ``weights[i, c]`` is
    ``(|c|-1)! (n-|c|)! / n!`` when ``i`` is in ``c`` and ``-|c|! (n-|c|-1)! / n!`` when not,
    so ``weights @ v`` sums ``w(|S|) (v(S + i) - v(S))`` over every ``S`` without ``i``.
    """
    codes = np.arange(2**n)
    coalitions = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    coalitions.setflags(write=False)
    sizes = coalitions.sum(axis=1)
    f = math.factorial
    weight = np.array([f(s) * f(n - s - 1) / f(n) for s in range(n)] + [0.0])
    with_i = weight[np.maximum(sizes - 1, 0)]  # i in c: c = S + i with |S| = |c| - 1
    without_i = weight[np.minimum(sizes, n)]  # i not in c: c = S with |S| = |c|
    weights = np.where(coalitions.T, with_i[None, :], -without_i[None, :])
    weights.setflags(write=False)
    return coalitions, weights


def exact_shapley(
    f: ValueFunction,
    x: NDArray,
    baseline: NDArray,
    groups: Sequence[NDArray] | None = None,
) -> Attribution:
    """Exact Shapley values by enumerating every coalition in one batched call of ``f``.

    Parameters
    ----------
    f
        Maps a batch ``(k, *x.shape)`` to ``k`` scores.
    x, baseline
        Explained input and reference input.
    groups
        Flat indices of each signal; one per last-axis index by default.

    Returns
    -------
    Attribution
        Exact values (``stderr`` None).

    Raises
    ------
    ValueError
        With more than 20 signals (use :func:`sampled_shapley`).
    """
    return plan_exact(x, baseline, groups).run(f)


def plan_sampled(
    x: NDArray,
    baseline: NDArray,
    groups: Sequence[NDArray] | None = None,
    *,
    n_permutations: int = 32,
    rng: np.random.Generator | None = None,
) -> ShapleyPlan:
    """Plan of :func:`sampled_shapley` (antithetic permutation paths)."""
    groups = list(groups) if groups is not None else signal_groups(np.shape(x))
    n = len(groups)
    rng = rng or np.random.default_rng()
    n_pairs = max(2, math.ceil(n_permutations / 2))
    forward = rng.permuted(np.tile(np.arange(n), (n_pairs, 1)), axis=1)
    perms = np.concatenate([forward, forward[:, ::-1]])  # antithetic: pair p with p + n_pairs
    # Path of each permutation: coalition after adding its first k signals, k = 1..n-1
    # (k = 0 is the baseline and k = n is x, shared by every path).
    ranks = np.argsort(perms, axis=1)  # rank of signal j in permutation p
    steps = np.arange(1, n)
    path = ranks[:, None, :] < steps[None, :, None]  # (P, n-1, n)
    ends = np.stack([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)])
    coalitions = np.concatenate([ends, path.reshape(-1, n)])

    def finish(v: npt.NDArray[np.float64]) -> Attribution:
        v_empty, v_full = v[0], v[1]
        n_perm = perms.shape[0]
        chain = np.concatenate(
            [
                np.full((n_perm, 1), v_empty),
                v[2:].reshape(n_perm, n - 1),
                np.full((n_perm, 1), v_full),
            ],
            axis=1,
        )  # chain[p, k] = value after k signals of permutation p
        marginal = np.diff(chain, axis=1)  # marginal[p, k] = contribution of perms[p, k]
        contrib = np.empty_like(marginal)
        np.put_along_axis(contrib, perms, marginal, axis=1)  # contrib[p, j] for signal j
        pair_means = 0.5 * (contrib[:n_pairs] + contrib[n_pairs:])
        values = pair_means.mean(axis=0)
        stderr = pair_means.std(axis=0, ddof=1) / math.sqrt(n_pairs)
        return Attribution(
            values, float(v_empty), float(v_full), stderr, "permutation", int(v.size)
        )

    return ShapleyPlan(compose(x, baseline, coalitions, groups), finish)


def sampled_shapley(
    f: ValueFunction,
    x: NDArray,
    baseline: NDArray,
    groups: Sequence[NDArray] | None = None,
    *,
    n_permutations: int = 32,
    rng: np.random.Generator | None = None,
) -> Attribution:
    """Permutation-sampling Shapley estimate with antithetic pairs and a standard error.

    Parameters
    ----------
    f
        Maps a batch ``(k, *x.shape)`` to ``k`` scores.
    x, baseline
        Explained input and reference input.
    groups
        Flat indices of each signal; one per last-axis index by default.
    n_permutations
        Permutations to evaluate (rounded up to an even number: half are reversals).
    rng
        Random generator (seeded in tests).

    Returns
    -------
    Attribution
        Estimated values with their standard errors; values sum exactly to
        ``f(x) - f(baseline)``.
    """
    return plan_sampled(x, baseline, groups, n_permutations=n_permutations, rng=rng).run(f)


def plan_shapley(
    x: NDArray,
    baseline: NDArray,
    groups: Sequence[NDArray] | None = None,
    *,
    max_exact_signals: int = 10,
    n_permutations: int = 32,
    rng: np.random.Generator | None = None,
) -> ShapleyPlan:
    """Plan of :func:`shapley`: exact with few signals, sampled otherwise."""
    groups = list(groups) if groups is not None else signal_groups(np.shape(x))
    if len(groups) <= max_exact_signals:
        return plan_exact(x, baseline, groups)
    return plan_sampled(x, baseline, groups, n_permutations=n_permutations, rng=rng)


def shapley(
    f: ValueFunction,
    x: NDArray,
    baseline: NDArray,
    groups: Sequence[NDArray] | None = None,
    *,
    max_exact_signals: int = 10,
    n_permutations: int = 32,
    rng: np.random.Generator | None = None,
) -> Attribution:
    """Exact Shapley values when there are few signals, the sampled estimate otherwise.

    Parameters
    ----------
    f, x, baseline, groups
        As :func:`exact_shapley`.
    max_exact_signals
        Largest number of signals enumerated exactly (``2**n`` rows in one call).
    n_permutations, rng
        As :func:`sampled_shapley`.

    Returns
    -------
    Attribution
        The attributions.
    """
    plan = plan_shapley(
        x,
        baseline,
        groups,
        max_exact_signals=max_exact_signals,
        n_permutations=n_permutations,
        rng=rng,
    )
    return plan.run(f)
