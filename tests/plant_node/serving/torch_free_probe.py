"""Run the real node service in this process, send it traffic over HTTP, report what got imported.

Usage: python -m tests.plant_node.serving.torch_free_probe DATA_DIR RECORDS_JSON
Prints one JSON line: statuses, whether torch/nncf are in sys.modules, peak RSS in MB.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from plant_node.config import NodeSettings
from plant_node.db import upgrade_database
from plant_node.main import create_app
from tests.plant_node.keys import BOOTSTRAP, auth


def _peak_rss_mb() -> float:
    # VmHWM belongs to this address space; getrusage's maxrss survives exec and would report
    # the peak of the pytest process that forked us.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    data_dir, records_file = Path(sys.argv[1]), Path(sys.argv[2])
    requests = json.loads(records_file.read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = NodeSettings(
        plant_id="probe", data_dir=data_dir, outbox_enabled=False, bootstrap_keys=BOOTSTRAP
    )
    upgrade_database(settings.db_url)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    statuses: list[int] = []
    with httpx.Client(base_url=base, timeout=10, headers=auth("line")) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if client.get("/v1/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        for body in requests:
            statuses.append(client.post("/v1/predict", json=body).status_code)
        ready = client.get("/v1/ready").json()
    server.should_exit = True
    thread.join(10)
    print(
        json.dumps(
            {
                "statuses": statuses,
                "ready": ready,
                "torch": "torch" in sys.modules,
                "nncf": "nncf" in sys.modules,
                "rss_mb": _peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
