"""Demo steps for federated fine-tuning: SuperLink, one SuperNode per plant, a campaign.

The SuperLink runs beside the hub; each plant's SuperNode is started by the plant's own
``millwright node federate``; a short campaign is started and followed from the hub.

Every process is real and talks TLS with SuperNode authentication on loopback. Each plant's
SuperNode reads only its own data directory (``var/node-<plant>/data``), into which the demo
copies that plant's C-MAPSS subset.
"""

from __future__ import annotations

import subprocess
import sys
import time

from rich.table import Table

from federation.demo.context import DemoContext, DemoError, free_port, stop_process
from federation.demo.governance_steps import CAMPAIGN_POLICY, promote_automatically
from federation.demo.plants import CMAPSS_PLANTS
from federation.schemas.campaigns import CampaignCreate, CampaignRead, CampaignStrategy

#: A short campaign: enough to show rounds, lineage and personalization in a few minutes
#: on two cores (the full-budget comparison is ``millwright federation evaluate``).
DEMO_CAMPAIGN = {
    "strategy": CampaignStrategy.FEDPROX,
    "rounds": 2,
    "local_epochs": 1,
    "min_participants": 3,
    "personalize_epochs": 1,
    "max_samples_per_plant": 512,
    "max_units_per_plant": 20,
    "round_timeout_seconds": 300.0,
}
CAMPAIGN_TIMEOUT_S = 900.0


def start_superlink(ctx: DemoContext) -> None:
    """Generate the TLS certificates and start the SuperLink the hub's campaigns run on."""
    from federation.flower.deployment import LocalFederation
    from federation.flower.settings import FlowerSettings

    settings = FlowerSettings(
        var_dir=ctx.var_dir / "flower", superlink_port=free_port(9092), tls=True, node_auth=True
    )
    ctx.federation = LocalFederation(settings, [])
    ctx.federation.start()
    root_cert = ctx.federation.root_certificate
    assert root_cert is not None
    ctx.env["MILLWRIGHT_HUB_CAMPAIGN_SUPERLINK"] = settings.superlink_address
    ctx.env["MILLWRIGHT_HUB_CAMPAIGN_SUPERLINK_ROOT_CERT"] = str(root_cert)
    ctx.env["MILLWRIGHT_HUB_CAMPAIGN_WORK_DIR"] = str(ctx.var_dir / "hub" / "campaigns")
    ctx.console.print(
        f"SuperLink at {settings.superlink_address} (TLS, SuperNode authentication on; "
        f"CA {root_cert})"
    )


def start_supernodes(ctx: DemoContext) -> None:
    """Register each turbofan plant's public key, then start its SuperNode from the node CLI."""
    from baselines.datasets import write_cmapss_plant_files
    from federation.flower.deployment import ensure_node_keys
    from federation.flower.processes import free_ports

    fed = ctx.federation
    assert fed is not None
    known = {n.name for n in fed.control.list_nodes()}
    ports = free_ports(len(CMAPSS_PLANTS))
    for (plant, subset), port in zip(CMAPSS_PLANTS.items(), ports, strict=True):
        node_dir = ctx.node_dir(plant)
        data_dir = node_dir / "data"
        write_cmapss_plant_files(subset, data_dir)
        keys = ensure_node_keys(fed.settings, plant)
        if plant not in known:  # the SuperLink keeps registrations across demo runs
            fed.control.register_node(keys.public_key, name=plant)
        log = (node_dir / "supernode.log").open("ab")
        ctx.supernodes.append(subprocess.Popen(
            [sys.executable, "-m", "millwright", "node", "federate", "--plant", plant,
             "--superlink", fed.settings.superlink_address,
             "--root-cert", str(fed.root_certificate), "--auth-key", str(keys.private_key),
             "--data-dir", str(data_dir), "--state-dir", str(node_dir / "flower"),
             "--runtime-port", str(port)],
            cwd=ctx.workdir, env=ctx.env, stdout=log, stderr=subprocess.STDOUT,
        ))
        log.close()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        online = {n.name for n in fed.control.list_nodes() if n.status == "online"}
        if set(CMAPSS_PLANTS) <= online:
            break
        if any(p.poll() is not None for p in ctx.supernodes):
            raise DemoError("a SuperNode exited; see var/node-<plant>/supernode.log")
        time.sleep(0.5)
    else:
        raise DemoError(f"SuperNodes not online after 90 s (online: {sorted(online)})")
    ctx.console.print(f"SuperNodes online: {', '.join(sorted(CMAPSS_PLANTS))} "
                      "(each reads only var/node-<plant>/data)")


def _round_table(campaign: CampaignRead) -> Table:
    table = Table(title=f"campaign {campaign.id}: {campaign.strategy} over {campaign.plants}")
    table.add_column("round", justify="right")
    for plant in campaign.plants:
        table.add_column(f"{plant} rmse", justify="right")
    table.add_column("aggregated rmse", justify="right")
    table.add_column("bytes up/plant", justify="right")
    table.add_column("seconds", justify="right")
    for record in campaign.round_records:
        per_plant = record.evaluate.per_plant
        cells = [f"{per_plant[p].metrics.get('rmse', float('nan')):.2f}" if p in per_plant else "-"
                 for p in campaign.plants]
        up = record.bytes_up_per_plant
        table.add_row(
            str(record.round), *cells,
            f"{record.evaluate.aggregated.get('rmse', float('nan')):.2f}",
            f"{max(up.values()) if up else 0:,}", f"{record.seconds:.1f}",
        )
    return table


def run_campaign(ctx: DemoContext) -> None:
    """Start a FedProx campaign from the hub over the four turbofan plants and follow it.

    The global model and each plant's personalized copy are registered with lineage; each
    plant's personalized version becomes its champion through the automatic (recorded)
    campaign-outcome gate, so the plant node serves it next.
    """
    assert ctx.hub is not None
    parent = next(r for r in ctx.published if r["baseline"] == "cmapss")
    campaign = ctx.hub.create_campaign(CampaignCreate(
        model=parent["model"], parent_version_id=int(parent["version_id"]),
        recipe_id=int(parent["recipe_id"]), plants=list(CMAPSS_PLANTS), **DEMO_CAMPAIGN,
    ))
    ctx.console.print(f"campaign {campaign.id} queued on the hub")
    deadline = time.monotonic() + CAMPAIGN_TIMEOUT_S
    seen = 0
    while not campaign.status.final:
        if time.monotonic() > deadline:
            ctx.hub.cancel_campaign(campaign.id)
            raise DemoError(f"campaign {campaign.id} still {campaign.status} after "
                            f"{CAMPAIGN_TIMEOUT_S:.0f} s; cancelled")
        time.sleep(1.0)
        campaign = ctx.hub.get_campaign(campaign.id)
        if campaign.rounds_completed > seen:
            seen = campaign.rounds_completed
            ctx.console.print(f"  round {seen}/{campaign.rounds} done ({campaign.status})")
    if campaign.version_id is None:
        raise DemoError(f"campaign {campaign.id} ended {campaign.status}: "
                        f"{campaign.failure_code} {campaign.failure_detail}")
    ctx.campaign = campaign
    ctx.console.print(_round_table(campaign))
    ctx.console.print(
        f"global model registered as version {campaign.version_id} (participants "
        f"{campaign.participants}, samples {campaign.samples_per_plant})"
    )
    for plant, version_id in sorted(campaign.personalized_version_ids.items()):
        promotion = promote_automatically(ctx, version_id, plant, CAMPAIGN_POLICY)
        ctx.console.print(
            f"{plant}: champion is now its personalized version {version_id} "
            f"(promotion {promotion.id}, {CAMPAIGN_POLICY}, {promotion.status.value})"
        )


def stop_supernodes(ctx: DemoContext) -> None:
    """Stop the plant SuperNodes (each ``node federate`` stops its ``flower-supernode``)."""
    for proc in ctx.supernodes:
        stop_process(proc)
