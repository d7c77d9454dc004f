"""Choosing a law by how well it extrapolates, never by in-sample fit alone.

``select`` holds back the points near the largest x, fits every candidate form on the
rest, and scores each on the held-back points. It then refits the candidates on all
points and blends them in log space, each weighted by 1 / (held-back error)^2, so that a
form that extrapolated well counts for more without one lucky score deciding alone.
Prediction intervals beyond the data carry the worst candidate's held-back error, grown
with the distance of the extrapolation: the uncertainty about which form is right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from pursuit.scaling._fit import DELTA, Fit, fit
from pursuit.scaling._forms import FORMS, ONE_VARIABLE, Array, Form


def rmsle(predicted: Array, observed: Array) -> float:
    """Root mean squared log error, natural log."""
    return float(np.sqrt(np.mean((np.log(predicted) - np.log(observed)) ** 2)))


def split_largest(x: Array, fraction: float) -> tuple[Array, Array]:
    """Masks (kept, held back): the largest-x ``fraction`` of the distinct x values held back.

    With several variables the first column orders the points (compute, or size)."""
    key = x if x.ndim == 1 else x[:, 0]
    distinct = np.unique(key)
    count = max(1, int(round(fraction * len(distinct))))
    held = key >= distinct[-count]
    return ~held, held


def split_near_end(x: Array, factor: float, minimum: int) -> tuple[Array, Array]:
    """Hold back the points within ``factor`` of the largest x (an extrapolation of that
    factor), or the largest fifth when that leaves fewer than ``minimum`` points to fit."""
    held = x > np.max(x) / factor
    if held.sum() >= 1 and len(np.unique(x[~held])) >= minimum:
        return ~held, held
    return split_largest(x, 0.2)


class Blend(Form):
    """A weighted geometric mean of fitted forms: log y = sum_i w_i log f_i(x).

    Built by ``select``; theta is the members' parameters one after another."""

    name: ClassVar[str] = "blend"  # type: ignore[misc]

    def __init__(self, members: Sequence[Form], weights: Sequence[float]) -> None:
        self.members = list(members)
        self.weights = np.asarray(weights, dtype=float) / np.sum(weights)
        self.formula = " * ".join(f"({m.name})^{w:.2f}"  # type: ignore[misc]
                                  for m, w in zip(self.members, self.weights, strict=True))
        self.params = tuple(f"{m.name}.{p}" for m in self.members  # type: ignore[misc]
                            for p in m.params)
        self._cuts = np.cumsum([0] + [m.size for m in self.members])

    def _parts(self, theta: Array) -> list[Array]:
        return [theta[a:b] for a, b in zip(self._cuts[:-1], self._cuts[1:], strict=True)]

    def predict(self, theta: Array, x: Array) -> Array:
        logs = [w * np.log(m.predict(t, x))
                for m, w, t in zip(self.members, self.weights, self._parts(theta), strict=True)]
        return np.exp(np.sum(logs, axis=0))

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        raise TypeError("a blend is put together by select() from fitted forms, not fitted")

    def starts(self, x: Array, y: Array) -> list[Array]:
        raise TypeError("a blend is put together by select() from fitted forms, not fitted")

    def report(self, theta: Array) -> dict[str, float]:
        out: dict[str, float] = {}
        for m, t in zip(self.members, self._parts(theta), strict=True):
            out.update({f"{m.name}.{k}": v for k, v in m.report(t).items()})
        return out

    def asymptote(self, theta: Array) -> float:
        floors = [m.asymptote(t) for m, t in zip(self.members, self._parts(theta), strict=True)]
        if min(floors) <= 0:
            return 0.0
        return float(np.exp(np.sum(self.weights * np.log(floors))))


@dataclass(frozen=True)
class Choice:
    """The law to use, refitted on all points, and each candidate's held-back error."""

    fit: Fit
    scores: dict[str, float]  # form -> RMSLE on the held-back points (NaN: could not fit)
    weights: dict[str, float]
    members: dict[str, Fit]  # each form in the law, fitted on all points


def select(x: Array | Sequence[float], y: Array | Sequence[float], *,
           forms: Sequence[str | Form] | None = None, back_factor: float = 1.5,
           blend: bool = True, delta: float = DELTA, bootstrap: int = 100,
           groups: Sequence[object] | None = None, seed: int = 0) -> Choice:
    """Score each form on the points within ``back_factor`` of the largest x, fitted on
    the others; refit on all points and blend them by 1 / error^2 (or, with
    ``blend=False``, keep the single best)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    candidates = [FORMS[f] if isinstance(f, str) else f for f in (forms or ONE_VARIABLE)]
    kept, held = split_near_end(x, back_factor, max(c.size for c in candidates) + 2)
    scores: dict[str, float] = {}
    for form in candidates:
        try:
            trial = fit(form, x[kept], y[kept], delta=delta, bootstrap=0)
        except ValueError:
            scores[form.name] = math.nan
            continue
        scores[form.name] = rmsle(trial.predict(x[held]), y[held])
    usable = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not usable:
        raise ValueError(f"no form could be fitted on the {int(kept.sum())} points left after "
                         f"holding back {int(held.sum())}; give more points")
    span = math.log(np.max(x) / np.max(x[kept]))
    if not blend or len(usable) == 1:
        best = min(usable, key=usable.__getitem__)
        chosen = fit(next(f for f in candidates if f.name == best), x, y, delta=delta,
                     bootstrap=bootstrap, groups=groups, seed=seed)
        chosen = replace(chosen, extrapolation_error=usable[best], extrapolation_span=span)
        return Choice(chosen, scores, {best: 1.0}, {best: chosen})
    weights = {k: 1.0 / max(v, 1e-6) ** 2 for k, v in usable.items()}
    total = sum(weights.values())
    weights = {k: w / total for k, w in weights.items()}
    members = [fit(next(f for f in candidates if f.name == name), x, y, delta=delta,
                   bootstrap=bootstrap, groups=groups, seed=seed) for name in weights]
    blended = Blend([m.form for m in members], list(weights.values()))
    # Which form is right is not known: the intervals carry the held-back error of the
    # worst candidate, not the blend's own, which the weights were chosen to make small.
    error = max(usable.values())
    rows = min(len(m.boot) for m in members)
    boot = np.hstack([m.boot[:rows] for m in members]) if rows else np.empty((0, 0))
    theta = np.concatenate([m.theta for m in members])
    combined = Fit(blended, theta, x, y, sum(w * m.cost for w, m in
                                             zip(weights.values(), members, strict=True)),
                   boot, extrapolation_error=error, extrapolation_span=span)
    return Choice(combined, scores, weights, dict(zip(weights, members, strict=True)))
