"""Node keys the test nodes start with (bootstrap settings) and their request headers."""

from __future__ import annotations

from typing import Any

from plant_node.auth.schemas import BootstrapKey, NodeRole

LINE_KEY = "mwn_test-line-key-0123456789abcdefghijklmnopq"
ENGINEER_KEY = "mwn_test-engineer-key-0123456789abcdefghijklm"
MONITOR_KEY = "mwn_test-monitor-key-0123456789abcdefghijklmn"
KEYS = {NodeRole.LINE: LINE_KEY, NodeRole.ENGINEER: ENGINEER_KEY, NodeRole.MONITOR: MONITOR_KEY}

#: ``bootstrap_keys=`` of a test node: one key per role.
BOOTSTRAP: list[Any] = [
    BootstrapKey(role=role, name=f"test-{role.value}", key=key) for role, key in KEYS.items()
]


def auth(role: NodeRole | str = NodeRole.ENGINEER) -> dict[str, str]:
    """``Authorization`` header of the test key of ``role`` (engineer: may call every route)."""
    return {"Authorization": f"Bearer {KEYS[NodeRole(role)]}"}
