"""``python -m plant_node.monitoring --once [--settings-stdin]``: one monitoring run.

The node's scheduler starts this as a child process so that nannyml never loads in the
serving process, and passes its settings as JSON on standard input (``--settings-stdin``);
without it the settings come from the environment. Prints the run summaries as one JSON line.
"""

from __future__ import annotations

import json
import sys

from plant_node.config import NodeSettings
from plant_node.monitoring.flows import run_node_monitoring


def main(argv: list[str]) -> int:
    """Run once over every monitored model version and print the summaries."""
    if argv not in (["--once"], ["--once", "--settings-stdin"]):
        print("usage: python -m plant_node.monitoring --once [--settings-stdin]", file=sys.stderr)
        return 2
    settings = NodeSettings(**json.loads(sys.stdin.read())) if len(argv) == 2 else NodeSettings()
    summaries = run_node_monitoring(settings)
    print(json.dumps([s.to_dict() for s in summaries], default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
