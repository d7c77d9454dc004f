"""Forecasts: where a fitted law reaches a target, with an interval; compute-optimal sizes.

Three promises hold for every forecast:

* the point lies inside its own interval (the fit's crossing, with the bootstrap
  interval stretched to hold it: see ``hold``);
* a target the law reaches only past the largest float reads as not reachable, in words,
  and never raises: every search runs in log x and stops at ``LOG_MAX``;
* a point far past what was measured (beyond the dial's range, or more than ``FAR``
  times the largest x measured) carries that in words, in ``extrapolation``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from pursuit.scaling._fit import Fit, hold
from pursuit.scaling._forms import LOG_MAX, Array, ChinchillaLaw, Form, exp_or_inf

FAR = 10.0  # a forecast more than this many times the largest x measured is called far


@dataclass(frozen=True)
class Forecast:
    """Where the law reaches ``target``: x with a bootstrap interval, or why it cannot."""

    target: float
    reachable: bool
    x: float  # NaN when not reachable
    lower: float  # always <= x <= upper when reachable
    upper: float  # inf when more than the upper tail of refits never reach the target
    asymptote: float
    asymptote_lower: float
    asymptote_upper: float
    reachable_fraction: float  # of bootstrap refits that reach the target
    level: float
    reason: str | None = None  # why not reachable, in words; None when reachable
    extrapolation: str | None = None  # how far x reaches past the data, in words; None
    # when it stays inside the dial's range and within FAR times the largest x measured
    largest_measured: float = math.nan

    def as_dict(self) -> dict[str, float | bool | str | None]:
        return dict(self.__dict__)


def extrapolation(x: float, largest: float, *, what: str = "x",
                  limits: tuple[float, float] | None = None) -> str | None:
    """In words, how far ``x`` lies past what was measured: outside ``limits`` (the dial's
    range), or more than ``FAR`` times the ``largest`` ``what`` measured; None when
    neither, or when there is no x."""
    if not math.isfinite(x):
        return None
    words = []
    if limits is not None:
        low, high = limits
        if x > high:
            words.append(f"beyond the dial's range [{low:.3g}, {high:.3g}]")
        elif x < low:
            words.append(f"below the dial's range [{low:.3g}, {high:.3g}]")
    if largest > 0 and x > FAR * largest:
        ratio = x / largest
        times = f"{ratio:.0f}" if ratio < 1e3 else f"{ratio:.1e}"  # 267, or 1.8e+07
        words.append(f"{times}× past the largest {what} measured ({largest:.3g})")
    return ", ".join(words) or None


def _first_below(gap: Callable[[float], float], start: float, xtol: float) -> float:
    """The smallest log x >= ``start`` where the falling ``gap`` reaches 0, searched by
    steps that double (1, 2, 4, .. e-folds) and then bisected: inf when gap is still
    above 0 at the largest float (log x = LOG_MAX); NaN when it has not fallen at all."""
    first = gap(start)
    if first <= 0:
        return start
    low = start
    for k in range(12):  # from any positive float's log (> -745), 2^11 e-folds pass LOG_MAX
        high = min(start + 2.0**k, LOG_MAX)
        if high <= low:
            break
        if gap(high) <= 0:
            return float(brentq(gap, low, high, xtol=xtol))
        low = high
    return math.inf if gap(LOG_MAX) < first else math.nan


def _crossing(form: Form, theta: Array, target: float, x_from: float) -> float:
    """The x >= x_from where the (falling) law first meets ``target``: inf when only past
    the largest float, NaN when the law does not fall toward it."""
    log_target = math.log(target)

    def gap(log_x: float) -> float:
        # Far out a law may underflow to 0 (log -inf) or break down (NaN): read as far
        # below the target, and as not reaching it, in finite numbers a root finder takes.
        with np.errstate(all="ignore"):
            value = float(np.log(form.predict(theta, np.array([math.exp(log_x)]))[0]))
        return 4 * LOG_MAX if math.isnan(value) else \
            min(max(value - log_target, -4 * LOG_MAX), 4 * LOG_MAX)

    return exp_or_inf(_first_below(gap, math.log(x_from), xtol=1e-10))


def _why_not(target: float, x: float, asymptote: float, floors: tuple[float, float],
             level: float) -> str | None:
    """Why a forecast has no x, in words; None when it has one."""
    if math.isfinite(x):
        return None
    if not target > asymptote:
        lo, hi = floors
        spread = "" if math.isnan(lo) else f" ({level:.0%} interval [{lo:.4g}, {hi:.4g}])"
        return f"the law levels off at {asymptote:.4g}{spread}, short of the target"
    if x == math.inf:
        return (f"not reachable within representable values: the law is still short of "
                f"the target at the largest float ({math.exp(LOG_MAX):.3g})")
    return "the law does not fall to the target"


def _summarise(target: float, x: float, asymptote: float, draws: list[float],
               floors: list[float], level: float, largest: float, what: str,
               limits: tuple[float, float] | None) -> Forecast:
    """A Forecast from the fit's crossing ``x`` (NaN or inf: none) and its refits'."""
    tails = [(1 - level) / 2, (1 + level) / 2]
    lower = upper = a_lo = a_hi = reach = math.nan
    if draws:
        values = np.where(np.isnan(draws), np.inf, draws)  # "never" is a legitimate outcome:
        reach = float(np.mean(np.isfinite(values)))  # order statistics, not interpolation
        lower, upper = (float(v) for v in np.quantile(values, tails, method="inverted_cdf"))
        a_lo, a_hi = hold(asymptote, *(float(v) for v in np.quantile(floors, tails)))
    reason = _why_not(target, x, asymptote, (a_lo, a_hi), level)
    if reason is None:
        lower, upper = hold(x, lower, upper)
    return Forecast(target, reason is None, x if reason is None else math.nan, lower, upper,
                    asymptote, a_lo, a_hi, reach, level, reason,
                    extrapolation(x, largest, what=what, limits=limits), largest)


def forecast(fit: Fit, target: float, level: float = 0.9, *, largest: float | None = None,
             what: str = "x", limits: tuple[float, float] | None = None) -> Forecast:
    """The x at which ``fit`` reaches ``target`` (one-variable forms, falling curves).

    The point is the fitted law's own crossing, the one a reader finds from the written
    law; the interval is the refits' percentile interval stretched to hold it. The words
    in ``extrapolation`` measure x against ``largest`` (the largest ``what`` measured; the
    fit's largest x by default) and against ``limits``, the dial's range, when given."""
    if fit.form.variables != 1:
        raise ValueError("forecast works on one-variable laws; for L(N, D) use "
                         "compute_to_reach")
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a positive number, got {target!r}")
    x_from = float(np.min(fit.x))

    def reach(theta: Array) -> float:
        return _crossing(fit.form, theta, target, x_from) \
            if target > fit.form.asymptote(theta) else math.nan

    x = reach(fit.theta)
    draws = [reach(theta) for theta in fit.boot]
    floors = [fit.form.asymptote(theta) for theta in fit.boot]
    return _summarise(target, x, fit.form.asymptote(fit.theta), draws, floors, level,
                      float(np.max(fit.x)) if largest is None else largest, what, limits)


@dataclass(frozen=True)
class Allocation:
    """Compute-optimal model size and data for a compute budget, under L(N, D)."""

    compute: float
    params: float
    tokens: float
    loss: float


def _log_optimum(params: dict[str, float], log_c: float) -> tuple[float, float, float]:
    """log N_opt, log D_opt and log L at compute e^log_c (Hoffmann et al. 2022, Approach 3
    closed form for C = 6 N D), in logs so that no compute overflows."""
    A, B, E, alpha, beta = (params[k] for k in ("A", "B", "E", "alpha", "beta"))
    if alpha <= 0 or beta <= 0:
        raise ValueError("a compute-optimal allocation needs alpha > 0 and beta > 0, got "
                         f"alpha = {alpha:g}, beta = {beta:g}")
    log_g = (math.log(alpha * A) - math.log(beta * B)) / (alpha + beta)
    log_budget = log_c - math.log(6.0)
    log_n = log_g + beta / (alpha + beta) * log_budget
    log_d = alpha / (alpha + beta) * log_budget - log_g
    log_loss = float(np.logaddexp.reduce([math.log(E), math.log(A) - alpha * log_n,
                                          math.log(B) - beta * log_d]))
    return log_n, log_d, log_loss


def optimal_allocation(params: dict[str, float], compute: float) -> Allocation:
    """N_opt and D_opt for C = 6 N D (Hoffmann et al. 2022, Approach 3 closed form)."""
    log_n, log_d, log_loss = _log_optimum(params, math.log(compute))
    return Allocation(compute, exp_or_inf(log_n), exp_or_inf(log_d), math.exp(log_loss))


def _log_compute_to_reach(params: dict[str, float], target: float) -> float:
    """log C where the compute-optimal L(N, D) reaches ``target``: inf past the largest
    float, NaN when never (target at or below E, or an exponent at 0, so that one of N, D
    does not help and compute has no optimal split)."""
    if target <= params["E"] or params["alpha"] <= 0 or params["beta"] <= 0:
        return math.nan
    log_target = math.log(target)
    # The search starts at 1e6 FLOP, far below any model worth a law: a target met there
    # is met at 1e6.
    return _first_below(lambda log_c: _log_optimum(params, log_c)[2] - log_target,
                        math.log(1e6), xtol=1e-12)


def compute_to_reach(params: dict[str, float], target: float) -> float:
    """The compute C at which the compute-optimal L(N, D) reaches ``target``: inf if never,
    and inf where that compute is past the largest float."""
    log_c = _log_compute_to_reach(params, target)
    return math.inf if math.isnan(log_c) else exp_or_inf(log_c)


def compute_forecast(fit: Fit, target: float, level: float = 0.9, *,
                     largest: float | None = None) -> Forecast:
    """``compute_to_reach`` for a fitted L(N, D), with its bootstrap interval (which holds
    the point, as ``forecast``'s does), judged against ``largest``, the largest compute
    measured (by default 6 N D of the fitted runs)."""
    if not isinstance(fit.form, ChinchillaLaw):
        raise ValueError("compute_forecast needs an L(N, D) fit (form 'chinchilla')")

    def reach(params: dict[str, float]) -> float:
        log_c = _log_compute_to_reach(params, target)
        return math.nan if math.isnan(log_c) else exp_or_inf(log_c)

    draws = [reach(fit.form.report(theta)) for theta in fit.boot]
    floors = [fit.form.report(theta)["E"] for theta in fit.boot]
    measured = float(np.max(6.0 * fit.x[:, 0] * fit.x[:, 1])) if largest is None else largest
    return _summarise(target, reach(fit.params), fit.params["E"], draws, floors, level,
                      measured, "compute", None)
