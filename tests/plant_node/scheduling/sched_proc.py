"""A real node scheduler process whose only job is a slow drill (run by the SIGKILL test).

``python sched_proc.py <database url> <data dir> <journal file>``: the production scheduler
(persistent job store, run ledger, recovery) with one registered job, ``drill.slow``, every
2 s, which journals its start and end and takes 0.8 s in between (a margin of 1.2 s to
the next slot, so a loaded CI machine does not push a run past it and skip a slot).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from plant_node import scheduler
from plant_node.config import NodeSettings
from plant_node.deps import NodeState


def main() -> None:
    url, data_dir, journal = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

    def drill(state: NodeState) -> None:
        with journal.open("a") as f:
            f.write(f"start {os.getpid()} {time.time():.3f}\n")
        time.sleep(0.8)
        with journal.open("a") as f:
            f.write(f"end {os.getpid()} {time.time():.3f}\n")

    scheduler.JOBS.clear()
    scheduler.register_job("drill.slow", 2.0, drill)
    settings = NodeSettings(
        plant_id="plant-s", data_dir=data_dir, database_url=url, outbox_enabled=False,
        scheduler_misfire_grace_s=30,
    )  # fmt: skip
    scheduler.run_scheduler_process(settings)


if __name__ == "__main__":
    main()
