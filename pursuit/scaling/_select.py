"""Choosing a form by how well it extrapolates, never by in-sample fit alone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

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
    cut = distinct[-count]
    held = key >= cut
    return ~held, held


@dataclass(frozen=True)
class Choice:
    """The chosen fit, refitted on all points, and how each candidate did on the held-back."""

    fit: Fit
    scores: dict[str, float]  # form -> RMSLE on the held-back points (NaN: could not fit)


def select(x: Array | Sequence[float], y: Array | Sequence[float], *,
           forms: Sequence[str | Form] | None = None, holdout: float = 0.2,
           delta: float = DELTA, bootstrap: int = 100, groups: Sequence[object] | None = None,
           seed: int = 0) -> Choice:
    """Hold back the largest-x ``holdout`` of the points, fit each form on the rest, keep
    the one that predicts the held-back points best, and refit it on all points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    candidates = [FORMS[f] if isinstance(f, str) else f for f in (forms or ONE_VARIABLE)]
    kept, held = split_largest(x, holdout)
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
                         f"holding back {int(held.sum())}; give more points or a smaller holdout")
    best = min(usable, key=usable.__getitem__)
    chosen = fit(next(f for f in candidates if f.name == best), x, y, delta=delta,
                 bootstrap=bootstrap, groups=groups, seed=seed)
    return Choice(replace(chosen, extrapolation_error=usable[best]), scores)
