"""Chaos-lite: reports cross a flaky, cut link to a hub killed twice; none lost, none twice."""

from __future__ import annotations

from pathlib import Path

from tests.plant_node.outbox.chaos import run_chaos


def test_flaky_link_cuts_and_hub_kills_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    # Execute: flaky stretches (lost answers weighted up), a cut, two hub kills mid-delivery.
    schedule = ["flaky", "hub_kill", "cut", "flaky", "hub_kill", "calm"]
    result = run_chaos(tmp_path, steps=6, seed=3, reports_per_step=2, events_per_step=3,
                       weights=(1, 1, 2, 4), schedule=schedule, step_s=(0.4, 0.8))  # fmt: skip

    # Assert: the chaos happened, and the hub holds every report and event exactly once.
    assert result.hub_kills == 2 and result.link_cuts == 1, result.actions
    assert result.connections.get("cut", 0) > 0, result.connections
    figures = result.figures
    assert figures["reports_made"] == 12 and figures["events_made"] == 18
    assert figures["reports_lost"] == figures["reports_duplicated"] == 0, figures
    assert figures["events_lost"] == figures["events_duplicated"] == 0, figures
    assert figures["delivered_exactly_once"] and figures["pending_after_heal"] == 0
