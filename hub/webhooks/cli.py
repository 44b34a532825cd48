"""``millwright hub webhooks create|list|delete|deliveries|redeliver|rotate-secret``.

Every command calls the typed :class:`~federation.hub_client.HubClient` over HTTP (admin
token); output is a rich table, or ``--format json`` for scripts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hub.remote_cli import DEFAULT_URL, Format, FormatOpt, TokenOpt, UrlOpt
from hub.remote_cli import hub_client as _client
from hub.remote_cli import print_data as _print

if TYPE_CHECKING:
    from rich.table import Table

    from federation.schemas.rollouts import WebhookRead

webhooks_app = typer.Typer(no_args_is_help=True, help="Signed webhook subscriptions (admin).")


def _subscriptions_table(rows: list[WebhookRead]) -> Table:
    from rich.table import Table

    table = Table(title="Webhook subscriptions")
    for column in ("id", "url", "events", "pending", "delivered", "failed"):
        table.add_column(column)
    for r in rows:
        events = ", ".join(e.value for e in r.events)
        table.add_row(str(r.id), r.url, events, str(r.pending), str(r.delivered), str(r.failed))
    return table


@webhooks_app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="http(s) URL of the receiver")],
    event: Annotated[
        list[str],
        typer.Option("--event", help="Event type (repeat); see the README's webhook event list"),
    ],
    description: Annotated[str, typer.Option(help="What the receiver is")] = "",
    hub: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Subscribe a URL; prints the signing secret once."""
    from federation.schemas.rollouts import WebhookEvent

    known = {e.value for e in WebhookEvent}
    unknown = sorted(set(event) - known)
    if unknown:
        raise typer.BadParameter(
            f"unknown event type(s) {unknown}; one of: {', '.join(sorted(known))}",
            param_hint="--event",
        )
    with _client(hub, token) as client:
        row = client.create_webhook(url, [WebhookEvent(e) for e in event], description=description)
    _print(row, output, lambda: f"webhook {row.id} created; secret (shown once): {row.secret}")


@webhooks_app.command("list")
def list_(
    hub: UrlOpt = DEFAULT_URL, token: TokenOpt = "", output: FormatOpt = Format.TABLE
) -> None:
    """List subscriptions with their delivery counts."""
    with _client(hub, token) as client:
        rows = list(client.list_webhooks().items)
    _print(rows, output, lambda: _subscriptions_table(rows))


@webhooks_app.command("delete")
def delete(
    webhook_id: Annotated[int, typer.Argument(help="Subscription id")],
    hub: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Remove a subscription and its undelivered events."""
    with _client(hub, token) as client:
        client.delete_webhook(webhook_id)
    typer.echo(f"webhook {webhook_id} deleted")


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: Annotated[int, typer.Argument(help="Subscription id")],
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    hub: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Show the delivery log: each event with every attempt (status code, latency, error)."""
    from rich.table import Table

    with _client(hub, token) as client:
        rows = list(client.list_webhook_deliveries(webhook_id, status=status).items)

    def table() -> Table:
        out = Table(title=f"Deliveries of webhook {webhook_id}")
        for column in ("id", "webhook-id", "event", "status", "attempts"):
            out.add_column(column)
        for r in rows:
            log = "; ".join(
                f"{a.status_code or '-'} {a.latency_ms:.0f} ms {a.error[:40]}".strip()
                for a in r.log
            )
            out.add_row(str(r.id), r.message_id, r.event_type, r.status, log or "-")
        return out

    _print(rows, output, table)


@webhooks_app.command("redeliver")
def redeliver(
    webhook_id: Annotated[int, typer.Argument(help="Subscription id")],
    delivery_id: Annotated[int, typer.Argument(help="Delivery id")],
    hub: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Queue a delivery again (same webhook-id, fresh attempt budget)."""
    with _client(hub, token) as client:
        row = client.redeliver_webhook(webhook_id, delivery_id)
    _print(row, output, lambda: f"delivery {row.id} ({row.message_id}) queued again")


@webhooks_app.command("rotate-secret")
def rotate_secret(
    webhook_id: Annotated[int, typer.Argument(help="Subscription id")],
    grace_seconds: Annotated[
        float, typer.Option(help="How long the old secret still signs")
    ] = 86400.0,
    hub: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Rotate the signing secret (printed once); both sign during the grace period."""
    with _client(hub, token) as client:
        row = client.rotate_webhook_secret(webhook_id, grace_seconds=grace_seconds)
    _print(row, output, lambda: f"webhook {row.id} new secret (shown once): {row.secret}")


def mount(app: typer.Typer) -> None:
    """Add the webhook commands to ``millwright hub``."""
    app.add_typer(webhooks_app, name="webhooks")
