"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real server over a store filled by the real engine.

Every page loads with no console error (a CSP violation is one); the plots render and
hold the data; the leaderboard shows the right rows; a goal page shows a trial that
lands in the store while it is open, without a reload; XSS strings execute nothing;
signing in works with the cookie out of reach of scripts.

Skipped when Chromium or Playwright is missing, unless PURSUIT_REQUIRE_BROWSER=1 (CI).
"""

import importlib.util
import os
from pathlib import Path

import pytest
from test_dashboard import TOKEN, XSS_ERROR, XSS_GOAL, add_hostile_goal, run_goal, running_server

import pursuit
from pursuit.store import NewTrial, WriteBatch, open_store
from pursuit.trial import Outcome, TrialState

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 30_000


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is missing (pip install playwright; it uses Debian's Chromium)"
    return None


if (missing := _missing()) is not None:
    if os.environ.get("PURSUIT_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"PURSUIT_REQUIRE_BROWSER is set but {missing}")
    pytest.skip(missing, allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402 - only where a browser is


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    path = tmp_path_factory.mktemp("browser") / "pursuit.db"
    url = run_goal(path)
    return url, add_hostile_goal(url)


@pytest.fixture(scope="module")
def base(filled):
    with running_server(filled[0]) as served:
        yield served


class Watched:
    """A page with every console error, page error and failed request written down,
    and every request that left this server."""

    def __init__(self, browser, base):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on("request", lambda r: None if r.url.startswith((base, "data:"))
                     else self.foreign.append(r.url))

    def close(self):
        self.context.close()


@pytest.fixture
def watched(browser, base):
    opened = Watched(browser, base)
    yield opened
    opened.close()
    assert opened.foreign == [], "the dashboard loads nothing from elsewhere"


def goal_ids(url):
    with pursuit.open(url) as results:
        return {g.name: g.id for g in results.goals()}


def ready(page):
    """Wait until the goal page has drawn its data (it marks the body with the version)."""
    page.wait_for_selector("body[data-version]", state="attached", timeout=WAIT_MS)


def test_every_page_loads_without_console_errors(filled, base, watched):
    url, (hostile, hostile_trials) = filled
    ids = goal_ids(url)
    store = open_store(url, create=False)
    trials = store.trials(ids["dash"])
    store.close()
    with_curve = next(t.id for t in trials if t.method == "curve")
    failed = next(t.id for t in trials if t.state is TrialState.FAILED)
    page = watched.page
    page.goto(f"{base}/")
    page.wait_for_selector("#goals tbody tr", timeout=WAIT_MS)
    assert page.locator("#goals tbody tr").count() == 2
    for goal_id in (ids["dash"], hostile):
        page.goto(f"{base}/goals/{goal_id}")
        ready(page)
        page.wait_for_selector("#plot-leaderboard .main-svg", timeout=WAIT_MS)
    for trial_id in (with_curve, failed, *hostile_trials):
        page.goto(f"{base}/trials/{trial_id}")
        page.wait_for_load_state("networkidle")
    page.goto(f"{base}/trials/{with_curve}")
    page.wait_for_selector("#plot-curve .main-svg", timeout=WAIT_MS)
    page.goto(f"{base}/goals/999999")
    assert "no goal with id 999999" in page.inner_text("main")
    assert [e for e in watched.errors if "404" not in e] == []


def test_plots_render_and_hold_the_data(filled, base, watched):
    url, _ = filled
    with pursuit.open(url) as results:
        board = results.leaderboard("dash")
        frame = results.results("dash")
    page = watched.page
    page.goto(f"{base}/goals/{goal_ids(url)['dash']}")
    ready(page)
    page.wait_for_selector("#plot-leaderboard .main-svg", timeout=WAIT_MS)
    drawn = page.evaluate("() => document.getElementById('plot-leaderboard').data"
                          ".flatMap(t => t.y)")
    assert sorted(drawn) == sorted(board.methods.loc[board.methods["n"] > 0, "method"])
    points = page.locator("#plot-leaderboard .scatterlayer .point").count()
    assert points == len(drawn)
    for plot in ("#plot-progress", "#plots-curves .plot", "#plots-dials .plot"):
        for node in page.locator(plot).all():
            node.scroll_into_view_if_needed()
            node.locator(".main-svg").first.wait_for(state="attached", timeout=WAIT_MS)
    # calcdata: the points Plotly computed from each trace (the figures' arrays arrive
    # base64-encoded, as plotly.py writes them)
    curves = page.evaluate("() => Array.from(document.querySelectorAll('#plots-curves .plot'))"
                           ".map(n => n.calcdata.filter(t => t.length).length)")
    assert len(curves) == 2 and all(n > 0 for n in curves)  # quadratic and curve report
    progress = page.evaluate("() => document.getElementById('plot-progress').calcdata"
                             ".map(t => t.length)")
    assert max(progress) > 0 and max(progress) <= len(frame)
    assert [e for e in watched.errors] == []


def test_the_leaderboard_shows_the_right_rows(filled, base, watched):
    url, _ = filled
    with pursuit.open(url) as results:
        board = results.leaderboard("dash")
    page = watched.page
    page.goto(f"{base}/goals/{goal_ids(url)['dash']}")
    ready(page)
    rows = page.locator("#methods tbody tr")
    assert rows.count() == len(board.methods)
    for index, row in enumerate(board.methods.itertuples()):
        cells = rows.nth(index).locator("td").all_inner_texts()
        assert cells[0] == row.method + (" (baseline)" if row.baseline else "")
        assert cells[2] == str(row.n) and cells[7] == row.verdict
        if row.n:
            assert cells[3] == f"{row.mean:.4g}"
    verdict = page.inner_text("#verdict")
    assert verdict.startswith(f"{board.progress['best_method']} (")
    assert watched.errors == []


def test_a_goal_page_shows_a_new_trial_without_a_reload(filled, base, watched):
    url, _ = filled
    goal_id = goal_ids(url)["dash"]
    page = watched.page
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(f"{base}/goals/{goal_id}")
    ready(page)
    before = page.get_attribute("body", "data-version")
    total = int(page.locator("#counts dd").first.inner_text())
    page.evaluate("() => { window.__still_here = true; }")  # a reload would lose it
    store = open_store(url)
    [new] = store.write(WriteBatch("from-the-test", new=[
        NewTrial(goal_id, "constant", "baselines", {}, 42)])).new_ids
    store.write(WriteBatch("from-the-test", outcomes=[
        Outcome(new, 1, TrialState.COMPLETED, {"value": 0.25}, {}, None, 0.2, 0.2)]))
    store.close()
    page.wait_for_selector(f"#trials tbody a[href='/trials/{new}']", timeout=WAIT_MS)
    assert page.get_attribute("body", "data-version") != before
    assert int(page.locator("#counts dd").first.inner_text()) == total + 1
    row = page.locator(f"#trials tbody tr:has(a[href='/trials/{new}'])").inner_text()
    assert "constant" in row and "completed" in row and "0.25" in row
    assert page.evaluate("() => window.__still_here") is True
    assert len(navigations) == 1, "the page updated in place"
    assert watched.errors == []


def test_xss_strings_execute_nothing_and_show_as_written(filled, base, watched):
    url, (hostile, hostile_trials) = filled
    page = watched.page
    page.goto(f"{base}/")
    page.wait_for_selector("#goals tbody tr", timeout=WAIT_MS)
    page.goto(f"{base}/goals/{hostile}")
    ready(page)
    page.wait_for_selector("#plot-leaderboard .main-svg", timeout=WAIT_MS)
    assert page.inner_text("#goal-name") == XSS_GOAL
    assert XSS_ERROR in page.inner_text("#failed tbody")
    assert "<img" in page.inner_text("#methods tbody")
    assert page.locator("main img").count() == 0
    for trial_id in hostile_trials:
        page.goto(f"{base}/trials/{trial_id}")
        page.wait_for_load_state("networkidle")
        assert page.locator("main img, main script").count() == 0
        if trial_id == hostile_trials[1]:  # the failed one
            assert page.inner_text("#error") == XSS_ERROR
        else:
            assert "<img" in page.inner_text("#dials")
    assert page.evaluate("() => window.__x") is None
    assert watched.errors == []


def test_signing_in_sets_a_cookie_scripts_cannot_read(filled, browser):
    url, _ = filled
    goal_id = goal_ids(url)["dash"]
    with running_server(url, token=TOKEN) as served:
        opened = Watched(browser, served)
        try:
            page = opened.page
            page.goto(f"{served}/goals/{goal_id}")
            assert page.url.startswith(f"{served}/login?next=")
            page.fill("input[name=token]", "not-the-token-at-all")
            page.click("button[type=submit]")
            assert "not this server" in page.inner_text("main")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            ready(page)
            assert page.url == f"{served}/goals/{goal_id}"
            assert page.evaluate("() => document.cookie") == ""
            [cookie] = opened.context.cookies()
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            page.click("form.logout button")
            page.wait_for_url(f"{served}/login")
            page.goto(f"{served}/goals/{goal_id}")
            assert page.url.startswith(f"{served}/login?next=")
            # the wrong token's 401 page is the one error a console shows here
            assert [e for e in opened.errors if "401" not in e] == []
        finally:
            opened.close()
