"""Run the node app in this process, predict, post outcomes, run the scheduled monitoring job.

Usage: python -m tests.plant_node.monitoring.nannyml_free_probe DATA_DIR OVERRIDES_JSON
Prints one JSON line: the job's result, whether nannyml / lightgbm are in sys.modules here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from plant_node.config import NodeSettings
from plant_node.main import create_app
from plant_node.replay import failure_records, fleet_requests
from plant_node.scheduler import JOBS
from tests.plant_node.keys import BOOTSTRAP, auth

UNITS = list(range(1, 13))


def main() -> None:
    data_dir, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
    settings = NodeSettings(data_dir=data_dir, bootstrap_keys=BOOTSTRAP, **overrides)
    with TestClient(create_app(settings), headers=auth()) as client:
        statuses = []
        for records in fleet_requests(units=UNITS, slots=4, every=5, seed=0):
            response = client.post("/v1/predict", json={"baseline": "cmapss", "records": records})
            statuses.append(response.status_code)
        posted = client.post("/v1/outcomes", json={"outcomes": failure_records(units=UNITS)})
        _, job = JOBS["monitoring.run"]
        result = job(client.app.state.node)
        chunks = client.get("/v1/monitoring/chunks").json()
    print(
        json.dumps(
            {
                "predict_ok": all(s == 200 for s in statuses),
                "outcomes": posted.status_code,
                "job": result,
                "chunks": len(chunks),
                "nannyml": "nannyml" in sys.modules,
                "lightgbm": "lightgbm" in sys.modules,
            }
        )
    )


if __name__ == "__main__":
    main()
