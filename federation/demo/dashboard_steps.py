"""Demo step: check the hub's dashboards answer and print where to sign in.

The demo's hub already holds every plant's reports by this step; the dashboards read them
through the hub's services. With ``--keep-running`` a person opens the printed URL and signs
in with the admin token the demo prints at the end.
"""

from __future__ import annotations

import re
import ssl

import httpx

from federation.demo.context import DemoContext, DemoError

#: Pages the step loads (signed in with the demo's admin token) before printing the URL.
PAGES = ("/ui/fleet", "/ui/impact")


def dashboard_url(hub_url: str) -> str:
    """Return the dashboards' entry URL of a hub."""
    return f"{hub_url.rstrip('/')}/ui/fleet"


def closing_line(hub_url: str) -> str:
    """Return the line the demo ends with: where the dashboards are and how to sign in."""
    return f"dashboards: {dashboard_url(hub_url)}  (sign in with the demo's admin token)"


def check_dashboards(
    hub_url: str, token: str, *, timeout: float = 5.0, verify: ssl.SSLContext | bool = True
) -> list[int]:
    """Sign in with ``token`` and load :data:`PAGES`; return their status codes.

    Raises
    ------
    DemoError
        When sign-in fails or a page does not answer 200.
    """
    with httpx.Client(base_url=hub_url, timeout=timeout, verify=verify) as client:
        form = client.get("/ui/sign-in")
        match = re.search(r'name="csrf" value="([^"]+)"', form.text)
        if form.status_code != 200 or match is None:
            raise DemoError(f"the hub's sign-in page answered {form.status_code}")
        signed = client.post(
            "/ui/sign-in", data={"token": token, "csrf": match.group(1)}, follow_redirects=False
        )
        if signed.status_code != 303 or "mw_session" not in client.cookies:
            raise DemoError(f"dashboard sign-in refused the admin token ({signed.status_code})")
        codes = [client.get(page).status_code for page in PAGES]
    if any(code != 200 for code in codes):
        raise DemoError(f"dashboard pages answered {dict(zip(PAGES, codes, strict=True))}")
    return codes


def show_dashboards(ctx: DemoContext) -> None:
    """Load the fleet and impact pages as the admin, then print the dashboard URL."""
    check_dashboards(ctx.hub_url, ctx.admin_token, verify=ctx.verify)  # the demo's CA, pinned
    ctx.console.print(
        f"dashboards: {dashboard_url(ctx.hub_url)}  (sign in with the admin token; with "
        "--keep-running it is printed below)"
    )
