"""The demo plants: four C-MAPSS turbofan shops and three AI4I milling lines on one site.

The four C-MAPSS sub-datasets are four plants (``fd001``..``fd004``), each with its own
operating conditions and fault modes; the AI4I 2020 product-quality variants L/M/H are three
plants (``ai4i-l``, ``ai4i-m``, ``ai4i-h``), so each can be a separate federated client.
"""

from __future__ import annotations

from federation.schemas.registry import HardwareProfile, PlantCreate

_IPC = HardwareProfile(cpu="Intel Atom x6425E", cores=4, memory_gb=8, os="Ubuntu 22.04 LTS")

_IPC_BIG = HardwareProfile(
    cpu="Intel Core i5-1145G7E",
    cores=4,
    memory_gb=16,
    accelerator="Iris Xe iGPU",
    os="Ubuntu 22.04 LTS",
)


#: The demo plants (importable by other components, e.g. the plant node and Flower demos).
DEMO_PLANTS: list[PlantCreate] = [
    PlantCreate(
        id="fd001",
        name="Turbofan plant FD001",
        site="Toulouse engine shop",
        lines=["test-cell-1"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="fd002",
        name="Turbofan plant FD002",
        site="Hamburg engine shop",
        lines=["test-cell-1", "test-cell-2"],
        hardware_profile=_IPC_BIG,
    ),
    PlantCreate(
        id="fd003",
        name="Turbofan plant FD003",
        site="Derby engine shop",
        lines=["test-cell-1"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="fd004",
        name="Turbofan plant FD004",
        site="Montreal engine shop",
        lines=["test-cell-1", "test-cell-2"],
        hardware_profile=_IPC_BIG,
    ),
    PlantCreate(
        id="ai4i-l",
        name="Milling line L (low-quality variant)",
        site="Stuttgart machining works",
        lines=["L"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="ai4i-m",
        name="Milling line M (medium-quality variant)",
        site="Stuttgart machining works",
        lines=["M"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="ai4i-h",
        name="Milling line H (high-quality variant)",
        site="Stuttgart machining works",
        lines=["H"],
        hardware_profile=_IPC,
    ),
]


#: The C-MAPSS subset each turbofan plant holds as its local history.
CMAPSS_PLANTS: dict[str, str] = {f"fd00{i}": f"FD00{i}" for i in range(1, 5)}
#: The AI4I product variant each milling line produces.
AI4I_PLANTS: dict[str, str] = {"ai4i-l": "L", "ai4i-m": "M", "ai4i-h": "H"}
