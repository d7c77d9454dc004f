"""One fit of a table's columns, summarised the same way for the CLI, JSON and plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pursuit.scaling._fit import Fit, fit
from pursuit.scaling._forecast import Forecast, compute_forecast, forecast, optimal_allocation
from pursuit.scaling._forms import FORMS
from pursuit.scaling._select import describe, rmsle, select, split_largest

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
            if self.fit.form.name == "chinchilla":
                out["forecast"]["x_is"] = "compute (FLOP, C = 6 N D) at the compute-optimal N, D"
                if self.forecast.reachable:
                    best = optimal_allocation(self.fit.params, self.forecast.x)
                    out["forecast"].update({"params_opt": best.params,
                                            "tokens_opt": best.tokens})
        return out


def study(frame: pd.DataFrame, x: Sequence[str], y: str, *, form: str = "auto",
          holdout: float | None = None, holdout_column: str | None = None,
          target: float | None = None, group: str | None = None, bootstrap: int = 200,
          seed: int = 0) -> Study:
    """Fit ``y`` against the ``x`` columns of ``frame``; score held-out rows; forecast."""
    for column in [*x, y, *(c for c in (holdout_column, group) if c)]:
        if column not in frame.columns:
            raise ValueError(f"no column {column!r}; the table has {list(frame.columns)}")
    if form != "auto" and form not in FORMS:
        raise ValueError(f"form must be auto or one of {', '.join(FORMS)}, got {form!r}")
    if holdout is not None and holdout_column is not None:
        raise ValueError("give --holdout or --holdout-column, not both")
    if holdout is not None and not 0 < holdout < 1:
        raise ValueError(f"--holdout must be a fraction between 0 and 1, got {holdout}")
    xs = frame[list(x)].to_numpy(dtype=float)
    xs = xs[:, 0] if len(x) == 1 else xs
    ys = frame[y].to_numpy(dtype=float)
    if holdout_column is not None:
        keep = frame[holdout_column].astype(bool).to_numpy()
    elif holdout is not None:
        keep, _ = split_largest(xs, holdout)
    else:
        keep = np.ones(len(ys), dtype=bool)
    groups = frame[group].to_numpy()[keep] if group else None
    scores: dict[str, float] = {}
    weights: dict[str, float] = {}
    if form == "auto":
        if len(x) == 1:
            choice = select(xs[keep], ys[keep], bootstrap=bootstrap, groups=groups, seed=seed)
            fitted, scores, weights = choice.fit, choice.scores, choice.weights
        else:
            law = next(f for f in FORMS.values() if f.variables == len(x))
            fitted = fit(law, xs[keep], ys[keep], bootstrap=bootstrap, groups=groups,
                         seed=seed)
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
