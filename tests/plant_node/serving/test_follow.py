"""The node follows the hub: conditional polls, sync on change, serving and failure reports."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from federation.schemas.registry import AliasName, Assignment, AssignmentList
from plant_node.config import NodeSettings
from plant_node.deps import NodeState
from plant_node.main import create_app
from plant_node.outbox.models import OutboxItem
from plant_node.serving.follow import HubFollower
from plant_node.serving.hub_source import HubModelSource
from tests.plant_node.keys import auth
from tests.plant_node.serving.conftest import ai4i_model

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


class Hub:
    """The hub's assignments endpoint and artifact store, as the node sees them over HTTP."""

    def __init__(self) -> None:
        self.champion = ""
        self.pointed_at = NOW
        self.blobs: dict[str, bytes] = {}
        self.polls: list[str | None] = []

    def _listing(self) -> AssignmentList:
        item = Assignment(
            model="ai4i-mlp",
            alias=AliasName.CHAMPION,
            version_id=1,
            version=self.champion,
            recipe_id=None,
            artifact_digest=f"d{self.champion}",
            artifact_size_bytes=None,
            updated_at=self.pointed_at,
        )
        return AssignmentList(plant_id="plant-t", items=[item])

    def poll_assignments(
        self, plant_id: str, etag: str | None = None
    ) -> tuple[AssignmentList | None, str | None]:
        self.polls.append(etag)
        tag = f'"{self.champion}-{self.pointed_at.timestamp():.0f}"'
        return (None, tag) if etag == tag else (self._listing(), tag)

    def get_assignments(self, plant_id: str) -> AssignmentList:
        return self._listing()

    def download_artifact(self, digest: str, dest: Path) -> int:
        dest.write_bytes(self.blobs[digest])
        return len(self.blobs[digest])


def _tar(src: Path) -> bytes:
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w:gz") as tar:
        tar.add(src, arcname="export")
    return blob.getvalue()


def _events(state: NodeState) -> list[tuple[str, str, str | None]]:
    with state.session_factory() as session:
        rows = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        return [
            (r.kind, r.payload["model_version"], r.payload.get("model"))
            for r in rows
            if r.kind.startswith("rollout.")
        ]


def test_node_follows_champion_changes_and_reports_failures(
    served_settings: NodeSettings, tmp_path: Path, ai4i_state: object
) -> None:
    hub = Hub()
    hub.blobs["d2"] = _tar(ai4i_model(tmp_path / "hub", ai4i_state, "2"))  # type: ignore[arg-type]
    broken = ai4i_model(tmp_path / "hub", ai4i_state, "3")  # type: ignore[arg-type]
    (broken / "model.bin").write_bytes(b"not the weights the manifest hashes")
    hub.blobs["d3"] = _tar(broken)
    settings = served_settings.model_copy(update={"scheduler_enabled": False})
    with TestClient(create_app(settings), headers=auth()) as client:
        state: NodeState = client.app.state.node  # type: ignore[attr-defined]
        assert state.serving is not None
        runtime = state.serving.runtimes["ai4i"]
        assert runtime.current is not None and runtime.current.version == "1"
        follower = HubFollower(
            client=hub,
            plant_id="plant-t",
            serving=state.serving,
            source=HubModelSource(hub, "plant-t"),
            session_factory=state.session_factory,
        )
        # A rollback (or a promotion) moved champion to 2: the node swaps and confirms once.
        hub.champion = "2"
        assert follower.poll() is True
        assert runtime.current.version == "2"
        assert client.get("/v1/rollout").json()["ai4i"]["champion"] == "2"
        assert follower.poll() is False  # 304: nothing to do
        assert hub.polls[0] is None and hub.polls[1] is not None  # If-None-Match sent
        assert _events(state) == [("rollout.serving", "2", "ai4i-mlp")]
        # A version that does not verify: keep serving 2 and report the failure.
        hub.champion = "3"
        assert follower.poll() is True
        assert runtime.current.version == "2"
        assert _events(state)[1:] == [("rollout.load_failed", "3", "ai4i-mlp")]
        # Back to 2 (the hub rolled back): already serving it; the new pointing is confirmed.
        hub.champion = "2"
        hub.pointed_at = NOW + dt.timedelta(minutes=5)
        assert follower.poll() is True
        assert runtime.current.version == "2"
        assert _events(state)[2:] == [("rollout.serving", "2", "ai4i-mlp")]
        assert follower.poll() is False
        assert len(_events(state)) == 3
