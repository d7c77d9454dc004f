"""The HTML report: one file per goal, from real runs of the engine (inline, SQLite).

The stores are built once per module; ``test_report_browser`` opens the same reports
in Chromium."""

import base64
import html
import json
import math
import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import sample_methods
import sqlalchemy as sa

import pursuit
from pursuit import Choice, Goal, Policy
from pursuit.analysis.stats import leaderboard
from pursuit.exceptions import PursuitError
from pursuit.execution import InlineExecutor
from pursuit.overview import fmt, goal_overview, ladder_lines
from pursuit.report import figures, render_report, write_report
from pursuit.report.series import best_claim_history, downsample, ladder_points
from pursuit.store import open_store

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pursuit.method(name=f"m{XSS}", source=f"src {XSS}", baseline=True)
def hostile(trial, *, mode=Choice([f"v{XSS}", "plain"], default=f"v{XSS}")):
    """Strings a page must show as text: a name, a source and a dial value."""
    trial.report(0, value=0.1)
    trial.report(1, value=0.2 + 0.01 * trial.seed)
    return 0.5 + 0.01 * trial.seed


@pursuit.method(source="ours")
def hostile_error(trial):
    raise RuntimeError(f"bad input {XSS}")


def run_goal(url, goal, workdir, **kw):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return pursuit.run(goal, url, InlineExecutor(), sampler=optuna.samplers.TPESampler(seed=1),
                       workdir=workdir, **kw)


def toy_store(folder: Path) -> str:
    """Baselines, search with pruned curves, confirmation and verification, and a
    sub-goal: the toy goal of the loop's tests."""
    url = f"sqlite:///{folder / 'toy.db'}"
    goal = Goal(name="toy", statement="Find the top of a parabola.", metric="value",
                direction="maximize", target=0.5, seeds=3, budget={"max_trials": 80},
                methods=[sample_methods.quadratic, sample_methods.curve,
                         sample_methods.constant],
                subgoals=[{"name": "part", "metric": "value", "target": 0.3,
                           "budget": {"max_trials": 6},
                           "methods": ["sample_methods:constant"]}])
    run_goal(url, goal, folder / "work")
    return url


def ladder_store(folder: Path) -> str:
    """A run whose leader has a scale dial: the ladder climbs it and forecasts."""
    url = f"sqlite:///{folder / 'ladder.db'}"
    goal = Goal(name="ladder", metric="value", direction="minimize", target=0.15, seeds=3,
                budget={"max_trials": 60}, methods=["sample_methods:scaled"])
    run_goal(url, goal, folder / "work", policy=Policy(search_round=8))
    return url


def xss_store(folder: Path) -> str:
    """User strings written to be read as markup: the goal's name (renamed beneath the
    store, as another program could), its statement, a method's name, source and dial
    value, and a failure's text."""
    url = f"sqlite:///{folder / 'xss.db'}"
    goal = Goal(name="xss", statement=f"statement {XSS}", metric="value",
                direction="maximize", target=0.9, seeds=3, budget={"max_trials": 10},
                methods=[hostile, hostile_error])
    run_goal(url, goal, folder / "work")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE goals SET name = :name"), {"name": f"goal{XSS}"})
    engine.dispose()
    return url


def empty_store(folder: Path) -> str:
    url = f"sqlite:///{folder / 'empty.db'}"
    goal = Goal(name="empty", metric="value", direction="maximize", target=0.5,
                methods=[sample_methods.quadratic])
    store = open_store(url)
    store.ensure_goal("empty", goal.spec())
    store.close()
    return url


def failing_store(folder: Path) -> str:
    url = f"sqlite:///{folder / 'failing.db'}"
    goal = Goal(name="failing", metric="value", direction="maximize", target=0.5, seeds=3,
                budget={"max_trials": 3}, methods=["sample_methods:raises"])
    run_goal(url, goal, folder / "work")
    return url


def single_seed_store(folder: Path) -> str:
    url = f"sqlite:///{folder / 'single.db'}"
    goal = Goal(name="single", metric="value", direction="maximize", target=2.0, seeds=1,
                budget={"max_trials": 8},
                methods=[sample_methods.quadratic, sample_methods.constant])
    run_goal(url, goal, folder / "work")
    return url


def columns_store(folder: Path) -> str:
    """A metric named like one of the results table's columns (``error``)."""
    url = f"sqlite:///{folder / 'columns.db'}"
    goal = Goal(name="cols", metric="error", direction="minimize", target=0.0, seeds=3,
                budget={"max_trials": 3}, methods=["sample_methods:named_like_columns"])
    run_goal(url, goal, folder / "work")
    return url


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    return {"toy": toy_store(folder), "ladder": ladder_store(folder),
            "xss": xss_store(folder), "empty": empty_store(folder),
            "failing": failing_store(folder), "single": single_seed_store(folder),
            "columns": columns_store(folder)}


@pytest.fixture(scope="module")
def pages(stores):
    out = {}
    for name, url in stores.items():
        with pursuit.open(url) as results:
            out[name] = render_report(results)
    return out


def figures_of(page: str) -> list[tuple[str, dict]]:
    """The figures a page draws: (div id, figure), as its script hands them to Plotly."""
    script = page[page.rindex("<script>") + len("<script>"):page.rindex("</script>")]
    data = script[script.index("=") + 1:script.index(";\nfor")]
    return [(div, figure) for div, figure in json.loads(data)]


def array(value) -> list:
    """A figure's array from its JSON: a list, or Plotly's typed array (base64 bytes)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def text_of(page: str) -> str:
    """The page less its scripts, as a reader sees it (entities decoded)."""
    return html.unescape(re.sub(r"<script>.*?</script>", "", page, flags=re.S))


def test_a_real_run_reports_the_verdict_leaderboard_target_and_budget(stores, pages):
    page = pages["toy"]
    with pursuit.open(stores["toy"]) as results:
        overview = goal_overview(results, "toy")
        board = results.leaderboard("toy")
    assert html.escape(overview["verdict"]) in page  # the same words as `status`
    assert "Find the top of a parabola." in page
    assert "<dt>target</dt><dd>0.5 (reached)</dd>" in page
    assert f"{overview['trials_total']} of 80 trials" in page
    assert f"<dt>stage reached</dt><dd>{overview['stage']}</dd>" in page
    rows = re.findall(r"<table class=\"board\">.*?</table>", page, flags=re.S)[0]
    for r in board.methods.itertuples():  # one row per method, with its numbers
        row = re.search(rf"<tr><td>{r.method}( <span class=\"tag\">baseline</span>)?</td>"
                        r".*?</tr>", rows)
        assert row is not None, r.method
        assert f"<td>{fmt(r.mean)}</td>" in row.group(0)
        assert f"<td>{r.verdict}</td>" in row.group(0)
    assert rows.count("<tr>") == len(board.methods) + 1


def test_the_page_is_self_contained_with_plotly_embedded_once(pages):
    from plotly.offline import get_plotlyjs

    page = pages["toy"]
    assert page.count(get_plotlyjs()) == 1
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", text_of(page).lower()
                         .replace(get_plotlyjs().lower(), ""))
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy and "default-src 'none'" in policy.group(1)
    assert "unsafe-inline" not in policy.group(1).split("script-src")[1].split(";")[0]
    assert len(page) < 6_000_000


def test_every_view_has_its_figure_with_data(stores, pages):
    drawn = figures_of(pages["toy"])
    titles = [figure["layout"]["title"]["text"] for _, figure in drawn]
    # over trials and over compute, for the goal and for its sub-goal
    assert titles.count("Best claim over trials: value") == 2
    assert titles.count("Best claim over compute: value") == 2
    assert "Leaderboard: value, 95% intervals" in titles
    assert "Learning curves: quadratic" in titles and "Learning curves: curve" in titles
    assert "Dial effects: quadratic" in titles and "Dial effects: curve" in titles
    assert all(figure["data"] for _, figure in drawn)
    ids = re.findall(r'<div class="plot" id="([^"]+)"></div>', pages["toy"])
    assert ids == [div for div, _ in drawn]
    assert "constant: no learning curve reported." in pages["toy"]
    assert "The ladder did not run" in pages["toy"]


def test_progress_replays_the_leaderboard_on_prefixes_of_the_run(stores):
    with pursuit.open(stores["toy"]) as results:
        frame = results.results("toy")
        board = results.leaderboard("toy", frame=frame)
    args = dict(metric="value", direction="maximize", target=0.5, seeds=3)
    history = best_claim_history(frame, points=12, **args)
    assert len(history) == 12 and history["trials"].iloc[-1] == len(frame)
    assert history["trials"].is_monotonic_increasing
    last = history.iloc[-1]
    for ours, theirs in (("mean", "best_mean"), ("lo", "best_lo"), ("hi", "best_hi"),
                         ("method", "best_method"), ("reached", "reached")):
        assert last[ours] == pytest.approx(board.progress[theirs]), ours
    assert last["compute_seconds"] == pytest.approx(board.progress["compute_seconds"])
    for row in history.iloc[[2, 6, 9]].itertuples():  # what the leaderboard said back then
        then = leaderboard(frame.iloc[:row.trials], **args).progress
        assert row.method == then["best_method"]
        assert (math.isnan(row.mean) and math.isnan(then["best_mean"])) or \
            (row.mean, row.lo, row.hi) == pytest.approx(
                (then["best_mean"], then["best_lo"], then["best_hi"]), nan_ok=True)


def test_sub_goals_have_their_own_sections(stores, pages):
    page = pages["toy"]
    with pursuit.open(stores["toy"]) as results:
        [child] = results.subgoals(results.goal("toy"))
        overview = goal_overview(results, child.name)
    assert child.name == "toy/part"
    section = page[page.index(f'<section class="goal" id="goal-{child.id}">'):]
    assert section.startswith(f'<section class="goal" id="goal-{child.id}"><h2>toy/part</h2>')
    assert html.escape(overview["verdict"]) in section
    assert f'href="#goal-{child.id}"' in page  # listed in the contents


def test_the_ladder_shows_its_law_points_and_forecast(stores, pages):
    page = pages["ladder"]
    with pursuit.open(stores["ladder"]) as results:
        frame = results.results("ladder")
        entries = goal_overview(results, "ladder")["ladder"]
    laws = [e for e in entries if e.get("kind", "law") == "law" and "form" in e]
    assert laws
    for line in ladder_lines(entries):  # the words the terminal prints
        assert html.escape(line) in page
    drawn = [f for _, f in figures_of(page) if f["layout"]["title"]["text"]
             .startswith("Scaling ladder: scaled.width")]
    assert len(drawn) == len(laws)
    for entry, figure in zip(laws, drawn, strict=True):
        points = ladder_points(frame, entry, metric="value")
        assert len(points) == entry["points"]
        forecast = next(t for t in figure["data"] if t.get("name") == "forecast")
        assert forecast["x"] == [pytest.approx(entry["forecast"]["x"])]
        assert forecast["y"] == [pytest.approx(0.15)]  # on the target line
        if entry["forecast"]["extrapolation"]:
            assert "an extrapolation" in forecast["text"][0]


def test_a_goal_with_no_trials_renders_and_says_what_is_missing(pages):
    page = text_of(pages["empty"])
    assert "No trial has run yet" in page
    assert "No trial has completed yet: nothing can be claimed." in page  # the verdict
    assert "there is no leaderboard" in page and "No trial failed." in page
    assert figures_of(pages["empty"]) == []


def test_only_failed_trials_render_with_their_reasons(pages):
    page = text_of(pages["failing"])
    assert "None of the 3 trials completed (3 failed" in page
    assert page.count("RuntimeError: boom in the method") >= 3
    assert figures_of(pages["failing"]) == []


def test_a_single_seed_goal_says_its_claims_have_no_interval(pages):
    page = text_of(pages["single"])
    assert "The goal asks for one seed per claim: claims have no interval" in page
    assert figures_of(pages["single"])  # its progress and leaderboard still draw


def test_a_metric_named_like_a_column_is_read_from_its_own_column(stores, pages):
    with pursuit.open(stores["columns"]) as results:
        frame = results.results()
    drawn = dict((f["layout"]["title"]["text"], f) for _, f in figures_of(pages["columns"]))
    assert array(drawn["Leaderboard: error, 95% intervals"]["data"][0]["x"]) == \
        pytest.approx([frame["metric.error"].mean()])
    dials = drawn["Dial effects: named_like_columns"]["data"][0]
    assert sorted(array(dials["y"])) == pytest.approx(sorted(frame["metric.error"]))


def test_user_strings_are_escaped_everywhere(pages):
    page = pages["xss"]
    assert XSS not in page and "<img" not in page and page.count("<script>") == 2
    escaped = html.escape(XSS)
    for shown in (f"goal{escaped}", f"statement {escaped}", f"m{escaped}",
                  f"src {escaped}", f"bad input {escaped}"):
        assert shown in page, shown
    assert f"mode=v{escaped}" in page  # a dial value, in the configuration
    for _, figure in figures_of(page):  # inside figures, Plotly reads tags: escaped too
        assert "<img" not in json.dumps(figure)


def test_write_report_writes_the_file_or_says_why_not(stores, tmp_path):
    with pursuit.open(stores["empty"]) as results:
        target = tmp_path / "report.html"
        assert write_report(results, None, target) is None
        assert target.read_text().startswith("<!DOCTYPE html>")
        assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
        with pytest.raises(PursuitError, match="it is a folder"):
            write_report(results, None, tmp_path)
        with pytest.raises(PursuitError, match="there is no folder"):
            write_report(results, None, tmp_path / "missing" / "report.html")
        if Path("/proc").is_dir():  # a folder no one can add a file to, root included
            with pytest.raises(PursuitError, match="cannot write the report to /proc/r"):
                write_report(results, None, Path("/proc/report.html"))
        with pytest.raises(PursuitError, match="no goal named 'nope'"):
            write_report(results, "nope", target)


def test_downsample_keeps_the_ends_and_bounds_the_points():
    curve = {step: float(step) ** 0.5 for step in range(120_000)}
    steps, values = downsample(curve, 200)
    assert len(steps) <= 200 and steps[0] == 0 and steps[-1] == 119_999
    assert np.all(np.diff(steps) > 0) and values[-1] == pytest.approx(119_999 ** 0.5)
    assert len(downsample({3: 1.0, 1: 2.0}, 200)[0]) == 2


def test_figures_are_pure_and_escape_what_users_wrote():
    frame = pd.DataFrame({
        "trial_id": [1, 2, 3, 4], "method": ["<b>m</b>"] * 4, "config": ['{"k":"<i>"}'] * 4,
        "seed": [0, 1, 2, 3], "state": ["completed", "completed", "pruned", "completed"],
        "stage": ["baselines"] * 4, "dial.k": ["<i>", "<i>", "x", "x"],
        "value": [0.1, 0.2, math.nan, 0.3]})
    curves = {i: {s: s * 0.1 * i for s in range(1000)} for i in (1, 2, 3)}
    figure = figures.curve_figure(curves, frame, method="<b>m</b>", metric="value",
                                  best_config='{"k":"<i>"}')
    assert all(len(trace.x) <= 200 for trace in figure.data)
    assert figure.layout.title.text == "Learning curves: &lt;b&gt;m&lt;/b&gt;"
    assert {t.name for t in figure.data} >= {"pruned trials",
                                             "best configuration, mean of 2 seeds"}
    dials = figures.dial_figure(frame, method="<b>m</b>", metric="value")
    assert dials.layout.xaxis.type == "category"
    assert sorted({x for t in dials.data for x in t.x}) == ["&lt;i&gt;", "x"]
    empty = figures.leaderboard_figure(pd.DataFrame(columns=["method", "baseline", "config",
                                                             "n", "mean", "lo", "hi",
                                                             "verdict"]),
                                       metric="value", target=None)
    assert len(empty.data) == 0


def test_the_ladder_figure_draws_law_band_forecast_and_labels_on_log_axes():
    entry = {"method": "m", "dial": "width", "at": {"lr": 0.1}, "fitted_on": "value",
             "law": "value ≈ 2·width^-0.5",
             "forecast": {"target": 0.15, "reachable": True, "x": 1500.0, "lower": 1400.0,
                          "upper": math.inf, "level": 0.9, "extrapolation": "far <b>x</b>"},
             "curve": {"x": [4.0, 40.0, 4000.0], "y": [1.0, 0.32, 0.03],
                       "lower": [0.9, 0.3, 0.01], "upper": [1.1, 0.34, 0.05], "level": 0.9}}
    points = pd.DataFrame({"x": [4.0, 8.0, 16.0], "y": [1.0, 0.7, 0.5], "seed": [1, 2, 3]})
    figure = figures.ladder_figure(entry, points)
    names = [trace.name for trace in figure.data]
    assert {"90% prediction band", "rungs (one point per seed)", "forecast"} <= set(names)
    assert "fitted law: value ≈ 2·width^-0.5" in names
    assert figure.layout.xaxis.type == "log" and figure.layout.yaxis.type == "log"
    # Plotly puts an annotation on a log axis by log10 of its value, a shape by the value
    labels = {a.text: a for a in figure.layout.annotations}
    assert labels["target 0.15"].y == pytest.approx(math.log10(0.15))
    assert labels["largest rung 16"].x == pytest.approx(math.log10(16))
    forecast = figure.data[names.index("forecast")]
    assert forecast.x == (1500.0,) and forecast.y == (0.15,)
    assert forecast.customdata[0].endswith("[1.4e+03, unbounded]")
    assert np.isfinite(forecast.error_x.array[0])  # an open interval still draws
    assert "far &lt;b&gt;x&lt;/b&gt;: an extrapolation" in forecast.text[0]
