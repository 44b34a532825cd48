"""Server-side update checks: NaN/Inf, norm bound, malformed shapes."""

import numpy as np

from federation.schemas.federated_run import RejectReason
from federation.strategies.validation import check_update, update_norm


def test_clean_update_is_accepted_with_its_norm() -> None:
    g = [np.zeros(3), np.zeros(1)]
    w = [np.array([3.0, 0.0, 0.0]), np.array([4.0])]

    verdict = check_update(g, w, max_update_norm=10.0)

    assert verdict.accepted
    assert verdict.update_norm == 5.0


def test_nan_and_inf_are_rejected() -> None:
    g = [np.zeros(2)]

    assert check_update(g, [np.array([np.nan, 0.0])], max_update_norm=None).reason == (
        RejectReason.NON_FINITE
    )
    assert check_update(g, [np.array([np.inf, 0.0])], max_update_norm=None).reason == (
        RejectReason.NON_FINITE
    )


def test_norm_beyond_bound_is_rejected_and_zero_disables_the_bound() -> None:
    g = [np.ones(4)]
    w = [np.ones(4) * 101.0]  # a x100-scaled update of +1 per coordinate

    rejected = check_update(g, w, max_update_norm=50.0)
    unbounded = check_update(g, w, max_update_norm=0.0)

    assert rejected.reason == RejectReason.NORM_EXCEEDED
    assert rejected.update_norm == update_norm(g, w) == 200.0
    assert unbounded.accepted


def test_shape_mismatch_is_malformed() -> None:
    assert check_update([np.zeros(3)], [np.zeros(4)], max_update_norm=None).reason == (
        RejectReason.MALFORMED
    )
    assert check_update([np.zeros(3)], [], max_update_norm=None).reason == RejectReason.MALFORMED
