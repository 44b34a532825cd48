"""Pieces of the federation evaluation that must hold before its long runs mean anything."""

from __future__ import annotations

from pathlib import Path

from baselines.datasets import load_cmapss, load_cmapss_rul
from federation.evaluation import BUDGETS, _fleet_rest_dir, markdown_table


def test_fleet_rest_directory_holds_no_newcomer_engine(tmp_path: Path) -> None:
    rest = _fleet_rest_dir("FD001", 21, tmp_path / "rest")

    train = load_cmapss("FD001", "train", data_dir=rest)
    assert train["unit"].min() == 21 and train["unit"].max() == 100
    full = load_cmapss("FD001", "train")
    assert len(train) == int((full["unit"] >= 21).sum())
    # The test fleet is the subset's own, untouched.
    assert load_cmapss("FD001", "test", data_dir=rest).equals(load_cmapss("FD001", "test"))
    assert (load_cmapss_rul("FD001", data_dir=rest) == load_cmapss_rul("FD001")).all()


def test_budgets_compare_like_with_like() -> None:
    full, reduced = BUDGETS["full"], BUDGETS["reduced"]
    assert full.max_windows == 0 and reduced.max_windows > 0
    # Only the amount of data differs between the published and the full budget.
    assert {k: v for k, v in vars(full).items() if k != "max_windows"} == {
        k: v for k, v in vars(reduced).items() if k != "max_windows"
    }
    assert reduced.matched_epochs == reduced.rounds + reduced.personal_epochs


def test_markdown_table_names_the_personalized_strategy() -> None:
    row = {"local": 2.0, "fedavg": 3.0, "fedavgm": 2.5, "fedavg_personalized": 1.5}
    doc = {
        "plants": {"FD001": row},
        "means": row,
        "personalized_from": "fedavgm",
        "new_plant": {"units": 20, "local": 4.0, "fedavg_personalized": 3.0,
                      "new_plant_global": 3.5},
    }

    table = markdown_table(doc)

    assert "| plant | local | FedAvg | FedAvgM | FedAvgM + personalization |" in table
    assert "| new plant (20 units of FD001) | 4.00 |  | 3.50 | 3.00 |" in table
