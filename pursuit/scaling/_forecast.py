"""Forecasts: where a fitted law reaches a target, with an interval; compute-optimal sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from pursuit.scaling._fit import Fit
from pursuit.scaling._forms import Array, ChinchillaLaw, Form


@dataclass(frozen=True)
class Forecast:
    """Where the law reaches ``target``: x with a bootstrap interval, or why it cannot."""

    target: float
    reachable: bool
    x: float  # NaN when not reachable
    lower: float
    upper: float
    asymptote: float
    asymptote_lower: float
    asymptote_upper: float
    reachable_fraction: float  # of bootstrap refits that reach the target
    level: float

    def as_dict(self) -> dict[str, float | bool]:
        return dict(self.__dict__)


def _crossing(form: Form, theta: Array, target: float, x_from: float) -> float:
    """The x >= x_from where the (falling) law first meets ``target``; NaN if it never does."""
    def gap(log_x: float) -> float:
        return float(np.log(form.predict(theta, np.array([math.exp(log_x)]))[0])
                     - math.log(target))

    start = math.log(x_from)
    if gap(start) <= 0:
        return x_from
    step = 1.0
    for _ in range(80):  # search up to e^(start + 2^80): beyond that "never" is the answer
        if gap(start + step) <= 0:
            return math.exp(brentq(gap, start, start + step, xtol=1e-10))
        step *= 2.0
    return math.nan


def forecast(fit: Fit, target: float, level: float = 0.9) -> Forecast:
    """The x at which ``fit`` reaches ``target`` (one-variable forms, falling curves)."""
    if fit.form.variables != 1:
        raise ValueError("forecast works on one-variable laws; for L(N, D) use "
                         "compute_to_reach")
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a positive number, got {target!r}")
    x_from = float(np.min(fit.x))
    asymptote = fit.form.asymptote(fit.theta)
    x = _crossing(fit.form, fit.theta, target, x_from) if target > asymptote else math.nan
    boot_x, boot_floor = [], []
    for theta in fit.boot:
        floor = fit.form.asymptote(theta)
        boot_floor.append(floor)
        boot_x.append(_crossing(fit.form, theta, target, x_from) if target > floor
                      else math.inf)
    tails = [(1 - level) / 2, (1 + level) / 2]
    lower = upper = a_lo = a_hi = math.nan
    reach = math.nan
    if boot_x:
        values = np.where(np.isnan(boot_x), np.inf, boot_x)
        reach = float(np.mean(np.isfinite(values)))
        # Order statistics, not interpolation: "never" (inf) is a legitimate outcome.
        lower, upper = (float(v) for v in np.quantile(values, tails, method="inverted_cdf"))
        a_lo, a_hi = (float(v) for v in np.quantile(boot_floor, tails))
    return Forecast(target, bool(math.isfinite(x)), x, lower, upper, asymptote, a_lo, a_hi,
                    reach, level)


@dataclass(frozen=True)
class Allocation:
    """Compute-optimal model size and data for a compute budget, under L(N, D)."""

    compute: float
    params: float
    tokens: float
    loss: float


def optimal_allocation(params: dict[str, float], compute: float) -> Allocation:
    """N_opt and D_opt for C = 6 N D (Hoffmann et al. 2022, Approach 3 closed form)."""
    A, B, E, alpha, beta = (params[k] for k in ("A", "B", "E", "alpha", "beta"))
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n = g * (compute / 6.0) ** (beta / (alpha + beta))
    d = (compute / 6.0) ** (alpha / (alpha + beta)) / g
    return Allocation(compute, n, d, E + A / n**alpha + B / d**beta)


def compute_to_reach(params: dict[str, float], target: float) -> float:
    """The compute C at which the compute-optimal L(N, D) reaches ``target`` (inf if never)."""
    if target <= params["E"]:
        return math.inf

    def gap(log_c: float) -> float:
        return math.log(optimal_allocation(params, math.exp(log_c)).loss) - math.log(target)

    lo, hi = math.log(1e6), math.log(1e6) + 1.0
    if gap(lo) <= 0:
        return math.exp(lo)
    while gap(hi) > 0:
        hi += (hi - lo)
        if hi > 2000:
            return math.inf
    return math.exp(brentq(gap, lo, hi, xtol=1e-12))


def compute_forecast(fit: Fit, target: float, level: float = 0.9) -> Forecast:
    """``compute_to_reach`` for a fitted L(N, D), with its bootstrap interval."""
    if not isinstance(fit.form, ChinchillaLaw):
        raise ValueError("compute_forecast needs an L(N, D) fit (form 'chinchilla')")
    value = compute_to_reach(fit.params, target)
    draws = [compute_to_reach(fit.form.report(theta), target) for theta in fit.boot]
    floors = [fit.form.report(theta)["E"] for theta in fit.boot]
    tails = [(1 - level) / 2, (1 + level) / 2]
    lower = upper = a_lo = a_hi = reach = math.nan
    if draws:
        lower, upper = (float(v) for v in np.quantile(draws, tails, method="inverted_cdf"))
        a_lo, a_hi = (float(v) for v in np.quantile(floors, tails))
        reach = float(np.mean(np.isfinite(draws)))
    return Forecast(target, math.isfinite(value), value if math.isfinite(value) else math.nan,
                    lower, upper, fit.params["E"], a_lo, a_hi, reach, level)
