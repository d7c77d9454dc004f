"""What a method's ladder says taken together, beyond one law per dial: when training
starts to overfit and how that moves with data; whether new data is worth more than
repeating it; and the compute that reaching the target takes at the best split between
model size and data.

These read costs a method reports with ``trial.report_cost``, under these names:
``params`` (N, the model's parameter count), ``tokens_seen`` (D, every token trained
on, repeats included) and ``unique_tokens_seen`` (U, the distinct ones among them).
A study the trials cannot support says why, in ``note``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pursuit.scaling._curves import overfit_step, overfit_trend, value_of_repeats
from pursuit.scaling._fit import Fit, fit
from pursuit.scaling._forecast import compute_forecast, optimal_allocation
from pursuit.scaling._forms import ChinchillaLaw, DataConstrainedLaw
from pursuit.scaling._ladder import _shortfall

PARAMS, TOKENS, UNIQUE = "cost.params", "cost.tokens_seen", "cost.unique_tokens_seen"
LEVEL = 0.9  # of forecast intervals, as the ladder's
RESAMPLES = 50  # bootstrap refits of a study's law: a 5- or 6-parameter fit is slow


def _interval(values: Sequence[float], point: float, level: float = 0.95
              ) -> tuple[float, float]:
    """The bootstrap's central interval, stretched to hold the point (as forecasts are)."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if not len(finite):
        return math.nan, math.nan
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(min(lo, point)), float(max(hi, point))


def _climbed(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    """A method's completed trials on its ladder and at the configurations it was
    climbed from (the rungs' centre: the claims the ladder stepped away from)."""
    own = frame[(frame["method"] == method) & (frame["state"] == "completed")]
    rungs = own[own["stage"] == "ladder"]
    dials = [c for c in own.columns if c.startswith("dial.")]
    if not len(rungs) or not dials:
        return rungs
    # A centre differs from some rung in exactly one dial, or two (a grid corner).
    keys = own[dials].astype(str).to_numpy()
    rung_keys = rungs[dials].astype(str).to_numpy()
    differing = (keys[:, None, :] != rung_keys[None, :, :]).sum(axis=2)
    near = (differing <= 1).any(axis=1)
    return own[near | (own["stage"] == "ladder").to_numpy()]


def overfit_study(frame: pd.DataFrame, curves: Mapping[int, Mapping[int, float]], *,
                  method: str, data_dial: str | None, direction: str) -> dict[str, Any]:
    """Where each ladder trial's validation curve turned (its best step), and how that
    step moves with the ``data_dial``'s value, from trials that did turn."""
    rows = _climbed(frame, method)
    entry: dict[str, Any] = {"kind": "overfit", "method": method, "data_dial": data_dial}
    turns: list[dict[str, Any]] = []
    for row in rows.to_dict("records"):
        curve = curves.get(int(row["trial_id"]), {})
        if len(curve) < 3:
            continue
        steps = sorted(curve)
        found = overfit_step(steps, [curve[s] for s in steps], direction=direction)
        data = row.get(f"dial.{data_dial}") if data_dial else None
        turns.append({"trial_id": int(row["trial_id"]), "data": data, "step": found.step,
                      "last_step": steps[-1], "best": found.best, "last": found.last})
    entry["curves"] = len(turns)
    entry["turned"] = sum(t["step"] is not None for t in turns)
    if not turns:
        entry["note"] = "no ladder trial reported a learning curve of 3 or more points"
        return entry
    by_data: dict[Any, list[dict[str, Any]]] = {}
    for t in turns:
        by_data.setdefault(t["data"], []).append(t)
    entry["by_data"] = [
        {"data": data, "trials": len(group),
         "turned": sum(t["step"] is not None for t in group),
         "median_step": float(np.median([t["step"] for t in group if t["step"] is not None]))
         if any(t["step"] is not None for t in group) else None,
         "last_step": max(t["last_step"] for t in group)}
        for data, group in sorted(by_data.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    turned = [t for t in turns if t["step"] is not None and t["data"] is not None]
    if data_dial is None:
        entry["note"] = "the method has no data dial: the turn cannot be followed across data"
    else:
        try:
            trend = overfit_trend([float(t["data"]) for t in turned],
                                  [float(t["step"]) for t in turned])
            entry["trend"] = {"exponent": trend.exponent, "lower": trend.lower,
                              "upper": trend.upper, "points": trend.points,
                              "level": trend.level}
        except ValueError as error:
            entry["note"] = f"how the turn moves with {data_dial} is not fitted: {error}"
    return entry


def _points(rows: pd.DataFrame, columns: Sequence[str], metric: str, direction: str
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str] | None:
    """x (the cost columns), y (the shortfall), seeds, and what y is; None where the
    trials lack a column or the metric does not fall with scale."""
    if any(c not in rows for c in columns) or not len(rows):
        return None
    table = rows[[*columns, metric, "seed"]].astype(float).dropna()
    if not len(table):
        return None
    x = table[list(columns)].to_numpy()
    shortfall = _shortfall(table[metric].to_numpy(), direction, None)
    if shortfall is None or np.any(shortfall[0] <= 0) or np.any(x <= 0):
        return None
    named = "1 - " + metric if direction == "maximize" else metric
    return x, shortfall[0], table["seed"].to_numpy(), named


def _target_shortfall(target: float | None, direction: str) -> float | None:
    if target is None:
        return None
    return 1.0 - target if direction == "maximize" else target


def _constrained_fit(rows: pd.DataFrame, metric: str, direction: str
                     ) -> tuple[Fit | None, np.ndarray, str] | None:
    """The data-constrained law fitted to the rows (None for the fit, with why, where
    they are too few), or None where they lack the costs it reads."""
    points = _points(rows, [PARAMS, TOKENS, UNIQUE], metric, direction)
    if points is None:
        return None
    x, y, seeds, named = points
    law = DataConstrainedLaw()
    distinct = len(np.unique(x, axis=0))
    if distinct < law.size + 1 or len(np.unique(x[:, 1] / x[:, 2])) < 2:
        return None, x, (f"the law has {law.size} parameters and needs trials at "
                         f"{law.size + 1}+ distinct (N, D, U), some repeating data more "
                         f"than others; the ladder has {distinct}")
    try:
        return fit(law, x, y, bootstrap=RESAMPLES, groups=seeds.tolist()), x, named
    except ValueError as error:
        return None, x, str(error)


def repeats_study(frame: pd.DataFrame, *, method: str, metric: str, direction: str,
                  fitted: tuple[Fit | None, np.ndarray, str] | None = None
                  ) -> dict[str, Any]:
    """A data-constrained law (Muennighoff et al. 2023) fitted to the ladder's trials:
    what a repeated token is worth against a fresh one, at the trials' median N, D
    and U (the middle of the ladder, where it was climbed from)."""
    entry: dict[str, Any] = {"kind": "repeats", "method": method}
    found = fitted or _constrained_fit(_climbed(frame, method), metric, direction)
    if found is None:
        entry["note"] = ("the trials do not report params, tokens_seen and "
                         "unique_tokens_seen as costs, or the metric does not fall with them")
        return entry
    law_fit, x, named = found
    if law_fit is None:
        entry["note"] = named  # why there is no fit
        return entry
    fitted_law, law = law_fit, DataConstrainedLaw()
    n, d, u = (float(np.median(x[:, i])) for i in range(3))
    worth = value_of_repeats(fitted_law.theta, n, u, d)
    draws = [value_of_repeats(theta, n, u, d).worth for theta in fitted_law.boot]
    r_star = fitted_law.params["R_star"]
    entry.update({
        "fitted_on": named, "points": int(len(fitted_law.y)),
        "law": law.equation(fitted_law.theta, ("N", "D", "U"), named),
        "R_star": {"value": r_star, **dict(zip(("lower", "upper"), _interval(
            [law.report(t)["R_star"] for t in fitted_law.boot], r_star), strict=True))},
        "at": {"params": n, "tokens": d, "unique": u, "passes": d / u},
        "worth": {"value": worth.worth, **dict(zip(("lower", "upper"),
                                                   _interval(draws, worth.worth),
                                                   strict=True))},
        "loss_repeated": worth.loss_repeated, "loss_fresh": worth.loss_fresh})
    return entry


def compute_study(frame: pd.DataFrame, *, method: str, metric: str, direction: str,
                  target: float | None,
                  constrained: tuple[Fit | None, np.ndarray, str] | None = None
                  ) -> dict[str, Any]:
    """The compute C = 6 N D at which the compute-optimal split of model size N and
    fresh data D reaches the target under L(N, D) = E + A / N^alpha + B / D^beta
    (Hoffmann et al. 2022), with an interval, or why it cannot.

    Where the trials report unique tokens, L(N, D) is the data-constrained law's own
    (its D is fresh data: a ladder that repeats data would otherwise read repeats as
    new tokens and see data help less than it does); else it is fitted to the tokens
    seen."""
    entry: dict[str, Any] = {"kind": "compute", "method": method}
    rows = _climbed(frame, method)
    found = constrained or _constrained_fit(rows, metric, direction)
    law_fit: Fit | None = None if found is None else found[0]
    if found is not None and law_fit is not None:
        x, named = found[1], found[2]
        constrained_used = True
    else:
        points = _points(rows, [PARAMS, TOKENS], metric, direction)
        if points is None:
            entry["note"] = ("the trials do not report params and tokens_seen as costs, "
                             "or the metric does not fall with them")
            return entry
        x, y, seeds, named = points
        law = ChinchillaLaw()
        distinct = len(np.unique(x, axis=0))
        if distinct < law.size + 1 or len(np.unique(x[:, 0])) < 3 or \
                len(np.unique(x[:, 1])) < 3:
            entry["note"] = (f"L(N, D) needs trials at {law.size + 1}+ distinct (N, D), "
                             f"with 3+ values of each; the ladder has {distinct}")
            return entry
        try:
            law_fit = fit(law, x, y, bootstrap=RESAMPLES, groups=seeds.tolist())
        except ValueError as error:
            entry["note"] = str(error)
            return entry
        constrained_used = False
    fitted = law_fit
    assert fitted is not None  # for the type checker: each way above ends in a fit
    chinchilla = ChinchillaLaw()
    entry.update({"fitted_on": named, "points": int(len(fitted.y)),
                  "fresh_data_from": "data-constrained law" if constrained_used else None,
                  "law": chinchilla.equation(fitted.theta[:5], ("N", "D"), named),
                  "params": {k: {"value": v, "lower": lo, "upper": hi} for k, (v, lo, hi)
                             in fitted.param_intervals(0.95).items() if k != "R_star"},
                  "largest_compute": float(np.max(6.0 * x[:, 0] * x[:, 1]))})
    goal = _target_shortfall(target, direction)
    if goal is not None and goal > 0:
        outlook = compute_forecast(fitted, goal, LEVEL)
        entry["forecast"] = outlook.as_dict()
        if outlook.reachable:
            best = optimal_allocation(fitted.params, outlook.x)
            entry["forecast"].update({"params_opt": best.params, "tokens_opt": best.tokens})
    return entry


def ladder_studies(frame: pd.DataFrame, curves: Mapping[int, Mapping[int, float]], *,
                   metric: str, direction: str, target: float | None,
                   scales: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Every study the ladder's trials support, per method that climbed one: overfitting
    where they report curves, repeats and compute where they report their size and
    data (each with a note where the trials are too few).

    ``curves`` holds the metric's learning curve per trial ({trial: {step: value}});
    ``scales`` each method's dials' scale roles ({method: {dial: role}})."""
    if not len(frame) or "stage" not in frame:
        return []
    climbed = frame.loc[(frame["stage"] == "ladder") & (frame["state"] == "completed"),
                        "method"].unique()
    out = []
    for method in map(str, climbed):
        rows = _climbed(frame, method)
        roles = scales.get(method, {})
        data_dial = next((d for d, r in roles.items() if r == "data"), None)
        if any(len(curves.get(int(t), {})) >= 3 for t in rows["trial_id"]):
            out.append(overfit_study(frame, curves, method=method, data_dial=data_dial,
                                     direction=direction))
        if not _reports(rows, PARAMS) or not _reports(rows, TOKENS):
            continue  # a method that does not say its size and data has no such study
        constrained = _constrained_fit(rows, metric, direction)
        if _reports(rows, UNIQUE):
            out.append(repeats_study(frame, method=method, metric=metric,
                                     direction=direction, fitted=constrained))
        out.append(compute_study(frame, method=method, metric=metric, direction=direction,
                                 target=target, constrained=constrained))
    return out


def _reports(rows: pd.DataFrame, column: str) -> bool:
    return column in rows and bool(rows[column].notna().any())
