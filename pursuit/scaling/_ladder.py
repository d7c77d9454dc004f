"""Reading a scaling ladder out of the results table: one fit per scale dial of the
method that climbed it, and what reaching the goal's target takes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pursuit.scaling._curves import Trend, power_trend
from pursuit.scaling._fit import Fit, fit
from pursuit.scaling._forecast import Forecast, forecast
from pursuit.scaling._select import Blend, describe, select
from pursuit.scaling._summary import PREDICTION_LEVEL

CURVE_POINTS = 100  # of the fitted law, for drawing


def _shortfall(values: np.ndarray, direction: str, target: float | None
               ) -> tuple[np.ndarray, float | None] | None:
    """The quantity that falls with scale: the metric itself when minimised, its gap to 1
    when maximised (accuracies and the like); None when neither applies."""
    if direction == "minimize":
        return values, target
    if np.all(values <= 1.0):
        return 1.0 - values, None if target is None else 1.0 - target
    return None


def _dial_range(ranges: Mapping[str, tuple[float, float]] | None, method: str,
                dial: str) -> tuple[float, float] | None:
    """The dial's [low, high]: given for ``method.dial``, else for ``dial``; or None."""
    if not ranges:
        return None
    found = ranges.get(f"{method}.{dial}", ranges.get(dial))
    return None if found is None else (float(found[0]), float(found[1]))


def _reported_params(rows: pd.DataFrame, dial: str) -> np.ndarray | None:
    """The parameter counts the trials reported (cost ``params``), where they grow with
    the dial along the line: then the dial sizes the model, and a law against the
    parameters says what it does in terms that carry over to other shapes."""
    if "cost.params" not in rows:
        return None
    size = rows["cost.params"].astype(float)
    if not np.all(np.isfinite(size)) or np.any(size <= 0):
        return None
    per_value = size.groupby(rows[dial].astype(float)).agg(["min", "max"]).sort_index()
    if np.any(per_value["min"] != per_value["max"]) or \
            not np.all(np.diff(per_value["min"].to_numpy()) > 0):
        return None
    return size.to_numpy()


def _compute_seconds(trend: Trend, outlook: Forecast) -> dict[str, Any]:
    """Trial wall seconds at the forecast x and its interval's ends. The trend may fall
    with x, so the ends are put in order: the interval still holds the point."""
    ends = sorted([trend.predict(outlook.lower), trend.predict(outlook.upper)])
    return {"value": trend.predict(outlook.x), "lower": ends[0], "upper": ends[1],
            "per_trial": True}


def _curve(law: Fit, x: np.ndarray, outlook: Forecast | None) -> dict[str, Any]:
    """The fitted law and its prediction band on a grid from the smallest rung past the
    largest, on to the forecast's interval where the law reaches the target: what a
    plot draws, in the quantity fitted (the entry's ``fitted_on``)."""
    top = float(np.max(x))
    if outlook is not None and outlook.reachable:
        top = max(top, outlook.upper if math.isfinite(outlook.upper) else outlook.x)
    grid = np.geomspace(float(np.min(x)), min(top * 1.5, 1e300), CURVE_POINTS)
    lower, upper = law.band(grid, PREDICTION_LEVEL)
    return {"x": grid.tolist(), "y": law.predict(grid).tolist(), "lower": lower.tolist(),
            "upper": upper.tolist(), "level": PREDICTION_LEVEL}


def _fit_rungs(x: np.ndarray, y: np.ndarray, seeds: Sequence[object]
               ) -> tuple[Fit, dict[str, float], dict[str, float]]:
    """The law of a ladder, with select's blend weights and held-back errors (empty when
    too few rungs to choose: then a plain power law). A ladder is a few rungs apart by
    x2: too short to fit only its end."""
    if len(np.unique(x)) >= 5:
        choice = select(x, y, forms=["m1", "m2"], windows=[math.inf], bootstrap=100,
                        groups=seeds)
        return choice.fit, choice.weights, choice.scores
    return fit("m1", x, y, bootstrap=100, groups=seeds), {}, {}


def _ladder_lines(done: pd.DataFrame, ladder: pd.DataFrame
                  ) -> list[tuple[str, pd.DataFrame, str, dict[str, Any]]]:
    """Per dial a ladder stepped: (method, its completed rows on the line, the dial, the
    other dials' values). A line holds one dial's values with the others fixed; a method
    climbs a new one whenever its leader changes, so lines are found from the rows,
    never from a single leader, and each dial's law is fitted on its longest line (the
    most values, then the most runs, then the latest: the current leader's)."""
    lines = []
    for method, rungs in ladder.groupby("method"):
        own = done[done["method"] == method]
        dials = [c for c in own.columns if c.startswith("dial.") and own[c].notna().any()]
        for dial in dials:
            others = [c for c in dials if c != dial]
            keys = own[others].astype(str).agg("|".join, axis=1) if others else \
                pd.Series("", index=own.index)
            longest: tuple[int, int, int, str] | None = None
            for key in sorted(set(keys.loc[rungs.index])):
                rows = own[keys == key]
                stepped = rows.loc[rows.index.intersection(rungs.index), dial].nunique()
                size = (rows[dial].nunique(), len(rows), int(rows.index.max()), key)
                if stepped >= 2 and size[0] >= 3 and (longest is None or size > longest):
                    longest = size
            if longest is not None:
                rows = own[keys == longest[3]]
                first = rows.iloc[0]
                lines.append((str(method), rows, dial,
                              {c[len("dial."):]: first[c] for c in others}))
    return lines


def ladder_forecasts(frame: pd.DataFrame, *, metric: str, direction: str,
                     target: float | None, level: float = 0.9,
                     dial_ranges: Mapping[str, tuple[float, float]] | None = None,
                     ) -> list[dict[str, Any]]:
    """For each scale dial the ladder stepped: the fitted law and the dial value (and the
    compute, in trial wall seconds) at which it reaches the target, with intervals.

    ``dial_ranges`` gives dials' [low, high], keyed ``"method.dial"`` or ``"dial"`` (for
    every method with that dial): a forecast outside its dial's range says so in its
    ``extrapolation``, as does one more than 10x past the largest rung, with or without
    ranges."""
    if not len(frame) or "stage" not in frame:
        return []
    done = frame[(frame["state"] == "completed") & np.isfinite(frame[metric].astype(float))]
    ladder = done[done["stage"] == "ladder"]
    out = []
    for method, rows, dial, at in _ladder_lines(done, ladder):
        x = rows[dial].astype(float).to_numpy()
        shortfall = _shortfall(rows[metric].astype(float).to_numpy(), direction, target)
        entry: dict[str, Any] = {"kind": "law", "method": method, "dial": dial[len("dial."):],
                                 "at": at, "points": int(len(rows)),
                                 "rungs": sorted(set(x.tolist())), "x": dial[len("dial."):]}
        size = _reported_params(rows, dial)
        if size is not None:  # a model-size dial: the law speaks of parameters
            x, entry["x"] = size, "params"
        if shortfall is None or np.any(shortfall[0] <= 0) or np.any(x <= 0):
            entry["note"] = "the metric is not a positive quantity falling with scale"
            out.append(entry)
            continue
        y, goal = shortfall
        try:
            law, weights, scores = _fit_rungs(x, y, rows["seed"].to_numpy())
        except ValueError as error:
            entry["note"] = str(error)
            out.append(entry)
            continue
        fitted_on = "1 - " + metric if direction == "maximize" else metric
        written, members = describe(law, weights, scores, [entry["x"]], fitted_on)
        entry.update({"form": law.form.name, "formula": law.form.formula,
                      "law": written, "members": members, "fitted_on": fitted_on,
                      "params": {k: {"value": v, "lower": lo, "upper": hi} for k, (v, lo, hi)
                                 in law.param_intervals(0.95).items()}})
        outlook: Forecast | None = None
        if goal is not None and goal > 0:
            limits = None if entry["x"] == "params" else \
                _dial_range(dial_ranges, str(method), entry["dial"])
            outlook = forecast(law, goal, level, largest=float(np.max(x)), what="rung",
                               limits=limits)
            entry["forecast"] = outlook.as_dict()  # its "extrapolation" says how far
            if outlook.reachable and isinstance(law.form, Blend):
                entry["forecast"]["caveat"] = law.form.floor_caveat(law.theta, goal)
            cost = rows["cost.wall_seconds"].astype(float).to_numpy()
            try:
                trend = power_trend(x, cost)
            except ValueError:
                trend = None
            if trend is not None and outlook.reachable:
                entry["compute_seconds"] = _compute_seconds(trend, outlook)
        entry["curve"] = _curve(law, x, outlook)
        out.append(entry)
    return out
