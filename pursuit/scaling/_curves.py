"""Analyses of learning curves: when validation stops improving, and how that moves with
data; what repeated data is worth against new data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pursuit.scaling._forms import Array, DataConstrainedLaw, exp_or_inf


@dataclass(frozen=True)
class Overfit:
    """Where a validation curve stopped improving. ``step`` is None while it still improves."""

    step: float | None
    best: float
    last: float
    worsening: float  # how much worse the end is than the best, in the metric's units


def overfit_step(steps: Sequence[float], values: Sequence[float], *,
                 direction: str = "minimize", window: int = 5, tolerance: float = 0.0
                 ) -> Overfit:
    """The step of the best validation value, judged on a running median of ``window``
    points so that one noisy evaluation neither makes nor hides the turn. The curve has
    turned only if its end is worse than that best by more than ``tolerance``."""
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if len(s) != len(v) or len(s) < 3:
        raise ValueError("overfit_step needs at least 3 (step, value) pairs of equal length")
    order = np.argsort(s)
    s, v = s[order], v[order]
    sign = 1.0 if direction == "minimize" else -1.0
    half = max(0, window // 2)
    smooth = np.array([np.median(v[max(0, i - half): i + half + 1]) for i in range(len(v))])
    best_index = int(np.argmin(sign * smooth))
    worsening = float(sign * (smooth[-1] - smooth[best_index]))
    turned = best_index < len(s) - 1 - half and worsening > tolerance
    return Overfit(float(s[best_index]) if turned else None, float(smooth[best_index]),
                   float(smooth[-1]), worsening)


@dataclass(frozen=True)
class Trend:
    """``y = c * x^k`` fitted by least squares in log-log space, with a t-interval on k."""

    exponent: float
    lower: float
    upper: float
    coefficient: float
    points: int
    level: float

    def predict(self, x: float) -> float:
        """c * x^k, inf where that is past the largest float (x^k in floats would raise)."""
        if self.exponent == 0:  # x^0 is 1 even for x = inf
            return self.coefficient
        return exp_or_inf(math.log(self.coefficient) + self.exponent * math.log(x))


def overfit_trend(data_sizes: Sequence[float], overfit_steps: Sequence[float | None],
                  level: float = 0.95) -> Trend:
    """How the step of overfitting moves with the amount of data, from runs that turned."""
    pairs = [(d, s) for d, s in zip(data_sizes, overfit_steps, strict=True) if s is not None]
    if len(pairs) < 3:
        raise ValueError(f"a trend needs at least 3 runs that overfit, got {len(pairs)}")
    return power_trend([d for d, _ in pairs], [s for _, s in pairs], level=level)


def power_trend(x: Sequence[float], y: Sequence[float], level: float = 0.95) -> Trend:
    """``y = c * x^k`` through positive points, with a t-interval on k."""
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a > 0 and b > 0]
    if len(pairs) < 3 or len({a for a, _ in pairs}) < 2:
        raise ValueError("a trend needs at least 3 positive points at 2 or more x values")
    lx, ly = (np.log(np.array(v, dtype=float)) for v in zip(*pairs, strict=True))
    fit = stats.linregress(lx, ly)
    half = float(stats.t.ppf(0.5 + level / 2, len(pairs) - 2) * fit.stderr)
    return Trend(float(fit.slope), float(fit.slope) - half, float(fit.slope) + half,
                 math.exp(fit.intercept), len(pairs), level)


@dataclass(frozen=True)
class RepeatValue:
    """Loss after seeing ``tokens`` tokens of which ``unique`` are distinct, against the
    same number of fresh tokens, under a fitted data-constrained law."""

    tokens_seen: float
    effective_tokens: float
    loss_repeated: float
    loss_fresh: float

    @property
    def worth(self) -> float:
        """What a token seen is worth in fresh tokens, on average (1: as good as new)."""
        return self.effective_tokens / self.tokens_seen


def value_of_repeats(theta: Array, params: float, unique: float, tokens: float) -> RepeatValue:
    """Repeated versus new data for a model of ``params`` parameters (theta from a fitted
    ``DataConstrainedLaw``)."""
    law = DataConstrainedLaw()
    repeated = np.array([[params, tokens, unique]])
    fresh = np.array([[params, tokens, tokens]])
    effective = float(law.effective_data(theta[5], repeated)[0])
    return RepeatValue(tokens, effective, float(law.predict(theta, repeated)[0]),
                       float(law.predict(theta, fresh)[0]))
