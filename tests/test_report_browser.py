"""The report file in a real browser: Debian's Chromium, driven by Playwright.

It must open from disk with no console error and no request beyond the file itself,
draw every plot with data, and show hostile strings as text without running them.
Skipped where Chromium or Playwright is absent, unless PURSUIT_REQUIRE_BROWSER=1 (CI).
"""

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_report import XSS, empty_store, ladder_store, toy_store, xss_store

import pursuit
from pursuit.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        if os.environ.get("PURSUIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PURSUIT_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        opened = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield opened
        opened.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory, browser):
    folder = tmp_path_factory.mktemp("browser")
    files = {}
    for name, build in (("toy", toy_store), ("ladder", ladder_store), ("xss", xss_store),
                        ("empty", empty_store)):
        with pursuit.open(build(folder)) as results:
            files[name] = folder / f"{name}.html"
            write_report(results, None, files[name])
    return files


@dataclass
class Visit:
    """A page opened in Chromium, with everything it logged, asked for or popped up."""

    page: Any
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def visit(browser):
    opened = []

    def open_file(path: Path) -> Visit:
        page = browser.new_page()
        seen = Visit(page)
        page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: seen.console.append(f"pageerror: {error}"))
        page.on("request", lambda request: seen.requests.append(request.url))
        page.on("dialog", lambda dialog: (seen.dialogs.append(dialog.message),
                                          dialog.dismiss()))
        page.goto(path.as_uri(), wait_until="load")
        opened.append(page)
        return seen

    yield open_file
    for page in opened:
        page.close()


PLOTS = """() => [...document.querySelectorAll('div.plot')].map(el => ({
    id: el.id, plotly: el.classList.contains('js-plotly-plot'),
    traces: el.data ? el.data.length : 0,
    points: el.calcdata ? el.calcdata.reduce((n, trace) => n + trace.length, 0) : 0,
    svg: el.querySelectorAll('svg.main-svg').length}))"""


@pytest.mark.parametrize("name", ["toy", "ladder"])
def test_a_report_opens_offline_and_draws_every_plot_with_data(reports, visit, name):
    seen = visit(reports[name])
    assert seen.console == [] and seen.dialogs == []
    assert seen.requests == [reports[name].as_uri()]  # nothing fetched but the file
    plots = seen.page.evaluate(PLOTS)
    assert len(plots) >= (7 if name == "toy" else 4)
    for plot in plots:
        assert plot["plotly"] and plot["traces"] > 0 and plot["points"] > 0, plot
        assert plot["svg"] > 0, plot
    assert seen.page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == \
        len(plots)


def test_the_leaderboard_shows_the_right_rows(reports, visit):
    seen = visit(reports["toy"])
    shown = seen.page.evaluate("""() => [...document.querySelectorAll(
        'table.board')[0].querySelectorAll('tbody tr')].map(r => r.cells[0].innerText)""")
    with pursuit.open(f"sqlite:///{reports['toy'].parent / 'toy.db'}") as results:
        board = results.leaderboard("toy")
    expected = [m + (" baseline" if b else "") for m, b in
                zip(board.methods["method"], board.methods["baseline"], strict=True)]
    assert [" ".join(cell.split()) for cell in shown] == expected
    ticks = seen.page.evaluate("""() => [...document.querySelectorAll('div.plot')]
        .find(el => el.layout.title.text.startsWith('Leaderboard'))
        .querySelectorAll('.ytick text').length""")
    assert ticks == len(board.methods)


def test_a_report_with_no_trials_opens_and_says_so(reports, visit):
    seen = visit(reports["empty"])
    assert seen.console == [] and seen.requests == [reports["empty"].as_uri()]
    assert "No trial has run yet" in seen.page.inner_text("body")
    assert seen.page.evaluate("document.querySelectorAll('div.plot').length") == 0


def test_hostile_strings_show_as_text_and_run_nothing(reports, visit):
    seen = visit(reports["xss"])
    page = seen.page
    assert seen.dialogs == [] and seen.console == []
    assert seen.requests == [reports["xss"].as_uri()]  # an <img src=x> would fetch x
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    body = page.inner_text("body")
    for shown in (f"goal{XSS}", f"statement {XSS}", f"m{XSS}", f"bad input {XSS}"):
        assert shown in body, shown
    svg_text = page.evaluate("""() => [...document.querySelectorAll('div.plot text')]
        .map(t => t.textContent).join('\\n')""")
    assert f"m{XSS}" in svg_text  # Plotly shows the method's name as written
