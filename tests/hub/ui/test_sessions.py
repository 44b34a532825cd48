"""Sign-in, session cookies (flags, tampering, expiry), CSRF, role scoping and bad input pages."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from hub.main import create_app
from hub.ui import sessions
from tests.hub.ui.conftest import EVIL, Fleet


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _signed_in(client: httpx.Client | TestClient, token: str) -> httpx.Response:
    form = client.get("/ui/sign-in")
    return client.post(
        "/ui/sign-in",
        data={"token": token, "csrf": _csrf(form.text), "next": "/ui/fleet"},
        follow_redirects=False,
    )


@pytest.fixture
def web(fleet: Fleet) -> httpx.Client:
    return httpx.Client(base_url=fleet.url, timeout=10)


def test_sign_in_sets_a_strict_http_only_expiring_cookie(web: httpx.Client, fleet: Fleet) -> None:
    r = _signed_in(web, fleet.tokens["executive"])

    assert r.status_code == 303 and r.headers["location"] == "/ui/fleet"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("mw_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    assert fleet.tokens["executive"] not in cookie  # the token never goes into the cookie
    assert web.get("/ui/fleet").status_code == 200


def test_cookie_is_secure_under_tls(fleet: Fleet) -> None:
    with TestClient(create_app(fleet.settings), base_url="https://testserver") as client:
        r = _signed_in(client, fleet.tokens["admin"])
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("mw_session="))
    assert "Secure" in cookie


def test_tampered_expired_or_missing_cookies_go_back_to_sign_in(
    web: httpx.Client, fleet: Fleet
) -> None:
    _signed_in(web, fleet.tokens["admin"])
    good = web.cookies["mw_session"]
    body, _, sig = good.rpartition(".")
    parts = body.split(".")
    other_id = "2" if parts[1] != "2" else "3"
    forged = ".".join([parts[0], other_id, *parts[2:]])  # another token id, same signature
    key = b"not-the-hub-key-0123456789abcdef"
    expired_but_signed = sessions.issue(key, token_id=1, ttl_seconds=-10)

    for value in (f"{body}.{sig[:-2]}xx", f"{forged}.{sig}", expired_but_signed, ""):
        r = httpx.get(
            fleet.url + "/ui/plants/plant-01",
            cookies={"mw_session": value},
            follow_redirects=False,
        )
        assert r.status_code == 303, value
        assert r.headers["location"].startswith("/ui/sign-in?next=/ui/plants/plant-01")
    # expiry is enforced on a genuinely signed cookie too
    assert sessions.verify(key, sessions.issue(key, token_id=3, ttl_seconds=60)) is not None
    assert sessions.verify(key, expired_but_signed, now=time.time()) is None


def test_forms_need_their_csrf_token(web: httpx.Client, fleet: Fleet) -> None:
    web.get("/ui/sign-in")
    no_csrf = web.post("/ui/sign-in", data={"token": fleet.tokens["admin"], "csrf": "guess"})
    _signed_in(web, fleet.tokens["admin"])
    bad_signout = web.post("/ui/sign-out", data={"csrf": "guess"}, follow_redirects=False)
    page = web.get("/ui/fleet")
    signout = web.post("/ui/sign-out", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    wrong_token = _signed_in(web, "mw_not-a-token")

    assert no_csrf.status_code == 403
    assert bad_signout.status_code == 403
    assert signout.status_code == 303 and signout.headers["location"] == "/ui/sign-in"
    assert wrong_token.status_code == 303 and "error=unknown" in wrong_token.headers["location"]


def test_a_plant_account_sees_only_itself(web: httpx.Client, fleet: Fleet) -> None:
    _signed_in(web, fleet.tokens["plant"])

    assert web.get("/ui/plants/plant-01").status_code == 200
    other = web.get("/ui/plants/plant-02")
    fleet_page = web.get("/ui/fleet?format=csv").text
    impact = web.get("/ui/impact?format=csv").text

    assert other.status_code == 403 and "bound to plant" in other.text
    assert {line.split(",")[0] for line in fleet_page.splitlines()[1:]} == {"plant-01"}
    assert {line.split(",")[0] for line in impact.splitlines()[1:]} == {"plant-01"}
    assert web.get("/ui/models/turbofan-rul/versions/2.0").status_code == 403


def test_bad_addresses_get_pages_not_traces(web: httpx.Client, fleet: Fleet) -> None:
    _signed_in(web, fleet.tokens["data_scientist"])

    unknown_plant = web.get("/ui/plants/no-such-plant")
    unknown_model = web.get("/ui/plants/plant-01?model=no-such-model")
    unknown_version = web.get("/ui/models/turbofan-rul/versions/9.9")
    inverted = web.get("/ui/plants/plant-01?from=2026-06-01&to=2026-05-01")
    too_long = web.get("/ui/impact?from=2020-01-01&to=2026-01-01")
    not_a_date = web.get("/ui/impact?from=yesterday")
    one_plant = web.get("/ui/compare?model=turbofan-rul&plants=plant-01")

    assert unknown_plant.status_code == 404 and "is not enrolled" in unknown_plant.text
    assert unknown_model.status_code == 404 and "no-such-model" in unknown_model.text
    assert unknown_version.status_code == 404
    assert inverted.status_code == 422 and "before it starts" in inverted.text
    assert too_long.status_code == 422 and "at most 400 days" in too_long.text
    assert not_a_date.status_code == 400 and "not valid (from)" in not_a_date.text
    assert one_plant.status_code == 422 and "Pick 2 to 10 plants" in one_plant.text
    for r in (unknown_plant, inverted, not_a_date):
        assert r.headers["content-type"].startswith("text/html") and "Traceback" not in r.text


def test_plant_strings_are_escaped_in_html_and_csv(web: httpx.Client, fleet: Fleet) -> None:
    _signed_in(web, fleet.tokens["admin"])

    html = web.get("/ui/fleet").text
    plant = web.get("/ui/plants/evil-1").text

    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert EVIL not in plant and "<img src=x" not in web.get("/ui/plants/plant-01").text
    assert EVIL in web.get("/ui/fleet?format=csv").text  # CSV is data, served as text/csv


def test_the_demo_step_signs_in_and_loads_the_dashboards(fleet: Fleet) -> None:
    from federation.demo.context import DemoError
    from federation.demo.dashboard_steps import check_dashboards, closing_line, dashboard_url

    assert check_dashboards(fleet.url, fleet.tokens["admin"]) == [200, 200]
    assert dashboard_url(fleet.url + "/") == fleet.url + "/ui/fleet"
    assert closing_line(fleet.url).startswith(f"dashboards: {fleet.url}/ui/fleet ")
    with pytest.raises(DemoError, match="refused the admin token"):
        check_dashboards(fleet.url, "mw_wrong")


def test_impact_is_priced_with_the_plants_cost_policy(web: httpx.Client, fleet: Fleet) -> None:
    _signed_in(web, fleet.tokens["executive"])

    lines = web.get("/ui/impact?format=csv").text.splitlines()

    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert rows and all(r["policy"] == "cost-default@1" and r["currency"] == "EUR" for r in rows)
    for r in rows:
        caught, false = int(r["caught"]), int(r["false_alarms"])
        assert float(r["downtime_hours_avoided"]) == caught * 5
        assert float(r["cost_avoided"]) == caught * (5 * 10000 - 2000)
        assert float(r["false_alarm_cost"]) == false * 700
        assert float(r["net"]) == float(r["cost_avoided"]) - float(r["false_alarm_cost"])


def test_vendored_libraries_are_cached_and_the_hubs_own_files_revalidated(
    web: httpx.Client,
) -> None:
    library = web.get("/ui/static/vendor/uPlot.iife.min.js")
    own = web.get("/ui/static/ui.js")
    again = web.get("/ui/static/ui.js", headers={"If-None-Match": own.headers["etag"]})

    assert (
        library.status_code == 200 and library.headers["cache-control"] == "public, max-age=86400"
    )
    assert own.headers["cache-control"] == "no-cache"
    assert again.status_code == 304
