"""Intervals and tests for claims over seeds, and the leaderboard built from them.

Every number comes with how many seeds it rests on. Intervals are Student-t
intervals of the mean (95% by default); with 8 or more seeds a percentile bootstrap
interval is given beside them. A method is compared with the best baseline by
Welch's t-test on its best configuration; p-values are Holm-corrected across the
methods compared, and a difference that does not clear ``alpha`` is called
"not significant", whatever its sign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

BOOTSTRAP_MIN_N = 8


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval; the interval is NaN with fewer than two values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def bootstrap_interval(values: Sequence[float], level: float = 0.95, *, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; NaN below ``BOOTSTRAP_MIN_N`` values."""
    x = np.asarray(values, dtype=float)
    if x.size < BOOTSTRAP_MIN_N:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = rng.choice(x, size=(resamples, x.size), replace=True).mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with its Welch interval and two-sided p-value."""

    diff: float
    lo: float
    hi: float
    p: float


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Difference:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean()) if x.size and y.size else math.nan
    if x.size < 2 or y.size < 2:
        return Difference(diff, math.nan, math.nan, math.nan)
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        return Difference(diff, diff, diff, p)
    # Welch-Satterthwaite degrees of freedom, from the shares of the variance so that
    # tiny variances (squares below the smallest float) do not turn it into 0 / 0.
    sx, sy = vx / (vx + vy), vy / (vx + vy)
    df = 1.0 / (sx**2 / (x.size - 1) + sy**2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Difference(diff, diff - half, diff + half, p)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values; NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid])]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def clears(lo: float, hi: float, mean: float, n: int, seeds: int, target: float | None,
           direction: str) -> bool:
    """Whether a configuration's claim meets the target: its interval lies past it.

    With ``seeds == 1`` a single run is the claim and its value must meet the target.
    """
    if target is None or n < seeds or math.isnan(mean):
        return False
    if seeds == 1 and n == 1:
        return mean >= target if direction == "maximize" else mean <= target
    return lo >= target if direction == "maximize" else hi <= target


@dataclass(frozen=True)
class Leaderboard:
    configs: pd.DataFrame  # one row per (method, configuration)
    methods: pd.DataFrame  # one row per method: its best configuration against the best baseline
    progress: dict[str, Any]  # toward the target


CONFIG_COLUMNS = ["method", "baseline", "config", "n", "mean", "lo", "hi", "boot_lo",
                  "boot_hi", "best", "confirmed"]
METHOD_COLUMNS = ["method", "baseline", "source", "config", "n", "mean", "lo", "hi", "best",
                  "trials", "failed", "diff", "diff_lo", "diff_hi", "p", "p_holm", "verdict"]


def leaderboard(frame: pd.DataFrame, *, metric: str, direction: str, target: float | None,
                seeds: int, alpha: float = 0.05, level: float = 0.95) -> Leaderboard:
    """Rank configurations and methods from the flat results table.

    ``frame`` needs the columns ``method``, ``baseline``, ``source``, ``config``, ``state``
    and ``metric``; only completed trials with a finite metric enter the statistics.
    """
    maximize = direction == "maximize"
    ok = frame[(frame["state"] == "completed")] if len(frame) else frame
    if len(ok):
        ok = ok[np.isfinite(ok[metric].astype(float))]
    rows = []
    for (method, config), group in ok.groupby(["method", "config"], sort=False):
        values = group[metric].astype(float).to_numpy()
        mean, lo, hi = mean_interval(values, level)
        boot_lo, boot_hi = bootstrap_interval(values, level)
        rows.append({"method": method, "baseline": bool(group["baseline"].iloc[0]),
                     "config": config, "n": len(values), "mean": mean, "lo": lo, "hi": hi,
                     "boot_lo": boot_lo, "boot_hi": boot_hi,
                     "best": values.max() if maximize else values.min(),
                     "confirmed": len(values) >= seeds, "_values": values})
    configs = pd.DataFrame(rows, columns=[*CONFIG_COLUMNS, "_values"])
    if len(configs):
        configs = configs.sort_values(["confirmed", "mean"], ascending=[False, not maximize],
                                      kind="stable").reset_index(drop=True)

    def best_of(candidates: pd.DataFrame) -> pd.Series | None:
        # Prefer claims that rest on the goal's full seed count; among those, the best mean.
        return None if not len(candidates) else candidates.iloc[0]

    baselines = configs[configs["baseline"]] if len(configs) else configs
    best_baseline = best_of(baselines)
    method_rows = []
    for method, group in frame.groupby("method", sort=False):
        own = configs[configs["method"] == method] if len(configs) else configs
        best = best_of(own)
        row: dict[str, Any] = {
            "method": method, "baseline": bool(group["baseline"].iloc[0]),
            "source": group["source"].iloc[0], "trials": len(group),
            "failed": int((group["state"] == "failed").sum()),
            "config": None, "n": 0, "mean": math.nan, "lo": math.nan, "hi": math.nan,
            "best": math.nan, "diff": math.nan, "diff_lo": math.nan, "diff_hi": math.nan,
            "p": math.nan, "verdict": "no completed trials"}
        if best is not None:
            row.update({k: best[k] for k in ("config", "n", "mean", "lo", "hi", "best")})
            if best_baseline is None:
                row["verdict"] = "no baseline to compare with"
            elif best["method"] == best_baseline["method"] and \
                    best["config"] == best_baseline["config"]:
                row["verdict"] = "best baseline"
            else:
                d = welch(best["_values"], best_baseline["_values"], level)
                row.update({"diff": d.diff, "diff_lo": d.lo, "diff_hi": d.hi, "p": d.p})
        method_rows.append(row)
    methods = pd.DataFrame(method_rows, columns=[c for c in METHOD_COLUMNS if c != "p_holm"])
    methods["p_holm"] = holm(methods["p"].tolist()) if len(methods) else []
    for index, row in methods.iterrows():
        if not math.isnan(row["diff"]) and math.isnan(row["p_holm"]):
            methods.at[index, "verdict"] = "n/a: needs 2+ seeds on both sides"
        elif not math.isnan(row["p_holm"]):
            if row["p_holm"] >= alpha:
                methods.at[index, "verdict"] = "not significant"
            else:
                methods.at[index, "verdict"] = "better" if (row["diff"] > 0) == maximize \
                    else "worse"
    if len(methods):
        methods = methods.sort_values("mean", ascending=not maximize, kind="stable",
                                      na_position="last").reset_index(drop=True)
    methods = methods[METHOD_COLUMNS]
    progress = _progress(configs, frame, target=target, direction=direction, seeds=seeds)
    return Leaderboard(configs.drop(columns="_values"), methods, progress)


def _progress(configs: pd.DataFrame, frame: pd.DataFrame, *, target: float | None,
              direction: str, seeds: int) -> dict[str, Any]:
    confirmed = configs[configs["confirmed"]] if len(configs) else configs
    progress: dict[str, Any] = {
        "target": target, "direction": direction, "seeds": seeds, "best_method": None,
        "best_config": None, "best_n": 0, "best_mean": math.nan, "best_lo": math.nan,
        "best_hi": math.nan, "gap": math.nan, "reached": False,
        "trials": int(len(frame)),
        "compute_seconds": float(frame["cost.wall_seconds"].fillna(0).sum())
        if "cost.wall_seconds" in frame else 0.0}
    if len(confirmed):
        best = confirmed.iloc[0]
        progress.update({"best_method": best["method"], "best_config": best["config"],
                         "best_n": int(best["n"]), "best_mean": float(best["mean"]),
                         "best_lo": float(best["lo"]), "best_hi": float(best["hi"])})
        if target is not None:
            gap = target - best["mean"] if direction == "maximize" else best["mean"] - target
            progress["gap"] = float(gap)
            progress["reached"] = any(
                clears(r.lo, r.hi, r.mean, int(r.n), seeds, target, direction)
                for r in confirmed.itertuples())
    return progress
