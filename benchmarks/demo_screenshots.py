"""Screenshots of the dashboards on the demo's real data (its seven plants).

Run against a demo left up with ``make demo DEMO_ARGS=--keep-running``, which prints the hub
URL and the admin token at the end::

    .venv/bin/python -m benchmarks.demo_screenshots --url https://127.0.0.1:8100 --token mw_...

It signs in with the token in Debian's Chromium, checks that the fleet overview lists every
plant of ``federation.demo.DEMO_PLANTS`` (it fails otherwise), and saves small PNGs of the
fleet, comparison (the four turbofan plants, then the three milling lines), plant, impact,
inventory and audit pages as ``benchmarks/results/screenshots/demo-<page>.png``. The demo's
hub serves HTTPS with the demo's own CA, which Chromium does not know: certificate errors are
ignored for this loopback address only.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from federation.demo.plants import DEMO_PLANTS

SHOTS = Path(__file__).resolve().parent / "results" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
TURBOFANS = [p.id for p in DEMO_PLANTS if p.id.startswith("fd")]
MILLING = [p.id for p in DEMO_PLANTS if p.id.startswith("ai4i")]


def small_png(raw: bytes) -> bytes:
    """Quantize a screenshot to 64 colours (a few tens of KB instead of hundreds)."""
    from PIL import Image

    image = Image.open(io.BytesIO(raw)).convert("RGB").quantize(colors=64)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _compare(plants: list[str]) -> str:
    return "/ui/compare?" + "&".join(f"plants={p}" for p in plants)


def pages() -> dict[str, str]:
    """Name -> path of every page the screenshots show."""
    return {
        "fleet": "/ui/fleet",
        "compare-turbofan": _compare(TURBOFANS),
        "compare-milling": _compare(MILLING),
        "plant": f"/ui/plants/{MILLING[0]}",
        "impact": "/ui/impact",
        "inventory": "/ui/inventory",
        "audit": "/ui/audit",
    }


def capture(
    url: str,
    token: str,
    out: Path = SHOTS,
    plants: list[str] | None = None,
    browser: Any = None,
) -> dict[str, Path]:
    """Sign in, check the plants (default: the demo's seven) are listed, save one PNG a page.

    ``browser`` is a Playwright Chromium already launched (tests); by default one is started.
    """
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            own = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                return capture(url, token, out, plants, own)
            finally:
                own.close()
    expected = plants if plants is not None else [p.id for p in DEMO_PLANTS]
    out.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Path] = {}
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(url.rstrip("/") + "/ui/sign-in")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        for name, path in pages().items():
            page.goto(url.rstrip("/") + path, wait_until="load")
            if name == "fleet":
                listed = set(page.eval_on_selector_all(
                    "#fleet tbody tr[data-plant]", "rows => rows.map(r => r.dataset.plant)"
                ))  # fmt: skip
                missing = [p for p in expected if p not in listed]
                if missing:
                    raise SystemExit(f"the fleet overview does not list plants {missing}")
            target = out / f"demo-{name}.png"
            target.write_bytes(small_png(page.screenshot(full_page=True)))
            saved[name] = target
    finally:
        context.close()
    return saved


def main() -> None:
    """Parse the hub URL and admin token, then capture the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the demo hub's URL, as the demo prints it")
    parser.add_argument("--token", required=True, help="the admin token the demo prints")
    parser.add_argument("--out", type=Path, default=SHOTS)
    args = parser.parse_args()
    for name, path in capture(args.url, args.token, args.out).items():
        print(f"{name}: {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
