"""The pictures of a goal, as pure functions: plain data in, a Plotly figure out.

The HTML report and the dashboard draw the same views from these, so they show the
same numbers the same way. Nothing here reads a store or writes a file: each function
takes what its caller already holds (the results table of ``pursuit.results``, a
leaderboard's ``methods`` table, the store's curves, a ladder entry, or the series of
``pursuit.report.series``) and returns a ``plotly.graph_objects.Figure``.

Every string that came from a user (method names, dial values, configurations) is
HTML-escaped before it goes into a figure: Plotly reads a few HTML tags in its text,
and a name must show as written, never as markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from pursuit.overview import config_text, fmt
from pursuit.report.series import downsample, spread

PALETTE = qualitative.Plotly
STAGES = ("baselines", "search", "confirm", "verify", "ladder")
STAGE_COLORS = dict(zip(STAGES, qualitative.Safe, strict=False))
TARGET_COLOR = "#d62728"
HEIGHT = 380
MAX_LINES = 40  # faded single-trial lines per curve figure; more only hide each other


def text(value: Any) -> str:
    """A user's string as Plotly must show it: as written, never read as markup."""
    return html.escape(str(value), quote=False)


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, stable for a given order of methods."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


def _figure(title: str, x_title: str, y_title: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title={"text": title, "x": 0.01}, template="plotly_white",
                         height=HEIGHT, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                         xaxis_title=x_title, yaxis_title=y_title,
                         legend={"orientation": "h", "y": -0.2})
    return figure


def _rule(figure: go.Figure, at: float, label: str, *, vertical: bool = False,
          log: bool = False, color: str = TARGET_COLOR, dash: str = "dash") -> None:
    """A line across the plot at ``at``, labelled. Plotly places a shape on a log axis
    by its value but an annotation by the value's log10, hence ``log``."""
    line = {"color": color, "dash": dash, "width": 1.5}
    place = math.log10(at) if log else at
    if vertical:
        figure.add_vline(x=at, line=line)
        figure.add_annotation(x=place, y=1, xref="x", yref="paper", text=label,
                              showarrow=False, xanchor="left", yanchor="top")
    else:
        figure.add_hline(y=at, line=line)
        figure.add_annotation(x=0, y=place, xref="paper", yref="y", text=label,
                              showarrow=False, xanchor="left", yanchor="bottom")


def _target_line(figure: go.Figure, target: float | None, *, vertical: bool = False,
                 log: bool = False) -> None:
    if target is not None and math.isfinite(target) and (target > 0 or not log):
        _rule(figure, target, f"target {fmt(target)}", vertical=vertical, log=log)


def _band(figure: go.Figure, x: Any, lower: Any, upper: Any, *, color: str, name: str,
          shape: str = "linear", group: str | None = None, show: bool = True) -> None:
    """A shaded band between ``lower`` and ``upper``: an invisible upper edge, then the
    lower edge filled up to it."""
    figure.add_trace(go.Scatter(x=x, y=upper, mode="lines", line={"width": 0, "shape": shape},
                                hoverinfo="skip", showlegend=False, legendgroup=group))
    figure.add_trace(go.Scatter(x=x, y=lower, mode="lines", fill="tonexty", name=name,
                                line={"width": 0, "shape": shape}, fillcolor=color,
                                opacity=0.3, hoverinfo="skip", legendgroup=group,
                                showlegend=show))


def _rgba(color: str, alpha: float) -> str:
    """A ``#rrggbb`` colour with transparency, for fills."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def progress_figure(history: pd.DataFrame, *, metric: str, target: float | None,
                    x: Literal["trials", "compute_seconds"] = "trials") -> go.Figure:
    """The best claim with its 95% interval as trials accrued, against the target.

    ``history`` is ``pursuit.report.series.best_claim_history``: one row per point
    with ``trials``, ``compute_seconds``, ``method``, ``config``, ``n``, ``mean``,
    ``lo``, ``hi``, ``among`` and ``verified``; ``x`` picks the axis (trials run, or
    trial wall seconds summed)."""
    x_title = "trials run" if x == "trials" else "compute (trial wall seconds, summed)"
    over = "trials" if x == "trials" else "compute"
    figure = _figure(f"Best claim over {over}: {text(metric)}", x_title, text(metric))
    claimed = history[history["mean"].notna()] if len(history) else history
    if len(claimed):
        xs = claimed[x].to_numpy(dtype=float)
        _band(figure, xs, claimed["lo"].to_numpy(dtype=float),
              claimed["hi"].to_numpy(dtype=float), color=_rgba(PALETTE[0], 0.3),
              name="95% interval", shape="hv")
        figure.add_trace(go.Scatter(x=xs, y=claimed["mean"].to_numpy(dtype=float),
                                    mode="lines", name="best claim (mean)", hoverinfo="skip",
                                    line={"shape": "hv", "color": PALETTE[0]}))
        verified = claimed["verified"].astype(bool)
        for part, name, symbol in ((claimed[~verified], "leader", "circle"),
                                   (claimed[verified], "on verification seeds", "star")):
            if not len(part):
                continue
            hover = [f"{text(r.method)} ({text(config_text(r.config))})<br>{int(r.n)} seeds"
                     + (f", the best of {int(r.among)} claims (interval widened)"
                        if not r.verified and r.among > 1 else "")
                     for r in part.itertuples()]
            figure.add_trace(go.Scatter(
                x=part[x].to_numpy(dtype=float), y=part["mean"].to_numpy(dtype=float),
                mode="markers", name=name, text=hover,
                marker={"symbol": symbol, "size": 11 if symbol == "star" else 6,
                        "color": PALETTE[0]},
                hovertemplate="%{y:.4g}<br>%{text}<extra></extra>"))
    _target_line(figure, target)
    return figure


def leaderboard_figure(methods: pd.DataFrame, *, metric: str,
                       target: float | None) -> go.Figure:
    """Each method's best claim as a dot with its 95% interval (dot and whisker),
    baselines apart by colour; the best at the top.

    ``methods`` is a leaderboard's ``methods`` table (``pursuit.analysis.stats``):
    ``method``, ``baseline``, ``config``, ``n``, ``mean``, ``lo``, ``hi``, ``verdict``,
    in the leaderboard's order. Methods without a claim are left out."""
    figure = _figure(f"Leaderboard: {text(metric)}, 95% intervals", text(metric), "")
    rows = methods[(methods["n"] > 0) & methods["mean"].notna()] if len(methods) else methods
    for baseline, name, color in ((True, "baseline", PALETTE[1]), (False, "method", PALETTE[0])):
        part = rows[rows["baseline"].astype(bool) == baseline] if len(rows) else rows
        if not len(part):
            continue
        mean = part["mean"].to_numpy(dtype=float)
        plus = np.nan_to_num(part["hi"].to_numpy(dtype=float) - mean)
        minus = np.nan_to_num(mean - part["lo"].to_numpy(dtype=float))
        hover = [f"{text(config_text(r.config))}<br>{int(r.n)} seed{'s' * (r.n != 1)}"
                 + ("" if r.n > 1 else " (no interval)") + f"<br>{text(r.verdict)}"
                 for r in part.itertuples()]
        figure.add_trace(go.Scatter(
            x=mean, y=[text(m) for m in part["method"]], mode="markers", name=name,
            marker={"size": 10, "color": color}, text=hover,
            error_x={"type": "data", "array": plus, "arrayminus": minus, "thickness": 2,
                     "width": 6, "color": color},
            hovertemplate="%{y}: %{x:.4g}<br>%{text}<extra></extra>"))
    order = [text(m) for m in rows["method"]] if len(rows) else []
    figure.update_yaxes(type="category", categoryorder="array", categoryarray=order[::-1])
    figure.update_layout(height=max(200, 120 + 40 * len(order)))
    _target_line(figure, target, vertical=True)
    return figure


def _aligned(curves: Mapping[int, Mapping[int, float]], ids: Sequence[int]) -> pd.DataFrame:
    """Curves side by side: one column per trial, one row per step any of them reported."""
    columns = {i: pd.Series(curves[i], dtype=float) for i in ids}
    return pd.DataFrame(columns).sort_index()


def curve_figure(curves: Mapping[int, Mapping[int, float]], trials: pd.DataFrame, *,
                 method: str, metric: str, best_config: str | None,
                 color: str = PALETTE[0], max_points: int = 200) -> go.Figure:
    """A method's learning curves: the mean over the seeds of its best configuration
    with the band from their lowest to highest value, every other trial a faint line and
    pruned trials fainter still (dotted).

    ``curves`` is ``Store.curves(goal_id, metric)``: {trial_id: {step: value}};
    ``trials`` the results table (rows of other methods are ignored); ``best_config``
    the configuration of the method's best claim (its ``config`` in the leaderboard),
    None when it has none. Each line is thinned to ``max_points`` points for display,
    and at most ``MAX_LINES`` single trials are drawn."""
    figure = _figure(f"Learning curves: {text(method)}", "step", text(metric))
    own = trials[(trials["method"] == method) & trials["trial_id"].isin(list(curves))]
    best = own[(own["config"] == best_config) & (own["state"] == "completed")] \
        if best_config is not None else own.iloc[:0]
    others = own.drop(best.index)
    others = others.iloc[spread(len(others), MAX_LINES)]  # over the whole run
    shown: set[str] = set()
    for row in others.itertuples():
        pruned = row.state == "pruned"
        kind = "pruned trials" if pruned else "other trials"
        steps, values = downsample(curves[int(row.trial_id)], max_points)
        figure.add_trace(go.Scatter(
            x=steps, y=values, mode="lines", name=kind, legendgroup=kind,
            showlegend=kind not in shown, opacity=0.15 if pruned else 0.35,
            line={"color": color, "width": 1, "dash": "dot" if pruned else "solid"},
            text=f"trial {int(row.trial_id)}: {text(config_text(row.config))}, "
                 f"seed {int(row.seed)}, {text(row.state)}",
            hovertemplate="step %{x}: %{y:.4g}<br>%{text}<extra></extra>"))
        shown.add(kind)
    if len(best):
        table = _aligned(curves, [int(i) for i in best["trial_id"]])
        table = table.iloc[spread(len(table), max_points)]
        seeds = len(best)
        label = f"best configuration, mean of {seeds} seed{'s' * (seeds != 1)}"
        if seeds > 1:
            _band(figure, table.index.to_numpy(), table.min(axis=1).to_numpy(),
                  table.max(axis=1).to_numpy(), color=_rgba(color, 0.3),
                  name="lowest to highest seed")
        figure.add_trace(go.Scatter(
            x=table.index.to_numpy(), y=table.mean(axis=1).to_numpy(), mode="lines",
            name=label, line={"color": color, "width": 3},
            text=[f"{int(n)} of {seeds} seeds, {text(config_text(best_config))}"
                  for n in table.notna().sum(axis=1)],
            hovertemplate="step %{x}: mean %{y:.4g}<br>%{text}<extra></extra>"))
    return figure


def _stage_order(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def _categorical(values: pd.Series) -> bool:
    return not all(isinstance(v, int | float | np.integer | np.floating)
                   and not isinstance(v, bool | np.bool_) for v in values.dropna())


def dial_figure(trials: pd.DataFrame, *, method: str, metric: str,
                ranges: Mapping[str, Sequence[float]] | None = None,
                per_row: int = 3) -> go.Figure:
    """Dial effects of one method: one slice plot per dial, dial value against the
    metric of every completed trial, coloured by stage.

    ``trials`` is the results table (``dial.<name>`` columns, ``metric`` the metric's
    column); ``ranges`` the dials' [low, high] from the goal's spec, which puts a dial
    spanning two decades or more on a log axis. Choice dials get a category axis."""
    rows = trials[(trials["method"] == method) & (trials["state"] == "completed")]
    rows = rows[np.isfinite(rows[metric].astype(float))]
    dials = [c for c in rows.columns if c.startswith("dial.") and rows[c].notna().any()]
    columns = max(1, min(per_row, len(dials)))
    lines = max(1, math.ceil(len(dials) / columns))
    figure = make_subplots(rows=lines, cols=columns, shared_yaxes=True,
                           subplot_titles=[text(d[len("dial."):]) for d in dials] or None,
                           horizontal_spacing=0.04, vertical_spacing=0.18)
    figure.update_layout(title={"text": f"Dial effects: {text(method)}", "x": 0.01},
                         template="plotly_white", height=max(HEIGHT, 300 * lines),
                         margin={"l": 60, "r": 20, "t": 70, "b": 50},
                         legend={"orientation": "h", "y": -0.15})
    shown: set[str] = set()
    for index, dial in enumerate(dials):
        row, col = index // columns + 1, index % columns + 1
        present = rows[rows[dial].notna()]
        categorical = _categorical(present[dial])
        for stage in sorted(set(present["stage"]), key=_stage_order):
            group = present[present["stage"] == stage]
            x = [text(v) for v in group[dial]] if categorical else \
                group[dial].to_numpy(dtype=float)
            figure.add_trace(go.Scatter(
                x=x, y=group[metric].to_numpy(dtype=float), mode="markers",
                name=text(stage), legendgroup=str(stage), showlegend=stage not in shown,
                marker={"color": STAGE_COLORS.get(str(stage), "grey"), "size": 7,
                        "opacity": 0.75},
                text=[f"trial {int(t)}, seed {int(s)}, {text(stage)}" for t, s in
                      zip(group["trial_id"], group["seed"], strict=True)],
                hovertemplate="%{x}: %{y:.4g}<br>%{text}<extra></extra>"),
                row=row, col=col)
            shown.add(str(stage))
        bounds = (ranges or {}).get(dial[len("dial."):])
        if categorical:
            figure.update_xaxes(type="category", row=row, col=col)
        elif bounds is not None and bounds[0] > 0 and bounds[1] / bounds[0] >= 100:
            figure.update_xaxes(type="log", exponentformat="e", row=row, col=col)
        if col == 1:
            figure.update_yaxes(title_text=text(metric), row=row, col=col)
    return figure


def ladder_figure(entry: Mapping[str, Any], points: pd.DataFrame) -> go.Figure:
    """One line of the scaling ladder, on log-log axes in the quantity the law was
    fitted to: the rungs' points, the fitted law with its extrapolation band (when the
    entry carries its ``curve``), the target, the largest rung measured, and the
    forecast marker with its interval and its extrapolation label.

    ``entry`` is one of ``Results.ladder()``; ``points`` is
    ``pursuit.report.series.ladder_points`` for it (columns ``x``, ``y``, ``seed``)."""
    dial, fitted_on = str(entry["dial"]), str(entry.get("fitted_on", "value"))
    against = str(entry.get("x", dial))  # the dial, or the parameters the trials reported
    at = " ".join(f"{k}={fmt(v, 3)}" for k, v in entry.get("at", {}).items())
    title = f"Scaling ladder: {text(entry['method'])}.{text(dial)}" + \
        (f" (at {text(at)})" if at else "")
    figure = _figure(title, text(against), text(fitted_on))
    figure.update_xaxes(type="log", exponentformat="e")  # never "1B passes" for 1e9
    figure.update_yaxes(type="log", exponentformat="e")
    curve = entry.get("curve")
    if curve:
        level = float(curve.get("level", 0.9))
        _band(figure, curve["x"], curve["lower"], curve["upper"],
              color=_rgba(PALETTE[0], 0.25), name=f"{level:.0%} prediction band")
        figure.add_trace(go.Scatter(x=curve["x"], y=curve["y"], mode="lines",
                                    name=f"fitted law: {text(entry.get('law', ''))}",
                                    line={"color": PALETTE[0], "width": 2}))
    if len(points):
        figure.add_trace(go.Scatter(
            x=points["x"].to_numpy(dtype=float), y=points["y"].to_numpy(dtype=float),
            mode="markers", name="rungs (one point per seed)",
            marker={"color": "black", "size": 7},
            text=[f"seed {int(s)}" for s in points["seed"]],
            hovertemplate="%{x:.4g}: %{y:.4g} (%{text})<extra></extra>"))
        largest = float(points["x"].max())
        _rule(figure, largest, f"largest rung {largest:.3g}", vertical=True, log=True,
              color="grey", dash="dot")
    outlook = entry.get("forecast")
    if outlook:
        _target_line(figure, outlook.get("target"), log=True)
        if outlook.get("reachable"):
            x, lower, upper = (float(outlook[k]) for k in ("x", "lower", "upper"))
            far = outlook.get("extrapolation")
            shown_upper = upper if math.isfinite(upper) else 10 * max(x, lower)
            label = f"reaches the target at {text(against)} {'≈' if far else '='} {x:.3g}" + \
                (f"<br>{text(far)}: an extrapolation" if far else "") + \
                (f"<br>but {text(outlook['caveat'])}" if outlook.get("caveat") else "")
            figure.add_trace(go.Scatter(
                x=[x], y=[float(outlook["target"])], mode="markers+text", name="forecast",
                marker={"symbol": "diamond", "size": 12, "color": TARGET_COLOR},
                error_x={"type": "data", "symmetric": False, "array": [shown_upper - x],
                         "arrayminus": [x - lower], "color": TARGET_COLOR, "width": 8},
                text=[label], textposition="top left",
                customdata=[f"{text(against)} {x:.3g}, {float(outlook['level']):.0%} interval "
                            f"[{lower:.3g}, " + (f"{upper:.3g}]" if math.isfinite(upper)
                                                 else "unbounded]")],
                hovertemplate="%{customdata}<extra></extra>"))
        elif outlook.get("reason"):
            figure.add_annotation(text=f"target not reachable by this dial: "
                                       f"{text(outlook['reason'])}",
                                  xref="paper", yref="paper", x=0.01, y=0.02,
                                  showarrow=False, align="left")
    return figure
