"""Dials: the knobs of a method, their ranges, defaults and scale roles.

A dial's default is the method's published setting; the baseline stage runs it.
A scale role (``params``, ``data``, ``steps``, ``epochs``) tells scaling studies
which dials make a run bigger.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pursuit.exceptions import DialError

if TYPE_CHECKING:
    import optuna.distributions as od

SCALE_ROLES = ("params", "data", "steps", "epochs")

Value = bool | int | float | str | None
MAX_LISTED = 4096  # a dial with more values than this is searched, never listed


def _check_scale(scale: str | None) -> None:
    if scale is not None and scale not in SCALE_ROLES:
        raise DialError(f"scale must be one of {', '.join(SCALE_ROLES)}, got {scale!r} instead")


def _as_number(name: str, value: Any) -> float:
    """Accept Python and numpy numbers (not bools, not strings) as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DialError(f"dial {name!r} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not math.isfinite(number):
        raise DialError(f"dial {name!r} must be finite, got {value!r}")
    return number


class Dial(ABC):
    """A searchable setting. ``default`` may be left out when the method's signature gives it."""

    default: Any
    scale: str | None

    @abstractmethod
    def validate(self, name: str, value: Any) -> Value:
        """Return ``value`` coerced to the dial's type, or raise DialError naming the dial."""

    @abstractmethod
    def distribution(self) -> od.BaseDistribution:
        """The Optuna distribution a sampler draws this dial from (imported when needed)."""

    def with_default(self, default: Any) -> Dial:
        return type(self)(**{**self.__dict__, "default": default})

    def values(self) -> tuple[Value, ...] | None:
        """Every value the dial can take, when they are few enough to list; else None."""
        return None


@dataclass(frozen=True)
class Float(Dial):
    """A real-valued dial in ``[lo, hi]``; ``log=True`` searches it on a log scale."""

    lo: float
    hi: float
    log: bool = False
    default: float | None = None
    scale: str | None = None

    def __post_init__(self) -> None:
        _check_range(self.lo, self.hi, self.log)
        _check_scale(self.scale)

    def validate(self, name: str, value: Any) -> float:
        number = _as_number(name, value)
        if not self.lo <= number <= self.hi:
            raise DialError(f"dial {name!r} must lie in [{self.lo}, {self.hi}], got {value!r}")
        return number

    def distribution(self) -> od.BaseDistribution:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.lo, self.hi, log=self.log)


@dataclass(frozen=True)
class Int(Dial):
    """An integer dial in ``[lo, hi]``; ``log=True`` searches it on a log scale."""

    lo: int
    hi: int
    log: bool = False
    default: int | None = None
    scale: str | None = None

    def __post_init__(self) -> None:
        if int(self.lo) != self.lo or int(self.hi) != self.hi:
            raise DialError(f"Int bounds must be integers, got [{self.lo}, {self.hi}]")
        _check_range(self.lo, self.hi, self.log)
        _check_scale(self.scale)

    def validate(self, name: str, value: Any) -> int:
        number = _as_number(name, value)
        if number != int(number):
            raise DialError(f"dial {name!r} must be an integer, got {value!r}")
        if not self.lo <= number <= self.hi:
            raise DialError(f"dial {name!r} must lie in [{self.lo}, {self.hi}], got {value!r}")
        return int(number)

    def distribution(self) -> od.BaseDistribution:
        from optuna.distributions import IntDistribution

        return IntDistribution(int(self.lo), int(self.hi), log=self.log)

    def values(self) -> tuple[Value, ...] | None:
        return tuple(range(int(self.lo), int(self.hi) + 1)) \
            if self.hi - self.lo < MAX_LISTED else None


@dataclass(frozen=True)
class Choice(Dial):
    """A dial that takes one of a few listed values (strings, numbers, booleans or None)."""

    options: tuple[Value, ...] = field(default_factory=tuple)
    default: Value = None
    scale: str | None = None

    def __init__(self, options: list[Value] | tuple[Value, ...], default: Value = None,
                 scale: str | None = None) -> None:
        options = tuple(options)
        if not options:
            raise DialError("Choice needs at least one option")
        for option in options:
            if option is not None and not isinstance(option, bool | int | float | str):
                raise DialError(f"Choice options must be str, number, bool or None, "
                                f"got {option!r} ({type(option).__name__})")
        _check_scale(scale)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "default", options[0] if default is None else default)
        object.__setattr__(self, "scale", scale)

    def validate(self, name: str, value: Any) -> Value:
        for option in self.options:
            if type(option) is type(value) and option == value:
                return option
        raise DialError(f"dial {name!r} must be one of {list(self.options)}, got {value!r}")

    def distribution(self) -> od.BaseDistribution:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.options)

    def values(self) -> tuple[Value, ...] | None:
        return self.options

    def with_default(self, default: Any) -> Dial:
        return Choice(self.options, default=default, scale=self.scale)


def _check_range(lo: float, hi: float, log: bool) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise DialError(f"a dial's range must be finite with lo <= hi, got [{lo}, {hi}]")
    if log and lo <= 0:
        raise DialError(f"a log-scale dial needs lo > 0, got lo={lo}")
