"""One fit of a table's columns, summarised the same way for the CLI, JSON and plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pursuit.scaling._fit import Fit, fit
from pursuit.scaling._forecast import Forecast, compute_forecast, forecast, optimal_allocation
from pursuit.scaling._forms import FORMS, Form
from pursuit.scaling._select import (
    DEFAULT_FORMS,
    Blend,
    describe,
    rmsle,
    select,
    split_largest,
)
from pursuit.scaling._table import Line, columns, rows_of_frame

PARAM_LEVEL = 0.95
PREDICTION_LEVEL = 0.9


@dataclass(frozen=True)
class Study:
    fit: Fit
    scores: dict[str, float]  # candidate -> error on the inner held-back points (auto only)
    weights: dict[str, float]  # candidate -> weight in the blend (auto only)
    x_seen: np.ndarray  # the rows given to the fit (a law may describe only their end)
    y_seen: np.ndarray
    x_held: np.ndarray
    y_held: np.ndarray
    forecast: Forecast | None
    x_names: tuple[str, ...] = ("x",)  # the table's columns, as the written law names them
    y_name: str = "y"

    def summary(self) -> dict[str, Any]:
        law, members = describe(self.fit, self.weights, self.scores, self.x_names, self.y_name)
        out: dict[str, Any] = {
            "form": self.fit.form.name, "formula": self.fit.form.formula,
            "law": law, "members": members,
            "points_fitted": int(len(self.y_seen)), "points_described": int(len(self.fit.y)),
            "points_pooled": self.fit.pooled or None,
            "resamples": int(len(self.fit.boot)),
            "params": {name: {"value": v, "lower": lo, "upper": hi} for name, (v, lo, hi)
                       in self.fit.param_intervals(PARAM_LEVEL).items()},
            "param_level": PARAM_LEVEL, "prediction_level": PREDICTION_LEVEL,
            "selection_scores": self.scores, "blend_weights": self.weights, "holdout": [],
            "holdout_rmsle": None}
        if len(self.y_held):
            predicted = self.fit.predict(self.x_held)
            lower, upper = self.fit.band(self.x_held, PREDICTION_LEVEL)
            out["holdout"] = [
                {"x": xi.tolist() if np.ndim(xi) else float(xi), "y": float(yi),
                 "prediction": float(p), "lower": float(lo), "upper": float(hi)}
                for xi, yi, p, lo, hi in zip(self.x_held, self.y_held, predicted, lower,
                                             upper, strict=True)]
            out["holdout_rmsle"] = rmsle(predicted, self.y_held)
            out["holdout_coverage"] = float(np.mean((self.y_held >= lower)
                                                    & (self.y_held <= upper)))
        if self.forecast is not None:
            out["forecast"] = self.forecast.as_dict()
            if self.forecast.reachable and isinstance(self.fit.form, Blend):
                out["forecast"]["caveat"] = self.fit.form.floor_caveat(self.fit.theta,
                                                                       self.forecast.target)
            if self.fit.form.name == "chinchilla":
                out["forecast"]["x_is"] = "compute (FLOP, C = 6 N D) at the compute-optimal N, D"
                if self.forecast.reachable:
                    best = optimal_allocation(self.fit.params, self.forecast.x)
                    out["forecast"].update({"params_opt": best.params,
                                            "tokens_opt": best.tokens})
        return out


def _needed(form: str, variables: int) -> tuple[int, str]:
    """The distinct x a fit of ``form`` needs at the least, and why."""
    if form != "auto":
        law = FORMS[form]
        if law.variables != variables:
            raise ValueError(f"form {form!r} takes {law.variables} column(s) of x, got "
                             f"{variables}")
        return law.size, f"{form} has {law.size} parameters"
    if variables == 1:
        smallest = min((FORMS[f] for f in DEFAULT_FORMS), key=lambda f: f.size)
        return smallest.size + 1, (f"auto fits {', '.join(DEFAULT_FORMS)} and scores each "
                                   f"on points it holds back; {smallest.name} has "
                                   f"{smallest.size} parameters")
    law = _law_of(variables)
    return law.size, f"auto fits {law.name}, of {law.size} parameters, to {variables} columns"


def _law_of(variables: int) -> Form:
    """The law fitted with ``--form auto`` to several columns of x."""
    for law in FORMS.values():
        if law.variables == variables:
            return law
    takes = sorted({f.variables for f in FORMS.values()})
    raise ValueError(f"no form takes {variables} columns of x; forms take "
                     f"{' or '.join(map(str, takes))}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def study(frame: pd.DataFrame, x: Sequence[str], y: str, *, form: str = "auto",
          holdout: float | None = None, holdout_column: str | None = None,
          target: float | None = None, group: str | None = None, bootstrap: int = 200,
          seed: int = 0, line: Line = rows_of_frame) -> Study:
    """Fit ``y`` against the ``x`` columns of ``frame``; score held-out rows; forecast.

    Every row is checked alike, whatever the form: x and y finite and > 0, the holdout
    column 0/1 or true/false, each group labelled; a ValueError names the column, the
    row (``line`` says where a row is: ``lines_of_csv`` for a CSV file) and the value."""
    if form != "auto" and form not in FORMS:
        raise ValueError(f"form must be auto or one of {', '.join(FORMS)}, got {form!r}")
    if holdout is not None and holdout_column is not None:
        raise ValueError("give --holdout or --holdout-column, not both")
    if holdout is not None and not 0 < holdout < 1:
        raise ValueError(f"--holdout must be a fraction between 0 and 1, got {holdout}")
    table = columns(frame, x, y, holdout_column=holdout_column, group=group, line=line)
    xs, ys = table.x, table.y
    needed, why = _needed(form, len(x))
    if table.fitted is not None:
        keep = table.fitted
    elif holdout is not None and len(ys):
        keep, _ = split_largest(xs, holdout)
    else:
        keep = np.ones(len(ys), dtype=bool)
    distinct = len(np.unique(xs[keep], axis=0))
    if distinct < needed:
        have = "the table has no rows" if not len(ys) else \
            f"the table has {_plural(len(ys), 'row')}" + \
            (f", {int(keep.sum())} of them left to fit after holding out {int((~keep).sum())},"
             if not keep.all() else "") + \
            f" at {_plural(distinct, 'distinct x value')}"
        raise ValueError(f"the fit needs points at {needed} or more distinct x values "
                         f"({why}); {have}")
    groups = table.groups[keep] if table.groups is not None else None
    scores: dict[str, float] = {}
    weights: dict[str, float] = {}
    if form == "auto":
        if len(x) == 1:
            choice = select(xs[keep], ys[keep], bootstrap=bootstrap, groups=groups, seed=seed)
            fitted, scores, weights = choice.fit, choice.scores, choice.weights
        else:
            fitted = fit(_law_of(len(x)), xs[keep], ys[keep], bootstrap=bootstrap,
                         groups=groups, seed=seed)
    else:
        fitted = fit(form, xs[keep], ys[keep], bootstrap=bootstrap, groups=groups, seed=seed)
    outlook = None
    if target is not None:  # "measured" takes in the held-out rows: they were run
        if len(x) == 1:
            outlook = forecast(fitted, target, largest=float(np.max(xs)), what=x[0])
        elif fitted.form.name == "chinchilla":
            outlook = compute_forecast(fitted, target,
                                       largest=float(np.max(6.0 * xs[:, 0] * xs[:, 1])))
    return Study(fitted, scores, weights, xs[keep], ys[keep], xs[~keep], ys[~keep], outlook,
                 tuple(x), y)
