"""Reading a scaling ladder out of the results table: one fit per scale dial of the
method that climbed it, and what reaching the goal's target takes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pursuit.scaling._curves import power_trend
from pursuit.scaling._fit import fit
from pursuit.scaling._forecast import forecast
from pursuit.scaling._select import select


def _shortfall(values: np.ndarray, direction: str, target: float | None
               ) -> tuple[np.ndarray, float | None] | None:
    """The quantity that falls with scale: the metric itself when minimised, its gap to 1
    when maximised (accuracies and the like); None when neither applies."""
    if direction == "minimize":
        return values, target
    if np.all(values <= 1.0):
        return 1.0 - values, None if target is None else 1.0 - target
    return None


def ladder_forecasts(frame: pd.DataFrame, *, metric: str, direction: str,
                     target: float | None, level: float = 0.9) -> list[dict[str, Any]]:
    """For each scale dial the ladder stepped: the fitted law and the dial value (and the
    compute, in trial wall seconds) at which it reaches the target, with intervals."""
    if not len(frame) or "stage" not in frame:
        return []
    done = frame[(frame["state"] == "completed") & np.isfinite(frame[metric].astype(float))]
    ladder = done[done["stage"] == "ladder"]
    out = []
    for method, rungs in ladder.groupby("method"):
        dials = [c for c in rungs.columns if c.startswith("dial.") and rungs[c].notna().any()]
        leader = {c: rungs[c].mode().iloc[0] for c in dials}
        own = done[done["method"] == method]
        for dial in [c for c in dials if rungs[c].nunique() > 1]:  # the dials it stepped
            others = [c for c in dials if c != dial]
            rows = own[(own[others] == pd.Series({c: leader[c] for c in others})).all(axis=1)] \
                if others else own
            if rows[dial].nunique() < 3:
                continue
            x = rows[dial].astype(float).to_numpy()
            shortfall = _shortfall(rows[metric].astype(float).to_numpy(), direction, target)
            entry: dict[str, Any] = {"method": method, "dial": dial[len("dial."):],
                                     "points": int(len(rows)),
                                     "rungs": sorted(set(x.tolist()))}
            if shortfall is None or np.any(shortfall[0] <= 0) or np.any(x <= 0):
                entry["note"] = "the metric is not a positive quantity falling with scale"
                out.append(entry)
                continue
            y, goal = shortfall
            try:  # a ladder is a few rungs apart by x2: too short to fit only its end
                law = select(x, y, forms=["m1", "m2"], windows=[math.inf], bootstrap=200,
                             groups=rows["seed"].to_numpy()).fit \
                    if len(np.unique(x)) >= 5 else fit("m1", x, y, bootstrap=200,
                                                       groups=rows["seed"].to_numpy())
            except ValueError as error:
                entry["note"] = str(error)
                out.append(entry)
                continue
            entry.update({"form": law.form.name, "formula": law.form.formula,
                          "fitted_on": "1 - " + metric if direction == "maximize" else metric,
                          "params": {k: {"value": v, "lower": lo, "upper": hi} for k, (v, lo, hi)
                                     in law.param_intervals(0.95).items()}})
            if goal is not None and goal > 0:
                outlook = forecast(law, goal, level)
                entry["forecast"] = outlook.as_dict()
                cost = rows["cost.wall_seconds"].astype(float).to_numpy()
                try:
                    trend = power_trend(x, cost)
                except ValueError:
                    trend = None
                if trend is not None and outlook.reachable:
                    entry["compute_seconds"] = {
                        "value": trend.predict(outlook.x),
                        "lower": trend.predict(outlook.lower),
                        "upper": trend.predict(outlook.upper)
                        if math.isfinite(outlook.upper) else math.inf,
                        "per_trial": True}
            out.append(entry)
    return out
