"""Functional forms of scaling laws, one small class each.

Every form predicts ``y`` from ``x`` (one variable, shape (n,)) or from columns of ``x``
(several variables, shape (n, k)), with parameters ``theta`` in an internal
parametrisation chosen for fitting (logs of scale parameters, so that starts and
bounds do not depend on the units of x). ``report`` turns ``theta`` into the
parameters of the written formula, under the names the formula uses, and ``equation``
writes the fitted law out with those values in it, for a reader to check by hand.
"""

from __future__ import annotations

import math
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from itertools import product
from typing import ClassVar

import numpy as np

Array = np.ndarray

LOG_MAX = math.log(sys.float_info.max)  # about 709.78: e to anything more is no float


def exp_or_inf(value: float) -> float:
    """e^value, or inf where that is past the largest float (math.exp would raise)."""
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def number(value: float) -> str:
    """A fitted value as a written law shows it: three significant digits."""
    return f"{value:.3g}"


def term(name: str) -> str:
    """A variable's name as it stands inside a formula: bracketed unless one word."""
    return name if re.fullmatch(r"[\w.']+", name) else f"({name})"


def power(base: str, exponent: float) -> str:
    """``base^exponent``, with the exponent's sign written in it (x^-0.48)."""
    return f"{term(base)}^{number(exponent)}"


class Form(ABC):
    """A scaling-law form. Subclasses give the formula, the parameters and the starts."""

    name: ClassVar[str]
    formula: ClassVar[str]
    params: ClassVar[tuple[str, ...]]  # the formula's parameter names, in report order
    variables: ClassVar[int] = 1

    @abstractmethod
    def predict(self, theta: Array, x: Array) -> Array:
        """y at x; positive wherever the parameters are inside their bounds."""

    @abstractmethod
    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        """Lower and upper bounds of theta for data (x, y)."""

    @abstractmethod
    def starts(self, x: Array, y: Array) -> list[Array]:
        """Initial guesses for the fit, a small grid over the shape parameters."""

    @abstractmethod
    def report(self, theta: Array) -> dict[str, float]:
        """The formula's parameters."""

    def asymptote(self, theta: Array) -> float:
        """The limit of y as x grows without bound (0 for a pure power law)."""
        return 0.0

    def jacobian(self, theta: Array, x: Array) -> Array:
        """d predict / d theta, shape (n, params). A form that does not override this is
        fitted with finite differences; an exact Jacobian makes each fit several times
        cheaper and more precise."""
        raise NotImplementedError(f"{self.name} has no exact Jacobian")

    def expression(self, theta: Array, names: Sequence[str]) -> str | None:
        """The right side of ``y ≈ ...``: the formula with the fitted values written in,
        in the variables ``names``; None where y has no closed form."""
        return None

    def equation(self, theta: Array, names: Sequence[str] | None = None,
                 y: str = "y") -> str:
        """The fitted law as a reader checks it by hand: ``y ≈`` the formula with its
        values written in (``names``: the variables, x or N, D by default)."""
        names = list(names or self.variables_named)
        right = self.expression(theta, names)
        if right is not None:
            return f"{y} ≈ {right}"
        values = ", ".join(f"{k} = {number(v)}" for k, v in self.report(theta).items())
        return f"{self.formula}, with {values}"

    @property
    def variables_named(self) -> tuple[str, ...]:
        """The variables' names in the formula."""
        return ("x",)

    @property
    def size(self) -> int:
        return len(self.params)


def _log_level(x: Array, y: Array, exponent: float, offset: float = 0.0) -> float:
    """log a for y - offset = a x^-exponent, by least squares in log space."""
    gap = np.clip(y - offset, 1e-12, None)
    return float(np.mean(np.log(gap) + exponent * np.log(x)))


class PowerLaw(Form):
    """M1 of Alabdulmohsin et al. 2022: no floor."""

    name = "m1"
    formula = "y = a * x^-b"
    params = ("a", "b")

    def predict(self, theta: Array, x: Array) -> Array:
        log_a, b = theta
        return np.exp(log_a - b * np.log(x))

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        return np.array([-200.0, -2.0]), np.array([200.0, 5.0])

    def starts(self, x: Array, y: Array) -> list[Array]:
        return [np.array([_log_level(x, y, b), b]) for b in (0.05, 0.3, 1.0)]

    def jacobian(self, theta: Array, x: Array) -> Array:
        y = self.predict(theta, x)
        return np.column_stack([y, -y * np.log(x)])

    def report(self, theta: Array) -> dict[str, float]:
        return {"a": math.exp(theta[0]), "b": float(theta[1])}

    def expression(self, theta: Array, names: Sequence[str]) -> str:
        p = self.report(theta)
        return f"{number(p['a'])}·{power(names[0], -p['b'])}"


class OffsetPowerLaw(Form):
    """M2 of Alabdulmohsin et al. 2022, the usual power law with an irreducible floor."""

    name = "m2"
    formula = "y = e + a * x^-b"
    params = ("e", "a", "b")

    def predict(self, theta: Array, x: Array) -> Array:
        e, log_a, b = theta
        return e + np.exp(log_a - b * np.log(x))

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        return np.array([0.0, -200.0, 0.0]), np.array([float(np.min(y)), 200.0, 5.0])

    def starts(self, x: Array, y: Array) -> list[Array]:
        low = float(np.min(y))
        return [np.array([e, _log_level(x, y, b, e), b])
                for e, b in product((0.0, 0.5 * low, 0.9 * low), (0.1, 0.5, 1.0))]

    def jacobian(self, theta: Array, x: Array) -> Array:
        power = np.exp(theta[1] - theta[2] * np.log(x))
        return np.column_stack([np.ones_like(power), power, -power * np.log(x)])

    def report(self, theta: Array) -> dict[str, float]:
        return {"e": float(theta[0]), "a": math.exp(theta[1]), "b": float(theta[2])}

    def expression(self, theta: Array, names: Sequence[str]) -> str:
        p = self.report(theta)
        return f"{number(p['e'])} + {number(p['a'])}·{power(names[0], -p['b'])}"

    def asymptote(self, theta: Array) -> float:
        return float(theta[0])


class M3(Form):
    """M3 of Alabdulmohsin et al. 2022: a floor reached through x^-1 + g."""

    name = "m3"
    formula = "y = a * (x^-1 + g)^b"
    params = ("a", "g", "b")

    def predict(self, theta: Array, x: Array) -> Array:
        log_a, log_g, b = theta
        return np.exp(log_a + b * np.log(1.0 / x + np.exp(log_g)))

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        lx = np.log(x)
        return (np.array([-200.0, -float(lx.max()) - 20.0, 0.0]),
                np.array([200.0, -float(lx.min()) + 20.0, 5.0]))

    def starts(self, x: Array, y: Array) -> list[Array]:
        out = []
        for frac, b in product((1e-3, 0.1, 1.0), (0.1, 0.5, 1.0)):
            log_g = math.log(frac / float(np.max(x)))
            log_a = float(np.mean(np.log(y) - b * np.log(1.0 / x + math.exp(log_g))))
            out.append(np.array([log_a, log_g, b]))
        return out

    def jacobian(self, theta: Array, x: Array) -> Array:
        _, log_g, b = theta
        inner = 1.0 / x + math.exp(log_g)
        y = self.predict(theta, x)
        return np.column_stack([y, y * b * math.exp(log_g) / inner, y * np.log(inner)])

    def report(self, theta: Array) -> dict[str, float]:
        return {"a": math.exp(theta[0]), "g": math.exp(theta[1]), "b": float(theta[2])}

    def expression(self, theta: Array, names: Sequence[str]) -> str:
        p = self.report(theta)
        return (f"{number(p['a'])}·(1/{term(names[0])} + {number(p['g'])})"
                f"^{number(p['b'])}")

    def asymptote(self, theta: Array) -> float:
        # log g is bounded by the data's x, not by a constant: x near 0 could push it far.
        return exp_or_inf(theta[0] + theta[2] * theta[1])


class M4(Form):
    """M4 of Alabdulmohsin et al. 2022: (y - e) / (e0 - y)^alpha = beta * x^c, c < 0.

    y has no closed form. Writing y = e + (e0 - e) * sigmoid(z) turns the equation into
    log sigmoid(z) - alpha log sigmoid(-z) = log beta + c log x - (1 - alpha) log(e0 - e),
    whose left side rises with z at a slope between 0 and max(1, alpha): Newton steps from
    the solutions of its two asymptotes solve it to machine precision, mostly in five.
    """

    name = "m4"
    formula = "(y - e) / (e0 - y)^alpha = beta * x^c"
    params = ("e", "e0", "alpha", "beta", "c")

    def __init__(self) -> None:
        # The last solve: a fit asks for the Jacobian at the point whose residuals it
        # has just computed, and solving twice would double the cost of each step.
        self._last: tuple[bytes, bytes, tuple[Array, Array, Array]] | None = None

    def _solve(self, theta: Array, x: Array) -> tuple[Array, Array, Array]:
        """y, y - e and e0 - y, the last two without cancellation."""
        key = (np.asarray(theta, dtype=float).tobytes(), np.asarray(x, dtype=float).tobytes())
        last = self._last
        if last is not None and last[:2] == key:
            return last[2]
        solved = self._newton(theta, x)
        self._last = (*key, solved)
        return solved

    def _newton(self, theta: Array, x: Array) -> tuple[Array, Array, Array]:
        e, e0, alpha, log_beta, c = theta
        span = e0 - e
        goal = log_beta + c * np.log(x) - (1.0 - alpha) * math.log(span)
        z = np.where(goal < 0, goal, goal / max(alpha, 1e-3))  # the asymptotes' solutions
        for _ in range(60):  # about five steps, more where a root lies far out
            log_up, log_down = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
            slope = np.maximum(np.exp(log_down) + alpha * np.exp(log_up), 1e-300)
            step = (log_up - alpha * log_down - goal) / slope
            z = np.minimum(np.maximum(z - step, -700.0), 700.0)
            if np.max(np.abs(step)) < 1e-9:
                break
        above, below = span / (1.0 + np.exp(-z)), span / (1.0 + np.exp(z))
        # e + (e0 - e) can round one ulp past e0: a solution lies between its asymptotes.
        return np.minimum(e + above, e0), above, below

    def predict(self, theta: Array, x: Array) -> Array:
        return self._solve(theta, x)[0].copy()  # the remembered solve stays as it was

    def jacobian(self, theta: Array, x: Array) -> Array:
        # Implicit differentiation of h(y) = log(y - e) - alpha log(e0 - y) - log beta
        # - c log x = 0: dy/dtheta = -(dh/dtheta) / (dh/dy).
        alpha = theta[2]
        y, above, below = self._solve(theta, x)
        with np.errstate(all="ignore"):
            above, below = np.maximum(above, 1e-300), np.maximum(below, 1e-300)
            slope = 1.0 / above + alpha / below
            partial = np.column_stack([-1.0 / above, -alpha / below, -np.log(below),
                                       -np.ones_like(y), -np.log(x)])
            jac = -partial / slope[:, None]
        return np.where(np.isfinite(jac), jac, 0.0)

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        low, high = float(np.min(y)), float(np.max(y))
        return (np.array([0.0, high * (1 + 1e-6), 0.0, -200.0, -5.0]),
                np.array([low, max(4.0 * high, high + 1.0), 5.0, 200.0, 0.0]))

    def starts(self, x: Array, y: Array) -> list[Array]:
        low, high = float(np.min(y)), float(np.max(y))
        out = []
        for e, alpha, c in product((0.0, 0.8 * low), (0.5, 1.0), (-0.2, -0.6)):
            e0 = max(1.0, high * 1.05) if high < 1.0 else high * 1.5
            ratio = np.clip(y - e, 1e-12, None) / np.power(np.clip(e0 - y, 1e-12, None), alpha)
            log_beta = float(np.mean(np.log(ratio) - c * np.log(x)))
            out.append(np.array([e, e0, alpha, log_beta, c]))
        return out

    def report(self, theta: Array) -> dict[str, float]:
        e, e0, alpha, log_beta, c = theta
        return {"e": float(e), "e0": float(e0), "alpha": float(alpha),
                "beta": math.exp(log_beta), "c": float(c)}

    def equation(self, theta: Array, names: Sequence[str] | None = None,
                 y: str = "y") -> str:
        # y has no closed form: the equation it solves, with the fitted values in it.
        p = self.report(theta)
        x, y = (names or self.variables_named)[0], term(y)
        return (f"({y} - {number(p['e'])}) / ({number(p['e0'])} - {y})^{number(p['alpha'])}"
                f" ≈ {number(p['beta'])}·{power(x, p['c'])}")

    def asymptote(self, theta: Array) -> float:
        return float(theta[0])


class BrokenPowerLaw(Form):
    """Caballero et al. 2022 with ``breaks`` breaks:
    y = a + b x^-c0 prod_i (1 + (x / d_i)^(1/f_i))^(-c_i f_i)."""

    formula = "y = a + b * x^-c0 * prod_i (1 + (x/d_i)^(1/f_i))^(-c_i*f_i)"

    def __init__(self, breaks: int = 1) -> None:
        if breaks < 1:
            raise ValueError(f"a broken power law needs at least 1 break, got {breaks}")
        self.breaks = breaks
        self.name = "bnsl" if breaks == 1 else f"bnsl{breaks}"  # type: ignore[misc]
        self.params = ("a", "b", "c0", *(f"{p}{i}" for i in range(1, breaks + 1)  # type: ignore[misc]
                                         for p in ("c", "d", "f")))

    def predict(self, theta: Array, x: Array) -> Array:
        a, log_b, c0 = theta[:3]
        lx = np.log(x)
        log_y = log_b - c0 * lx
        for i in range(self.breaks):
            c, log_d, log_f = theta[3 + 3 * i: 6 + 3 * i]
            f = math.exp(log_f)
            log_y = log_y - c * f * np.logaddexp(0.0, (lx - log_d) / f)
        return a + np.exp(log_y)

    def jacobian(self, theta: Array, x: Array) -> Array:
        lx = np.log(x)
        log_y = theta[1] - theta[2] * lx
        columns = []
        for i in range(self.breaks):
            c, log_d, log_f = theta[3 + 3 * i: 6 + 3 * i]
            f = math.exp(log_f)
            u = (lx - log_d) / f
            soft, sig = np.logaddexp(0.0, u), 0.5 * (1.0 + np.tanh(0.5 * u))
            log_y = log_y - c * f * soft
            columns += [-f * soft, c * sig, -c * f * (soft - sig * u)]
        power = np.exp(log_y)
        return np.column_stack([np.ones_like(power), power, -power * lx,
                                *(power * col for col in columns)])

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        lx = np.log(x)
        lo = [0.0, -200.0, -1.0] + [-5.0, float(lx.min()), math.log(0.01)] * self.breaks
        hi = [float(np.min(y)), 200.0, 5.0] + [5.0, float(lx.max()), math.log(10.0)] * self.breaks
        return np.array(lo), np.array(hi)

    def starts(self, x: Array, y: Array) -> list[Array]:
        lx = np.log(x)
        low = float(np.min(y))
        out = []
        spots = np.quantile(lx, (0.3, 0.7)) if self.breaks == 1 else \
            np.quantile(lx, np.linspace(0.2, 0.8, self.breaks))
        for a, c0, c1 in product((0.0, 0.8 * low), (0.0, 0.3), (0.2, 1.0)):
            if self.breaks == 1:
                for spot in spots:
                    theta = [a, 0.0, c0, c1, float(spot), math.log(0.3)]
                    theta[1] = float(np.mean(np.log(np.clip(y - a, 1e-12, None))
                                             - np.log(self.predict(np.array(
                                                 [0.0, 0.0, *theta[2:]]), x))))
                    out.append(np.array(theta))
            else:
                theta = [a, 0.0, c0]
                for spot in spots:
                    theta += [c1, float(spot), math.log(0.3)]
                theta[1] = float(np.mean(np.log(np.clip(y - a, 1e-12, None))
                                         - np.log(self.predict(np.array(
                                             [0.0, 0.0, *theta[2:]]), x))))
                out.append(np.array(theta))
        return out

    def expression(self, theta: Array, names: Sequence[str]) -> str:
        p, x = self.report(theta), names[0]
        out = f"{number(p['a'])} + {number(p['b'])}·{power(x, -p['c0'])}"
        for i in range(1, self.breaks + 1):
            c, d, f = p[f"c{i}"], p[f"d{i}"], p[f"f{i}"]
            out += f"·(1 + ({term(x)}/{number(d)})^{number(1 / f)})^{number(-c * f)}"
        return out

    def report(self, theta: Array) -> dict[str, float]:
        out = {"a": float(theta[0]), "b": math.exp(theta[1]), "c0": float(theta[2])}
        for i in range(self.breaks):
            c, log_d, log_f = theta[3 + 3 * i: 6 + 3 * i]
            out.update({f"c{i + 1}": float(c), f"d{i + 1}": math.exp(log_d),
                        f"f{i + 1}": math.exp(log_f)})
        return out

    def asymptote(self, theta: Array) -> float:
        total = theta[2] + sum(theta[3 + 3 * i] for i in range(self.breaks))
        return float(theta[0]) if total > 0 else math.inf


class ChinchillaLaw(Form):
    """Hoffmann et al. 2022: L(N, D) = E + A / N^alpha + B / D^beta (columns N, D).

    Written as Epoch's LSE(a - alpha log N, b - beta log D, e) with A = e^a, B = e^b,
    E = e^e, which keeps every term positive."""

    name = "chinchilla"
    formula = "L = E + A / N^alpha + B / D^beta"
    params: ClassVar[tuple[str, ...]] = ("E", "A", "B", "alpha", "beta")
    variables = 2

    def predict(self, theta: Array, x: Array) -> Array:
        a, b, e, alpha, beta = theta
        terms = np.stack([a - alpha * np.log(x[:, 0]), b - beta * np.log(x[:, 1]),
                          np.full(len(x), e)])
        return np.exp(np.logaddexp.reduce(terms, axis=0))

    def jacobian(self, theta: Array, x: Array) -> Array:
        a, b, e, alpha, beta = theta
        log_n, log_d = np.log(x[:, 0]), np.log(x[:, 1])
        model, data = np.exp(a - alpha * log_n), np.exp(b - beta * log_d)
        return np.column_stack([model, data, np.full(len(x), math.exp(e)),
                                -model * log_n, -data * log_d])

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        return np.array([-10.0, -10.0, -10.0, 0.0, 0.0]), np.array([60.0, 60.0, 10.0, 3.0, 3.0])

    def starts(self, x: Array, y: Array) -> list[Array]:
        # Hoffmann et al.'s and Epoch's grid: alpha, beta in {0, 0.5, .., 2}, e in {-1, .., 1},
        # a, b in {0, 5, .., 25}; trimmed to its useful corner to stay quick.
        return [np.array([a, b, e, alpha, beta])
                for a, b, e, alpha, beta in product((0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
                                                    (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
                                                    (-1.0, 0.0, 1.0), (0.0, 0.5, 1.0),
                                                    (0.0, 0.5, 1.0))]

    def report(self, theta: Array) -> dict[str, float]:
        a, b, e, alpha, beta = theta
        return {"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": float(alpha),
                "beta": float(beta)}

    @property
    def variables_named(self) -> tuple[str, ...]:
        return ("N", "D")

    def expression(self, theta: Array, names: Sequence[str]) -> str:
        p = self.report(theta)
        return (f"{number(p['E'])} + {number(p['A'])}/{power(names[0], p['alpha'])}"
                f" + {number(p['B'])}/{power(names[1], p['beta'])}")

    def asymptote(self, theta: Array) -> float:
        return math.exp(theta[2])


class DataConstrainedLaw(ChinchillaLaw):
    """Muennighoff et al. 2023, data side: repeated tokens are worth less.

    Columns N, D (tokens seen) and U (unique tokens). D is replaced by the effective data
    D' = U + U * R* * (1 - exp(-R / R*)), R = D / U - 1 repetitions; R* is fitted.
    (The paper's matching discount on parameters, R*_N, is not modelled.)"""

    name = "data-constrained"
    formula = "L = E + A / N^alpha + B / D'^beta, D' = U + U R* (1 - exp(-(D/U - 1) / R*))"
    params = ("E", "A", "B", "alpha", "beta", "R_star")
    variables = 3

    def effective_data(self, log_r_star: float, x: Array) -> Array:
        d, u = x[:, 1], x[:, 2]
        repeats = np.clip(d / u - 1.0, 0.0, None)
        r_star = math.exp(log_r_star)
        return u + u * r_star * (1.0 - np.exp(-repeats / r_star))

    def predict(self, theta: Array, x: Array) -> Array:
        effective = np.column_stack([x[:, 0], self.effective_data(theta[5], x)])
        return super().predict(theta[:5], effective)

    def jacobian(self, theta: Array, x: Array) -> Array:
        effective = self.effective_data(theta[5], x)
        inner = super().jacobian(theta[:5], np.column_stack([x[:, 0], effective]))
        u, r_star = x[:, 2], math.exp(theta[5])
        ratio = np.clip(x[:, 1] / u - 1.0, 0.0, None) / r_star
        d_effective = u * r_star * (1.0 - np.exp(-ratio) * (1.0 + ratio))  # d D' / d log R*
        d_loss = -theta[4] * inner[:, 1] / effective * d_effective  # via the B / D'^beta term
        return np.column_stack([inner, d_loss])

    def bounds(self, x: Array, y: Array) -> tuple[Array, Array]:
        lo, hi = super().bounds(x, y)
        return np.append(lo, math.log(0.1)), np.append(hi, math.log(1e4))

    def starts(self, x: Array, y: Array) -> list[Array]:
        return [np.append(s, math.log(r)) for s in super().starts(x, y)[::9]
                for r in (5.0, 15.0, 50.0)]

    def report(self, theta: Array) -> dict[str, float]:
        return {**super().report(theta[:5]), "R_star": math.exp(theta[5])}

    @property
    def variables_named(self) -> tuple[str, ...]:
        return ("N", "D", "U")

    def expression(self, theta: Array, names: Sequence[str]) -> str:
        n, d, u = names
        p = self.report(theta)
        r_star = number(p["R_star"])
        return (f"{number(p['E'])} + {number(p['A'])}/{power(n, p['alpha'])}"
                f" + {number(p['B'])}/{power('D_eff', p['beta'])}, D_eff = {term(u)} + "
                f"{term(u)}·{r_star}·(1 - exp(-({term(d)}/{term(u)} - 1)/{r_star}))")


FORMS: dict[str, Form] = {form.name: form for form in (
    PowerLaw(), OffsetPowerLaw(), M3(), M4(), BrokenPowerLaw(1), ChinchillaLaw(),
    DataConstrainedLaw())}
