"""Promotions: the gate decides on frozen evidence, four eyes sign, governance sets champion."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.errors import Conflict, Forbidden, InvalidInput, Unauthenticated
from federation.hub_client import HubClient
from federation.schemas.governance import (
    LifecycleState,
    PromotionStatus,
    SignatureMeaning,
)
from federation.schemas.registry import AliasName
from hub.config import HubSettings
from tests.hub.fixtures import Tokens, auth, snapshot
from tests.hub.governance.conftest import DIGEST, SECRET, Governed, gate_yaml

API = "/api/v1"
MODEL = "turbofan-rul"


def _states(g: Governed, plant: str = "fd001") -> dict[int, LifecycleState]:
    return {i.version_id: i.state for i in g.admin.plant_lifecycle(plant).items}


def test_gate_refuses_with_reasons_and_sets_nothing(governed: Governed) -> None:
    # Execute
    refused = governed.requester.hub.promote(governed.bad, "fd001", policy="gate-test@1")

    # Assert
    assert refused.status == PromotionStatus.REFUSED and refused.decided_at is not None
    decision = refused.decision
    assert decision is not None and not decision.passed
    assert "validation.rmse 25.9 > 20" in decision.summary and "max_rmse" in decision.summary
    verdicts = {r.rule: (r.observed, r.verdict) for r in decision.results}
    assert verdicts["max_rmse"] == (25.9, "fail")
    assert verdicts["artifact_verified"] == (True, "pass")
    assert refused.evidence["values"]["validation.rmse"] == 25.9
    assert len(refused.evidence_sha256) == 64 and refused.evidence_sha256 != refused.binding_sha256
    assert governed.admin.list_aliases("fd001").items == []
    assert _states(governed) == {governed.bad: LifecycleState.REFUSED}


def test_four_eyes_e_signature_promotes_to_champion(
    governed: Governed, hub_settings: HubSettings
) -> None:
    # Prepare
    g = governed
    pending = g.requester.hub.promote(g.good, "fd001", policy="gate-test@1", reason="better RMSE")
    assert pending.status == PromotionStatus.PENDING_APPROVAL
    assert _states(g) == {g.good: LifecycleState.VALIDATED}
    assert g.approver and g.viewer and g.second  # made before the snapshot
    before = snapshot(hub_settings)

    # Execute: the requester, a wrong secret, a role the policy does not name, then a second person
    with pytest.raises(Forbidden) as own:
        g.requester.hub.approve_promotion(pending.id, signing_secret=SECRET)
    with pytest.raises(Unauthenticated) as wrong:
        g.approver.hub.approve_promotion(pending.id, signing_secret="not the secret")
    with pytest.raises(Forbidden) as viewer:
        g.viewer.hub.approve_promotion(pending.id, signing_secret=SECRET)
    unchanged = snapshot(hub_settings)
    approved = g.approver.hub.approve_promotion(
        pending.id, signing_secret=SECRET, comment="reviewed the evidence"
    )
    with pytest.raises(Conflict) as decided:
        g.second.hub.approve_promotion(pending.id, signing_secret=SECRET)

    # Assert
    assert own.value.code.value == "four_eyes" and own.value.status == 403
    assert wrong.value.code.value == "signature_invalid" and wrong.value.status == 401
    assert viewer.value.code.value == "forbidden"
    # The failed attempts changed nothing but the audit trail, where the wrong secret is recorded.
    trail = unchanged["rows"].pop("audit_entries")
    assert trail != before["rows"].pop("audit_entries") and unchanged == before
    failed = list(g.admin.iter_audit(action="signature.failed"))
    assert [(e.after or {}).get("user_id") for e in failed] == [
        g.requester.user_id,
        g.approver.user_id,
        g.viewer.user_id,
    ]
    assert [e.reason for e in failed] == ["four eyes", "wrong signing secret", "role executive"]
    assert all(e.subject == f"promotion/{pending.id}" for e in failed)
    assert approved.status == PromotionStatus.APPROVED and approved.approvals == 1
    [sig] = approved.signatures
    assert (sig.printed_name, sig.user_id, sig.meaning) == (
        "Quinn Quality",
        g.approver.user_id,
        SignatureMeaning.APPROVAL,
    )
    assert sig.valid and sig.binding_sha256 == approved.binding_sha256
    assert sig.signed_at.tzinfo is not None and sig.comment == "reviewed the evidence"
    assert decided.value.code.value == "conflict"
    champion = g.admin.get_alias("fd001", MODEL, AliasName.CHAMPION)
    assert champion.id == g.good
    assert _states(g) == {g.good: LifecycleState.CHAMPION}
    actions = [e.action for e in g.admin.iter_audit(subject=f"promotion/{pending.id}")]
    assert actions == [
        "promotion.request",
        *["signature.failed"] * 3,
        "signature.create",
        "promotion.decide",
    ]
    [alias_set] = g.admin.iter_audit(action="alias.set")
    assert alias_set.after == {"version_id": g.good, "promotion_id": pending.id}
    shown = g.admin.get_promotion(pending.id)
    assert shown.signatures == approved.signatures and shown.requested_by_user_id == (
        g.requester.user_id
    )


def test_two_approvers_and_the_previous_champion_retires(governed: Governed) -> None:
    g = governed
    g.admin.publish_policy(gate_yaml(version=2, required=0))
    g.admin.publish_policy(gate_yaml(version=3, required=2, threshold=30.0))
    first = g.requester.hub.promote(g.good, "fd001", policy="gate-test@2")  # auto-approved
    pending = g.requester.hub.promote(g.bad, "fd001", policy="gate-test@3")

    one = g.approver.hub.approve_promotion(pending.id, signing_secret=SECRET)
    with pytest.raises(Conflict):
        g.approver.hub.approve_promotion(pending.id, signing_secret=SECRET)  # once per person
    two = g.second.hub.approve_promotion(
        pending.id, signing_secret=SECRET, meaning=SignatureMeaning.RESPONSIBILITY
    )

    assert first.status == PromotionStatus.APPROVED and first.signatures == []
    assert one.status == PromotionStatus.PENDING_APPROVAL and one.approvals == 1
    assert two.status == PromotionStatus.APPROVED and two.approvals == 2
    assert g.admin.get_alias("fd001", MODEL, AliasName.CHAMPION).id == g.bad
    assert _states(g) == {g.good: LifecycleState.RETIRED, g.bad: LifecycleState.CHAMPION}


def test_changed_evidence_or_artifact_blocks_signing(
    governed: Governed, hub_settings: HubSettings
) -> None:
    g = governed
    pending = g.requester.hub.promote(g.good, "fd001", policy="gate-test@1")
    blob = Path(hub_settings.artifact_root)
    path = next(p for p in blob.rglob("*") if p.is_file() and DIGEST in str(p))
    original = path.read_bytes()
    path.write_bytes(b"swapped bytes")

    with pytest.raises(Conflict) as changed:
        g.approver.hub.approve_promotion(pending.id, signing_secret=SECRET)
    refused = g.requester.hub.promote(g.good, "fd002", policy="gate-test@1")
    path.write_bytes(original)

    assert changed.value.code.value == "evidence_changed"
    assert "artifact.verified" in changed.value.detail
    assert g.admin.get_promotion(pending.id).status == PromotionStatus.PENDING_APPROVAL
    assert refused.status == PromotionStatus.REFUSED
    assert refused.decision is not None and refused.decision.refusals
    assert "do not match the digest" in refused.decision.summary


def test_reject_and_bad_requests(governed: Governed, client: TestClient, tokens: Tokens) -> None:
    g = governed
    pending = g.requester.hub.promote(g.good, "fd001", policy="gate-test@1")
    with pytest.raises(Conflict) as twice:  # one pending request per version, plant and alias
        g.requester.hub.promote(g.good, "fd001", policy="gate-test@1")
    no_version, no_plant = (
        client.post(
            f"{API}/promotions",
            json={"version_id": version_id, "plant_id": plant, "policy": "gate-test@1"},
            headers=auth(tokens.admin),
        )
        for version_id, plant in ((999_999, "fd001"), (g.good, "fd999"))
    )
    rejected = g.approver.hub.reject_promotion(pending.id, signing_secret=SECRET, comment="no")
    with pytest.raises(InvalidInput):
        g.requester.hub.promote(g.good, "fd001", policy="rollout-default@1x")
    missing = client.post(
        f"{API}/promotions",
        json={"version_id": g.good, "plant_id": "fd001", "policy": "nope@1"},
        headers=auth(tokens.admin),
    )

    assert rejected.status == PromotionStatus.REJECTED
    assert [s.meaning for s in rejected.signatures] == [SignatureMeaning.REJECTION]
    assert _states(g) == {g.good: LifecycleState.REFUSED}
    assert g.admin.list_aliases("fd001").items == []
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert f"promotion {pending.id} " in twice.value.detail
    assert no_version.status_code == 404 and "version 999999" in no_version.json()["detail"]
    assert no_plant.status_code == 404 and "'fd999'" in no_plant.json()["detail"]


def test_break_glass_needs_a_reason_and_is_flagged(
    governed: Governed, client: TestClient, tokens: Tokens, app: FastAPI
) -> None:
    g = governed
    short = client.post(
        f"{API}/promotions/break-glass",
        json={"version_id": g.bad, "plant_id": "fd001", "reason": "now"},
        headers=auth(tokens.admin),
    )
    forced = g.admin.break_glass(g.bad, "fd001", reason="line down, restoring the last model")

    assert short.status_code == 422
    assert forced.break_glass and forced.status == PromotionStatus.BREAK_GLASS
    assert forced.decision is None and forced.policy_ref is None
    assert forced.evidence["values"]["validation.rmse"] == 25.9  # what was bypassed is kept
    assert g.admin.get_alias("fd001", MODEL, AliasName.CHAMPION).id == g.bad
    assert [p.id for p in g.admin.iter_promotions(status="break_glass")] == [forced.id]
    flagged = [e for e in g.admin.iter_audit() if "break_glass" in e.flags]
    assert [e.action for e in flagged] == ["break_glass", "alias.set"]
    assert flagged[0].reason == "line down, restoring the last model"


def test_two_concurrent_approvals_decide_once(governed: Governed) -> None:
    # Prepare: one approval needed, two people sign at the same moment.
    g = governed
    pending = g.requester.hub.promote(g.good, "fd001", policy="gate-test@1")
    signers = [g.approver, g.second]
    barrier = threading.Barrier(len(signers))
    outcomes: list[str] = []

    def sign(hub: HubClient) -> None:
        barrier.wait()
        try:
            hub.approve_promotion(pending.id, signing_secret=SECRET)
            outcomes.append("approved")
        except Conflict as exc:
            outcomes.append(exc.code.value)
        except Exception as exc:  # recorded so the assertion shows it
            outcomes.append(repr(exc))

    # Execute: separate connections (a client each on the same app), one transaction each.
    threads = [threading.Thread(target=sign, args=(s.hub,)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # Assert: exactly one signature and one decision, whoever came first.
    final = g.admin.get_promotion(pending.id)
    assert sorted(outcomes) == ["approved", "conflict"]
    assert final.status == PromotionStatus.APPROVED and len(final.signatures) == 1
    assert [e.action for e in g.admin.iter_audit(action="promotion.decide")] == [
        "promotion.decide"
    ]
