"""Fitting a form to points: robust loss on log residuals, many starts, bounds, bootstrap.

The loss is Huber on log(predicted) - log(observed), so a few wild points (evaluation
noise, a diverged run) do not drag the fit. Uncertainty comes from refitting on
resampled data: resampled points, or resampled groups (seeds) when ``groups`` is given.
Past ``POOL_ABOVE`` rows the solver works on the rows pooled into points (``Pool``), so
that a fit of a million rows costs about what one of ten thousand does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from pursuit.scaling._forms import FORMS, Array, Form

DELTA = 1e-3  # Huber threshold on log residuals (Hoffmann et al.'s and Epoch's choice)
DRAWS = 2000  # Monte Carlo draws behind a prediction interval


def check_values(x: Array, y: Array) -> None:
    """A ValueError naming the first x, then the first y, that is not a finite number > 0
    (by its index: ``y[3]``, or ``x[3, 1]`` for a column of several)."""
    for name, values in (("x", x), ("y", y)):
        bad = ~np.isfinite(values)
        if not np.any(bad):
            bad = values <= 0
        if np.any(bad):
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            value = float(values[where])
            at = f"{name}[{', '.join(map(str, where))}] is {value:g}"
            if not math.isfinite(value):
                raise ValueError(f"{at}: x and y must be finite numbers, not NaN or infinity")
            raise ValueError(f"{at}: scaling laws are fitted in log space, so x and y must "
                             "be > 0")


def check_data(form: Form, x: Array, y: Array) -> tuple[Array, Array]:
    """x and y as float arrays, or a ValueError that says what is wrong with them."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if form.variables == 1:
        x = x.reshape(-1)
    elif x.ndim != 2 or x.shape[1] != form.variables:
        raise ValueError(f"form {form.name!r} needs {form.variables} columns of x, "
                         f"got shape {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} values but y has {len(y)}")
    check_values(x, y)
    distinct = len(np.unique(x, axis=0))
    if distinct < form.size:
        raise ValueError(f"form {form.name!r} has {form.size} parameters, so it needs points "
                         f"at {form.size} or more distinct x values; the data has only "
                         f"{distinct} distinct x values among its {len(x)} points "
                         "(duplicates count once)")
    if np.ptp(y) == 0:
        raise ValueError("y is constant: there is no trend to fit")
    return x, y


@dataclass(frozen=True)
class Fit:
    """A fitted form: parameters, the data it saw, and bootstrap refits for uncertainty."""

    form: Form
    theta: Array
    x: Array
    y: Array
    cost: float
    boot: Array = field(default_factory=lambda: np.empty((0, 0)))  # (resamples, params)
    # Log-space error of extrapolating, measured on held-back points when the law was chosen
    # (see select), and how far (in log x) that extrapolation reached. Beyond the fitted x,
    # prediction intervals widen by this error, grown in proportion to the distance.
    extrapolation_error: float = 0.0
    extrapolation_span: float = math.log(1.5)
    # The points the solver worked on when the rows were pooled (see ``pool``); 0: the rows.
    pooled: int = 0

    def predict(self, x: Array | Sequence[float]) -> Array:
        return self.form.predict(self.theta, np.asarray(x, dtype=float))

    @property
    def params(self) -> dict[str, float]:
        return self.form.report(self.theta)

    def param_intervals(self, level: float = 0.95) -> dict[str, tuple[float, float, float]]:
        """Each parameter: (value, lower, upper), the percentile bootstrap interval
        stretched where needed to hold the value (see ``hold``)."""
        value = self.params
        if not len(self.boot):
            return {k: (v, math.nan, math.nan) for k, v in value.items()}
        draws = [self.form.report(theta) for theta in self.boot]
        out = {}
        for name, v in value.items():
            column = np.array([d[name] for d in draws])
            lo, hi = np.quantile(column, [(1 - level) / 2, (1 + level) / 2])
            out[name] = (v, *hold(v, float(lo), float(hi)))
        return out

    def log_residuals(self) -> Array:
        return np.log(self.predict(self.x)) - np.log(self.y)

    def band(self, x: Array | Sequence[float], level: float = 0.9,
             noise: bool = True) -> tuple[Array, Array]:
        """A ``level`` interval for y at x: bootstrap fits, plus the scatter of single
        observations around the fit when ``noise`` (a prediction interval)."""
        x = np.asarray(x, dtype=float)
        centre = np.log(self.predict(x))
        if len(self.boot):
            curves = np.array([np.log(self.form.predict(theta, x)) for theta in self.boot])
        else:
            curves = centre[None, :]
        if noise:
            spread = np.full(x.shape[0], robust_scale(self.log_residuals()))
            key = x if x.ndim == 1 else x[:, 0]
            end = np.max(self.x if self.x.ndim == 1 else self.x[:, 0])
            distance = np.log(np.maximum(key, end) / end) / self.extrapolation_span
            spread = np.hypot(spread, self.extrapolation_error * np.where(
                key > end, np.maximum(distance, 1.0), 0.0))
            # Enough draws of the scatter around each curve for steady tail quantiles.
            curves = np.repeat(curves, -(-DRAWS // len(curves)), axis=0)
            # The same draws at every x keep the band's edges smooth along x.
            rng = np.random.default_rng(0)
            curves = curves + rng.standard_normal((len(curves), 1)) * spread
        lo, hi = np.quantile(curves, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return np.exp(lo), np.exp(hi)


def hold(estimate: float, lower: float, upper: float) -> tuple[float, float]:
    """A percentile interval stretched, never shifted, to hold its own estimate.

    The refits can all land on one side of the fit: an estimate on a bound (a floor or
    an exponent at 0) has refits only inside the bound, and a law's nonlinear functions
    (a crossing point, an asymptote) carry the refits' skew. The percentile interval then
    leaves out the estimate the data chose, and reads as if the data ruled it out. The
    estimate stays the fit's own (the value the written law is checked by), and the
    interval grows to hold it: it only ever widens, so its coverage can only rise."""
    if math.isnan(estimate) or math.isnan(lower) or math.isnan(upper):
        return lower, upper
    return min(lower, estimate), max(upper, estimate)


def robust_scale(residuals: Array) -> float:
    """A standard deviation that a few outliers do not inflate (1.4826 x MAD)."""
    if len(residuals) == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(residuals - np.median(residuals))))


POOL_ABOVE = 10_000  # rows past which a fit works on pooled points (see Pool)
POOLS = 10_000  # the most points a pooled fit works on


@dataclass(frozen=True)
class Pool:
    """Rows pooled into points, for fits of many rows: every point and refit of the solver
    costs in proportion to the points it sees.

    Rows of equal x make one point; past ``POOLS`` distinct x, the rows within one of
    ``POOLS`` equal steps of log x (a grid of them for several columns) do. A point's x is
    the rows' x (their geometric mean in a step), its y their geometric mean, and its
    weight their count: the fit's Huber loss counts each point's log residual ``weight``
    times, as it would count its rows'. With one row a point, this is the rows' own fit."""

    member: Array  # the point of each row
    size: int  # points
    x: Array | None  # each point's x, where its rows share one (None: geometric means)

    @classmethod
    def of(cls, x: Array) -> Pool:
        if x.ndim == 1:
            distinct, member = np.unique(x, return_inverse=True)
        else:
            distinct, member = np.unique(x, axis=0, return_inverse=True)
        if len(distinct) <= POOLS:
            return cls(member.reshape(-1), len(distinct), distinct)
        columns = np.log(x).reshape(len(x), -1)
        steps = max(1, int(POOLS ** (1.0 / columns.shape[1])))
        low, high = columns.min(axis=0), columns.max(axis=0)
        width = np.where(high > low, high - low, 1.0)
        cell = np.minimum(((columns - low) / width * steps).astype(int), steps - 1)
        flat = np.ravel_multi_index(tuple(cell.T), (steps,) * columns.shape[1])
        occupied, member = np.unique(flat, return_inverse=True)
        return cls(member.reshape(-1), len(occupied), None)

    def points(self, x: Array, y: Array, rows: Array | None = None
               ) -> tuple[Array, Array, Array]:
        """(x, y, weight) of the points ``rows`` (indices, repeats counted; None: all rows)
        pool into; points with no rows among them are left out."""
        member = self.member if rows is None else self.member[rows]
        take = (lambda v: v) if rows is None else (lambda v: v[rows])
        weight = np.bincount(member, minlength=self.size).astype(float)
        used = weight > 0

        def mean_log(values: Array) -> Array:
            return np.bincount(member, weights=np.log(take(values)),
                               minlength=self.size)[used] / weight[used]

        if self.x is not None:
            px = self.x[used]
        elif x.ndim == 1:
            px = np.exp(mean_log(x))
        else:
            px = np.column_stack([np.exp(mean_log(x[:, k])) for k in range(x.shape[1])])
        return px, np.exp(mean_log(y)), weight[used]


def _weighted_huber(weight: Array) -> Callable[[Array], Array]:
    """scipy's Huber loss (on z = (r / f_scale)^2), each residual's counted ``weight``
    times."""

    def loss(z: Array) -> Array:
        rho = np.empty((3, z.size))
        inner = z <= 1
        root = np.sqrt(np.where(inner, 1.0, z))
        rho[0] = np.where(inner, z, 2 * root - 1)
        rho[1] = np.where(inner, 1.0, 1 / root)
        rho[2] = np.where(inner, 0.0, -0.5 / root**3)
        return rho * weight

    return loss


def _solve(form: Form, x: Array, y: Array, start: Array, lo: Array, hi: Array,
           delta: float, max_nfev: int, weight: Array | None = None) -> tuple[Array, float]:
    log_y = np.log(y)

    last: list[Array] = [np.empty(0), np.empty(0)]  # theta, prediction: jac reuses it

    def residuals(theta: Array) -> Array:
        last[:] = theta.copy(), form.predict(theta, x)
        r = np.log(last[1]) - log_y
        return np.where(np.isfinite(r), r, 1e3)

    def jacobian(theta: Array) -> Array:
        predicted = last[1] if np.array_equal(theta, last[0]) else form.predict(theta, x)
        jac = form.jacobian(theta, x) / predicted[:, None]  # of log y
        return np.where(np.isfinite(jac), jac, 0.0)

    exact = type(form).jacobian is not Form.jacobian  # the form gives its own
    start = np.clip(start, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
    # Overflow and log(0) are expected while the solver explores, and are turned into
    # large residuals above: silenced for the whole solve instead of each evaluation.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        result = least_squares(residuals, start, jac=jacobian if exact else "2-point",
                               bounds=(lo, hi),
                               loss="huber" if weight is None else _weighted_huber(weight),
                               f_scale=delta, method="trf", max_nfev=max_nfev,
                               x_scale="jac",
                               xtol=1e-10)  # the default stops early where the trust
    # region shrinks while Huber's loss turns from quadratic to linear, far from the minimum
    return result.x, float(result.cost)


def fit(form: Form | str, x: Array | Sequence[float], y: Array | Sequence[float], *,
        delta: float = DELTA, bootstrap: int = 100, groups: Sequence[object] | None = None,
        seed: int = 0, top_starts: int = 4, starts: Sequence[Array] | None = None,
        bootstrap_steps: int = 200, pool: bool | None = None) -> Fit:
    """Fit ``form`` to (x, y) from its grid of starts; refit ``bootstrap`` resamples.

    ``groups`` (e.g. the seed of each point) makes the bootstrap resample whole groups.
    ``starts`` replaces the form's grid (a solution of nearby data, say).
    Each bootstrap refit starts from the fit and takes at most ``bootstrap_steps``
    evaluations of the law. ``pool`` fits the rows pooled into points (see ``Pool``);
    None pools them past ``POOL_ABOVE`` rows. The fit keeps the rows either way: its
    prediction intervals take the scatter of single rows around the law.
    """
    form = FORMS[form] if isinstance(form, str) else form
    x, y = check_data(form, np.asarray(x), np.asarray(y))
    pooled = Pool.of(x) if (len(x) > POOL_ABOVE if pool is None else pool) else None
    px, py, weight = (x, y, None) if pooled is None else pooled.points(x, y)
    lo, hi = form.bounds(px, py)
    starts = form.starts(px, py) if starts is None else list(starts)
    # Rank the starts by their loss as they are, and polish only the best few.
    log_y = np.log(py)

    def start_cost(theta: Array) -> float:
        with np.errstate(all="ignore"):
            r = np.log(form.predict(np.clip(theta, lo, hi), px)) - log_y
        r = np.where(np.isfinite(r), np.abs(r), 1e3)
        return float(np.sum(r if weight is None else weight * r))

    # Take each a short way downhill, then polish only the one that got furthest: starts
    # that end in the same basin cost one full descent instead of several.
    ranked = sorted(starts, key=start_cost)[:top_starts]
    if len(ranked) > 1:
        screened = [_solve(form, px, py, start, lo, hi, delta, 50, weight)
                    for start in ranked]
        ranked = [min(screened, key=lambda r: r[1])[0]]
    best_theta, best_cost = _solve(form, px, py, ranked[0], lo, hi, delta, 2000, weight)
    boot = _bootstrap(form, x, y, best_theta, lo, hi, delta, bootstrap, groups, seed,
                      bootstrap_steps, pooled)
    return Fit(form, best_theta, x, y, best_cost, boot,
               pooled=0 if pooled is None else len(py))


def _bootstrap(form: Form, x: Array, y: Array, theta: Array, lo: Array, hi: Array,
               delta: float, resamples: int, groups: Sequence[object] | None,
               seed: int, steps: int, pooled: Pool | None = None) -> Array:
    """Refits on resampled points (or groups), each from theta, of at most ``steps``
    evaluations of the law; on the points each resample's rows pool into, when
    ``pooled``."""
    if resamples <= 0:
        return np.empty((0, len(theta)))
    rng = np.random.default_rng(seed)
    if groups is None:
        count, members = len(x), None
    else:  # each group's rows, in order
        _, label = np.unique(np.asarray(groups), return_inverse=True)
        label = label.reshape(-1)
        sizes = np.bincount(label)
        count = len(sizes)
        members = np.split(np.argsort(label, kind="stable"), np.cumsum(sizes)[:-1])
    draws = []
    for _ in range(resamples):
        chosen = rng.choice(count, size=count, replace=True)
        index = chosen if members is None else np.concatenate([members[g] for g in chosen])
        if pooled is None:
            if len(np.unique(x[index], axis=0)) < form.size:
                continue  # a resample too thin to fit this form says nothing
            refit, _ = _solve(form, x[index], y[index], theta, lo, hi, delta, steps)
        else:
            px, py, weight = pooled.points(x, y, index)
            if len(py) < form.size:
                continue
            refit, _ = _solve(form, px, py, theta, lo, hi, delta, steps, weight)
        draws.append(refit)
    return np.array(draws) if draws else np.empty((0, len(theta)))
