"""HTTP routes of the dashboards (``/ui``): sign-in, the pages, their CSV downloads.

Routes only translate HTTP: parse the query, check the viewer, call one page query of
:mod:`hub.ui.service`, render a template (or CSV). Domain errors become HTML error pages
(404, 403, 400 with the message) through :class:`UIRoute`, never a stack trace.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import os
import secrets
from collections.abc import Callable, Coroutine, Iterable, MutableMapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, FastAPI, Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup

from federation.errors import MillwrightError, Unauthenticated
from federation.schemas.rollouts import InventoryStatus
from hub.audit.permissions import READERS as AUDIT_READERS
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.deps import SessionDep, SettingsDep
from hub.rollouts.permissions import FLEET_READERS
from hub.ui import costs, service, sessions
from hub.ui.permissions import SignInRequired, Viewer, ViewerDep, ui_key

HERE = Path(__file__).parent
PREFIX = "/ui"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every plant-supplied string is escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


@functools.lru_cache(maxsize=4096)
def _urlq(value: str) -> str:
    # plant and model ids repeat on every row: quote each once (Jinja's urlencode is slower)
    return quote(str(value), safe="")


def _daily_rows(days: Sequence[dt.date], chart: dict[str, list[float | None]]) -> Markup:
    """Return the comparison's daily table body, built in one pass.

    A year of ten plants is over 7,000 cells; through the template each cell cost an escape
    call (most of the page's server time). Only formatted numbers and ISO days go in.
    """
    columns = list(chart.values())
    rows = []
    for i, day in enumerate(days):
        cells = "".join(f'<td class="n">{_num(values[i])}</td>' for values in columns)
        rows.append(f"<tr><td>{day.isoformat()}</td>{cells}</tr>")
    return Markup("".join(rows))


_ENV.filters["num"] = _num
_ENV.filters["urlq"] = _urlq
_ENV.globals["daily_rows"] = _daily_rows
_ENV.globals["prefix"] = PREFIX


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page template."""
    html = _ENV.get_template(name).render(request=request, **context)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """Render an HTML error page (the API's problem+json, for people)."""
    return render(request, "error.html", status=status, title=title, detail=detail, viewer=None)


_TITLES = {
    400: "Cannot show this",
    422: "Cannot show this",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
}


class UIRoute(APIRoute):
    """Turn sign-in redirects, domain errors and bad query parameters into pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler FastAPI builds."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                response = RedirectResponse(f"{PREFIX}/sign-in?next={target}", status_code=303)
                response.delete_cookie(sessions.COOKIE_NAME, path=PREFIX)
                return response
            except MillwrightError as exc:
                status = exc.status if exc.status < 500 else 500
                return error_page(request, status, _TITLES.get(status, "Error"), exc.detail)
            except RequestValidationError as exc:
                fields = ", ".join(sorted({str(e.get("loc", ["", "?"])[-1]) for e in exc.errors()}))
                return error_page(
                    request,
                    400,
                    "Cannot show this",
                    f"Some values in the address are not valid ({fields}); fix them and retry.",
                )

        return wrapped


router = APIRouter(prefix=PREFIX, route_class=UIRoute, include_in_schema=False)


def _csv(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _days(start: dt.date | None, end: dt.date | None, default: int) -> tuple[dt.date, dt.date]:
    end = end or _now().date()
    return start or end - dt.timedelta(days=default - 1), end


FromDay = Annotated[dt.date | None, Query(alias="from")]
ToDay = Annotated[dt.date | None, Query(alias="to")]
Format = Annotated[str, Query(pattern="^(html|csv)$")]


# ------------------------------------------------------------------ sign-in


@router.get("/sign-in")
async def sign_in_form(
    request: Request, next: str = f"{PREFIX}/fleet", error: str = ""
) -> Response:
    """Show the sign-in form; its CSRF token travels in a short-lived pre-session cookie."""
    token = secrets.token_urlsafe(24)
    response = render(
        request, "sign_in.html", viewer=None, csrf=token, next=_safe_next(next), error=error
    )
    response.set_cookie(
        sessions.PRE_SESSION_COOKIE,
        token,
        max_age=900,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=PREFIX,
    )
    return response


def _safe_next(target: str) -> str:
    return (
        target
        if target.startswith(PREFIX + "/") and not target.startswith("//")
        else f"{PREFIX}/fleet"
    )


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=2000)] = f"{PREFIX}/fleet",
) -> Response:
    """Exchange a hub token for a session cookie (HttpOnly, SameSite=Strict, expiring)."""
    if not sessions.check_csrf(request.cookies.get(sessions.PRE_SESSION_COOKIE, ""), csrf):
        return error_page(
            request, 403, "Not allowed", "The form expired; reload sign-in and retry."
        )
    try:
        principal = await run_in_threadpool(auth_service.authenticate, session=session, token=token)
    except Unauthenticated:
        return RedirectResponse(
            f"{PREFIX}/sign-in?error=unknown&next={quote(_safe_next(next))}", status_code=303
        )
    ttl = settings.ui_session_hours * 3600
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        sessions.COOKIE_NAME,
        sessions.issue(ui_key(request), token_id=principal.token_id, ttl_seconds=ttl),
        max_age=int(ttl),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=PREFIX,
    )
    response.delete_cookie(sessions.PRE_SESSION_COOKIE, path=PREFIX)
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, viewer: ViewerDep, csrf: Annotated[str, Form(max_length=100)]
) -> Response:
    """End the session (the form carries the session's CSRF token)."""
    if not sessions.check_csrf(viewer.csrf, csrf):
        return error_page(request, 403, "Not allowed", "The form's CSRF token is not valid.")
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME, path=PREFIX)
    return response


@router.get("")
@router.get("/")
async def home(viewer: ViewerDep) -> Response:
    """Plant accounts land on their plant, everyone else on the fleet."""
    scope = viewer.plant_scope
    target = f"{PREFIX}/plants/{quote(scope[0])}" if scope else f"{PREFIX}/fleet"
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------------ pages

FLEET_SORTS: dict[str, Callable[[Any], Any]] = {
    "plant": lambda r: (r.plant_name.lower(), r.model),
    "model": lambda r: (r.model, r.plant_id),
    "estimated": lambda r: (r.estimated is None, r.estimated or 0.0),
    "realized": lambda r: (r.realized is None, r.realized or 0.0),
    "alerts": lambda r: (r.open_alerts, r.plant_id),
    "age": lambda r: (r.last_report_age_h is None, r.last_report_age_h or 0.0),
}


@router.get("/fleet")
def fleet(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    sort: Annotated[
        str, Query(pattern="^(severity|plant|model|estimated|realized|alerts|age)$")
    ] = "severity",
    dir: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    format: Format = "html",
) -> Response:
    """Fleet overview: plants x models, worst first."""
    rows = service.fleet_rows(session=session, plant_ids=viewer.plant_scope, now=_now())
    if sort != "severity":
        rows.sort(key=FLEET_SORTS[sort])
    if dir == "desc":
        rows.reverse()
    if format == "csv":
        return _csv(
            "fleet",
            [
                "plant_id",
                "plant_name",
                "model",
                "version",
                "metric",
                "estimated",
                "realized",
                "gate",
                "gate_status",
                "drift",
                "integrity",
                "open_alerts",
                "last_report_age_h",
            ],
            [
                [
                    r.plant_id,
                    r.plant_name,
                    r.model,
                    r.version,
                    r.metric,
                    r.estimated,
                    r.realized,
                    f"{r.gate.op} {r.gate.threshold}" if r.gate else None,
                    r.gate_status,
                    r.drift_status,
                    r.integrity_status,
                    r.open_alerts,
                    round(r.last_report_age_h, 2) if r.last_report_age_h is not None else None,
                ]
                for r in rows
            ],
        )
    return render(request, "fleet.html", viewer=viewer, rows=rows, sort=sort, dir=dir)


@router.get("/compare")
def compare(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    model: str | None = None,
    metric: str | None = None,
    plants: Annotated[list[str] | None, Query(max_length=50)] = None,
    line: str | None = None,
    start: FromDay = None,
    end: ToDay = None,
    normalize: bool = False,
    format: Format = "html",
) -> Response:
    """Plant comparison: one metric over time for 2-10 plants (or a product line)."""
    all_plants, model_metrics, lines = service.compare_choices(
        session=session, plant_ids=viewer.plant_scope
    )
    models = sorted(model_metrics)
    chosen = list(plants or [])
    if line:
        chosen = [p for p, ls in lines.items() if line in ls]
    model = model or (models[0] if models else None)
    if metric is None and model is not None:
        metric = model_metrics.get(model)
    page = None
    start_day, end_day = _days(start, end, 90)
    if chosen and model and metric:
        for pid in chosen:
            viewer.require_plant(pid)
        page = service.compare(
            session=session,
            plant_ids=chosen[:10] if line else chosen,
            model=model,
            metric=metric,
            start=start_day,
            end=end_day,
            normalize=normalize,
        )
    if format == "csv" and page is not None:
        return _csv(
            "compare",
            ["day", "plant_id", "kind", "value"],
            [
                [day.isoformat(), *key.split("|"), value]
                for key, values in page.chart.items()
                for day, value in zip(page.days, values, strict=True)
                if value is not None
            ],
        )
    all_lines = sorted({ln for ls in lines.values() for ln in ls})
    return render(
        request,
        "compare.html",
        viewer=viewer,
        page=page,
        plants=all_plants,
        models=models,
        lines=all_lines,
        chosen=chosen,
        model=model,
        metric=metric or "",
        line=line or "",
        start=start_day,
        end=end_day,
        normalize=normalize,
    )


@router.get("/plants/{plant_id}")
def plant(
    request: Request,
    plant_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    model: str | None = None,
    start: FromDay = None,
    end: ToDay = None,
    format: Format = "html",
) -> Response:
    """Show a plant: models, versions served, alerts, recent chunks, latency and fallbacks."""
    viewer.require_plant(plant_id)
    start_day, end_day = _days(start, end, service.PLANT_DAYS)
    page = service.plant_page(
        session=session, plant_id=plant_id, model=model, start=start_day, end=end_day
    )
    if format == "csv":
        return _csv(
            f"plant-{plant_id}",
            [
                "day",
                "latency_p50_ms",
                "latency_p95_ms",
                "latency_p99_ms",
                "alerts_raised",
                "fallbacks_per_1000",
            ],
            [
                [
                    d.isoformat(),
                    page.latency.get("p50", [None] * len(page.days))[i],
                    page.latency.get("p95", [None] * len(page.days))[i],
                    page.latency.get("p99", [None] * len(page.days))[i],
                    page.alerts_raised[i] if page.alerts_raised else None,
                    page.fallback_per_1000[i] if page.fallback_per_1000 else None,
                ]
                for i, d in enumerate(page.days)
            ],
        )
    return render(request, "plant.html", viewer=viewer, page=page)


@router.get("/models/{model}/versions/{version}")
def model_version(
    request: Request,
    model: str,
    version: str,
    viewer: ViewerDep,
    session: SessionDep,
    format: Format = "html",
) -> Response:
    """Show a version: lineage tree, campaign rounds per plant, diff to its parent."""
    viewer.require_central()
    page = service.model_page(
        session=session, model=model, version=version, plant_ids=viewer.plant_scope
    )
    if format == "csv":
        metrics = sorted({m for r in page.rounds for m in r.metrics})
        return _csv(
            f"rounds-{model}-{version}",
            ["round", "plant_id", *metrics, "bytes", "seconds"],
            [
                [r.round, r.plant_id, *(r.metrics.get(m) for m in metrics), r.bytes, r.seconds]
                for r in page.rounds
            ],
        )
    return render(request, "model.html", viewer=viewer, page=page)


@router.get("/impact")
def impact(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    settings: SettingsDep,
    start: FromDay = None,
    end: ToDay = None,
    format: Format = "html",
) -> Response:
    """Show business impact per plant and month, priced with each plant's cost policy."""
    start_day, end_day = _days(start, end, 365)
    rows = service.impact(
        session=session,
        plant_ids=viewer.plant_scope,
        costs=_costs(settings),
        start=start_day,
        end=end_day,
    )
    if format == "csv":
        return _csv(
            "impact",
            [
                "plant_id",
                "month",
                "caught",
                "missed",
                "false_alarms",
                "downtime_hours_avoided",
                "cost_avoided",
                "false_alarm_cost",
                "net",
                "currency",
                "policy",
            ],
            [
                [
                    r.plant_id,
                    r.month,
                    r.caught,
                    r.missed,
                    r.false_alarms,
                    r.downtime_hours_avoided,
                    r.cost_avoided,
                    r.false_alarm_cost,
                    r.net,
                    r.currency,
                    r.policy_ref,
                ]
                for r in rows
            ],
        )
    return render(
        request,
        "impact.html",
        viewer=viewer,
        rows=rows,
        start=start_day,
        end=end_day,
        method=service.METHOD,
    )


def _text(value: str | None) -> str | None:
    """Return a filter field's text, None when it is empty (no filter)."""
    return value.strip() or None if value is not None else None


Filter = Annotated[str | None, Query(max_length=300)]


@router.get("/inventory")
def inventory(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    settings: SettingsDep,
    plant: Filter = None,
    model: Filter = None,
    status: Annotated[str | None, Query(pattern="^(|ok|stale|diverged|rollout)$")] = None,
    format: Format = "html",
) -> Response:
    """Show the model inventory: what runs where, trained when, validated when, since when."""
    viewer.require_roles(FLEET_READERS, "inventory")
    plant, model = _text(plant), _text(model)
    wanted = InventoryStatus(status) if status else None
    rows = service.inventory(
        session=session,
        plant_id=plant,
        model=model,
        status=wanted,
        stale_after_s=settings.node_stale_seconds,
    )
    if format == "csv":
        return _csv(
            "inventory",
            [
                "plant_id",
                "model",
                "version",
                "status",
                "serving_since",
                "previous_version",
                "trained_at",
                "lineage",
                "last_validated_at",
                "estimated",
                "realized",
                "last_report_at",
                "rollout_stage",
                "reported_version",
                "last_alert",
            ],
            [
                [
                    r.plant_id,
                    r.model,
                    r.version,
                    r.status.value,
                    r.serving_since.isoformat(),
                    r.previous_version,
                    r.trained_at.isoformat(),
                    " > ".join(r.lineage),
                    r.last_validated_at.isoformat() if r.last_validated_at else None,
                    ";".join(f"{k}={v}" for k, v in sorted(r.estimated.items())),
                    ";".join(f"{k}={v}" for k, v in sorted(r.realized.items())),
                    r.last_report_at.isoformat() if r.last_report_at else None,
                    r.rollout_stage,
                    r.reported_version,
                    r.last_alert,
                ]
                for r in rows
            ],
        )
    plants, models = service.inventory_choices(session=session)
    return render(
        request,
        "inventory.html",
        viewer=viewer,
        rows=rows,
        plants=plants,
        models=models,
        statuses=[s.value for s in InventoryStatus],
        plant=plant or "",
        model=model or "",
        chosen_status=status or "",
    )


@router.get("/audit")
def audit(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    subject: Filter = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    page_token: Annotated[str | None, Query(max_length=500)] = None,
    format: Format = "html",
) -> Response:
    """Show the audit trail in chain order, one page at a time, with the API's filters."""
    viewer.require_roles(AUDIT_READERS, "audit trail")
    filters = {
        "action": _text(action),
        "subject": _text(subject),
        "actor": _text(actor),
        "since": _text(since),
        "until": _text(until),
    }
    entries, token = service.audit(
        session=session,
        action=filters["action"],
        subject=filters["subject"],
        actor=filters["actor"],
        since=filters["since"],
        until=filters["until"],
        page_token=page_token or None,
    )
    if format == "csv":
        return _csv(
            "audit",
            ["seq", "at", "actor", "action", "subject", "reason", "flags", "entry_hash"],
            [
                [e.seq, e.at, e.actor, e.action, e.subject, e.reason, " ".join(e.flags),
                 e.entry_hash]
                for e in entries
            ],
        )  # fmt: skip
    query = {k: v for k, v in filters.items() if v}
    next_url = f"?{urlencode({**query, 'page_token': token})}" if token else None
    return render(
        request,
        "audit.html",
        viewer=viewer,
        entries=entries,
        filters={k: v or "" for k, v in filters.items()},
        next_url=next_url,
        first_url=f"?{urlencode(query)}" if page_token else None,
    )


_COSTS: dict[Path | None, tuple[float, costs.CostPolicies]] = {}


def _costs(settings: HubSettings) -> costs.CostPolicies:
    path = settings.cost_policy_file
    mtime = path.stat().st_mtime if path is not None and path.exists() else 0.0
    cached = _COSTS.get(path)
    if cached is None or cached[0] != mtime:
        cached = _COSTS[path] = (mtime, costs.load(path))
    return cached[1]


class _Static(StaticFiles):
    """Static files; the vendored libraries are cached by browsers for a day.

    They change only with a hub release, and a cached copy spares a returning browser the
    download and lets it reuse its compiled code (ECharts is 500 KB of script). The hub's
    own ui.js and ui.css are revalidated on every load (ETag, 304).
    """

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: MutableMapping[str, Any],
        status_code: int = 200,
    ) -> Response:
        """Add Cache-Control to a file's response (and to its 304)."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = Path(full_path).parent.name == "vendor"
        response.headers["Cache-Control"] = "public, max-age=86400" if vendored else "no-cache"
        return response


def mount_ui(app: FastAPI, settings: HubSettings) -> None:
    """Serve the dashboards and their static files (vendored, no CDN) on ``app``."""
    secret = settings.ui_secret.get_secret_value().encode() if settings.ui_secret else None
    app.state.ui_key = secret or secrets.token_bytes(32)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", _Static(directory=HERE / "static"), name="ui-static")


__all__ = ["Viewer", "mount_ui", "router"]
