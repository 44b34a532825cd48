"""HubClient round trip against the real hub app: what the plant node's outbox will call."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from federation.errors import Conflict, Forbidden, InvalidInput
from federation.hub_client import HubClient
from federation.schemas.metrics_registry import MetricKind
from hub.config import HubSettings
from tests.hub.fixtures import Tokens, snapshot
from tests.hub.metrics.reports import report, window


def test_submit_list_and_summarize_through_the_client(
    plant_hub: HubClient, admin_hub: HubClient, client: TestClient, tokens: Tokens
) -> None:
    rep = report(day=1)
    receipt = plant_hub.submit_metrics_report("fd001", rep, idempotency_key=str(rep.report_id))
    again = plant_hub.submit_metrics_report("fd001", rep, idempotency_key="another-key")
    admin_hub.submit_metrics_report("fd002", report("fd002", day=0), idempotency_key="x")

    assert receipt.report_id == rep.report_id and receipt.duplicate is False
    assert again.duplicate is True and again.received_at == receipt.received_at
    assert plant_hub.get_metrics_report("fd001", str(rep.report_id)) == rep

    executive = HubClient(client=client, token=tokens.executive, retries=0)
    rmse = list(executive.iter_metrics(kind=MetricKind.ESTIMATED, metric="rmse", page_size=1))
    assert [(o.plant_id, o.chunk) for o in rmse] == [
        ("fd002", 0),
        ("fd002", 1),
        ("fd001", 0),
        ("fd001", 1),
    ]
    start, end = window(1)
    ranged = executive.list_metrics(kind="estimated", start=start, end=end).items
    assert {o.plant_id for o in ranged} == {"fd001"}
    own = list(plant_hub.iter_metrics(kind="latency"))
    assert {o.plant_id for o in own} == {"fd001"} and len(own) == 3
    summary = executive.summarize_metrics(kind=MetricKind.LATENCY, metric="p99")
    assert sorted((o.plant_id, o.value) for o in summary.items) == [
        ("fd001", 9.0),
        ("fd002", 9.0),
    ]


def test_client_raises_the_hubs_errors(plant_hub: HubClient, hub_settings: HubSettings) -> None:
    plant_hub.submit_metrics_report("fd001", report(), idempotency_key="k")
    before = snapshot(hub_settings)
    with pytest.raises(Conflict):
        plant_hub.submit_metrics_report("fd001", report(rmse=99.0), idempotency_key="k2")
    with pytest.raises(InvalidInput):
        plant_hub.submit_metrics_report("fd001", report(day=3), idempotency_key="k")
    with pytest.raises(Forbidden):
        plant_hub.submit_metrics_report("fd002", report("fd002"), idempotency_key="k3")
    with pytest.raises(Forbidden):
        plant_hub.list_metrics(plant_id="fd002")
    assert snapshot(hub_settings) == before


def test_a_revision_goes_through_the_client_under_its_own_key(plant_hub: HubClient) -> None:
    first = report()
    plant_hub.submit_metrics_report("fd001", first, idempotency_key=str(first.report_id))
    revised = first.model_copy(update={"revision": 1, "chunks": first.chunks[:1]})

    receipt = plant_hub.submit_metrics_report(
        "fd001", revised, idempotency_key=f"{first.report_id}.r1"
    )

    assert receipt.revision == 1 and receipt.duplicate is False
    assert plant_hub.get_metrics_report("fd001", str(first.report_id)) == revised
