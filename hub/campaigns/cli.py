"""``millwright hub campaigns ...``: start, follow, list and cancel campaigns over HTTP."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from federation.schemas.campaigns import CampaignCreate, CampaignRead, CampaignStrategy

if TYPE_CHECKING:
    from federation.hub_client import HubClient

app = typer.Typer(no_args_is_help=True, help="Federated campaigns (through the hub's API).")

UrlOpt = Annotated[str, typer.Option("--url", envvar="MILLWRIGHT_HUB_URL", help="Hub base URL")]
TokenOpt = Annotated[
    str, typer.Option("--token", envvar="MILLWRIGHT_HUB_TOKEN", help="Bearer token")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the campaign as JSON.")]
DEFAULT_URL = "http://127.0.0.1:8100"


def _client(url: str, token: str) -> HubClient:
    from federation.hub_client import HubClient

    return HubClient(url, token=token)


def _round_line(campaign: CampaignRead) -> str:
    last = campaign.round_records[-1] if campaign.round_records else None
    parts = [f"campaign {campaign.id} {campaign.status.value}",
             f"round {campaign.rounds_completed}/{campaign.rounds}"]
    if last is not None:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in last.evaluate.aggregated.items())
        parts += [f"participants {','.join(last.participants) or '-'}", metrics,
                  f"{last.bytes_total} bytes", f"{last.seconds:.1f}s"]
    if campaign.dropouts:
        parts.append(f"dropped {','.join(sorted({d.plant_id for d in campaign.dropouts}))}")
    if campaign.rejections:
        parts.append(f"rejected {','.join(sorted({r.plant_id for r in campaign.rejections}))}")
    return " | ".join(p for p in parts if p)


def _show(campaign: CampaignRead, as_json: bool) -> None:
    if as_json:
        typer.echo(campaign.model_dump_json(indent=2))
        return
    typer.echo(_round_line(campaign))
    for record in campaign.round_records:
        per_plant = "; ".join(
            f"{p}: " + ", ".join(f"{k}={v:.4g}" for k, v in m.metrics.items())
            for p, m in record.evaluate.per_plant.items()
        )
        typer.echo(f"  round {record.round}: {per_plant} | up {record.bytes_up_per_plant}")
    if campaign.failure_code:
        typer.echo(f"  failed: {campaign.failure_code.value}: {campaign.failure_detail}")
    if campaign.version_id is not None:
        typer.echo(f"  registered version {campaign.version_id}; personalized "
                   f"{campaign.personalized_version_ids or '-'}")


def _wait(client: HubClient, campaign: CampaignRead, poll: float, timeout: float) -> CampaignRead:
    """Poll until the campaign ends, printing a line whenever its progress changes."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        line = _round_line(campaign)
        if line != last:
            typer.echo(line, err=True)
            last = line
        if campaign.status.final or time.monotonic() > deadline:
            return campaign
        time.sleep(poll)
        campaign = client.get_campaign(campaign.id)


@app.command("start")
def start(
    model: Annotated[str, typer.Option(help="Baseline model name.")],
    parent: Annotated[int, typer.Option(help="Parent version id to fine-tune.")],
    recipe: Annotated[int, typer.Option(help="Published recipe id.")],
    plant: Annotated[list[str], typer.Option(help="A plant taking part (repeat).")],
    strategy: Annotated[CampaignStrategy, typer.Option()] = CampaignStrategy.FEDAVG,
    rounds: Annotated[int, typer.Option()] = 3,
    local_epochs: Annotated[int, typer.Option()] = 1,
    min_participants: Annotated[int, typer.Option()] = 2,
    personalize_epochs: Annotated[int, typer.Option(help="0: no personalization.")] = 0,
    dp_clipping_norm: Annotated[float, typer.Option(help="DP clipping (0: off).")] = 0.0,
    dp_noise_multiplier: Annotated[float, typer.Option()] = 0.0,
    round_timeout: Annotated[float, typer.Option(help="Seconds per round.")] = 300.0,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it until it ends.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --wait.")] = 2.0,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this long.")] = 3600.0,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Start a campaign; with --wait, show its progress and exit 1 unless it succeeds."""
    privacy = None
    if dp_clipping_norm > 0:
        privacy = {"clipping_norm": dp_clipping_norm, "noise_multiplier": dp_noise_multiplier}
    request = CampaignCreate.model_validate({
        "model": model, "parent_version_id": parent, "recipe_id": recipe, "plants": plant,
        "strategy": strategy, "rounds": rounds, "local_epochs": local_epochs,
        "min_participants": min_participants, "personalize_epochs": personalize_epochs,
        "privacy": privacy, "round_timeout_seconds": round_timeout,
    })
    with _client(url, token) as client:
        campaign = client.create_campaign(request)
        if wait:
            campaign = _wait(client, campaign, poll, timeout)
    _show(campaign, as_json)
    if wait and campaign.status.value != "succeeded":
        raise typer.Exit(1)


@app.command("show")
def show(
    campaign_id: int,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it until it ends.")] = False,
    poll: Annotated[float, typer.Option()] = 2.0,
    timeout: Annotated[float, typer.Option()] = 3600.0,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Show a campaign: status, per-round metrics, failures and registered versions."""
    with _client(url, token) as client:
        campaign = client.get_campaign(campaign_id)
        if wait:
            campaign = _wait(client, campaign, poll, timeout)
    _show(campaign, as_json)


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="Only campaigns in this status.")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """List campaigns."""
    with _client(url, token) as client:
        rows = list(client.iter_campaigns(status=status))
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for row in rows:
        typer.echo(f"{row.id}\t{row.status.value}\t{row.model}\t{row.strategy.value}\t"
                   f"{row.rounds_completed}/{row.rounds}\t{','.join(row.plants)}")


@app.command("cancel")
def cancel(
    campaign_id: int, url: UrlOpt = DEFAULT_URL, token: TokenOpt = "", as_json: JsonOpt = False
) -> None:
    """Cancel a queued or running campaign (its Flower run is stopped)."""
    with _client(url, token) as client:
        _show(client.cancel_campaign(campaign_id), as_json)
