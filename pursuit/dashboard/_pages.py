"""The HTML pages: the goal list, a goal, a trial, and the login form.

Pages are small documents with no inline script or style (the content security policy
allows neither): ``static/dashboard.js`` fills them from the JSON API, writing user
strings as text, never as markup. What the server writes into a page itself (a goal's
name and statement, a trial's dials and error text) goes through ``html.escape``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import plotly
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from pursuit.dashboard._api import MAX_ID, trial_json
from pursuit.dashboard._security import COOKIE, MAX_BODY, same_secret, session_value
from pursuit.overview import fmt

PLOTLY_JS = f"/static/plotly-{plotly.__version__}.min.js"
STATES = ("completed", "pruned", "failed", "running", "preempted")


def h(value: Any) -> str:
    """Any value as HTML text: escaped, quotes included."""
    return html.escape(str(value), quote=True)


def document(title: str, body: str, *, page: str, data: dict[str, Any] | None = None,
             plots: bool = False, script: bool = True, signed_in: bool = False,
             status: int = 200) -> HTMLResponse:
    attributes = "".join(f' data-{h(k)}="{h(v)}"' for k, v in (data or {}).items())
    # Ours first: both run in order once the page is read, and ours starts fetching the
    # page's data before Plotly's (large) script runs.
    scripts = ('<script src="/static/dashboard.js" defer></script>' if script else "") + \
        (f'<script src="{PLOTLY_JS}" defer></script>' if plots else "")
    logout = ('<form method="post" action="/logout" class="logout">'
              '<button type="submit">Sign out</button></form>') if signed_in else ""
    text = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} · Pursuit</title>"
        '<link rel="icon" href="data:,">'  # no request for a favicon
        '<link rel="stylesheet" href="/static/dashboard.css">'
        f"{scripts}</head>"
        f'<body data-page="{h(page)}"{attributes}>'
        f'<header><a href="/" class="brand">Pursuit</a>{logout}</header>'
        f"<main>{body}</main></body></html>")
    # A stray surrogate (an error text from a broken file name) becomes U+FFFD.
    return HTMLResponse(text.encode("utf-8", errors="replace"), status_code=status)


def table(head: Iterable[str] | None, rows: Iterable[Iterable[Any]], *, id_: str = "") -> str:
    ident = f' id="{h(id_)}"' if id_ else ""
    top = f"<thead><tr>{''.join(f'<th>{h(c)}</th>' for c in head)}</tr></thead>" \
        if head is not None else ""
    return (f"<table{ident}>{top}<tbody>"
            + "".join(f"<tr>{''.join(f'<td>{h(c)}</td>' for c in row)}</tr>" for row in rows)
            + "</tbody></table>")


def goal_list(signed_in: bool) -> HTMLResponse:
    body = ('<h1>Goals</h1>'
            '<table id="goals"><thead><tr><th>goal</th><th>state</th><th>metric</th>'
            '<th>target</th><th>trials</th><th>completed</th><th>failed</th></tr></thead>'
            '<tbody></tbody></table>'
            '<p id="empty" class="muted" hidden>This store holds no goals yet: '
            '<code>pursuit run goal.yaml</code> makes one.</p>'
            '<noscript>The dashboard draws its pages with JavaScript; '
            'the same numbers are in <code>pursuit status</code>.</noscript>')
    return document("Goals", body, page="goals", signed_in=signed_in)


def goal_page(goal: Any, signed_in: bool) -> HTMLResponse:
    spec = goal.spec
    target = spec.get("target")
    question = (f"{h(spec.get('metric', ''))} ({h(spec.get('direction', ''))})"
                + (f", target {h(fmt(target))}" if target is not None else ", no target")
                + f", claims over {h(spec.get('seeds', 3))} seeds")
    statement = spec.get("statement", "")
    tabs = "".join(f'<option value="{s}">{s}</option>' for s in STATES)
    body = (
        f'<h1 id="goal-name">{h(goal.name)}</h1>'
        + (f'<p class="statement">{h(statement)}</p>' if statement else "")
        + f'<p class="question">{question}</p>'
        '<section id="standing"><p id="run-state" class="run-state"></p>'
        '<p id="verdict" class="verdict">Reading the results…</p>'
        '<dl id="counts" class="counts"></dl><p id="best" class="muted"></p></section>'
        '<section><h2>Leaderboard</h2>'
        '<table id="methods"><thead><tr><th>method</th><th>configuration</th><th>n</th>'
        '<th>mean</th><th>95% interval</th><th>vs best baseline</th><th>p (Holm)</th>'
        '<th>verdict</th><th>trials</th><th>failed</th></tr></thead><tbody></tbody></table>'
        '<div id="plot-leaderboard" class="plot"></div>'
        '<h3>Best configurations</h3>'
        '<table id="configs"><thead><tr><th>method</th><th>configuration</th><th>n</th>'
        '<th>mean</th><th>95% interval</th><th>basis</th></tr></thead><tbody></tbody></table>'
        '<p id="configs-note" class="muted"></p></section>'
        '<section><h2>Progress</h2><div id="plot-progress" class="plot"></div>'
        '<div id="plot-progress_compute" class="plot"></div></section>'
        '<section><h2>Learning curves</h2><div id="plots-curves"></div>'
        '<p id="curves-note" class="muted"></p></section>'
        '<section><h2>Dial effects</h2><div id="plots-dials"></div>'
        '<p id="dials-note" class="muted"></p></section>'
        '<section><h2>Scaling ladder</h2><pre id="ladder-lines" class="lines"></pre>'
        '<div id="plots-ladder"></div></section>'
        '<section><h2>Running</h2><table id="running"><thead><tr><th>trial</th>'
        '<th>method</th><th>stage</th></tr></thead><tbody></tbody></table>'
        '<p id="running-note" class="muted"></p></section>'
        '<section><h2>Failed trials</h2><table id="failed"><thead><tr><th>trial</th>'
        '<th>method</th><th>reason</th></tr></thead><tbody></tbody></table>'
        '<p id="failed-note" class="muted"></p></section>'
        '<section><h2>Trials</h2><label>state <select id="trial-state">'
        f'<option value="">any</option>{tabs}</select></label>'
        '<table id="trials"><thead><tr><th>trial</th><th>method</th><th>stage</th>'
        '<th>seed</th><th>state</th><th>configuration</th><th>value</th></tr></thead>'
        '<tbody></tbody></table><p id="trials-note" class="muted"></p>'
        '<button id="older" type="button" hidden>Older trials</button></section>'
        '<p id="updated" class="muted"></p>')
    return document(goal.name, body, page="goal", plots=True, signed_in=signed_in,
                    data={"goal": goal.id, "metric": spec.get("metric", "")})


def trial_page(record: Any, goal: Any, curve: dict[str, tuple[int, int, int]],
               signed_in: bool) -> HTMLResponse:
    trial = trial_json(record)
    facts = [("goal", goal.name if goal else record.goal_id), ("method", trial["method"]),
             ("stage", trial["stage"]), ("seed", trial["seed"]), ("state", trial["state"]),
             ("attempt", trial["attempt"]),
             ("wall seconds", fmt(trial["wall_seconds"])),
             ("CPU seconds", fmt(trial["cpu_seconds"]))]
    dials = table(["dial", "value"], [(k, v if isinstance(v, str) else json.dumps(v))
                                   for k, v in trial["dials"].items()],
                  id_="dials") if trial["dials"] else '<p class="muted">No dials.</p>'
    values = table(["metric", "value"], [(k, fmt(v)) for k, v in trial["values"].items()],
                   id_="values") if trial["values"] else '<p class="muted">No values.</p>'
    costs = table(["cost", "value"], [(k, fmt(v)) for k, v in trial["costs"].items()],
                  id_="costs") if trial["costs"] else ""
    curves = table(["metric", "points", "first step", "last step"],
                   [(k, *v) for k, v in curve.items()], id_="curve-summary") if curve else \
        '<p class="muted">No learning curve was reported.</p>'
    error = f'<h2>Error</h2><pre id="error" class="error">{h(trial["error"])}</pre>' \
        if trial["error"] else ""
    goal_link = f'<a href="/goals/{goal.id}">{h(goal.name)}</a>' if goal else ""
    live = '<p id="live-state" class="muted">running: the page follows it</p>' \
        if record.state.value == "running" else ""
    body = (f'<p class="crumbs">{goal_link}</p><h1>Trial {record.id}</h1>{live}'
            + table(None, facts, id_="facts")
            + f"<h2>Dials</h2>{dials}<h2>Values</h2>{values}{costs}{error}"
            + f'<h2>Learning curve</h2>{curves}<div id="plot-curve" class="plot"></div>')
    return document(f"Trial {record.id}", body, page="trial",
                    plots=bool(curve) or trial["state"] == "running",
                    signed_in=signed_in,
                    data={"trial": record.id, "state": trial["state"],
                          "metric": goal.spec.get("metric", "") if goal else ""})


def not_found(what: str, signed_in: bool) -> HTMLResponse:
    return document("Not found", f'<h1>Not found</h1><p>{h(what)}</p><p><a href="/">'
                    "All goals</a></p>", page="missing", signed_in=signed_in, status=404)


def login_page(next_path: str, *, failed: bool = False) -> HTMLResponse:
    note = '<p class="error" id="login-error">That token is not this server\'s.</p>' \
        if failed else ""
    body = ('<h1>Sign in</h1><p>This dashboard was started with a token '
            '(<code>pursuit serve --token</code>); give it to see the results.</p>' + note
            + '<form method="post" action="/login" class="login">'
            f'<input type="hidden" name="next" value="{h(next_path)}">'
            '<label>token <input type="password" name="token" autocomplete="current-password"'
            ' required autofocus></label> <button type="submit">Sign in</button></form>')
    return document("Sign in", body, page="login", script=False,  # (needs no script)
                    status=401 if failed else 200)


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or any(ord(c) < 32 for c in value):
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


def static_files() -> dict[str, tuple[bytes, str, str]]:
    """The files the pages load, by the only paths they are served at: the dashboard's
    own script and style, and Plotly's script from the installed plotly package. Read
    once; no request path ever reaches the file system."""
    from plotly.offline import get_plotlyjs

    here = resources.files("pursuit.dashboard") / "static"
    fresh = "no-cache"
    forever = "public, max-age=31536000, immutable"  # the path names plotly's version
    return {
        "/static/dashboard.js": ((here / "dashboard.js").read_bytes(),
                                 "text/javascript; charset=utf-8", fresh),
        "/static/dashboard.css": ((here / "dashboard.css").read_bytes(),
                                  "text/css; charset=utf-8", fresh),
        PLOTLY_JS: (get_plotlyjs().encode(), "text/javascript; charset=utf-8", forever),
    }


def router(token: str | None) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    signed_in = token is not None  # past the Guard, a request with a token is signed in

    @pages.get("/")
    def index() -> Response:
        return goal_list(signed_in)

    @pages.get("/goals/{goal_id}")
    def goal(request: Request, goal_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        record = request.app.state.views.goal(goal_id)
        if record is None:
            return not_found(f"There is no goal with id {goal_id}.", signed_in)
        return goal_page(record, signed_in)

    @pages.get("/trials/{trial_id}")
    def trial(request: Request, trial_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        views = request.app.state.views
        record = views.store.trial(trial_id)
        if record is None:
            return not_found(f"There is no trial with id {trial_id}.", signed_in)
        curve = views.store.curve_metrics(record.id, record.attempt)
        return trial_page(record, views.goal(record.goal_id), curve, signed_in)

    @pages.get("/login")
    def login_form(next: str | None = None) -> Response:  # noqa: A002 - the form's name
        if token is None:
            return RedirectResponse("/", status_code=303)
        return login_page(safe_next(next))

    @pages.post("/login")
    async def login(request: Request) -> Response:
        body = (await request.body())[:MAX_BODY]
        given, next_path = _credentials(body, request.headers.get("content-type", ""))
        if token is None:
            return RedirectResponse("/", status_code=303)
        if given is None or not same_secret(given, token):
            return login_page(safe_next(next_path), failed=True)
        response = RedirectResponse(safe_next(next_path), status_code=303)
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @pages.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login" if token else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return pages


def _credentials(body: bytes, content_type: str) -> tuple[str | None, str | None]:
    """The token and the page to go on to, from a login form or a JSON body."""
    text = body.decode("utf-8", errors="replace")
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            sent = json.loads(text)
        except ValueError:
            return None, None
        if not isinstance(sent, dict):
            return None, None
        given, next_path = sent.get("token"), sent.get("next")
        return (given if isinstance(given, str) else None,
                next_path if isinstance(next_path, str) else None)
    try:
        form = parse_qs(text, max_num_fields=8)
    except ValueError:  # more fields than a login form has
        return None, None
    return form.get("token", [None])[0], form.get("next", [None])[0]
