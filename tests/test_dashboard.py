"""The dashboard (``pursuit serve``) over a real SQLite store filled by the real engine,
served by a real uvicorn server on a free local port and asked over HTTP.

Security (RELIABILITY.md, server rules and T9-T12): the route x role matrix, Host and
Origin checks, methods, content types and body limits, XSS strings escaped, path
traversal payloads against a canary file, and schemathesis over the OpenAPI schema.
"""

import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import optuna
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

import pursuit
from pursuit import Goal
from pursuit.dashboard import create_app, serve
from pursuit.dashboard._serve import allowed_hosts
from pursuit.dashboard._views import GoalViews
from pursuit.exceptions import PursuitError
from pursuit.execution import ProcessExecutor
from pursuit.overview import goal_overview
from pursuit.store import NewTrial, WriteBatch, open_store
from pursuit.trial import Outcome, TrialState

ROOT = Path(__file__).parent.parent
TOKEN = "a-test-token-long-enough-0123456789"
XSS = '<img src=x onerror="window.__x=1">'
XSS_ERROR = "RuntimeError: </pre><script>window.__x=2</script>"
XSS_GOAL = f"goal{XSS}"
GOAL = Goal(name="dash", statement="Which method gets value highest?", metric="value",
            direction="maximize", target=0.5, seeds=3, budget={"max_trials": 36},
            methods=["sample_methods:quadratic", "sample_methods:curve",
                     "sample_methods:constant", "sample_methods:raises"])


def add_hostile_goal(url):
    """A goal whose every user string is an XSS payload, written through the store API
    (goal files refuse such names; a store written by other code need not)."""
    store = open_store(url)
    method = f"m{XSS}"
    spec = {"metric": "value", "direction": "maximize", "target": 1.0, "seeds": 1,
            "statement": f"statement {XSS}",
            "methods": [{"name": method, "entry": "x:y", "source": XSS, "baseline": True,
                         "defaults": {}}]}
    goal_id = store.ensure_goal(XSS_GOAL, spec)
    ids = store.write(WriteBatch("xss-engine", new=[
        NewTrial(goal_id, method, "baselines", {f"d{XSS}": f"v{XSS}"}, seed)
        for seed in range(3)])).new_ids
    batch = WriteBatch("xss-engine")
    batch.add_points(ids[0], 1, [(0, "value", 0.1), (1, "value", 0.2), (2, "value", 0.5)])
    batch.outcomes += [
        Outcome(ids[0], 1, TrialState.COMPLETED, {"value": 0.5, f"v{XSS}": 1.0}, {}, None,
                1.0, 1.0),
        Outcome(ids[1], 1, TrialState.FAILED, {}, {}, XSS_ERROR, 0.1, 0.1)]
    assert store.write(batch).refused == []
    store.close()
    return goal_id, ids


def copy_of(url, path):
    """A copy of the store at ``url`` (SQLite's backup: whole, whatever is open on it)."""
    import sqlite3

    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    target = sqlite3.connect(path)
    source.backup(target)
    source.close()
    target.close()
    return f"sqlite:///{path}"


def run_goal(path):
    """The toy goal run by the real engine with worker processes."""
    url = f"sqlite:///{path}"
    pursuit.run(GOAL, url, ProcessExecutor(2), sampler=optuna.samplers.TPESampler(seed=1),
                workdir=path.parent / "work")
    return url


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store holding the engine's run of GOAL and the hostile goal."""
    path = tmp_path_factory.mktemp("dashboard") / "pursuit.db"
    url = run_goal(path)
    hostile = add_hostile_goal(url)
    return url, hostile


@contextmanager
def running_server(url, *, token=None, hosts=("127.0.0.1", "localhost", "::1"), views=None):
    """A real uvicorn server of ``create_app`` on a free port, in a thread."""
    app = create_app(url, token=token, allowed_hosts=hosts)
    if views is not None:
        app.state.views = views(app.state.views.store)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def server(filled):
    with running_server(filled[0]) as base:
        yield base


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=60) as c:
        yield c


def raw_request(base, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client tidies the path) and read the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer


# --- the API says what the Python API says ---------------------------------------------

def test_the_api_gives_the_numbers_of_the_python_api(filled, client):
    url, _ = filled
    with pursuit.open(url) as results:
        record = results.goal("dash")
        overview = goal_overview(results, "dash")
        board = results.leaderboard("dash")
        frame = results.results("dash")
    goals = {g["name"]: g for g in client.get("/api/goals").json()["goals"]}
    assert set(goals) == {"dash", XSS_GOAL}
    assert goals["dash"]["trials_total"] == len(frame) == 36
    assert goals["dash"]["trials"] == frame["state"].value_counts().to_dict()
    assert goals["dash"]["state"] == "ended"
    shown = client.get(f"/api/goals/{record.id}").json()
    assert shown["verdict"] == overview["verdict"]
    assert shown["trials"] == overview["trials"] and shown["reason"] == overview["reason"]
    assert shown["best"]["best_mean"] == pytest.approx(overview["best"]["best_mean"])
    lb = client.get(f"/api/goals/{record.id}/leaderboard", params={"configs": 3}).json()
    means = {m["method"]: m["mean"] for m in lb["methods"]}
    for row in board.methods.itertuples():
        assert means[row.method] == (None if math.isnan(row.mean) else
                                     pytest.approx(row.mean))
    assert len(lb["configs"]) == min(3, len(board.configs))
    assert lb["configs_total"] == len(board.configs)
    assert lb["progress"]["best_method"] == board.progress["best_method"]


def test_trials_come_newest_first_a_page_at_a_time_filtered_by_state(filled, client):
    url, _ = filled
    with pursuit.open(url) as results:
        frame = results.results("dash")
        goal_id = results.goal("dash").id
    seen, before = [], None
    while True:
        params = {"limit": 7, **({"before": before} if before else {})}
        page = client.get(f"/api/goals/{goal_id}/trials", params=params).json()
        assert page["total"] == len(frame)
        seen += [t["id"] for t in page["trials"]]
        before = page["before"]
        if before is None:
            break
    assert seen == sorted(frame["trial_id"], reverse=True)
    failed = client.get(f"/api/goals/{goal_id}/trials", params={"state": "failed"}).json()
    expected = frame[frame["state"] == "failed"]
    assert [t["id"] for t in failed["trials"]] == sorted(expected["trial_id"], reverse=True)
    assert failed["total"] == len(expected) > 0
    assert all("boom in the method" in t["error"] for t in failed["trials"])
    both = client.get(f"/api/goals/{goal_id}/trials?state=failed&state=completed").json()
    assert {t["state"] for t in both["trials"]} == {"failed", "completed"}


def test_a_trial_and_its_curve_come_as_stored(filled, client):
    url, _ = filled
    store = open_store(url, create=False)
    goal_id = store.goal_id("dash")
    record = next(t for t in store.trials(goal_id) if t.method == "curve" and
                  t.state is TrialState.COMPLETED)
    curve = [(s, v) for a, s, m, v in store.curve(record.id) if m == "value"]
    store.close()
    shown = client.get(f"/api/trials/{record.id}").json()
    assert shown["dials"] == record.dials and shown["values"] == record.values
    assert shown["curve"]["value"] == {"points": len(curve), "first_step": curve[0][0],
                                       "last_step": curve[-1][0]}
    whole = client.get(f"/api/trials/{record.id}/curve").json()["metrics"]["value"]
    assert whole["step"] == [s for s, _ in curve] and whole["mean"] == [v for _, v in curve]
    two = client.get(f"/api/trials/{record.id}/curve", params={"points": 2}).json()
    buckets = two["metrics"]["value"]
    half = (len(curve) + 1) // 2  # a bucket is rank * points // n
    first = [v for _, v in curve[:half]]
    assert buckets["points"] == len(curve) and len(buckets["step"]) == 2
    assert buckets["step"] == [curve[half - 1][0], curve[-1][0]]
    assert buckets["mean"][0] == pytest.approx(sum(first) / len(first))
    assert buckets["min"][0] == min(first) and buckets["max"][1] == curve[-1][1]


def test_a_long_curve_is_thinned_in_the_store(tmp_path):
    """50,000 points come back as 500 buckets; NaN stays out of a bucket's numbers."""
    url = f"sqlite:///{tmp_path / 'long.db'}"
    store = open_store(url)
    goal_id = store.ensure_goal("long", {"metric": "loss", "direction": "minimize",
                                         "methods": [{"name": "m", "entry": "a:b"}]})
    [trial] = store.write(WriteBatch("e", new=[NewTrial(goal_id, "m", "search", {}, 0)])).new_ids
    batch = WriteBatch("e")
    values = [math.nan if step % 1000 == 7 else 1.0 / (1 + step) for step in range(50_000)]
    batch.add_points(trial, 1, [(step, "loss", v) for step, v in enumerate(values)])
    store.write(batch)
    store.close()
    with running_server(url) as base:
        curve = httpx.get(f"{base}/api/trials/{trial}/curve?points=500").json()
    loss = curve["metrics"]["loss"]
    assert loss["points"] == 50_000 and len(loss["step"]) == 500
    assert loss["step"][:2] == [99, 199] and loss["step"][-1] == 49_999
    first = [v for v in values[:100] if not math.isnan(v)]
    assert loss["mean"][0] == pytest.approx(sum(first) / len(first))
    assert loss["min"][0] == min(first) and loss["max"][0] == 1.0


def test_reads_for_views_agree_with_the_plain_reads(store):
    """Store.trial, trial_page, trial_counts, curve_metrics, curve_sample and changes,
    on every backend: the same answers as the plain reads, and a marker that moves
    with every change of a trial's state and with nothing else."""
    spec = {"metric": "loss", "direction": "minimize",
            "methods": [{"name": "a", "entry": "m:a"}, {"name": "b", "entry": "m:b"}]}
    goal_id = store.ensure_goal("views", spec)
    other = store.ensure_goal("other", spec)
    new = [NewTrial(goal_id, "ab"[i % 2], "search", {"x": i}, 0) for i in range(12)]
    ids = store.write(WriteBatch("e", new=new)).new_ids
    store.write(WriteBatch("e", new=[NewTrial(other, "a", "search", {}, 0)]))
    marker = store.changes(goal_id)
    assert store.changes(goal_id) == marker
    batch = WriteBatch("e")
    batch.add_points(ids[0], 1, [(s, "loss", math.nan if s == 3 else 10.0 - s)
                                 for s in range(10)] + [(0, "acc", 0.5)])
    store.write(batch)
    assert store.changes(goal_id) == marker, "curve points alone change no view"
    done = WriteBatch("e", outcomes=[
        Outcome(ids[i], 1, TrialState.COMPLETED if i % 3 else TrialState.FAILED,
                {"loss": float(i)}, {"flops": 1.0}, None if i % 3 else "bad", 1.0, 1.0)
        for i in range(6)])
    store.write(done)
    after = store.changes(goal_id)
    assert after != marker
    store.write(WriteBatch("e", preempted=[(ids[7], 1, "lost")]))
    preempted = store.changes(goal_id)
    assert preempted != after
    store.write(WriteBatch("e", restarts=[(ids[7], 2)]))
    assert store.changes(goal_id) != preempted

    every = {t.id: t for t in store.trials(goal_id)}
    assert store.trial(ids[4]) == every[ids[4]] and store.trial(10**9) is None
    counts: dict = {}
    for t in every.values():
        counts[t.state] = counts.get(t.state, 0) + 1
    assert store.trial_counts(goal_id) == counts
    newest = sorted(every, reverse=True)
    assert [t.id for t in store.trial_page(goal_id, limit=5)] == newest[:5]
    assert [t.id for t in store.trial_page(goal_id, before=newest[4], limit=100)] == newest[5:]
    failed = store.trial_page(goal_id, states={TrialState.FAILED})
    assert [t.id for t in failed] == sorted((i for i, t in every.items()
                                            if t.state is TrialState.FAILED), reverse=True)
    assert failed[0] == every[failed[0].id]
    assert store.curve_metrics(ids[0], 1) == {"acc": (1, 0, 0), "loss": (10, 0, 9)}
    assert store.curve_metrics(ids[0], 2) == {}
    whole = store.curve_sample(ids[0], 1, "loss", 100)
    assert [s for s, *_ in whole] == list(range(10))
    assert math.isnan(whole[3][1]) and whole[4] == (4, 6.0, 6.0, 6.0)
    three = store.curve_sample(ids[0], 1, "loss", 3)  # buckets of 4, 3, 3 points
    assert [s for s, *_ in three] == [3, 6, 9]
    assert three[0] == (3, pytest.approx(9.0), 8.0, 10.0)  # the NaN at step 3 left out
    assert three[2] == (9, pytest.approx(2.0), 1.0, 3.0)
    assert store.curve_sample(ids[0], 1, "nothing", 5) == []


# --- pages ---------------------------------------------------------------------------

def test_pages_load_and_escape_every_user_string(filled, client):
    _, (goal_id, trial_ids) = filled
    page = client.get(f"/goals/{goal_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for answer in (page, client.get(f"/trials/{trial_ids[0]}"),
                   client.get(f"/trials/{trial_ids[1]}"), client.get("/")):
        assert answer.status_code == 200
        text = answer.text
        assert "<img" not in text and "onerror=\"window" not in text
        assert "<script>window" not in text and "</pre><script>" not in text
        assert not re.search(r"<script(?![^>]*src=\"/static/)", text), "only our own scripts"
    assert "goal&lt;img src=x onerror=&quot;window.__x=1&quot;&gt;" in page.text
    assert "statement &lt;img" in page.text
    failed = client.get(f"/trials/{trial_ids[1]}").text
    assert "RuntimeError: &lt;/pre&gt;&lt;script&gt;window.__x=2&lt;/script&gt;" in failed
    assert "d&lt;img src=x" in client.get(f"/trials/{trial_ids[0]}").text
    data = client.get(f"/api/goals/{goal_id}/view")
    assert data.headers["content-type"] == "application/json"
    assert data.headers["x-content-type-options"] == "nosniff"
    assert data.json()["overview"]["goal"] == XSS_GOAL  # JSON holds the string as it is


def test_the_goal_page_data_holds_the_report_figures(filled, client):
    url, _ = filled
    with pursuit.open(url) as results:
        goal_id = results.goal("dash").id
        board = results.leaderboard("dash")
    view = client.get(f"/api/goals/{goal_id}/view").json()
    figures = view["figures"]
    drawn = {m for trace in figures["leaderboard"]["data"] for m in trace["y"]}
    assert drawn == {m for m, n in zip(board.methods["method"], board.methods["n"],
                                       strict=True) if n > 0}
    assert len(figures["progress"]["data"]) >= 2
    assert figures["curves"] and all(f["data"] for f in figures["curves"])
    titles = " ".join(f["layout"]["title"]["text"] for f in figures["curves"])
    assert "curve" in titles and "quadratic" in titles  # the methods that report curves
    assert figures["dials"] and view["overview"]["failed_total"] >= 1
    assert view["run"]["state"] == "ended" and view["version"]
    assert view["leaderboard"]["methods"][0]["method"] == board.methods["method"].iloc[0]


def goal_ids(http):
    return {g["name"]: g["id"] for g in http.get("/api/goals").json()["goals"]}


def next_version(http, goal_id, old, wait=30.0):
    """The goal's version once it differs from ``old`` (a slow goal's new view is
    computed in the background: its version changes when it lands)."""
    deadline = time.monotonic() + wait
    while (now := http.get(f"/api/goals/{goal_id}/version").json()["version"]) == old:
        assert time.monotonic() < deadline, "the version never changed"
        time.sleep(0.05)
    return now


def test_the_view_follows_new_trials(filled, tmp_path):
    """A trial created, then finished, after the page was read changes the version each
    time, and the next read shows it (the browser test watches the page do this)."""
    url = copy_of(filled[0], tmp_path / "live.db")
    with running_server(url) as base, httpx.Client(base_url=base) as http:
        goal_id = goal_ids(http)["dash"]
        before = http.get(f"/api/goals/{goal_id}/view").json()
        assert http.get(f"/api/goals/{goal_id}/version").json()["version"] == before["version"]
        store = open_store(url)
        [new] = store.write(WriteBatch("late", new=[
            NewTrial(goal_id, "constant", "baselines", {}, 99)])).new_ids
        running = next_version(http, goal_id, before["version"])
        assert http.get(f"/api/goals/{goal_id}/view").json()["overview"]["running"] == \
            [{"trial_id": new, "method": "constant", "stage": "baselines"}]
        store.write(WriteBatch("late", outcomes=[
            Outcome(new, 1, TrialState.COMPLETED, {"value": 0.25}, {}, None, 0.1, 0.1)]))
        store.close()
        finished = next_version(http, goal_id, running)
        view = http.get(f"/api/goals/{goal_id}/view").json()
        assert view["version"] == finished and view["overview"]["running"] == []
        assert view["overview"]["trials_total"] == before["overview"]["trials_total"] + 1
        assert view["overview"]["trials"]["completed"] == \
            before["overview"]["trials"]["completed"] + 1


def test_a_slow_goal_is_served_its_last_view_while_the_new_one_is_computed(filled, tmp_path):
    url = copy_of(filled[0], tmp_path / "slow.db")

    def eager_to_refresh(store):
        return GoalViews(store, wait_up_to=0.0)  # every goal counts as slow

    with running_server(url, views=eager_to_refresh) as base, httpx.Client(base_url=base) as http:
        goal_id = goal_ids(http)["dash"]
        first = http.get(f"/api/goals/{goal_id}/view").json()
        store = open_store(url)
        [new] = store.write(WriteBatch("late", new=[
            NewTrial(goal_id, "constant", "baselines", {}, 99)])).new_ids
        store.close()
        assert http.get(f"/api/goals/{goal_id}/version").json()["version"] == \
            first["version"], "the kept view is served at once"
        next_version(http, goal_id, first["version"])
        later = http.get(f"/api/goals/{goal_id}/view").json()
        assert later["overview"]["trials_total"] == first["overview"]["trials_total"] + 1
        assert later["overview"]["running"][0]["trial_id"] == new


def test_goals_with_nothing_to_claim_still_show(tmp_path):
    """A goal with no trial, one whose trials all failed, and one of a single seed with a
    NaN value and NaN and inf dials: every page and answer, and the verdict says why."""
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    store = open_store(url)
    spec = {"metric": "value", "direction": "maximize", "target": 0.5,
            "methods": [{"name": "m", "entry": "a:b", "baseline": True}]}
    empty = store.ensure_goal("empty", spec)
    failed = store.ensure_goal("failed", spec)
    single = store.ensure_goal("single", {**spec, "seeds": 1})
    ids = store.write(WriteBatch("e", new=[
        NewTrial(failed, "m", "baselines", {"x": math.nan}, seed) for seed in range(2)]
        + [NewTrial(single, "m", "baselines", {"x": math.inf}, 0)])).new_ids
    store.write(WriteBatch("e", outcomes=[
        Outcome(ids[0], 1, TrialState.FAILED, {}, {}, "boom \x00 with a NUL", 0.1, 0.1),
        Outcome(ids[1], 1, TrialState.FAILED, {}, {}, "boom", 0.1, 0.1),
        Outcome(ids[2], 1, TrialState.COMPLETED, {"value": math.nan}, {}, None, 0.1, 0.1)]))
    store.close()
    with running_server(url) as base, httpx.Client(base_url=base) as http:
        for goal_id in (empty, failed, single):
            for path in (f"/api/goals/{goal_id}", f"/api/goals/{goal_id}/view",
                         f"/api/goals/{goal_id}/leaderboard", f"/api/goals/{goal_id}/trials",
                         f"/goals/{goal_id}"):
                assert http.get(path).status_code == 200, path
        for trial_id in ids:
            for path in (f"/api/trials/{trial_id}", f"/trials/{trial_id}",
                         f"/api/trials/{trial_id}/curve"):
                assert http.get(path).status_code == 200, path
        assert http.get(f"/api/goals/{empty}").json()["verdict"] == \
            "No trial has completed yet: nothing can be claimed."
        assert http.get(f"/api/goals/{failed}/view").json()["overview"]["failed_total"] == 2
        assert http.get(f"/api/trials/{ids[0]}").json()["dials"] == {"x": None}
        assert http.get(f"/api/trials/{ids[2]}").json()["values"] == {"value": None}


# --- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/goals/9999", "/api/goals/9999/leaderboard", "/api/goals/9999/trials",
    "/api/goals/9999/view", "/api/goals/9999/version", "/api/trials/999999",
    "/api/trials/999999/curve", "/api/nothing", "/no/such/page"])
def test_unknown_ids_and_routes_are_404_with_a_json_detail(client, path):
    answer = client.get(path)
    assert answer.status_code == 404 and isinstance(answer.json()["detail"], str)


@pytest.mark.parametrize("query", [
    "/api/goals/abc", "/api/goals/0", "/api/goals/-1", f"/api/goals/{2**70}",
    "/api/goals/1.5", "/api/goals/1/trials?state=bogus", "/api/goals/1/trials?limit=0",
    "/api/goals/1/trials?limit=501", "/api/goals/1/trials?before=x",
    "/api/goals/1/leaderboard?configs=-1", "/api/goals/1/leaderboard?configs=1001",
    "/api/trials/1/curve?points=1", "/api/trials/1/curve?points=100000",
    f"/api/trials/1/curve?metric={'m' * 101}", "/api/trials/1/curve?attempt=0",
    "/goals/abc", "/trials/-3"])
def test_malformed_parameters_are_422(client, query):
    answer = client.get(query)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"]


def test_an_unknown_page_id_is_a_404_page(client):
    answer = client.get("/goals/9999")
    assert answer.status_code == 404 and "no goal with id 9999" in answer.text


def test_an_unknown_metric_of_a_known_trial_is_404(filled, client):
    _, (_, ids) = filled
    answer = client.get(f"/api/trials/{ids[0]}/curve", params={"metric": "nope"})
    assert answer.status_code == 404 and "no curve of metric 'nope'" in answer.json()["detail"]
    never = client.get(f"/api/trials/{ids[0]}/curve?attempt=99")  # nor an attempt
    assert never.status_code == 404 and "not 99" in never.json()["detail"]


# --- closed to strangers -------------------------------------------------------------

def routes(goal_id, trial_id):
    from pursuit.dashboard._pages import PLOTLY_JS

    api = ["/api/goals", f"/api/goals/{goal_id}", f"/api/goals/{goal_id}/leaderboard",
           f"/api/goals/{goal_id}/trials", f"/api/goals/{goal_id}/view",
           f"/api/goals/{goal_id}/version", f"/api/trials/{trial_id}",
           f"/api/trials/{trial_id}/curve", "/openapi.json"]
    pages = ["/", f"/goals/{goal_id}", f"/trials/{trial_id}", "/static/dashboard.js",
             PLOTLY_JS]
    return api, pages


def test_with_a_token_every_route_but_health_needs_it(filled):
    """The route x role matrix: nobody, a wrong bearer, a wrong cookie, the right bearer,
    the cookie the login form sets."""
    url, (goal_id, trial_ids) = filled
    api, pages = routes(goal_id, trial_ids[0])
    with running_server(url, token=TOKEN) as base, httpx.Client(base_url=base) as http:
        login = http.post("/login", data={"token": TOKEN, "next": f"/goals/{goal_id}"})
        assert login.status_code == 303 and login.headers["location"] == f"/goals/{goal_id}"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert TOKEN not in cookie, "the cookie holds a value derived from the token"
        session = cookie.split(";")[0]
        roles = {"nobody": {}, "wrong bearer": {"Authorization": "Bearer not-the-token"},
                 "wrong cookie": {"Cookie": "pursuit_session=0123abcd"},
                 "token as cookie": {"Cookie": f"pursuit_session={TOKEN}"},
                 "bearer": {"Authorization": f"Bearer {TOKEN}"}, "cookie": {"Cookie": session}}
        http.cookies.clear()
        for role, headers in roles.items():
            allowed = role in ("bearer", "cookie")
            for path in api + pages:
                answer = http.get(path, headers=headers)
                if allowed:
                    assert answer.status_code == 200, (role, path)
                elif path in pages:
                    assert answer.status_code == 303, (role, path)
                    assert answer.headers["location"] == f"/login?next={quote(path, safe='')}"
                else:
                    assert answer.status_code == 401, (role, path)
                    assert answer.headers["www-authenticate"] == "Bearer"
                    assert list(answer.json()) == ["detail"]
                    assert "sign in" in answer.json()["detail"]
            assert http.get("/api/health", headers=headers).status_code == 200
            assert http.get("/login", headers=headers).status_code == 200


def test_login_refuses_a_wrong_token_and_never_redirects_off_site(filled):
    url, _ = filled
    with running_server(url, token=TOKEN) as base, httpx.Client(base_url=base) as http:
        wrong = http.post("/login", data={"token": "wrong-token-wrong-token", "next": "/"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        assert "not this server" in wrong.text
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example",
                       "javascript:alert(1)", "/ok\r\nSet-Cookie: x=1"):
            answer = http.post("/login", data={"token": TOKEN, "next": target})
            assert answer.status_code == 303 and answer.headers["location"] == "/", target
        as_json = http.post("/login", json={"token": TOKEN, "next": "/goals/1"})
        assert as_json.status_code == 303 and as_json.headers["location"] == "/goals/1"
        out = http.post("/logout", headers={"Cookie": as_json.headers["set-cookie"]
                                            .split(";")[0]})
        assert out.status_code == 303 and 'pursuit_session=""' in out.headers["set-cookie"]
        form = http.get("/login?next=/x%22%3E%3Cscript%3E")
        assert '"><script>' not in form.text and "/x&quot;&gt;&lt;script&gt;" in form.text


def test_host_origin_method_content_type_and_size_are_checked(filled, client, server):
    url, (goal_id, _) = filled
    for path in ("/api/health", "/", f"/api/goals/{goal_id}", "/login"):
        for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", ""):
            answer = client.get(path, headers={"Host": host})
            assert answer.status_code == 400, (path, host)
    port = server.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        answer = client.request(method, "/api/goals", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
        assert answer.status_code == 405 and "access-control-allow-origin" not in answer.headers
    cross = client.get("/api/goals", headers={"Origin": "http://evil.example"})
    assert cross.status_code == 200 and "access-control-allow-origin" not in cross.headers
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}):
        answer = client.post("/logout", headers=headers)
        assert answer.status_code == 403, headers
    assert client.post("/logout", headers={"Origin": server}).status_code == 303
    assert client.post("/logout", content=b"x", headers={
        "Content-Type": "text/plain"}).status_code == 415
    big = client.post("/login", content=b"token=" + b"a" * 20_000,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"a" * 1000

    streamed = client.post("/login", content=chunks(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413


def test_every_answer_carries_the_security_headers(filled, client):
    _, (goal_id, trial_ids) = filled
    for path in ("/", f"/goals/{goal_id}", f"/trials/{trial_ids[0]}", "/api/goals",
                 "/api/goals/abc", "/api/goals/9999", "/static/dashboard.js", "/login"):
        headers = client.get(path).headers
        policy = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"]
                      .split(";"))
        assert policy["script-src"] == "'self'", "only our own script files: none inline"
        assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    refused = client.get("/", headers={"Host": "evil.example"}).headers
    assert refused["x-frame-options"] == "DENY"
    static = client.get("/static/dashboard.js")
    assert static.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in static.text and "eval(" not in static.text


def traversal_payloads(canary: Path) -> list[str]:
    """Path traversal attempts at a canary file: dot segments, encoded once and twice,
    backslashes, NUL, absolute paths, overlong UTF-8, and the names of real files."""
    target = str(canary).lstrip("/")
    name = canary.name
    dots = ["../", "..%2f", "%2e%2e/", "%2e%2e%2f", "..%252f", "%252e%252e%252f", "..\\",
            "..%5c", "%2e%2e%5c", "..%c0%af", "..%c1%9c", "....//", "..;/", ".%2e/", "%2e./"]
    out = []
    for dot in dots:
        for depth in (1, 3, 8, 16):
            out.append(dot * depth + target)
            out.append(dot * depth + name)
    out += [f"/{target}", f"%2f{target}", f"//{target}", f"file://{canary}",
            f"{target}%00.js", f"dashboard.js/../../{target}", f"..%00/{target}",
            f"static/../../{target}", "../pursuit.db", "../../etc/passwd",
            f"{'..%2F' * 12}etc%2Fpasswd", "%2e%2e%2f" * 10 + "etc/passwd"]
    return out


def test_no_request_path_or_parameter_reaches_the_file_system(filled, server, tmp_path):
    """T10 at the scale of a test: a few hundred payloads in every place a request can
    hold text, sent raw; the canary's text never comes back and nothing fails."""
    url, (goal_id, trial_ids) = filled
    canary = tmp_path / "canary.txt"
    secret = "CANARY-7f3a9c1e-do-not-serve"
    canary.write_text(secret)
    payloads = traversal_payloads(canary)
    assert len(payloads) >= 120
    places = ["/static/{p}", "/{p}", "/goals/{p}", "/api/trials/{p}/curve",
              f"/api/trials/{trial_ids[0]}/curve?metric={{p}}", "/login?next={p}",
              f"/api/goals/{goal_id}/trials?state={{p}}"]
    sent = 0
    for place in places:
        for payload in payloads:
            path = place.format(p=payload)
            request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                       .encode("latin-1"))
            status, answer = raw_request(server, request)
            sent += 1
            assert secret.encode() not in answer, path
            assert b"root:x:0" not in answer and b"SQLite format" not in answer, path
            assert 0 < status < 500, (path, status)
            if place.startswith("/static/"):
                assert status in (400, 404), (path, status)
    assert sent >= 800


def test_a_slow_client_does_not_hold_up_the_health_check(client, server):
    """T12: a client that dribbles its headers, and one that sends half a body, while
    the health check answers at once."""
    host, port = server.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)))
    half = socket.create_connection((host, int(port)))
    try:
        slow.sendall(b"GET /api/goals HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        half.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     b"application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nto")
        for _ in range(5):
            slow.sendall(b"a")
            started = time.perf_counter()
            assert client.get("/api/health").json() == {"status": "ok"}
            assert time.perf_counter() - started < 1.0
    finally:
        slow.close()
        half.close()


# --- schemathesis (T9) ---------------------------------------------------------------

def test_schemathesis_finds_no_server_error(server):
    """T9: every operation with generated (and deliberately malformed) parameters: no
    5xx, answers as documented. (Driven through schemathesis's own API, not its pytest
    plugin, which follows pytest's internals.)"""
    api = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def check(case):
            case.call_and_validate()

        check()


# --- serving -------------------------------------------------------------------------

def test_serve_refuses_a_public_address_without_a_token(filled):
    url, _ = filled
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.org"):
        with pytest.raises(PursuitError, match="refusing to serve on .* without a token"):
            serve(url, host=host, port=1)
    with pytest.raises(PursuitError, match="at least 16 characters"):
        serve(url, host="0.0.0.0", port=1, token="short")
    with pytest.raises(pursuit.UnusableStoreError, match="no store at"):
        serve(str(Path(url.removeprefix("sqlite:///")).parent / "missing.db"), port=1)


def test_serve_on_a_port_in_use_says_so_in_one_line(filled):
    url, _ = filled
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PursuitError, match=f"cannot listen on 127.0.0.1:{port}: "):
            serve(url, port=port)


def test_a_wildcard_bind_answers_to_the_machines_names_and_no_other(monkeypatch):
    monkeypatch.setenv("PURSUIT_ALLOWED_HOSTS", "dash.example.org, ")
    names = allowed_hosts("0.0.0.0")
    assert {"127.0.0.1", "localhost", "::1", socket.gethostname(),
            "dash.example.org"} <= set(names)
    assert "0.0.0.0" not in names and "" not in names
    assert allowed_hosts("10.1.2.3")[:4] == ["127.0.0.1", "localhost", "::1", "10.1.2.3"]


def test_a_generated_token_is_printed_once_and_works(filled):
    url, _ = filled
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import sys; from pursuit.dashboard import serve; "
            "serve(sys.argv[1], port=int(sys.argv[2]), token='generate')")
    process = subprocess.Popen([sys.executable, "-c", code, url, str(port)],
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        assert line.startswith("token (shown once): ")
        token = line.split(": ", 1)[1].strip()
        assert len(token) >= 40
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{base}/api/health").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert httpx.get(f"{base}/api/goals").status_code == 401
        signed = httpx.get(f"{base}/api/goals", headers={"Authorization": f"Bearer {token}"})
        assert signed.status_code == 200
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[1]
    assert token not in rest, "the token is printed once"


# --- the benchmark -------------------------------------------------------------------

def test_the_dashboard_benchmark_runs_small(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dashboard.py"), "--trials", "400",
         "--points", "8000", "--repeat", "3", "--store", str(tmp_path / "bench.db"),
         "--json"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert {"leaderboard_ms_p95", "page_ms_p95", "trials", "points", "cold_ms",
            "leaderboard_ms_p50", "page_ms_p50"} <= set(figures)
    assert figures["trials"] == 400 and figures["points"] == 8000
    assert all(figures[k] > 0 for k in ("leaderboard_ms_p95", "page_ms_p95"))
