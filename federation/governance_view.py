"""Rich tables of governance records (policies, promotions, signatures), for the CLI and demo."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from federation.schemas.governance import PolicyDiff, PolicyRead, PromotionRead, SignatureRead


def policies_table(policies: Iterable[PolicyRead], title: str = "Policies") -> Table:
    """Render published policies."""
    table = Table(title=title)
    for column in ("ref", "kind", "title", "sha256", "published", "by"):
        table.add_column(column)
    for p in policies:
        table.add_row(
            p.ref, p.kind, p.title, p.sha256[:12], f"{p.created_at:%Y-%m-%d %H:%M}", p.created_by
        )
    return table


def policy_diff_table(diff: PolicyDiff) -> Table:
    """Render the fields that differ between two policies."""
    table = Table(title=f"{diff.a} -> {diff.b}")
    for column in ("field", diff.a, diff.b):
        table.add_column(column)
    for change in diff.changes:
        table.add_row(change.field, repr(change.a), repr(change.b))
    return table


def signatures_table(signatures: Iterable[SignatureRead]) -> Table:
    """Render e-signatures: printed name, user, UTC time, meaning, binding, validity."""
    table = Table(title="Signatures")
    columns = ("printed name", "user id", "role", "signed (UTC)", "meaning", "bound to", "valid")
    for column in columns:
        table.add_column(column)
    for s in signatures:
        table.add_row(
            s.printed_name,
            str(s.user_id),
            s.role,
            f"{s.signed_at:%Y-%m-%d %H:%M:%S}Z",
            s.meaning.value,
            s.binding_sha256[:16],
            "yes" if s.valid else "NO",
        )
    return table


def promotion_view(p: PromotionRead) -> Group:
    """Render a promotion request: header, gate results, and its signatures."""
    head = Text(
        f"promotion {p.id}: {p.model} {p.version} (version {p.version_id}) -> {p.alias.value} "
        f"at {p.plant_id} | {p.status.value} | policy {p.policy_ref or '-'} | "
        f"approvals {p.approvals}/{p.approvals_required} | requested by {p.requested_by}"
        + (" | BREAK-GLASS" if p.break_glass else ""),
        style="bold",
    )
    parts: list[Table | Text] = [head]
    if p.decision is not None:
        parts.append(Text(p.decision.summary))
        rules = Table(title=f"Gate {p.decision.policy_ref}")
        for column in ("rule", "metric", "scope", "observed", "op", "threshold", "verdict"):
            rules.add_column(column)
        for r in p.decision.results:
            scope = str(r.scope.get("value") or r.scope.get("level") or "fleet")
            rules.add_row(
                r.rule, r.metric, scope, repr(r.observed), r.op, repr(r.threshold), r.verdict
            )
        parts.append(rules)
        for refusal in p.decision.refusals:
            parts.append(Text(f"refused: {refusal}", style="red"))
    parts.append(
        Text(f"evidence sha256 {p.evidence_sha256[:16]}  binding sha256 {p.binding_sha256[:16]}")
    )
    if p.signatures:
        parts.append(signatures_table(p.signatures))
    return Group(*parts)


def promotions_table(promotions: Iterable[PromotionRead], title: str = "Promotions") -> Table:
    """Render a list of promotion requests with their signers."""
    table = Table(title=title)
    for column in ("id", "version", "plant", "alias", "policy", "status", "approvals", "signed by"):
        table.add_column(column)
    for p in promotions:
        table.add_row(
            str(p.id),
            f"{p.model} {p.version}",
            p.plant_id,
            p.alias.value,
            p.policy_ref or "break-glass",
            p.status.value,
            f"{p.approvals}/{p.approvals_required}",
            ", ".join(f"{s.printed_name} ({s.meaning.value})" for s in p.signatures) or "-",
        )
    return table
