"""``millwright node retraining status|history`` on a node database with a fired trigger."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from plant_node.cli import app
from plant_node.config import NodeSettings
from plant_node.retraining import service
from plant_node.retraining.schemas import FiringRead
from tests.plant_node.retraining.helpers import add_chunks, add_drift_alert


def test_status_and_history(
    node_settings: NodeSettings, session_factory: sessionmaker[Session]
) -> None:
    env = {"MILLWRIGHT_NODE_DATABASE_URL": node_settings.db_url}
    runner = CliRunner()
    args = ["--plant", "plant-t", "--data-dir", str(node_settings.data_path)]
    empty = runner.invoke(app, ["retraining", "history", *args], env=env)
    assert empty.exit_code == 0 and "no trigger has fired" in empty.output

    with session_factory() as session:
        add_chunks(session, [20.0] * 6)
        add_drift_alert(session, since_chunk=2)  # sustained 4 chunks >= 3 of the default policy
    fired = runner.invoke(app, ["retraining", "evaluate", *args, "--format", "json"], env=env)
    assert fired.exit_code == 0, fired.output
    (firing,) = [FiringRead.model_validate(f) for f in json.loads(fired.output)]
    again = runner.invoke(app, ["retraining", "evaluate", *args], env=env)
    assert "no trigger fired" in again.output  # the same records: nothing new

    history = runner.invoke(app, ["retraining", "history", *args, "--format", "json"], env=env)
    assert history.exit_code == 0, history.output
    (row,) = json.loads(history.output)
    assert row["id"] == firing.id and row["trigger"] == "drift_sustained"
    assert row["evidence"]["drift.sustained_chunks"] == 4

    status = runner.invoke(app, ["retraining", "status", *args, "--format", "json"], env=env)
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["policy"] == "retraining-default@1"
    assert data["requests_waiting_in_outbox"] == [firing.id]
    by_trigger = {t["trigger"]: t for t in data["triggers"]}
    assert by_trigger["drift_sustained"]["verdict"] == "missing"  # its labels are spent
    text = runner.invoke(app, ["retraining", "status", *args], env=env)
    assert "1 request(s) waiting in the outbox" in text.output
    with session_factory() as session:  # the dry run fired nothing more
        assert len(service.list_firings(session=session)) == 1
