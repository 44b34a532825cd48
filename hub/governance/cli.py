"""``millwright hub policies|promote|approve|reject|promotions|break-glass``.

Every command calls the typed :class:`~federation.hub_client.HubClient` over HTTP; output is
a rich table, or ``--format json`` for scripts. A hub error prints its code and detail and
exits 1; ``promote`` also exits 1 when the gate refuses the promotion.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from federation.schemas.registry import AliasName
from hub.remote_cli import DEFAULT_URL, Format, FormatOpt, TokenOpt, UrlOpt
from hub.remote_cli import hub_client as _client
from hub.remote_cli import print_data as _print

if TYPE_CHECKING:
    from federation.schemas.governance import PromotionRead

policies_app = typer.Typer(no_args_is_help=True, help="Governance policies (publish, list, show).")


# ---------------------------------------------------------------- policies


@policies_app.command("publish")
def policies_publish(
    path: Annotated[Path, typer.Argument(help="Policy YAML (or JSON) file; - for stdin")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Publish a policy document (immutable once published; identical re-publish is a no-op)."""
    from federation.governance_view import policies_table

    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    with _client(url, token) as hub:
        row = hub.publish_policy(text)
    title = "published" if row.created else "already published (identical)"
    _print(row, output, lambda: policies_table([row], title=f"Policy {row.ref}: {title}"))


@policies_app.command("list")
def policies_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """List published policies."""
    from federation.governance_view import policies_table

    with _client(url, token) as hub:
        rows = list(hub.iter_policies(kind=kind))
    _print(rows, output, lambda: policies_table(rows))


@policies_app.command("show")
def policies_show(
    ref: Annotated[str, typer.Argument(help="id@version")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Show one published policy document."""
    from rich.syntax import Syntax

    with _client(url, token) as hub:
        row = hub.get_policy(ref)

    def render() -> Any:
        import yaml

        text = yaml.safe_dump(row.document, sort_keys=False)
        return Syntax(f"# {row.ref} sha256 {row.sha256}\n{text}", "yaml")

    _print(row, output, render)


@policies_app.command("diff")
def policies_diff(
    a: Annotated[str, typer.Argument(help="id@version")],
    b: Annotated[str, typer.Argument(help="id@version")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Show what changed from policy A to policy B."""
    from federation.governance_view import policy_diff_table

    with _client(url, token) as hub:
        result = hub.diff_policies(a, b)
    _print(result, output, lambda: policy_diff_table(result))


# ---------------------------------------------------------------- promotions


def _show_promotion(row: PromotionRead, output: Format) -> None:
    from federation.governance_view import promotion_view

    _print(row, output, lambda: promotion_view(row))


def promote(
    version_id: Annotated[int, typer.Argument(help="Version id")],
    plant: Annotated[str, typer.Option("--plant", help="Target plant")],
    policy: Annotated[str, typer.Option("--policy", help="Promotion gate policy, id@version")],
    alias: Annotated[AliasName, typer.Option(help="Target alias")] = AliasName.CHAMPION,
    reason: Annotated[str, typer.Option(help="Why (recorded)")] = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Request a promotion: the gate decides on fresh evidence (exit 1 when refused)."""
    from federation.schemas.governance import PromotionStatus

    with _client(url, token) as hub:
        row = hub.promote(version_id, plant, policy=policy, alias=alias, reason=reason)
    _show_promotion(row, output)
    if row.status == PromotionStatus.REFUSED:
        raise typer.Exit(1)


def _secret(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Signing secret", hide_input=True))


SecretStdinOpt = Annotated[
    bool, typer.Option("--secret-stdin", help="Read the signing secret from stdin's first line")
]


def approve(
    promotion_id: Annotated[int, typer.Argument(help="Promotion id")],
    meaning: Annotated[str, typer.Option(help="approval, review or responsibility")] = "approval",
    comment: Annotated[str, typer.Option(help="Recorded with the signature")] = "",
    secret_stdin: SecretStdinOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Sign an approval: your token plus your signing secret, re-entered for each signature."""
    from federation.schemas.governance import SignatureMeaning

    try:
        chosen = SignatureMeaning(meaning)
    except ValueError as exc:
        raise typer.BadParameter(f"unknown meaning '{meaning}'") from exc
    secret = _secret(secret_stdin)
    with _client(url, token) as hub:
        row = hub.approve_promotion(
            promotion_id, signing_secret=secret, meaning=chosen, comment=comment
        )
    _show_promotion(row, output)


def reject(
    promotion_id: Annotated[int, typer.Argument(help="Promotion id")],
    comment: Annotated[str, typer.Option(help="Why (recorded with the signature)")] = "",
    secret_stdin: SecretStdinOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Sign a rejection of a pending promotion."""
    secret = _secret(secret_stdin)
    with _client(url, token) as hub:
        row = hub.reject_promotion(promotion_id, signing_secret=secret, comment=comment)
    _show_promotion(row, output)


def promotions(
    promotion_id: Annotated[int | None, typer.Argument(help="Show this one in full")] = None,
    plant: Annotated[str | None, typer.Option("--plant", help="Only this plant")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """List promotion requests, or show one with its decision and signatures."""
    from federation.governance_view import promotions_table

    with _client(url, token) as hub:
        if promotion_id is not None:
            _show_promotion(hub.get_promotion(promotion_id), output)
            return
        rows = list(hub.iter_promotions(plant_id=plant, status=status))
    _print(rows, output, lambda: promotions_table(rows))


def break_glass(
    version_id: Annotated[int, typer.Argument(help="Version id")],
    plant: Annotated[str, typer.Option("--plant", help="Target plant")],
    reason: Annotated[str, typer.Option(help="Why (required, recorded, flagged)")],
    alias: Annotated[AliasName, typer.Option(help="Target alias")] = AliasName.CHAMPION,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Admin override: set an alias without gate or approvals (flagged on the audit trail)."""
    with _client(url, token) as hub:
        row = hub.break_glass(version_id, plant, reason=reason, alias=alias)
    _show_promotion(row, output)


def mount(app: typer.Typer) -> None:
    """Add the governance commands to ``millwright hub``."""
    for name, command in (
        ("promote", promote),
        ("approve", approve),
        ("reject", reject),
        ("promotions", promotions),
        ("break-glass", break_glass),
    ):
        app.command(name)(command)
    app.add_typer(policies_app, name="policies")
