"""``millwright demo run``: the end-to-end demo on embedded defaults, as a list of steps.

The SuperLink and the hub start as real local processes (SQLite and artifacts under
``./var/``); the demo enrolls the plants, trains, exports and publishes both baselines,
starts one SuperNode per turbofan plant through ``millwright node federate``, runs a short
federated campaign from the hub, and has the fd001 plant node serve the campaign's model
to a replayed test stream. It drives the hub only through its CLI and
:class:`~federation.hub_client.HubClient`; it never imports the ``hub`` package.
"""

from federation.demo.cli import STEPS, app, run_steps
from federation.demo.plants import AI4I_PLANTS, CMAPSS_PLANTS, DEMO_PLANTS

__all__ = ["AI4I_PLANTS", "CMAPSS_PLANTS", "DEMO_PLANTS", "STEPS", "app", "run_steps"]
