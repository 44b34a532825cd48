"""The node's real scheduler process with one slow drill job (``bench_retraining`` kills it).

``python -m benchmarks.scheduler_drill <database url> <data dir> <journal file>``: the
production scheduler (persistent job store in the node database, run ledger, recovery) with
one registered job, ``drill.slow``, every 2 s, which journals its start and end (with its
pid) and takes 1.5 s in between.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from plant_node import scheduler
from plant_node.config import NodeSettings
from plant_node.deps import NodeState

INTERVAL_S = 2.0
DURATION_S = 1.5
GRACE_S = 30


def main() -> None:
    """Run the drill scheduler until SIGTERM."""
    url, data_dir, journal = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

    def drill(state: NodeState) -> None:
        with journal.open("a") as f:
            f.write(f"start {os.getpid()} {time.time():.3f}\n")
        time.sleep(DURATION_S)
        with journal.open("a") as f:
            f.write(f"end {os.getpid()} {time.time():.3f}\n")

    scheduler.JOBS.clear()
    scheduler.register_job("drill.slow", INTERVAL_S, drill)
    settings = NodeSettings(
        plant_id="plant-drill", data_dir=data_dir, database_url=url, outbox_enabled=False,
        scheduler_misfire_grace_s=GRACE_S,
    )  # fmt: skip
    scheduler.run_scheduler_process(settings)


if __name__ == "__main__":
    main()
