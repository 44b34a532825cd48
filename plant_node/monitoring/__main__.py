"""``python -m plant_node.monitoring --once``: one monitoring run, settings from the environment.

The node's scheduler starts this as a child process so that nannyml never loads in the
serving process. Prints the run summaries as one JSON line.
"""

from __future__ import annotations

import json
import sys

from plant_node.config import NodeSettings
from plant_node.monitoring.runner import run_node_monitoring


def main(argv: list[str]) -> int:
    """Run once over every monitored model version and print the summaries."""
    if argv != ["--once"]:
        print("usage: python -m plant_node.monitoring --once", file=sys.stderr)
        return 2
    summaries = run_node_monitoring(NodeSettings())
    print(json.dumps([s.to_dict() for s in summaries], default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
