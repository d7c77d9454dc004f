"""The series the figures draw, read out of the results table: the best claim as trials
accrued, the points of a ladder line, curves thinned for display. Pure functions, no
I/O, shared by the report and the dashboard."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pursuit.analysis.claims import ClaimBook

HISTORY_COLUMNS = ["trials", "compute_seconds", "method", "config", "n", "mean", "lo", "hi",
                   "among", "verified", "reached"]


def spread(count: int, most: int) -> np.ndarray:
    """Positions of at most ``most`` of ``count`` items, evenly spread, the first and
    last always among them (all of them when there are no more than ``most``)."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(int))


def downsample(curve: Mapping[int, float], max_points: int = 200
               ) -> tuple[np.ndarray, np.ndarray]:
    """A curve's steps and values in step order, thinned to at most ``max_points``
    evenly spread points (the first and last always kept)."""
    steps = np.array(sorted(curve), dtype=np.int64)
    keep = spread(len(steps), max_points)
    return steps[keep], np.array([curve[int(s)] for s in steps[keep]], dtype=float)


def best_claim_history(frame: pd.DataFrame, *, metric: str, direction: str,
                       target: float | None, seeds: int, points: int = 60) -> pd.DataFrame:
    """The best claim (``ClaimBook.best``: its mean and 95% interval) after the first k
    trials, at up to ``points`` values of k spread evenly over the run, the last one
    being every trial: what the leaderboard said at each of those moments.

    ``frame`` is the results table in the order the trials were created (as
    ``Results.results`` gives it); ``metric`` its metric column. The claim book is fed
    once, row by row, exactly as ``pursuit.analysis.stats.claim_book`` feeds it, so the
    last row agrees with the leaderboard's ``progress`` and the cost stays linear in the
    number of trials. Rows before any claim has its full seeds have NaN numbers."""
    total = len(frame)
    if not total:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    marks = set(np.linspace(1, total, min(points, total)).round().astype(int).tolist())
    values = np.where(frame["state"] == "completed", frame[metric].astype(float), math.nan)
    spent = frame["cost.wall_seconds"].astype(float).fillna(0).cumsum().to_numpy() \
        if "cost.wall_seconds" in frame else np.zeros(total)
    book = ClaimBook(direction, target, seeds)
    rows: list[dict[str, Any]] = []
    runs = zip(frame["method"].tolist(), frame["config"].tolist(), frame["stage"].tolist(),
               frame["seed"].astype(int).tolist(), values.tolist(), strict=True)
    for count, (method, config, stage, seed, value) in enumerate(runs, start=1):
        book.add(method, config, stage, seed, value)
        if count not in marks:
            continue
        row: dict[str, Any] = {"trials": count, "compute_seconds": float(spent[count - 1]),
                               "method": None, "config": None, "n": 0, "mean": math.nan,
                               "lo": math.nan, "hi": math.nan, "among": 0,
                               "verified": False, "reached": False}
        best = book.best()
        if best is not None:
            claim = best.claim
            row.update({"method": claim.method, "config": claim.config, "n": claim.n,
                        "mean": claim.mean, "lo": best.lo, "hi": best.hi,
                        "among": best.among, "verified": claim.verified,
                        "reached": best.reached})
        rows.append(row)
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def ladder_points(frame: pd.DataFrame, entry: Mapping[str, Any], *,
                  metric: str) -> pd.DataFrame:
    """The points a ladder law was fitted to: the completed runs of its method with the
    other dials at the entry's ``at`` values, as ``x`` (the stepped dial, or the
    parameter count the trials reported when the entry's ``x`` is ``params``), ``y``
    (the quantity fitted: the metric, or 1 - metric when ``fitted_on`` says so) and
    ``seed``."""
    dial = f"dial.{entry['dial']}"
    against = "cost.params" if entry.get("x") == "params" else dial
    rows = frame[(frame["method"] == entry["method"]) & (frame["state"] == "completed")]
    if dial not in rows or against not in rows:
        return pd.DataFrame(columns=["x", "y", "seed"])
    rows = rows[np.isfinite(rows[metric].astype(float)) & rows[dial].notna()]
    for name, value in entry.get("at", {}).items():
        column = rows[f"dial.{name}"].astype(str)  # as the ladder tells its lines apart
        rows = rows[column == pd.Series([value]).astype(str).iloc[0]]
    y = rows[metric].astype(float)
    if str(entry.get("fitted_on", "")).startswith("1 - "):
        y = 1.0 - y
    return pd.DataFrame({"x": rows[against].astype(float).to_numpy(), "y": y.to_numpy(),
                         "seed": rows["seed"].astype(int).to_numpy()})
