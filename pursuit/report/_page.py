"""The report page: one goal (and its sub-goals) as a single HTML file that opens offline.

Plotly's JavaScript, taken from the installed plotly package, is embedded once; every
figure is JSON drawn by one script after it. A Content-Security-Policy in the page
allows only those two scripts (by their hashes) and no fetch of any kind, so the file
reaches nothing beyond itself, and an injected script would not run even if a string
slipped past the escaping. Every user string is escaped with ``html.escape``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

import pursuit
from pursuit.analysis.stats import Leaderboard
from pursuit.exceptions import PursuitError
from pursuit.overview import config_text, fmt, goal_overview, interval_text, ladder_lines
from pursuit.report import figures
from pursuit.report.series import best_claim_history, ladder_points
from pursuit.results import Results, metric_column
from pursuit.store import GoalRecord

FAILED_SHOWN = 100  # failed trials listed in full; the export has them all
CONFIGS_SHOWN = 30  # configurations listed under the leaderboard
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def e(value: Any) -> str:
    """Any value as HTML text: escaped, quotes included (it may land in an attribute)."""
    return html.escape(str(value), quote=True)


@dataclass
class Page:
    """The figures a page collects as its sections are written, each drawn into its div."""

    figures: list[tuple[str, go.Figure]] = field(default_factory=list)

    def plot(self, figure: go.Figure) -> str:
        div = f"plot-{len(self.figures)}"
        self.figures.append((div, figure))
        return f'<div class="plot" id="{div}"></div>'

    def script(self) -> str:
        """One script that draws every figure. JSON holds ``<`` only inside strings, so
        writing it as ``\\u003c`` keeps ``</script>`` out of the page."""
        drawn = ",".join(f'["{div}",{pio.to_json(fig, validate=False)}]'
                         for div, fig in self.figures).replace("<", r"\u003c")
        return (f"const figures=[{drawn}];\n"
                "for (const [id, fig] of figures) {\n"
                f"  Plotly.newPlot(id, fig.data, fig.layout, {json.dumps(PLOTLY_CONFIG)});\n"
                "}\n")


def _table(head: list[str], rows: list[list[str]], *, cls: str = "") -> str:
    """An HTML table from cells that are already HTML (escaped by the caller)."""
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def _note(text: str) -> str:
    return f'<p class="note">{e(text)}</p>'


def _budget_text(overview: dict[str, Any]) -> str:
    budget = overview["budget"] or {}
    trials = f"{overview['trials_total']}" + (f" of {budget['max_trials']}"
                                              if budget.get("max_trials") else "")
    compute = fmt(float(overview["compute_seconds"]), 3) + (
        f" of {budget['compute_seconds']:g}" if budget.get("compute_seconds") else "")
    text = f"{trials} trials; {compute} s of compute (trial wall time, summed)"
    if budget.get("wall_seconds"):
        text += f"; wall clock limit {budget['wall_seconds']:g} s per invocation"
    return text


def _facts(overview: dict[str, Any]) -> str:
    target = overview["target"]
    standing = "no target" if target is None else \
        f"{fmt(target)} ({'reached' if overview['reached'] else 'not reached'})"
    run = overview["state"] + (f": {overview['reason']}" if overview["reason"] else "")
    counts = ", ".join(f"{n} {state}" for state, n in overview["trials"].items())
    facts = [("metric", f"{overview['metric']} ({overview['direction']})"),
             ("target", standing), ("seeds per claim", overview["seeds"]),
             ("budget spent", _budget_text(overview)),
             ("stage reached", overview["stage"] or "none yet"), ("run", run),
             ("trials", counts)]
    return '<dl class="facts">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>"
                                          for k, v in facts) + "</dl>"


def _missing(overview: dict[str, Any]) -> list[str]:
    """What the goal's record lacks for a full report, in words."""
    t, total, seeds = overview["trials"], overview["trials_total"], overview["seeds"]
    notes = []
    if total == 0:
        notes.append("No trial has run yet, so there are no results to show: run the goal "
                     "with `pursuit run`.")
    elif t["completed"] == 0:
        notes.append(f"None of the {total} trials completed ({t['failed']} failed, "
                     f"{t['pruned']} pruned, {t['running']} running, {t['preempted']} "
                     "preempted): there is no claim, leaderboard or dial effect to show. "
                     "The failed trials and their reasons are listed below.")
    elif overview["best"]["best_method"] is None:
        notes.append(f"No configuration has its {seeds} seeds completed yet: there is no "
                     "best claim to follow or to compare with the target.")
    if seeds == 1 and total:
        notes.append("The goal asks for one seed per claim: claims have no interval, and "
                     "methods cannot be told apart by a test.")
    elif overview["best"]["best_method"] is not None and overview["best"]["best_n"] < 2:
        notes.append("The best claim rests on a single seed: it has no interval.")
    return notes


def _leaderboard(page: Page, board: Leaderboard, metric: str, target: float | None) -> str:
    methods = board.methods
    if not len(methods) or not (methods["n"] > 0).any():
        return _note("No method has a completed trial yet: there is no leaderboard.")
    rows = []
    for r in methods.itertuples():
        diff = "—" if math.isnan(r.diff) else \
            f"{r.diff:+.3g} {interval_text(r.diff_lo, r.diff_hi)}"
        rows.append([e(r.method) + (' <span class="tag">baseline</span>' if r.baseline else ""),
                     e(r.source if isinstance(r.source, str) else "—"), e(r.n), e(fmt(r.mean)),
                     e(interval_text(r.lo, r.hi)), e(diff), e(fmt(r.p_holm, 2)), e(r.verdict),
                     e(f"{r.trials} ({r.failed})"), e(config_text(r.config))])
    table = _table(["method", "source", "seeds", "mean", "95% interval",
                    "Δ vs best baseline [95%]", "p (Holm)", "verdict", "trials (failed)",
                    "best configuration"], rows, cls="board")
    configs = board.configs.head(CONFIGS_SHOWN)
    config_rows = [[e(r.method), e(config_text(r.config)), e(r.n), e(fmt(r.mean)),
                    e(interval_text(r.lo, r.hi)), e(r.basis), e("yes" if r.complete else "no")]
                   for r in configs.itertuples()]
    more = len(board.configs) - len(configs)
    listing = (f"<details><summary>configurations, full seed count first "
               f"({len(board.configs)})</summary>"
               + _table(["method", "configuration", "seeds", "mean", "95% interval",
                         "rests on", "full seeds"], config_rows)
               + (_note(f"and {more} more (pursuit leaderboard --json lists them all)")
                  if more > 0 else "") + "</details>")
    return table + page.plot(figures.leaderboard_figure(methods, metric=metric,
                                                        target=target)) + listing


def _curves(page: Page, frame: pd.DataFrame, curves: dict[int, dict[int, float]],
            board: Leaderboard, metric: str, colors: dict[str, str]) -> str:
    if not curves:
        return _note("No learning curves were reported (a method reports them with "
                     "trial.report(step, metric=value)).")
    best = dict(zip(board.methods["method"], board.methods["config"], strict=True))
    parts = []
    for method in colors:
        ids = frame.loc[frame["method"] == method, "trial_id"]
        if not ids.isin(list(curves)).any():
            parts.append(_note(f"{method}: no learning curve reported."))
            continue
        config = best.get(method)
        parts.append(page.plot(figures.curve_figure(
            curves, frame, method=method, metric=metric,
            best_config=config if isinstance(config, str) else None, color=colors[method])))
    return "".join(parts)


def _dials(page: Page, frame: pd.DataFrame, spec: dict[str, Any], metric: str) -> str:
    done = frame[(frame["state"] == "completed")]
    ranges = {m["name"]: m.get("ranges", {}) for m in spec.get("methods", [])}
    parts = []
    for method in ranges:
        rows = done[done["method"] == method]
        dials = [c for c in rows.columns if c.startswith("dial.") and rows[c].notna().any()]
        if not len(rows):
            parts.append(_note(f"{method}: no completed trial."))
        elif not dials:
            parts.append(_note(f"{method}: no dials."))
        else:
            parts.append(page.plot(figures.dial_figure(frame, method=method, metric=metric,
                                                       ranges=ranges[method])))
    return "".join(parts) or _note("No method has dials.")


def _ladder(page: Page, frame: pd.DataFrame, entries: list[dict[str, Any]],
            metric: str) -> str:
    if not entries:
        return _note("The ladder did not run. It steps a leading configuration's scale "
                     "dials (params, data, steps, epochs) after a round of search and "
                     "confirmation, where the leader has such dials and the run goes on "
                     "that long.")
    parts = []
    for entry in entries:
        if entry.get("kind", "law") == "law" and "form" in entry:
            points = ladder_points(frame, entry, metric=metric)
            if len(points) or entry.get("curve"):
                parts.append(page.plot(figures.ladder_figure(entry, points)))
    parts.append(f"<pre>{e(chr(10).join(ladder_lines(entries)))}</pre>")
    return "".join(parts)


def _failed(frame: pd.DataFrame) -> str:
    failed = frame[frame["state"] == "failed"] if len(frame) else frame
    if not len(failed):
        return _note("No trial failed.")
    shown = failed.tail(FAILED_SHOWN)
    rows = []
    for r in shown.itertuples():
        error = (r.error or "").strip() if isinstance(r.error, str) else ""
        last = error.splitlines()[-1] if error else "(no reason recorded)"
        reason = e(last) if error.count("\n") == 0 else \
            f"<details><summary>{e(last)}</summary><pre>{e(error)}</pre></details>"
        rows.append([e(r.trial_id), e(r.method), e(r.stage), e(r.seed),
                     e(config_text(r.config)), reason])
    more = len(failed) - len(shown)
    return (_note(f"{len(failed)} failed trials; the last {len(shown)} are listed "
                  "(pursuit export has them all).") if more > 0 else "") + \
        _table(["trial", "method", "stage", "seed", "configuration", "reason"], rows,
               cls="failed")


def _goal(page: Page, results: Results, record: GoalRecord, depth: int) -> str:
    """A goal's section, its sub-goals' sections nested in it."""
    overview = goal_overview(results, record.name)
    spec = record.spec
    name, column = spec["metric"], metric_column(spec["metric"])  # shown; in the table
    frame = results.results(record.name)
    board = results.leaderboard(record.name, frame=frame)
    curves = results.store.curves(record.id, spec["metric"])
    colors = figures.method_colors([m["name"] for m in spec.get("methods", [])])
    history = best_claim_history(frame, metric=column, direction=spec["direction"],
                                 target=spec.get("target"), seeds=spec.get("seeds", 3))
    anchor = f"goal-{record.id}"
    h, sub = f"h{min(depth + 1, 6)}", f"h{min(depth + 2, 6)}"
    notes = "".join(f"<li>{e(n)}</li>" for n in _missing(overview))
    if history["mean"].notna().any():
        progress = '<div class="pair">' + "".join(page.plot(figures.progress_figure(
            history, metric=name, target=spec.get("target"), x=x))
            for x in ("trials", "compute_seconds")) + "</div>"
    else:
        progress = _note("No configuration has its full seeds yet: there is no best "
                         "claim to follow.")
    sections = [("Progress toward the target", progress),
                ("Leaderboard", _leaderboard(page, board, name, spec.get("target"))),
                ("Learning curves", _curves(page, frame, curves, board, name, colors)),
                ("Dial effects", _dials(page, frame, spec, column)),
                ("Scaling ladder", _ladder(page, frame, overview["ladder"], column)),
                ("Failed trials", _failed(frame))]
    body = "".join(f'<section id="{anchor}-{i}"><{sub}>{e(title)}</{sub}>{html_}</section>'
                   for i, (title, html_) in enumerate(sections))
    children = "".join(_goal(page, results, child, depth + 1)
                       for child in results.subgoals(record))
    statement = f'<p class="statement">{e(overview["statement"])}</p>' \
        if overview["statement"] else ""
    return (f'<section class="goal" id="{anchor}"><{h}>{e(record.name)}</{h}>{statement}'
            f'{_facts(overview)}<p class="verdict"><strong>Verdict.</strong> '
            f'{e(overview["verdict"])}</p>'
            + (f'<ul class="missing">{notes}</ul>' if notes else "")
            + body + children + "</section>")


def _contents(results: Results, record: GoalRecord) -> str:
    titles = ["Progress", "Leaderboard", "Learning curves", "Dial effects",
              "Scaling ladder", "Failed trials"]
    links = " · ".join(f'<a href="#goal-{record.id}-{i}">{t}</a>' for i, t in enumerate(titles))
    children = "".join(f"<li>{_contents(results, c)}</li>" for c in results.subgoals(record))
    return (f'<a href="#goal-{record.id}">{e(record.name)}</a>: {links}'
            + (f"<ul>{children}</ul>" if children else ""))


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1rem 1.5rem 3rem; color: #1d2330; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2, h3, h4 { margin-top: 2rem; }
.statement { font-size: 1.1rem; color: #444; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
.verdict { background: #eef4fb; border-left: 4px solid #2c6db5; padding: 0.7rem 1rem; }
ul.missing { background: #fff6e0; border-left: 4px solid #d39a00; padding: 0.7rem 2rem; }
.note { color: #555; font-style: italic; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f5f6f8; } .tag { font-size: 0.75rem; background: #e4e8ee;
                                  border-radius: 3px; padding: 0 0.3rem; }
pre { background: #f5f6f8; padding: 0.7rem; overflow-x: auto; font-size: 0.85rem;
      white-space: pre-wrap; }
section.goal section.goal { border-top: 2px solid #ccd; margin-top: 2rem; }
.plot { width: 100%; margin: 0.5rem 0 1rem; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
        gap: 0 1rem; }
footer { margin-top: 3rem; color: #777; font-size: 0.85rem; }
"""


def _hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def render_report(results: Results, goal: str | None = None) -> str:
    """The report of ``goal`` (None: the store's only top-level goal) as HTML text."""
    record = results.goal(goal)
    page = Page()
    body = _goal(page, results, record, depth=0)
    plotly_js, draw = get_plotlyjs(), page.script()
    # Only these two scripts may run, and nothing may be fetched: see the module docstring.
    policy = (f"default-src 'none'; script-src {_hash(plotly_js)} {_hash(draw)}; "
              "style-src 'unsafe-inline'; img-src data: blob:")
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Pursuit report: {e(record.name)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Pursuit report: {e(record.name)}</h1>"
        f'<nav class="contents">{_contents(results, record)}</nav></header>'
        f"<main>{body}</main>"
        f"<footer>Written by Pursuit {e(pursuit.__version__)} on {written}; it opens "
        "offline and fetches nothing.</footer>"
        f"<script>{plotly_js}</script><script>{draw}</script></body></html>\n")


def write_report(results: Results, goal: str | None, output: Path) -> None:
    """Write the report of ``goal`` to ``output``, whole or not at all (a temporary file
    beside it, then renamed). A PursuitError says why a path cannot be written."""
    output = Path(output)
    if output.is_dir():
        raise PursuitError(f"cannot write the report to {output}: it is a folder")
    if not output.parent.is_dir():
        raise PursuitError(f"cannot write the report to {output}: there is no folder "
                           f"{output.parent}")
    text = render_report(results, goal)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, output)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise PursuitError(f"cannot write the report to {output}: "
                           f"{error.strerror or error}") from None
