"""The shared error vocabulary round-trips through problem+json."""

import pytest

from federation.errors import (
    STATUS_BY_CODE,
    Conflict,
    ContractViolation,
    ErrorCode,
    MillwrightError,
    NotFound,
    error_from_problem,
)


def test_every_code_has_a_status_and_title() -> None:
    assert set(STATUS_BY_CODE) == set(ErrorCode)


@pytest.mark.parametrize("cls", [NotFound, Conflict, ContractViolation])
def test_problem_round_trip_rebuilds_same_class(cls: type[MillwrightError]) -> None:
    err = cls("plant 'p9' does not exist", errors=[{"field": "plant_id"}])
    body = err.to_problem(instance="/api/v1/plants/p9")

    rebuilt = error_from_problem(body, body["status"])

    assert type(rebuilt) is cls
    assert rebuilt.code == err.code
    assert rebuilt.detail == err.detail
    assert rebuilt.errors == [{"field": "plant_id"}]
    assert body["type"].endswith(err.code.value)


def test_unknown_code_falls_back_to_status() -> None:
    rebuilt = error_from_problem({"title": "gone"}, 404)
    assert isinstance(rebuilt, NotFound)
    assert rebuilt.detail == "gone"
