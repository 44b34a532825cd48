"""The node follows the hub: conditional polls, sync on change, serving and failure reports.

Also the hub's staging aliases: shadow and challenger stage the version with the node-local
rollout (actor ``hub``), withdrawn when the hub drops them, never touching an engineer's.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from federation.errors import Conflict
from federation.schemas.registry import AliasName, Assignment, AssignmentList
from plant_node.config import NodeSettings, RolloutMode
from plant_node.deps import NodeState
from plant_node.main import create_app
from plant_node.outbox.models import OutboxItem
from plant_node.serving.cache import STAGED_MARKER, ModelCache
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
        #: The staging aliases (shadow, challenger): version and when it was pointed.
        self.staging: dict[AliasName, tuple[str, dt.datetime]] = {}
        self.blobs: dict[str, bytes] = {}
        self.polls: list[str | None] = []

    def stage(self, alias: AliasName, version: str | None, at: dt.datetime = NOW) -> None:
        """Point a staging alias at ``version`` (``None`` drops it), as the rollout engine does."""
        if version is None:
            self.staging.pop(alias, None)
        else:
            self.staging[alias] = (version, at)

    def _item(self, alias: AliasName, version: str, at: dt.datetime) -> Assignment:
        return Assignment(
            model="ai4i-mlp",
            alias=alias,
            version_id=1,
            version=version,
            recipe_id=None,
            artifact_digest=f"d{version}",
            artifact_size_bytes=None,
            updated_at=at,
        )

    def _listing(self) -> AssignmentList:
        items = [self._item(AliasName.CHAMPION, self.champion, self.pointed_at)]
        items += [self._item(a, v, at) for a, (v, at) in sorted(self.staging.items())]
        return AssignmentList(plant_id="plant-t", items=items)

    def poll_assignments(
        self, plant_id: str, etag: str | None = None
    ) -> tuple[AssignmentList | None, str | None]:
        self.polls.append(etag)
        staged = ",".join(f"{a}={v}@{t.timestamp():.0f}" for a, (v, t) in self.staging.items())
        tag = f'"{self.champion}-{self.pointed_at.timestamp():.0f}-{staged}"'
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


def _payloads(state: NodeState, since: int = 0) -> list[dict[str, object]]:
    """The rollout events queued after the first ``since``, as (kind, payload) dicts."""
    with state.session_factory() as session:
        rows = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        found = [{"kind": r.kind, **r.payload} for r in rows if r.kind.startswith("rollout.")]
    return found[since:]


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


def _follower(hub: Hub, state: NodeState) -> HubFollower:
    assert state.serving is not None
    return HubFollower(
        client=hub,
        plant_id="plant-t",
        serving=state.serving,
        source=HubModelSource(hub, "plant-t"),
        session_factory=state.session_factory,
    )


def test_hub_shadow_then_canary_stage_on_the_node_and_are_withdrawn(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: object,
    ai4i_records: list[dict[str, object]],
) -> None:
    # Prepare: the node serves 1; the hub holds 2, which a rollout stages at this plant
    hub = Hub()
    hub.champion = "1"
    hub.blobs["d2"] = _tar(ai4i_model(tmp_path / "hub", ai4i_state, "2"))  # type: ignore[arg-type]
    settings = served_settings.model_copy(
        update={"scheduler_enabled": False, "canary_fraction": 1.0}
    )
    with TestClient(create_app(settings), headers=auth()) as client:
        state: NodeState = client.app.state.node  # type: ignore[attr-defined]
        assert state.serving is not None
        runtime = state.serving.runtimes["ai4i"]
        follower = _follower(hub, state)
        assert follower.poll() is True
        assert _events(state) == [("rollout.serving", "1", "ai4i-mlp")]

        def predict() -> dict[str, object]:
            body = {"baseline": "ai4i", "records": ai4i_records[:4]}
            response = client.post("/v1/predict", json=body)
            assert response.status_code == 200, response.text
            return response.json()["predictions"][0]  # type: ignore[no-any-return]

        def challenger() -> dict[str, object] | None:
            return client.get("/v1/rollout").json()["ai4i"]["challenger"]  # type: ignore[no-any-return]

        # Execute + Assert: shadow -> fetched, verified, staged; the champion answers
        hub.stage(AliasName.SHADOW, "2")
        assert follower.poll() is True
        staged = challenger()
        assert staged is not None
        assert (staged["version"], staged["mode"], staged["staged_by"]) == ("2", "shadow", "hub")
        cached = ModelCache(settings.cache_path).versions("ai4i")
        assert [p.name for p in cached] == ["2", "1"]
        assert (cached[0] / STAGED_MARKER).is_file()  # fetched to stage, not to serve
        assert runtime.current is not None and runtime.current.version == "1"
        assert runtime.previous is None  # the staged version is never the champion's fallback
        answer = predict()
        assert (answer["model_version"], answer["role"]) == ("1", "champion")
        predict()
        staged = challenger()
        assert staged is not None and staged["rows"] == 8 and staged["failed_rows"] == 0
        started = _payloads(state)[-1]
        assert (started["kind"], started["model_version"], started["mode"]) == (
            "rollout.started", "2", "shadow",
        )  # fmt: skip
        assert (started["actor"], started["model"]) == ("hub", "ai4i-mlp")
        # the stats the hub's rollout engine reads describe the staged version
        follower.stats.interval_s = 0.001
        follower.stats.due()
        time.sleep(0.002)
        assert follower.report_stats() >= 1
        shadow_stats = [
            p for p in _payloads(state) if p["kind"] == "rollout.stats" and p["role"] == "shadow"
        ]
        assert len(shadow_stats) == 1
        assert (shadow_stats[0]["model"], shadow_stats[0]["model_version"]) == ("ai4i-mlp", "2")
        assert shadow_stats[0]["stats"]["samples"] == 8  # type: ignore[index]
        assert shadow_stats[0]["stats"]["fallbacks"] == 0  # type: ignore[index]

        # The engine moves the plant to canary: challenger set, shadow dropped, same version
        mark = len(_payloads(state))
        hub.stage(AliasName.CHALLENGER, "2", NOW + dt.timedelta(minutes=1))
        hub.stage(AliasName.SHADOW, None)
        assert follower.poll() is True
        staged = challenger()
        assert staged is not None
        assert (staged["version"], staged["mode"], staged["staged_by"]) == ("2", "canary", "hub")
        assert staged["rows"] == 8  # the shadow's record goes on: the hub counts on from it
        # the champion was reloaded from the cache on this change: 2 is newest, still not its
        # fallback
        assert runtime.current.version == "1" and runtime.previous is None
        kinds = [(p["kind"], p.get("mode")) for p in _payloads(state, mark)]
        assert kinds == [("rollout.started", "canary")]  # no withdrawal, nothing to count against
        answer = predict()  # canary share 1.0: the staged version answers
        assert (answer["model_version"], answer["role"]) == ("2", "challenger")
        assert follower.poll() is False  # unchanged: nothing restaged
        assert len(_payloads(state, mark)) == 1

        # The hub drops the alias (its wave was aborted): withdrawn, the champion answers alone
        hub.stage(AliasName.CHALLENGER, None)
        assert follower.poll() is True
        assert challenger() is None
        withdrawn = _payloads(state, mark)[1:]
        assert [(p["kind"], p["model_version"], p["actor"]) for p in withdrawn] == [
            ("rollout.withdrawn", "2", "hub"),
        ]
        assert "hub withdrew 2" in str(withdrawn[0]["reason"])
        assert withdrawn[0]["stats"]["samples"] == 12  # type: ignore[index]
        answer = predict()
        assert (answer["model_version"], answer["role"]) == ("1", "champion")
        assert runtime.current.version == "1"


def test_hub_staging_leaves_an_engineers_challenger_alone_and_survives_bad_versions(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: object,
    ai4i_records: list[dict[str, object]],
) -> None:
    # Prepare: 2 is cached for the engineer; the hub has 3 (good) and 4 (does not verify)
    ModelCache(served_settings.cache_path).install(
        ai4i_model(tmp_path / "local", ai4i_state, "2")  # type: ignore[arg-type]
    )
    hub = Hub()
    hub.champion = "1"
    hub.blobs["d3"] = _tar(ai4i_model(tmp_path / "hub", ai4i_state, "3"))  # type: ignore[arg-type]
    broken = ai4i_model(tmp_path / "hub", ai4i_state, "4")  # type: ignore[arg-type]
    (broken / "model.bin").write_bytes(b"not the weights the manifest hashes")
    hub.blobs["d4"] = _tar(broken)
    # the node's guard rolls a challenger back after 3 answers slower than 1 ns (any answer)
    settings = served_settings.model_copy(
        update={
            "scheduler_enabled": False,
            "rollback_min_samples": 3,
            "rollback_max_p99_ms": 1e-6,
        }
    )
    with TestClient(create_app(settings), headers=auth()) as client:
        state: NodeState = client.app.state.node  # type: ignore[attr-defined]
        follower = _follower(hub, state)
        assert follower.poll() is True

        def predict() -> dict[str, object]:
            body = {"baseline": "ai4i", "records": ai4i_records[:2]}
            response = client.post("/v1/predict", json=body)
            assert response.status_code == 200, response.text
            return response.json()["predictions"][0]  # type: ignore[no-any-return]

        def challenger() -> tuple[object, object, object] | None:
            found = client.get("/v1/rollout").json()["ai4i"]["challenger"]
            return None if found is None else (found["version"], found["mode"], found["staged_by"])

        # Execute + Assert: an engineer's shadow holds the slot; the hub's shadow waits
        local = client.post("/v1/rollout", json={"baseline": "ai4i", "version": "2"})
        assert local.status_code == 200, local.text
        mark = len(_payloads(state))
        hub.stage(AliasName.SHADOW, "3")
        assert follower.poll() is True
        assert challenger() == ("2", "shadow", "engineer:test-engineer")
        assert follower.poll() is False  # the wait is reported once, not every poll
        deferred = _payloads(state, mark)
        assert [(p["kind"], p["model_version"]) for p in deferred] == [("rollout.deferred", "3")]
        # The hub drops its shadow: the engineer's challenger is not the hub's to withdraw
        hub.stage(AliasName.SHADOW, None)
        assert follower.poll() is True
        assert challenger() == ("2", "shadow", "engineer:test-engineer")
        assert len(_payloads(state, mark)) == 1
        # The hub stages 3 again; once the engineer withdraws 2, the next poll (a 304) stages it
        hub.stage(AliasName.SHADOW, "3", NOW + dt.timedelta(minutes=1))
        assert follower.poll() is True
        assert challenger() == ("2", "shadow", "engineer:test-engineer")
        assert client.delete("/v1/rollout/ai4i").status_code == 204
        assert follower.poll() is False
        assert challenger() == ("3", "shadow", "hub")

        # The node's guard rolls 3 back on its own breach: reported, and not staged again
        for _ in range(3):
            assert predict()["model_version"] == "1"
        assert challenger() is None
        mark = len(_payloads(state))
        assert follower.poll() is False
        assert challenger() is None and _payloads(state, mark) == []
        rolled = [p for p in _payloads(state) if p["kind"] == "rollout.rolled_back"]
        assert [(p["model_version"], p["actor"], p["model"]) for p in rolled][-1] == (
            "3", "node", "ai4i-mlp",
        )  # fmt: skip

        # A version that does not verify: load_failed once, the champion goes on serving
        hub.stage(AliasName.SHADOW, "4", NOW + dt.timedelta(minutes=2))
        assert follower.poll() is True
        assert challenger() is None
        failed = _payloads(state, mark)
        assert [(p["kind"], p["model_version"], p["role"]) for p in failed] == [
            ("rollout.load_failed", "4", "shadow"),
        ]
        assert "could not fetch, verify or compile" in str(failed[0]["reason"])
        assert "4" not in [p.name for p in ModelCache(settings.cache_path).versions("ai4i")]
        assert predict()["model_version"] == "1"
        assert follower.poll() is False
        assert len(_payloads(state, mark)) == 1  # one attempt per pointing
        # A canary pointing at the broken version is a new pointing: tried (and failed) once
        hub.stage(AliasName.CHALLENGER, "4", NOW + dt.timedelta(minutes=3))
        assert follower.poll() is True
        assert [(p["kind"], p["role"]) for p in _payloads(state, mark)][1:] == [
            ("rollout.load_failed", "canary"),
        ]
        assert predict()["model_version"] == "1"


def test_a_hub_stage_never_replaces_a_challenger_an_engineer_staged_meanwhile(
    served_settings: NodeSettings, tmp_path: Path, ai4i_state: object
) -> None:
    # Prepare: 2 and 3 cached; the engineer stages 2 (as if between the follower's status
    # read and its stage call)
    cache = ModelCache(served_settings.cache_path)
    for version in ("2", "3"):
        cache.install(ai4i_model(tmp_path / version, ai4i_state, version))  # type: ignore[arg-type]
    settings = served_settings.model_copy(update={"scheduler_enabled": False})
    with TestClient(create_app(settings), headers=auth()) as client:
        state: NodeState = client.app.state.node  # type: ignore[attr-defined]
        assert state.serving is not None
        local = client.post("/v1/rollout", json={"baseline": "ai4i", "version": "2"})
        assert local.status_code == 200, local.text

        # Execute: the hub follower's stage, which keeps others' challengers
        with pytest.raises(Conflict, match="staged by engineer:test-engineer"):
            state.serving.start_rollout(
                "ai4i", "3", RolloutMode.SHADOW, actor="hub", keep_others=True
            )

        # Assert: the engineer's challenger still holds the slot; the hub may restage its own
        found = client.get("/v1/rollout").json()["ai4i"]["challenger"]
        assert (found["version"], found["staged_by"]) == ("2", "engineer:test-engineer")
        assert client.delete("/v1/rollout/ai4i").status_code == 204
        state.serving.start_rollout("ai4i", "3", RolloutMode.SHADOW, actor="hub", keep_others=True)
        state.serving.start_rollout("ai4i", "3", RolloutMode.CANARY, actor="hub", keep_others=True)
        found = client.get("/v1/rollout").json()["ai4i"]["challenger"]
        assert (found["version"], found["mode"], found["staged_by"]) == ("3", "canary", "hub")
