"""Intervals and tests for claims over seeds, and the leaderboard built from them.

Every number comes with how many seeds it rests on, and rests only on the runs that
``pursuit.analysis.claims`` lets a claim rest on. Intervals are Student-t intervals of
the mean (95% by default); with 8 or more seeds a percentile bootstrap interval is
given beside them. A method is compared with the best baseline by Welch's t-test on
its best configuration, corrected for choosing both sides' best (Bonferroni) and then
across the methods compared (Holm); a difference that does not clear ``alpha`` is
called "not significant", whatever its sign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pursuit.analysis.claims import LEVEL, ClaimBook, book_from_runs, t_interval

BOOTSTRAP_MIN_N = 8


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval; the interval is NaN with fewer than two values."""
    return t_interval(np.asarray(values, dtype=float), level)


def bootstrap_interval(values: Sequence[float] | np.ndarray, level: float = 0.95, *,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
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


@dataclass(frozen=True)
class Leaderboard:
    configs: pd.DataFrame  # one row per (method, configuration) with a claim
    methods: pd.DataFrame  # one row per method: its best claim against the best baseline
    progress: dict[str, Any]  # the best claim and the target
    book: ClaimBook  # the claims themselves


CONFIG_COLUMNS = ["method", "baseline", "config", "n", "mean", "lo", "hi", "boot_lo",
                  "boot_hi", "best", "screen", "basis", "verified", "complete"]
METHOD_COLUMNS = ["method", "baseline", "source", "config", "n", "mean", "lo", "hi", "best",
                  "trials", "failed", "chosen_from", "diff", "diff_lo", "diff_hi", "p",
                  "p_holm", "verdict"]


def claim_book(frame: pd.DataFrame, *, metric: str, direction: str, target: float | None,
               seeds: int) -> ClaimBook:
    """The claims of a results table (rows in the order the trials were created)."""
    if not len(frame):
        return ClaimBook(direction, target, seeds)
    values = np.where(frame["state"] == "completed", frame[metric].astype(float), math.nan)
    return book_from_runs(zip(frame["method"], frame["config"], frame["stage"],
                              frame["seed"].astype(int), values, strict=True),
                          direction=direction, target=target, seeds=seeds)


def leaderboard(frame: pd.DataFrame, *, metric: str, direction: str, target: float | None,
                seeds: int, alpha: float = 0.05, level: float = LEVEL) -> Leaderboard:
    """Rank configurations and methods from the flat results table.

    ``frame`` needs the columns ``method``, ``baseline``, ``source``, ``config``,
    ``stage``, ``seed``, ``state`` and ``metric``. Each configuration's numbers are its
    claim (``pursuit.analysis.claims``: distinct seeds, never the run that chose it).
    A method's best configuration and the best baseline were each chosen among several
    claims, so the p-value of their difference is multiplied by the number of pairs
    they were chosen from (Bonferroni), then Holm-corrected across methods.
    """
    maximize = direction == "maximize"
    book = claim_book(frame, metric=metric, direction=direction, target=target, seeds=seeds)
    baseline_of = dict(zip(frame["method"], frame["baseline"].astype(bool), strict=False)) \
        if len(frame) else {}
    screens = _screening_values(frame, metric)
    defaults = set() if not len(frame) else \
        set(frame.loc[frame["stage"] == "baselines", ["method", "config"]].itertuples(
            index=False, name=None))
    rows = []
    for claim in book.claims():
        key = (claim.method, claim.config)
        basis = "verified" if claim.verified else "defaults" if key in defaults else \
            "after search" if key in screens else "ladder rung"
        x = np.asarray(claim.values)
        boot_lo, boot_hi = bootstrap_interval(x, level)
        rows.append({"method": claim.method, "baseline": baseline_of.get(claim.method, False),
                     "config": claim.config, "n": claim.n, "mean": claim.mean,
                     "lo": claim.lo, "hi": claim.hi, "boot_lo": boot_lo, "boot_hi": boot_hi,
                     "best": x.max() if maximize else x.min(),
                     "screen": screens.get(key, math.nan), "basis": basis,
                     "verified": claim.verified, "complete": claim.n >= seeds,
                     "_values": x})
    configs = pd.DataFrame(rows, columns=[*CONFIG_COLUMNS, "_values"])
    if len(configs):
        configs = configs.sort_values(["complete", "mean"], ascending=[False, not maximize],
                                      kind="stable").reset_index(drop=True)

    def best_of(candidates: pd.DataFrame) -> tuple[pd.Series | None, int]:
        """The best claim (full seed count first) and how many it was chosen among."""
        if not len(candidates):
            return None, 0
        complete = int(candidates["complete"].sum())
        return candidates.iloc[0], complete or len(candidates)

    best_baseline, baseline_among = best_of(configs[configs["baseline"]] if len(configs)
                                            else configs)
    method_rows = []
    for method, group in frame.groupby("method", sort=False):
        best, among = best_of(configs[configs["method"] == method] if len(configs)
                              else configs)
        row: dict[str, Any] = {
            "method": method, "baseline": bool(group["baseline"].iloc[0]),
            "source": group["source"].iloc[0], "trials": len(group),
            "failed": int((group["state"] == "failed").sum()), "chosen_from": among,
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
                pairs = among * baseline_among
                row.update({"diff": d.diff, "diff_lo": d.lo, "diff_hi": d.hi,
                            "p": min(1.0, d.p * pairs) if not math.isnan(d.p) else d.p})
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
    progress = _progress(book, frame, target=target, direction=direction, seeds=seeds)
    return Leaderboard(configs.drop(columns="_values"), methods, progress, book)


def _screening_values(frame: pd.DataFrame, metric: str) -> dict[tuple[str, str], float]:
    """The value each searched configuration showed on its screening run."""
    if not len(frame):
        return {}
    screened = frame[(frame["stage"] == "search") & (frame["state"] == "completed")]
    return {(m, c): float(v) for m, c, v in zip(screened["method"], screened["config"],
                                                  screened[metric], strict=True)}


def _progress(book: ClaimBook, frame: pd.DataFrame, *, target: float | None,
              direction: str, seeds: int) -> dict[str, Any]:
    best = book.best()
    progress: dict[str, Any] = {
        "target": target, "direction": direction, "seeds": seeds, "best_method": None,
        "best_config": None, "best_n": 0, "best_mean": math.nan, "best_lo": math.nan,
        "best_hi": math.nan, "best_verified": False, "best_among": 0, "gap": math.nan,
        "reached": book.reached, "verifications": book.verifications,
        "trials": int(len(frame)),
        "compute_seconds": float(frame["cost.wall_seconds"].fillna(0).sum())
        if "cost.wall_seconds" in frame else 0.0}
    if best is not None:
        claim = best.claim
        progress.update({"best_method": claim.method, "best_config": claim.config,
                         "best_n": claim.n, "best_mean": claim.mean, "best_lo": best.lo,
                         "best_hi": best.hi, "best_verified": claim.verified,
                         "best_among": best.among})
        if target is not None:
            gap = target - claim.mean if direction == "maximize" else claim.mean - target
            progress["gap"] = float(gap)
    return progress
