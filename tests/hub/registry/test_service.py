"""Registry services called directly: transactions, natural keys and lineage rules."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from federation.errors import Conflict, ErrorCode, InvalidInput, NotFound
from federation.schemas.registry import AliasName, VersionPage
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
            filters=service.VersionFilters(tag="stage=prod"),
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
            alias=AliasName.CHALLENGER,
            version_id=v1.id,
            actor="a",
        )
        moved = service.set_alias(
            session=session,
            plant_id="px",
            model="turbofan-rul",
            alias=AliasName.CHALLENGER,
            version_id=v2.id,
            actor="b",
        )
        assert moved.version_id == v2.id and moved.updated_by == "b"
        assignments = service.list_assignments(session=session, plant_id="px")
        assert [(a.alias, a.version) for a in assignments.items] == [(AliasName.CHALLENGER, "2")]


def test_plant_conflict_on_changed_enrollment(session_factory: Any) -> None:
    with session_factory() as session:
        factories.plant(session, "py")
        with pytest.raises(Conflict) as err:
            factories.plant(session, "py", site="elsewhere")
        assert err.value.code == ErrorCode.ALREADY_EXISTS


# Every filter the versions endpoint takes, alone and combined (the query is built once per
# combination, and on PostgreSQL the page is rendered to JSON by the database).
_FILTERS: list[dict[str, Any]] = [
    {},
    {"model": "turbofan-rul"},
    {"plant_id": "px"},
    {"tag": "stage"},
    {"tag": "stage=prod"},
    {"tag": "stage=nowhere"},
    {"plant_id": "px", "tag": "stage=prod"},
    {"model": "bearing", "plant_id": "py", "tag": "owner"},
    {"recipe_id": "RECIPE"},
    {"parent_id": "PARENT"},
]


def test_rendered_pages_equal_model_pages_for_every_filter(session_factory: Any) -> None:
    with session_factory() as session:
        factories.plant(session, "px")
        factories.plant(session, "py")
        factories.model(session)
        factories.model(session, "bearing")
        recipe = factories.recipe(session)
        parent = factories.version(session, label="0", plant_id="px", tags={"stage": "prod"})
        for i in range(1, 8):
            factories.version(
                session,
                "bearing" if i % 3 == 0 else "turbofan-rul",
                label=f"{i}.0",
                plant_id=("px", "py")[i % 2],
                parent_id=parent.id if i in (1, 2) else None,
                recipe_id=recipe.id if i % 2 else None,
                tags={"stage": ("prod", "dev")[i % 2], **({"owner": "ds"} if i > 4 else {})},
                hyperparameters={"lr": 1e-3, "layers": [16, 16], "note": "größe ✓"},
                metrics={"rmse": 18 + i, "mae": 0.1 * i},
                description=f'version {i} — "quoted"',
            )
        seen_nonempty = 0
        for template in _FILTERS:
            filters = {
                "model": None,
                "plant_id": None,
                "tag": None,
                "recipe_id": None,
                "parent_id": None,
            }
            filters.update(template)
            if filters["recipe_id"] == "RECIPE":
                filters["recipe_id"] = recipe.id
            if filters["parent_id"] == "PARENT":
                filters["parent_id"] = parent.id
            query = service.VersionFilters(**filters)
            for page_size in (1, 3, 50):
                token: str | None = None
                walked: list[int] = []
                while True:
                    rows, next_token = service.list_versions(
                        session=session, filters=query, page_size=page_size, page_token=token
                    )
                    body = service.render_versions_page(
                        session=session, filters=query, page_size=page_size, page_token=token
                    )
                    rendered = VersionPage.model_validate_json(body)
                    assert rendered == VersionPage(items=rows, next_page_token=next_token), (
                        template,
                        page_size,
                    )
                    walked += [r.id for r in rows]
                    if next_token is None:
                        break
                    token = next_token
                assert walked == sorted(walked, reverse=True)
                seen_nonempty += bool(walked)
        assert seen_nonempty >= 24  # every filter but the no-match tag found something


def test_rendered_page_names_a_missing_plant_or_model(session_factory: Any) -> None:
    with session_factory() as session:
        factories.model(session)

        def render(filters: service.VersionFilters, token: str | None = None) -> str:
            return service.render_versions_page(
                session=session, filters=filters, page_size=5, page_token=token
            )

        with pytest.raises(NotFound, match="nowhere"):
            render(service.VersionFilters(plant_id="nowhere"))
        with pytest.raises(NotFound, match="missing-model"):
            render(service.VersionFilters(model="missing-model"))
        with pytest.raises(InvalidInput):
            render(service.VersionFilters(), token="bm90LWEtdG9rZW4")
