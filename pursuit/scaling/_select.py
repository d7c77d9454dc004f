"""Choosing a law by how well it extrapolates, never by in-sample fit alone.

The candidates are each form fitted to the end of the curve: the points within 2x, 8x
and 32x of the largest x (the last 1, 3 and 5 doublings). Early points often follow a
different regime (warm-up, a transient before the power law sets in), and a law fitted
to where the curve is now extrapolates better than one bent to fit where it started.

``select`` holds back the points near the largest x, fits every candidate on the rest,
and scores each on the held-back points. It then refits the candidates on all points and
blends them in log space, each weighted by 1 / (held-back error), so that candidates that
extrapolated well count for more without one lucky score deciding alone. Prediction
intervals beyond the data carry the root mean square of the candidates' held-back errors,
grown with the distance of the extrapolation: the uncertainty about which law is right.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from pursuit.scaling._fit import DELTA, POOL_ABOVE, Fit, check_values, fit
from pursuit.scaling._forms import FORMS, Array, Form


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


DEFAULT_FORMS = ("m2", "m3", "m4")
WINDOWS = (2.0, 8.0, 32.0)  # fit on the points within this factor of the largest x
WHOLE = math.inf  # the window of a candidate that sees every point


def window(x: Array, factor: float) -> Array:
    """Mask of the points within ``factor`` of the largest x."""
    key = x if x.ndim == 1 else x[:, 0]
    return key >= np.max(key) / factor


def label(form: Form, factor: float) -> str:
    return form.name if factor == WHOLE else f"{form.name} on last {factor:g}x"


class Blend(Form):
    """A weighted geometric mean of fitted forms: log y = sum_i w_i log f_i(x).

    Built by ``select``; theta is the members' parameters one after another."""

    name: ClassVar[str] = "blend"  # type: ignore[misc]

    def __init__(self, members: dict[str, Form], weights: Sequence[float]) -> None:
        self.members = list(members.values())
        self.labels = list(members)
        self.weights = np.asarray(weights, dtype=float) / np.sum(weights)
        self.formula = " * ".join(f"({name})^{w:.2f}"  # type: ignore[misc]
                                  for name, w in zip(self.labels, self.weights, strict=True))
        self.params = tuple(f"{name}.{p}" for name, m in members.items()  # type: ignore[misc]
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
        for name, m, t in zip(self.labels, self.members, self._parts(theta), strict=True):
            out.update({f"{name}.{k}": v for k, v in m.report(t).items()})
        return out

    def asymptote(self, theta: Array) -> float:
        floors = [m.asymptote(t) for m, t in zip(self.members, self._parts(theta), strict=True)]
        if min(floors) <= 0:
            return 0.0
        return float(np.exp(np.sum(self.weights * np.log(floors))))

    def floor_caveat(self, theta: Array, target: float) -> str | None:
        """In words, when the blend reaches ``target`` only because a lighter member
        falls without floor while members weighing more level off short of it: the
        forecast then rests on the member the held-back points trusted less."""
        parts = list(zip(self.labels, self.members, self.weights, self._parts(theta),
                         strict=True))
        stuck = [(label, w, m.asymptote(t)) for label, m, w, t in parts
                 if m.asymptote(t) >= target]
        if not stuck or sum(w for _, w, _ in stuck) < 0.5:
            return None
        levels = ", ".join(f"{label} (weight {w:.2f}) levels off at {floor:.4g}"
                           for label, w, floor in stuck)
        return (f"{levels}, short of the target: the blend reaches it only through "
                "lighter members whose floor is zero")

    @property
    def variables_named(self) -> tuple[str, ...]:
        return self.members[0].variables_named

    def expression(self, theta: Array, names: Sequence[str]) -> str | None:
        """The members' laws written out, each to its weight; None when a member has no
        closed form, or when there are more than ``WRITTEN_OUT`` of them."""
        parts = [m.expression(t, names)
                 for m, t in zip(self.members, self._parts(theta), strict=True)]
        if len(parts) > WRITTEN_OUT or any(p is None for p in parts):
            return None
        return " · ".join(f"({p})^{w:.2f}" for p, w in zip(parts, self.weights, strict=True))

    def equation(self, theta: Array, names: Sequence[str] | None = None,
                 y: str = "y") -> str:
        """``y ≈`` the weighted product of the members, written out where short enough,
        else by the members' names (``describe`` writes out each of them)."""
        right = self.expression(theta, list(names or self.variables_named))
        if right is None:
            right = " · ".join(f"[{label}]^{w:.2f}"
                               for label, w in zip(self.labels, self.weights, strict=True))
        return f"{y} ≈ {right}"


WRITTEN_OUT = 3  # past this many members a product written out is longer than one reads


def describe(fit: Fit, weights: Mapping[str, float], scores: Mapping[str, float],
             names: Sequence[str] | None = None, y: str = "y",
             ) -> tuple[str, list[dict[str, Any]]]:
    """The law a reader checks by hand: its equation with the fitted values in it, and each
    member law (the one form, or a blend's candidates) with its equation, its weight and
    its error extrapolating to the held-back points, the error that earned the weight
    (None where the law was not chosen on held-back points).

    ``weights`` and ``scores`` are ``select``'s (empty for a form fitted on its own)."""
    form = fit.form
    if isinstance(form, Blend):
        parts = list(zip(form.labels, form.members, form._parts(fit.theta), form.weights,
                         strict=True))
    else:  # one law: select's single candidate keeps its name (its window), else the form's
        label = next(iter(weights)) if len(weights) == 1 else form.name
        parts = [(label, form, fit.theta, 1.0)]
    members = []
    for label, member, theta, weight in parts:
        score = scores.get(label)
        members.append({"form": label, "formula": member.equation(theta, names, y),
                        "weight": float(weight),
                        "holdout_rmsle": None if score is None or math.isnan(score)
                        else float(score)})
    return form.equation(fit.theta, names, y), members


@dataclass(frozen=True)
class Choice:
    """The law to use, refitted on all points, and each candidate's held-back error."""

    fit: Fit
    scores: dict[str, float]  # candidate -> RMSLE on the held-back points (NaN: not fitted)
    weights: dict[str, float]
    members: dict[str, Fit]  # each candidate in the law, fitted on its window of all points


def _distinct(x: Array, factor: float) -> int:
    """How many distinct x the window holds."""
    return len(np.unique(x[window(x, factor)], axis=0))


def _score(x: Array, y: Array, kept: Array, held: Array, candidates: Sequence[Form],
           factors: Sequence[float], delta: float, pool: bool = False,
           ) -> tuple[dict[str, float], dict[str, tuple[Form, float, Array]]]:
    """Each form fitted to each window of the kept points and scored on the held-back
    ones: RMSLE per candidate (NaN: not fitted), and the fitted candidates' solutions.

    A window is fitted only where it holds enough points to leave the fit something to
    check itself against: two more distinct x than the form has parameters."""
    scores: dict[str, float] = {}
    fitted: dict[str, tuple[Form, float, Array]] = {}
    seen: set[bytes] = set()  # windows that hold the same points are one candidate
    wider: dict[str, Array] = {}  # each form's solution on the last, wider window
    for factor in sorted(factors, reverse=True):
        points = window(x, factor).tobytes()
        if points in seen:
            continue
        seen.add(points)
        inside = window(x[kept], factor)
        xs, ys = x[kept][inside], y[kept][inside]
        distinct = math.inf if factor == WHOLE else min(_distinct(x[kept], factor),
                                                        _distinct(x, factor))
        for form in candidates:
            name = label(form, factor)
            scores[name] = math.nan
            if distinct < form.size + 2:
                continue
            try:  # a wider window's solution is a good start for a narrower one
                if form.name in wider:
                    trial = fit(form, xs, ys, delta=delta, bootstrap=0,
                                starts=[wider[form.name]], top_starts=1, pool=pool)
                else:
                    trial = fit(form, xs, ys, delta=delta, bootstrap=0, pool=pool)
            except ValueError:
                continue
            wider[form.name] = trial.theta
            scores[name] = rmsle(trial.predict(x[held]), y[held])
            fitted[name] = (form, factor, trial.theta)
    return scores, fitted


def _check(x: Array, y: Array, candidates: Sequence[Form]) -> None:
    """A ValueError unless (x, y) leaves the smallest candidate points to fit and one x
    to be scored on."""
    if x.ndim != 1 or len(x) != len(y):
        raise ValueError(f"select takes one column of x and as many y; got x of shape "
                         f"{x.shape} and {len(y)} values of y")
    check_values(x, y)
    smallest = min(candidates, key=lambda c: c.size)
    needed = smallest.size + 1
    distinct = len(np.unique(x))
    if distinct < needed:
        raise ValueError(f"choosing a law needs points at {needed} or more distinct x "
                         f"values ({smallest.size} to fit {smallest.name}, the smallest "
                         f"form, and 1 to score it on); got {len(x)} points at {distinct} "
                         "distinct x values (duplicates count once)")
    if np.ptp(y) == 0:
        raise ValueError("y is constant: there is no trend to fit")


def select(x: Array | Sequence[float], y: Array | Sequence[float], *,
           forms: Sequence[str | Form] | None = None,
           windows: Sequence[float] = WINDOWS, back_factor: float = 1.5,
           blend: bool = True, delta: float = DELTA, bootstrap: int = 100,
           groups: Sequence[object] | None = None, seed: int = 0) -> Choice:
    """Score each form, fitted to each window of the curve's end, on the points within
    ``back_factor`` of the largest x, fitted on the others; refit on all points and blend
    the candidates by 1 / error (or, with ``blend=False``, keep the single best).

    ``windows`` are factors of the largest x (``math.inf``: the whole curve). When no
    window holds enough points for any form, the whole curve is used. ``bootstrap``
    resamples are shared among the blended candidates; each refit takes at most 20
    evaluations from the candidate's fit (a truncated bootstrap: enough for the scatter
    of a law near its fit, which is all a blend's intervals take from it). Past
    ``POOL_ABOVE`` points, every candidate is fitted on pooled points (see ``fit``).

    Every point is checked, not only those of the windows: a ValueError names the first
    that is not finite and > 0, or says how many distinct x a choice needs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    candidates = [FORMS[f] if isinstance(f, str) else f for f in (forms or DEFAULT_FORMS)]
    _check(x, y, candidates)
    pool = len(x) > POOL_ABOVE  # every candidate fitted alike (see fit)
    kept, held = split_near_end(x, back_factor, max(c.size for c in candidates) + 2)
    scores, chosen = _score(x, y, kept, held, candidates, windows, delta, pool)
    if not chosen:  # no window holds enough points: the whole curve
        whole, chosen = _score(x, y, kept, held, candidates, [WHOLE], delta, pool)
        scores.update(whole)
    if not chosen:
        raise ValueError(f"no form could be fitted on the {int(kept.sum())} points left after "
                         f"holding back {int(held.sum())}; give more points")
    usable = {name: scores[name] for name in chosen}
    if not blend:
        best = min(usable, key=usable.__getitem__)
        usable = {best: usable[best]}
    weights = {k: 1.0 / max(v, 1e-6) for k, v in usable.items()}
    total = sum(weights.values())
    weights = {k: w / total for k, w in weights.items()}
    # The bootstrap's refits are shared among the members, so that a law of many
    # candidates costs about what one form's bootstrap does.
    share = -(-bootstrap // len(weights)) if bootstrap > 0 else 0
    members = {}
    for name in weights:
        form, factor, theta = chosen[name]
        inside = window(x, factor)
        # Starting from the fit without the held-back points saves a search: adding
        # a few points moves the solution a little.
        members[name] = fit(form, x[inside], y[inside], delta=delta, bootstrap=share,
                            groups=None if groups is None else np.asarray(groups)[inside],
                            seed=seed, starts=[theta], top_starts=1, bootstrap_steps=20,
                            pool=pool)
    # The law describes the widest window its members saw; its scatter is measured there.
    seen_by_law = window(x, max(chosen[name][1] for name in members))
    span = math.log(np.max(x) / np.max(x[kept]))
    # Which law is right is not known: the intervals carry the root mean square of the
    # candidates' held-back errors, not the blend's own, which the weights made small.
    error = math.sqrt(float(np.mean(np.square([scores[name] for name in chosen]))))
    if len(members) == 1:
        law = replace(next(iter(members.values())), extrapolation_error=error,
                      extrapolation_span=span)
        return Choice(law, scores, weights, members)
    blended = Blend({name: m.form for name, m in members.items()}, list(weights.values()))
    rows = min(len(m.boot) for m in members.values())
    boot = np.hstack([m.boot[:rows] for m in members.values()]) if rows else np.empty((0, 0))
    theta = np.concatenate([m.theta for m in members.values()])
    cost = sum(w * m.cost for w, m in zip(weights.values(), members.values(), strict=True))
    combined = Fit(blended, theta, x[seen_by_law], y[seen_by_law], cost, boot,
                   extrapolation_error=error, extrapolation_span=span,
                   pooled=max(m.pooled for m in members.values()))
    return Choice(combined, scores, weights, members)
