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
from pursuit.scaling._select import describe, select


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


def _compute_seconds(trend: Trend, outlook: Forecast) -> dict[str, Any]:
    """Trial wall seconds at the forecast x and its interval's ends. The trend may fall
    with x, so the ends are put in order: the interval still holds the point."""
    ends = sorted([trend.predict(outlook.lower), trend.predict(outlook.upper)])
    return {"value": trend.predict(outlook.x), "lower": ends[0], "upper": ends[1],
            "per_trial": True}


def _fit_rungs(x: np.ndarray, y: np.ndarray, seeds: Sequence[object]
               ) -> tuple[Fit, dict[str, float], dict[str, float]]:
    """The law of a ladder, with select's blend weights and held-back errors (empty when
    too few rungs to choose: then a plain power law). A ladder is a few rungs apart by
    x2: too short to fit only its end."""
    if len(np.unique(x)) >= 5:
        choice = select(x, y, forms=["m1", "m2"], windows=[math.inf], bootstrap=200,
                        groups=seeds)
        return choice.fit, choice.weights, choice.scores
    return fit("m1", x, y, bootstrap=200, groups=seeds), {}, {}


def _ladder_lines(done: pd.DataFrame, ladder: pd.DataFrame
                  ) -> list[tuple[str, pd.DataFrame, str, dict[str, Any]]]:
    """Each line a ladder climbed: (method, its completed rows on the line, the dial
    stepped, the other dials' values). A line holds one dial's values with the others
    fixed; a method climbs a new one whenever its leader changes, so lines are found
    from the rows, never from a single leader."""
    lines = []
    for method, rungs in ladder.groupby("method"):
        own = done[done["method"] == method]
        dials = [c for c in own.columns if c.startswith("dial.") and own[c].notna().any()]
        for dial in dials:
            others = [c for c in dials if c != dial]
            keys = own[others].astype(str).agg("|".join, axis=1) if others else \
                pd.Series("", index=own.index)
            for key in sorted(set(keys.loc[rungs.index])):
                rows = own[keys == key]
                stepped = rows.loc[rows.index.intersection(rungs.index), dial].nunique()
                if stepped >= 2 and rows[dial].nunique() >= 3:
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
        entry: dict[str, Any] = {"method": method, "dial": dial[len("dial."):],
                                 "at": at, "points": int(len(rows)),
                                 "rungs": sorted(set(x.tolist()))}
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
        written, members = describe(law, weights, scores, [entry["dial"]], fitted_on)
        entry.update({"form": law.form.name, "formula": law.form.formula,
                      "law": written, "members": members, "fitted_on": fitted_on,
                      "params": {k: {"value": v, "lower": lo, "upper": hi} for k, (v, lo, hi)
                                 in law.param_intervals(0.95).items()}})
        if goal is not None and goal > 0:
            outlook = forecast(law, goal, level, largest=float(np.max(x)), what="rung",
                               limits=_dial_range(dial_ranges, str(method), entry["dial"]))
            entry["forecast"] = outlook.as_dict()  # its "extrapolation" says how far
            cost = rows["cost.wall_seconds"].astype(float).to_numpy()
            try:
                trend = power_trend(x, cost)
            except ValueError:
                trend = None
            if trend is not None and outlook.reachable:
                entry["compute_seconds"] = _compute_seconds(trend, outlook)
        out.append(entry)
    return out
