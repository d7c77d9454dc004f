"""Methods: training functions with declared dials, tagged with where they come from.

    @pursuit.method(source="Pedregosa et al. 2011", baseline=True,
                    dials={"C": Float(1e-3, 1e3, log=True)})
    def logreg(trial, *, C=1.0):
        ...
        return accuracy

A dial is declared in ``dials=`` or as a keyword-only parameter whose default is a
Dial; its default value is the method's published setting. The function is called
as ``fn(trial, **dials)`` for the dials it names as keyword-only parameters, and
every dial is in ``trial.dials``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pursuit.dials import Dial, Float, Int, Value
from pursuit.exceptions import DialError, MethodError


@dataclass(frozen=True)
class Method:
    """A training function with its dials, its source and whether it is a baseline."""

    fn: Callable[..., Any]
    name: str
    source: str | None = None
    baseline: bool = False
    dials: Mapping[str, Dial] = field(default_factory=dict)

    def __call__(self, trial: Any, **dials: Value) -> Any:
        return self.fn(trial, **dials)

    @property
    def entry(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def defaults(self) -> dict[str, Value]:
        return {name: dial.default for name, dial in self.dials.items()}

    def ranges(self) -> dict[str, tuple[float, float]]:
        """[lo, hi] of each numeric dial: how far a forecast may speak of measured ground."""
        return {name: (float(dial.lo), float(dial.hi)) for name, dial in self.dials.items()
                if isinstance(dial, Float | Int)}

    def validate(self, values: Mapping[str, Any]) -> dict[str, Value]:
        """Check a full or partial set of dial values; return them coerced, defaults filled in."""
        unknown = sorted(set(values) - set(self.dials))
        if unknown:
            raise DialError(f"method {self.name!r} has no dial {unknown[0]!r}; "
                            f"its dials are {sorted(self.dials) or 'none'}")
        merged = {**self.defaults(), **values}
        return {name: self.dials[name].validate(name, merged[name]) for name in self.dials}

    def with_defaults(self, values: Mapping[str, Any]) -> Method:
        """The same method with other published defaults (checked against the dials' ranges)."""
        checked = self.validate(values)
        dials = {name: dial.with_default(checked[name]) for name, dial in self.dials.items()}
        return replace(self, dials=dials)

    def __reduce__(self) -> tuple[Any, ...]:
        # The decorated module attribute is this Method, not ``fn``, so pickle cannot find
        # ``fn`` by name; workers re-import the entry and re-apply what the goal changed.
        return (_restore, (self.fn.__module__, self.fn.__qualname__, self.name, self.source,
                           self.baseline, self.defaults()))

    def call(self, trial: Any, values: Mapping[str, Value]) -> Any:
        """Run the function, passing the dials it names as keyword-only parameters."""
        wanted = _keyword_only(self.fn)
        return self.fn(trial, **{k: v for k, v in values.items() if k in wanted})


def method(fn: Callable[..., Any] | None = None, *, name: str | None = None,
           source: str | None = None, baseline: bool = False,
           dials: Mapping[str, Dial] | None = None) -> Any:
    """Declare a training function as a Pursuit method (usable with or without arguments)."""

    def wrap(f: Callable[..., Any]) -> Method:
        return _make(f, name=name, source=source, baseline=baseline, dials=dials or {})

    return wrap(fn) if fn is not None else wrap


def _keyword_only(fn: Callable[..., Any]) -> set[str]:
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _make(fn: Callable[..., Any], *, name: str | None, source: str | None, baseline: bool,
          dials: Mapping[str, Dial]) -> Method:
    if not callable(fn):
        raise MethodError(f"a method must be a function, got {fn!r}")
    label = name or fn.__name__
    signature = inspect.signature(fn)
    keyword_defaults = {p.name: p.default for p in signature.parameters.values()
                        if p.kind is inspect.Parameter.KEYWORD_ONLY}
    declared: dict[str, Dial] = {}
    for dial_name, default in keyword_defaults.items():
        if isinstance(default, Dial):
            declared[dial_name] = default
    for dial_name, dial in dials.items():
        if not isinstance(dial, Dial):
            raise MethodError(f"method {label!r}: dial {dial_name!r} must be Float, Int or "
                              f"Choice, got {dial!r}")
        if dial_name in declared:
            raise MethodError(f"method {label!r}: dial {dial_name!r} is declared twice")
        default = keyword_defaults.get(dial_name, inspect.Parameter.empty)
        if dial.default is None and default is not inspect.Parameter.empty:
            dial = dial.with_default(default)
        declared[dial_name] = dial
    for dial_name, dial in declared.items():
        if dial.default is None:
            raise MethodError(f"method {label!r}: dial {dial_name!r} has no default; give its "
                              f"published setting as default= or as the parameter's default")
        try:
            dial.validate(dial_name, dial.default)
        except DialError as error:
            raise MethodError(f"method {label!r}: default out of range: {error}") from None
    params = list(signature.parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise MethodError(f"method {label!r} must take the trial as its first argument")
    return Method(fn=fn, name=label, source=source, baseline=baseline, dials=declared)


def _restore(module: str, qualname: str, name: str, source: str | None, baseline: bool,
             defaults: dict[str, Value]) -> Method:
    loaded = load_method(f"{module}:{qualname}")
    return replace(loaded, name=name, source=source, baseline=baseline).with_defaults(defaults)


def load_method(entry: str, *, base_dir: str | Path | None = None) -> Method:
    """Import ``module:function`` (the module looked up beside the goal file first)."""
    module_name, sep, attr = entry.partition(":")
    if not sep or not module_name or not attr:
        raise MethodError(f"a method entry must look like 'module:function', got {entry!r}")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    # The user's module may fail in any way while importing: sys.exit() and an interrupt
    # too, which would otherwise end the program without a word about the module.
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        if isinstance(error, SystemExit):
            why = f"it called sys.exit({error.code!r})"
        else:
            why = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise MethodError(f"cannot import module {module_name!r} for method {entry!r}: "
                          f"{why}") from error
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise MethodError(f"module {module_name!r} has no {attr!r} (method {entry!r})")
        target = getattr(target, part)
    if isinstance(target, Method):
        return target
    if callable(target):
        return _make(target, name=None, source=None, baseline=False, dials={})
    raise MethodError(f"{entry!r} is not a function or a @pursuit.method, got {target!r}")
