"""SIGKILL under load: every prediction the node acknowledged has its log row after the kill.

A real ``millwright node serve`` process, three line clients, two kills at random moments.
Before the fix (rows committed after the answer) this lost acknowledged ids; the reliability
benchmark repeats it 20+ times (``sigkill.acknowledged_lost``).
"""

from __future__ import annotations

from pathlib import Path

from tests.plant_node.serving.sigkill import prepare_node, run_kills


def test_no_acknowledged_prediction_is_lost_when_the_node_is_killed(tmp_path: Path) -> None:
    data_dir = prepare_node(tmp_path)

    report = run_kills(data_dir, kills=2, clients=3, window_s=(0.3, 0.6), seed=18)

    assert report.kills == 2
    assert report.acknowledged > 0, "the clients got no answer before the kills"
    assert report.acknowledged_lost == 0, f"acknowledged but not logged: {report.lost_ids}"
