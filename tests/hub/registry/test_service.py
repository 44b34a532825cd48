"""Registry services called directly: transactions, natural keys and lineage rules."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from federation.errors import Conflict, ErrorCode, InvalidInput, NotFound
from federation.schemas.registry import AliasName
from hub.registry import service
from hub.registry.models import ModelVersion, VersionTag
from tests.hub import factories


def test_batch_is_all_or_nothing(session_factory: Any) -> None:
    with session_factory() as session:
        factories.model(session)
        batch = [factories.version_in(label="1"), factories.version_in(label="2", parent_id=999)]

        with pytest.raises(NotFound) as err:
            service.create_versions(session=session, versions_in=batch, actor="t")

        assert err.value.code == ErrorCode.NOT_FOUND
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert session.scalar(select(func.count()).select_from(VersionTag)) == 0


def test_retried_batch_returns_the_same_versions(session_factory: Any) -> None:
    with session_factory() as session:
        factories.model(session)
        batch = [factories.version_in(label=str(i)) for i in range(3)]
        first = [
            v.id for v in service.create_versions(session=session, versions_in=batch, actor="t")
        ]
        again = [
            v.id for v in service.create_versions(session=session, versions_in=batch, actor="t")
        ]
        assert first == again
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 3


def test_batch_refuses_repeated_labels_and_oversize(session_factory: Any) -> None:
    with session_factory() as session:
        factories.model(session)
        with pytest.raises(InvalidInput):
            service.create_versions(
                session=session, versions_in=[factories.version_in(label="1")] * 2, actor="t"
            )
        with pytest.raises(InvalidInput):
            service.create_versions(
                session=session,
                versions_in=[factories.version_in(label=str(i)) for i in range(3)],
                actor="t",
                max_batch=2,
            )


def test_parent_must_be_same_model(session_factory: Any) -> None:
    with session_factory() as session:
        factories.model(session, "a")
        factories.model(session, "b")
        parent = factories.version(session, "a", "1")
        with pytest.raises(InvalidInput):
            factories.version(session, "b", "1", parent_id=parent.id)


def test_tags_stay_in_sync_for_filtering(session_factory: Any) -> None:
    with session_factory() as session:
        factories.model(session)
        v = factories.version(session, tags={"stage": "dev"})
        service.set_tag(session=session, version_id=v.id, key="stage", value="prod")
        service.set_tag(session=session, version_id=v.id, key="owner", value="ds")
        service.delete_tag(session=session, version_id=v.id, key="owner")

        rows, _ = service.list_versions(
            session=session,
            model=None,
            plant_id=None,
            tag="stage=prod",
            recipe_id=None,
            parent_id=None,
            page_size=10,
            page_token=None,
        )
        assert [r.id for r in rows] == [v.id]
        assert rows[0].tags == {"stage": "prod"}
        with pytest.raises(NotFound):
            service.delete_tag(session=session, version_id=v.id, key="owner")


def test_alias_moves_and_records_who(session_factory: Any) -> None:
    with session_factory() as session:
        factories.plant(session, "px")
        factories.model(session)
        v1 = factories.version(session, label="1")
        v2 = factories.version(session, label="2", plant_id="px")
        service.set_alias(
            session=session,
            plant_id="px",
            model="turbofan-rul",
            alias=AliasName.CHAMPION,
            version_id=v1.id,
            actor="a",
        )
        moved = service.set_alias(
            session=session,
            plant_id="px",
            model="turbofan-rul",
            alias=AliasName.CHAMPION,
            version_id=v2.id,
            actor="b",
        )
        assert moved.version_id == v2.id and moved.updated_by == "b"
        assignments = service.list_assignments(session=session, plant_id="px")
        assert [(a.alias, a.version) for a in assignments.items] == [(AliasName.CHAMPION, "2")]


def test_plant_conflict_on_changed_enrollment(session_factory: Any) -> None:
    with session_factory() as session:
        factories.plant(session, "py")
        with pytest.raises(Conflict) as err:
            factories.plant(session, "py", site="elsewhere")
        assert err.value.code == ErrorCode.ALREADY_EXISTS
