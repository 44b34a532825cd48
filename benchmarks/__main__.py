"""Run every benchmark module (``benchmarks/bench_*.py``) or the ones named on the command line.

Each module exposes ``run(quick: bool) -> dict`` which prints its table and writes its JSON
under ``benchmarks/results/``. Usage: ``python -m benchmarks [--quick] [name ...]``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from federation.offline import disable_telemetry


def _available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the selected benchmarks in order."""
    disable_telemetry()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {_available()})")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for smoke runs")
    args = parser.parse_args(argv)
    names = args.names or _available()
    unknown = sorted(set(names) - set(_available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {_available()}")
    for name in names:
        started = time.perf_counter()
        print(f"\n=== benchmark: {name} ===", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").run(quick=args.quick)
        print(f"=== {name} done in {time.perf_counter() - started:.1f} s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
