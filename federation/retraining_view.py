"""Rich tables of retraining requests and their chains (``millwright hub retraining``)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group
from rich.table import Table

from federation.schemas.retraining import RetrainingChain, RetrainingRequestRead


def requests_table(rows: Iterable[RetrainingRequestRead]) -> Table:
    """Render a list of retraining requests, newest first."""
    table = Table(title="Retraining requests")
    for column in (
        "plant", "request", "model", "trigger", "fired", "decision", "candidate", "outcome",
        "reasons",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.plant_id,
            r.id,
            f"{r.model} v{r.version_id}",
            f"{r.trigger} ({r.condition.value})",
            r.fired_at.strftime("%Y-%m-%d %H:%M"),
            r.decision.value,
            "" if r.candidate_version_id is None else str(r.candidate_version_id),
            "" if r.candidate_outcome is None else r.candidate_outcome.value,
            "; ".join(r.reasons),
        )
    return table


def chain_view(chain: RetrainingChain) -> Group:
    """Render request -> decision -> candidate -> promotion with the audit entries."""
    r = chain.request
    steps = Table(title=f"Retraining {r.plant_id}/{r.id}", show_header=False)
    steps.add_column("step")
    steps.add_column("detail")
    evidence = ", ".join(f"{k}={v:g}" for k, v in sorted(r.evidence.items()))
    steps.add_row(
        "request",
        f"{r.trigger} ({r.condition.value}) of {r.policy} fired {r.fired_at:%Y-%m-%d %H:%M} "
        f"on {r.model} v{r.version_id}; evidence {evidence or '-'}",
    )
    steps.add_row("decision", f"{r.decision.value}: {'; '.join(r.reasons)}")
    if chain.candidate is not None:
        c = chain.candidate
        steps.add_row("candidate", f"{c.model} {c.version} (id {c.id})")
    elif r.candidate_outcome is not None:
        steps.add_row("candidate", r.candidate_outcome.value)
    else:
        steps.add_row("candidate", "-")
    if chain.promotion is not None:
        p = chain.promotion
        steps.add_row("promotion", f"{p.id} {p.status.value} at {p.plant_id}")
    else:
        steps.add_row("promotion", "-")
    audit = Table(title="Audit")
    for column in ("seq", "at", "actor", "action", "subject", "reason"):
        audit.add_column(column)
    for e in chain.audit:
        audit.add_row(str(e.seq), e.at, e.actor, e.action, e.subject, e.reason or "")
    return Group(steps, audit)
