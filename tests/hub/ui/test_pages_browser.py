"""Every dashboard page in Chromium, for every role: the numbers equal the API's, axe finds no
serious or critical violation, the keyboard reaches every control, plant strings stay text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub.ui.conftest import END, EVIL, EVIL_ALERT, Fleet

VENDOR = Path(__file__).resolve().parents[3] / "hub" / "ui" / "static" / "vendor"
SHOTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "screenshots"
CENTRAL = ("admin", "data_scientist", "executive")
LAST = (END - dt.timedelta(days=1)).date()
FIRST = (END - dt.timedelta(days=4)).date()


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


@pytest.fixture
def page_for(browser: Any, fleet: Fleet) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_as(role: str) -> Any:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda d: pytest.fail(f"a script ran: dialog {d.message!r}"))
        page.goto(fleet.url + "/ui/fleet")
        assert "/ui/sign-in" in page.url
        page.fill("#token", fleet.tokens[role])
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield open_as
    for context in contexts:
        context.close()


def _axe(page: Any) -> list[str]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(VENDOR / "axe.min.js"))
    return list(
        page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.id + ' x' + v.nodes.length + ': ' + v.nodes[0].target)"""
        )
    )


def _cells(page: Any, table: str, col: str) -> dict[str, str]:
    rows = page.locator(f"#{table} tbody tr[data-plant]")
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        key = "|".join(
            v
            for v in (
                row.get_attribute("data-plant"),
                row.get_attribute("data-model"),
                row.get_attribute("data-month"),
            )
            if v
        )
        out[key] = row.locator(f"[data-col={col}]").inner_text().strip()
    return out


def _check_fleet(page: Any, fleet: Fleet, role: str) -> None:
    page.goto(fleet.url + "/ui/fleet")
    summary = fleet.api(role, "/api/v1/metrics/summary", kind="estimated")["items"]
    api = {f"{o['plant_id']}|{o['model_name']}": _fmt(o["value"]) for o in summary}
    shown = _cells(page, "fleet", "estimated")
    assert shown == api
    if role == "plant":
        assert set(shown) == {"plant-01|turbofan-rul", "plant-01|ai4i-failure"}
    else:
        assert len(shown) == 7  # 3 plants x 2 models, and the evil plant's model
    # sort by report age, then back: the header says how the table is sorted
    page.click("#fleet thead a:has-text('Last report')")
    assert page.get_attribute("#fleet th[aria-sort=ascending]", "aria-sort") == "ascending"
    page.click("#fleet thead a:has-text('Last report')")
    assert page.locator("#fleet th[aria-sort=descending]").count() == 1


def _check_plant(page: Any, fleet: Fleet, role: str) -> None:
    page.goto(fleet.url + "/ui/plants/plant-01")
    page.select_option("#model", "ai4i-failure")
    page.fill("#from", FIRST.isoformat())
    page.fill("#to", LAST.isoformat())
    page.click("#plant-submit")
    page.wait_for_load_state()
    assert "model=ai4i-failure" in page.url
    daily = fleet.api(
        role,
        "/api/v1/metrics/daily",
        model="ai4i-failure",
        metric="p95",
        kind="latency",
        plants="plant-01",
        **{"from": FIRST.isoformat(), "to": LAST.isoformat()},
    )["items"]
    api = {p["day"]: _fmt(p["mean"]) for p in daily}
    rows = page.locator("#daily tbody tr")
    shown = {
        rows.nth(i).get_attribute("data-day"): rows.nth(i).locator("[data-col=p95]").inner_text()
        for i in range(rows.count())
    }
    assert {d: v for d, v in shown.items() if v != "—"} == api
    assert len(api) == 4
    assert page.locator("#alerts").inner_text().count(EVIL_ALERT) == 3  # alert texts as text


def _check_compare(page: Any, fleet: Fleet, role: str) -> None:
    page.goto(fleet.url + "/ui/compare")
    if role == "plant":
        page.goto(fleet.url + "/ui/compare?model=turbofan-rul&plants=plant-01&plants=plant-02")
        assert page.locator("h1").inner_text() == "Not allowed"
        return
    page.select_option("#model", "turbofan-rul")
    page.fill("#metric", "rmse")
    page.fill("#from", FIRST.isoformat())
    page.fill("#to", LAST.isoformat())
    for pid in ("plant-01", "plant-02", "plant-03"):
        page.check(f"input[name=plants][value={pid}]")
    page.click("#compare-submit")
    page.wait_for_load_state()
    daily = fleet.api(
        role,
        "/api/v1/metrics/daily",
        model="turbofan-rul",
        metric="rmse",
        kind="estimated",
        plants=["plant-01", "plant-02", "plant-03"],
        **{"from": FIRST.isoformat(), "to": LAST.isoformat()},
    )["items"]
    since = (LAST - dt.timedelta(days=6)).isoformat()
    api = {}
    for pid in ("plant-01", "plant-02", "plant-03"):
        pts = [p for p in daily if p["plant_id"] == pid and p["day"] >= since]
        api[pid] = _fmt(sum(p["mean"] * p["count"] for p in pts) / sum(p["count"] for p in pts))
    assert _cells(page, "ranking", "current") == api
    assert page.locator("#chart canvas").count() >= 1  # uPlot drew the series


def _check_impact(page: Any, fleet: Fleet, role: str) -> None:
    page.goto(fleet.url + "/ui/impact")
    page.fill("#from", FIRST.isoformat())
    page.click("#impact-submit")
    page.wait_for_load_state()
    monthly = fleet.api(
        role,
        "/api/v1/metrics/monthly",
        kind="impact",
        metric="caught",
        **{"from": FIRST.isoformat(), "to": dt.date.today().isoformat()},
    )["items"]
    api: dict[str, float] = {}
    for m in monthly:
        key = f"{m['plant_id']}|{m['month']}"
        api[key] = api.get(key, 0) + m["total"]
    assert _cells(page, "impact", "caught") == {k: str(int(v)) for k, v in api.items()}
    assert "Cost avoided = caught" in page.locator("#method").inner_text()
    assert page.locator("#impact-chart canvas").count() >= 1  # ECharts drew the bars


def _check_model(page: Any, fleet: Fleet, role: str) -> None:
    page.goto(fleet.url + "/ui/models/turbofan-rul/versions/2.0")
    if role == "plant":
        assert page.locator("h1").inner_text() == "Not allowed"
        return
    version = fleet.api(role, "/api/v1/models/turbofan-rul/versions/2.0")
    assert page.locator("#lineage li").count() == 2
    page.click("#lineage a:has-text('1.0')")
    page.wait_for_load_state()
    assert page.url.endswith("/ui/models/turbofan-rul/versions/1.0")
    page.go_back()
    diff = {r.locator("td").first.inner_text() for r in page.locator("#diff tbody tr").all()}
    assert "parent_id" in diff and version["parent_id"] is not None


def _check_inventory(page: Any, fleet: Fleet, role: str) -> None:
    page.goto(fleet.url + "/ui/inventory")
    if role == "plant":  # the inventory API refuses plant tokens
        assert page.locator("h1").inner_text() == "Not allowed"
        return
    rows = fleet.api(role, "/api/v1/inventory")["items"]
    assert _cells(page, "inventory", "version") == {
        f"{r['plant_id']}|{r['model']}": r["version"] for r in rows
    }
    shown = _cells(page, "inventory", "status")
    assert {k: v.split()[1] for k, v in shown.items()} == {
        f"{r['plant_id']}|{r['model']}": r["status"] for r in rows
    }
    page.select_option("#model", "ai4i-failure")
    page.click("#inventory-submit")
    page.wait_for_load_state()
    assert "model=ai4i-failure" in page.url
    only = fleet.api(role, "/api/v1/inventory", model="ai4i-failure")["items"]
    assert set(_cells(page, "inventory", "version")) == {
        f"{r['plant_id']}|ai4i-failure" for r in only
    }
    assert len(only) == 3


def _check_audit(page: Any, fleet: Fleet, role: str) -> None:
    page.goto(fleet.url + "/ui/audit")
    if role in ("plant", "data_scientist"):  # the audit API reads for admins and executives
        assert page.locator("h1").inner_text() == "Not allowed"
        return
    first = fleet.api(role, "/api/v1/audit", page_size=100)
    rows = page.locator("#audit tbody tr[data-seq]")
    assert [int(rows.nth(i).get_attribute("data-seq")) for i in range(rows.count())] == [
        e["seq"] for e in first["items"]
    ]
    page.fill("#action", "alias.set")
    page.click("#audit-submit")
    page.wait_for_load_state()
    aliases = fleet.api(role, "/api/v1/audit", action="alias.set", page_size=100)["items"]
    actions = page.locator("#audit tbody [data-col=action]").all_inner_texts()
    assert actions == ["alias.set"] * len(aliases) and len(aliases) >= 6
    page.goto(fleet.url + "/ui/audit?since=yesterday")
    assert page.locator("h1").inner_text() == "Cannot show this"
    assert "ISO 8601" in page.locator("main").inner_text()


PAGES = {
    "fleet": _check_fleet,
    "plant": _check_plant,
    "compare": _check_compare,
    "impact": _check_impact,
    "model": _check_model,
    "inventory": _check_inventory,
    "audit": _check_audit,
}


@pytest.mark.parametrize("role", [*CENTRAL, "plant"])
def test_every_page_shows_what_the_api_returns(page_for: Any, fleet: Fleet, role: str) -> None:
    page = page_for(role)
    violations: dict[str, list[str]] = {}
    for name, check in PAGES.items():
        check(page, fleet, role)
        if role in ("admin", "plant"):
            found = _axe(page)
            if found:
                violations[name] = found
        if role == "admin":
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{name}.png"))
    assert violations == {}


def test_the_keyboard_reaches_every_control(page_for: Any, fleet: Fleet) -> None:
    page = page_for("admin")
    for path in ("/ui/fleet", "/ui/compare?model=turbofan-rul&plants=plant-01&plants=plant-02"):
        page.goto(fleet.url + path)
        page.evaluate(
            """() => document
                  .querySelectorAll('a, button, input:not([type=hidden]), select, summary')
                  .forEach((el, i) => el.setAttribute('data-kb', String(i)))"""
        )
        total = page.locator("[data-kb]").count()
        reached: set[str] = set()
        for _ in range(2 * total + 10):
            page.keyboard.press("Tab")
            got = page.evaluate("() => document.activeElement.getAttribute('data-kb')")
            if got is not None:
                reached.add(got)
            if len(reached) == total:
                break
        missing = [
            page.locator(f"[data-kb='{i}']").evaluate("e => e.outerHTML.slice(0, 120)")
            for i in map(str, range(total))
            if i not in reached
        ]
        assert missing == [], f"{path}: controls the keyboard does not reach"


def test_plant_strings_render_as_text(page_for: Any, fleet: Fleet) -> None:
    page = page_for("executive")
    page.goto(fleet.url + "/ui/fleet")

    cell = page.locator("#fleet tr[data-plant=evil-1] td").first
    assert EVIL in cell.inner_text()
    assert page.evaluate("() => document.querySelectorAll('main script:not([type])').length") == 0
    page.goto(fleet.url + "/ui/plants/evil-1")
    assert page.locator("h1").inner_text().startswith(EVIL)


def test_the_demo_screenshot_script_signs_in_checks_the_plants_and_saves_small_pngs(
    browser: Any, fleet: Fleet, tmp_path: Path
) -> None:
    from benchmarks import demo_screenshots

    plants = ["plant-01", "plant-02", "plant-03", "evil-1"]
    token = fleet.tokens["admin"]
    saved = demo_screenshots.capture(fleet.url, token, tmp_path, plants=plants, browser=browser)

    assert sorted(saved) == sorted(demo_screenshots.pages())
    assert all(
        p.stat().st_size < 400_000 and p.read_bytes()[:4] == b"\x89PNG" for p in saved.values()
    )
    with pytest.raises(SystemExit, match="fd001"):
        demo_screenshots.capture(fleet.url, token, tmp_path, browser=browser)
