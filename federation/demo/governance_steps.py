"""Demo steps of governance: publish the standard policies, promote through gates, e-sign.

The champion alias is written only by a promotion: the first champions and the campaign
outcomes go through automatic (recorded) promotion gates; the governance step shows a
promotion refused by the default gate with its reasons, the requester refused when approving
their own request (four eyes), and a second person approving with an e-signature.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from federation.demo.context import DemoContext, DemoError
from federation.errors import Forbidden
from federation.governance_view import policies_table, promotion_view
from federation.schemas.auth import Role, UserCreate
from federation.schemas.governance import PromotionRead, PromotionStatus
from federation.schemas.registry import AliasName
from policies import standard_documents

if TYPE_CHECKING:
    from federation.hub_client import HubClient

#: The plant's first champion of a published baseline (automatic, recorded).
FIRST_CHAMPION_POLICY = "promotion-first-champion@1"
#: A campaign's personalized version at the plant that trained it (automatic, recorded).
CAMPAIGN_POLICY = "promotion-campaign-auto@1"
#: The fleet's default gate (per-plant RMSE, INT8 parity, contract, lineage, artifact).
DEFAULT_POLICY = "promotion-default@1"
#: Shadow slot: integrity gate plus one e-signed approval by someone else.
SHADOW_POLICY = "promotion-shadow@1"
#: Where the governance step proposes the campaign's global model.
GOVERNANCE_PLANT = "fd002"
APPROVER = UserCreate(username="quinn", printed_name="Quinn Quality", role=Role.DATA_SCIENTIST)
#: The demo approver's signing secret (a demo value; real ones are prompted for).
APPROVER_SECRET = "demo-signing-secret"


def publish_policies(ctx: DemoContext) -> None:
    """Publish the standard policy documents shipped in ``policies/documents/``."""
    assert ctx.hub is not None
    rows = [
        ctx.hub.publish_policy(json.dumps(doc.model_dump(mode="json")))
        for doc in standard_documents().values()
    ]
    ctx.console.print(policies_table(rows, title="Policies published on the hub"))


def promote_automatically(
    ctx: DemoContext, version_id: int, plant_id: str, policy: str
) -> PromotionRead:
    """Promote to champion under an automatic gate; a refusal stops the demo with its reasons."""
    assert ctx.hub is not None
    row = ctx.hub.promote(version_id, plant_id, policy=policy, reason="demo")
    if row.status != PromotionStatus.APPROVED:
        summary = row.decision.summary if row.decision else row.status.value
        raise DemoError(f"promotion of version {version_id} at {plant_id} {row.status}: {summary}")
    return row


def _approver_hub(ctx: DemoContext) -> HubClient:
    """Create the second person (user, signing secret via the CLI, token) and a client."""
    assert ctx.hub is not None
    if not any(u.username == APPROVER.username for u in ctx.hub.list_users().items):
        ctx.hub.create_user(APPROVER)
    result = subprocess.run(
        [sys.executable, "-m", "millwright", "hub", "set-signing-secret",
         "--username", APPROVER.username, "--secret-stdin"],
        input=APPROVER_SECRET + "\n", cwd=ctx.workdir, env=ctx.env, capture_output=True,
        text=True, check=False,
    )
    if result.returncode != 0:
        raise DemoError(f"set-signing-secret failed: {result.stderr.strip()}")
    token = ctx.hub.create_token(
        APPROVER.role, name="quinn laptop", username=APPROVER.username
    ).token
    return ctx.hub.with_token(token)


def govern_promotions(ctx: DemoContext) -> None:
    """Refused by the gate with reasons; own approval refused (four eyes); a second person signs."""
    assert ctx.hub is not None and ctx.campaign is not None
    global_id = ctx.campaign.version_id
    assert global_id is not None
    refused = ctx.hub.promote(global_id, GOVERNANCE_PLANT, policy=DEFAULT_POLICY,
                              reason="federated global model for the six-condition plant")
    ctx.console.print(promotion_view(refused))
    if refused.status != PromotionStatus.REFUSED:
        raise DemoError(f"expected the default gate to refuse, got {refused.status}")
    summary = refused.decision.summary if refused.decision else ""
    ctx.console.print(f"promotion refused by the gate: {summary}")

    pending = ctx.hub.promote(global_id, GOVERNANCE_PLANT, policy=SHADOW_POLICY,
                              alias=AliasName.SHADOW, reason="shadow the global model first")
    ctx.console.print(f"promotion {pending.id} {pending.status.value}: "
                      f"{pending.approvals}/{pending.approvals_required} approvals")
    try:
        ctx.hub.approve_promotion(pending.id, signing_secret="irrelevant")
    except Forbidden as exc:
        ctx.console.print(f"requester approving own request refused: {exc.code.value}: "
                          f"{exc.detail}")
    else:
        raise DemoError("the requester was allowed to approve their own promotion")
    with _approver_hub(ctx) as approver:
        approved = approver.approve_promotion(
            pending.id, signing_secret=APPROVER_SECRET, comment="integrity checks reviewed"
        )
    ctx.console.print(promotion_view(approved))
    if approved.status != PromotionStatus.APPROVED:
        raise DemoError(f"promotion {pending.id} is {approved.status} after the approval")
    sig = approved.signatures[0]
    ctx.console.print(
        f"approved with e-signature by {sig.printed_name} (user {sig.user_id}, "
        f"{sig.meaning.value}, {sig.signed_at:%Y-%m-%d %H:%M:%S}Z, bound to "
        f"{sig.binding_sha256[:16]}); "
        f"{GOVERNANCE_PLANT} shadow is now version {global_id}"
    )
