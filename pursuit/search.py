"""Dial search through Optuna's ask/tell: Optuna proposes, Pursuit runs and records.

Each method has its own in-memory Optuna study, rebuilt from Pursuit's store when an
engine starts, so any Optuna sampler and pruner plug in while the store stays the
one source of truth. A rebuilt study's sampler is reseeded, so that a resumed search
goes on instead of replaying the proposals its first engine already ran.

Samplers and pruners that a goal file or the command line names (``SAMPLERS``,
``PRUNERS``) are checked before anything runs: the name, the packages they import only
once they run, and their arguments.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from pursuit.analysis.claims import Direction
from pursuit.dials import MAX_LISTED, Value
from pursuit.exceptions import PursuitError
from pursuit.methods import Method

optuna.logging.set_verbosity(optuna.logging.WARNING)


class MethodSearch:
    """The search over one method's dials."""

    def __init__(self, method: Method, direction: Direction, sampler: optuna.samplers.BaseSampler,
                 pruner: optuna.pruners.BasePruner, *, stream: int = 0) -> None:
        """``stream``: the method's place among the goal's searched methods, so that each
        draws its own random numbers from the one seeded sampler it is given."""
        self.method = method
        self._distributions = {name: dial.distribution() for name, dial in method.dials.items()}
        # Each method gets its own copy: samplers keep state about the study they serve.
        self._study = optuna.create_study(direction=direction.value,
                                          sampler=own_copy(sampler, stream),
                                          pruner=copy.deepcopy(pruner))
        self._steps: dict[int, set[int]] = {}
        self._recorded = 0

    def resumed(self) -> None:
        """Called once the past is recorded: a sampler seeded as before would replay it."""
        if self._recorded:
            self._study.sampler.reseed_rng()

    def space(self) -> list[dict[str, Value]] | None:
        """Every configuration of the method, when its dials are all discrete and the
        product is small enough to list; else None."""
        options = [dial.values() for dial in self.method.dials.values()]
        if any(o is None for o in options) or \
                math.prod(len(o or ()) for o in options) > MAX_LISTED:
            return None
        names = list(self.method.dials)
        return [dict(zip(names, combo, strict=True))
                for combo in itertools.product(*(o or () for o in options))]

    def record(self, dials: Mapping[str, Value], value: float | None, state: str,
               curve: Mapping[int, float]) -> None:
        """Tell the study about a trial that ran before (a baseline, or an earlier engine's),
        with its learning curve, so that the pruner judges new trials against it."""
        states = {"completed": optuna.trial.TrialState.COMPLETE,
                  "pruned": optuna.trial.TrialState.PRUNED,
                  "failed": optuna.trial.TrialState.FAIL}
        finite = value is not None and math.isfinite(value)
        optuna_state = states[state] if state != "completed" or finite else states["failed"]
        params = {k: v for k, v in dials.items() if k in self._distributions}
        self._recorded += 1
        self._study.add_trial(optuna.trial.create_trial(
            params=params, distributions=self._distributions, state=optuna_state,
            value=value if optuna_state is optuna.trial.TrialState.COMPLETE else None,
            intermediate_values={s: v for s, v in curve.items() if not math.isnan(v)}))

    def ask(self, dials: Mapping[str, Value] | None = None
            ) -> tuple[optuna.Trial, dict[str, Value]]:
        """A new configuration (or the given one again, for a re-run), as Optuna's trial."""
        if dials is not None:
            self._study.enqueue_trial(dict(dials), skip_if_exists=False)
        trial = self._study.ask(self._distributions)
        values = self.method.validate(trial.params)
        return trial, values

    def report(self, trial: optuna.Trial, step: int, value: float) -> None:
        """Tell the pruner a point of the curve, if it is one the pruner compares at."""
        seen = self._steps.setdefault(trial.number, set())
        if step in seen or math.isnan(value):
            return
        if told(len(seen)):  # the n-th point of the curve, whatever its step
            trial.report(value, step)
        seen.add(step)

    def should_prune(self, trial: optuna.Trial) -> bool:
        return trial.should_prune()

    def tell(self, trial: optuna.Trial, state: str, value: float | None) -> None:
        self._steps.pop(trial.number, None)
        if state == "completed" and value is not None and math.isfinite(value):
            self._study.tell(trial, value)
        elif state == "pruned":
            self._study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)


def own_copy(sampler: optuna.samplers.BaseSampler, stream: int
             ) -> optuna.samplers.BaseSampler:
    """A copy of ``sampler`` with random stream number ``stream``. Copies of one seeded
    sampler would draw the same numbers, so every method would be screened at the same
    points of its range; stream 0 keeps the seed's own, the others are derived from it
    (or reseeded at random, for a sampler whose generator is not Optuna's usual one)."""
    own = copy.deepcopy(sampler)
    if stream == 0:
        return own
    found = [getattr(getattr(part, "_rng", None), "rng", None)
             for part in (own, getattr(own, "_random_sampler", None))]
    generators = [g for g in found if isinstance(g, np.random.RandomState)]
    if not generators:
        own.reseed_rng()
    for generator in generators:
        generator.seed((int(generator.randint(2**31 - 1)) + stream) % 2**32)
    return own


PRUNER_STEPS_PER_OCTAVE = 64


def told(n: int) -> bool:
    """Whether the pruner is told the n-th point of a curve (n = 0, 1, ...): the first
    128, then 64 evenly spaced per doubling of n. Optuna copies a trial's curve at every
    report, so a curve of n points told whole costs O(n^2) (300,000 points: minutes);
    thinned, a curve of any length costs O(n) and about 1,000 points are told. Thinned by
    count, not by step value, so that curves reported every 5,000 steps, or at episode
    ends, are thinned alike in every trial that reports alike, and the pruner compares
    like with like at the steps it is told."""
    if n < 2 * PRUNER_STEPS_PER_OCTAVE:
        return True
    spacing = 1 << (n.bit_length() - 1 - PRUNER_STEPS_PER_OCTAVE.bit_length() + 1)
    return n % spacing == 0


@dataclass(frozen=True)
class Algorithm:
    """An Optuna sampler or pruner known by name (``--sampler``, ``sampler:`` in a goal
    file): its class, the packages it imports only once it runs, and Pursuit's defaults
    for its arguments."""

    kind: str  # "sampler" or "pruner"
    name: str
    factory: type
    needs: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)


SAMPLERS = {a.name: a for a in (
    Algorithm("sampler", "tpe", optuna.samplers.TPESampler),
    Algorithm("sampler", "random", optuna.samplers.RandomSampler),
    Algorithm("sampler", "cmaes", optuna.samplers.CmaEsSampler, needs=("cmaes",)),
    Algorithm("sampler", "qmc", optuna.samplers.QMCSampler, needs=("scipy",)),
    Algorithm("sampler", "gp", optuna.samplers.GPSampler, needs=("torch", "scipy")),
)}
PRUNERS = {a.name: a for a in (
    Algorithm("pruner", "median", optuna.pruners.MedianPruner,
              defaults={"n_startup_trials": 5, "n_warmup_steps": 1}),
    Algorithm("pruner", "percentile", optuna.pruners.PercentilePruner),
    Algorithm("pruner", "hyperband", optuna.pruners.HyperbandPruner),
    Algorithm("pruner", "successive-halving", optuna.pruners.SuccessiveHalvingPruner),
    Algorithm("pruner", "asha", optuna.pruners.SuccessiveHalvingPruner),
    Algorithm("pruner", "threshold", optuna.pruners.ThresholdPruner),
    Algorithm("pruner", "none", optuna.pruners.NopPruner),
)}
DEFAULT_SAMPLER, DEFAULT_PRUNER = "tpe", "median"
# What to type when a package an algorithm imports is missing (the pip name of each).
INSTALL = {"cmaes": "pip install cmaes", "torch": "pip install torch",
           "scipy": "pip install scipy"}


def algorithm(kind: str, name: str) -> Algorithm:
    """The sampler or pruner called ``name``; ValueError naming the known ones if none is."""
    known = SAMPLERS if kind == "sampler" else PRUNERS
    if name not in known:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    return known[name]


def missing_package(chosen: Algorithm) -> str | None:
    """What is missing for ``chosen`` to run, with the command that installs it; None when
    nothing is. Optuna imports these only when the algorithm first runs, after the
    baselines, so they are looked for before anything runs."""
    for module in chosen.needs:
        if importlib.util.find_spec(module) is None:
            return (f"the {chosen.name} {chosen.kind} needs the package {module}, which is "
                    f"not installed: {INSTALL.get(module, f'pip install {module}')}")
    return None


def check(kind: str, name: str, args: Mapping[str, Any] | None = None) -> None:
    """Refuse, with a ValueError that says why, a sampler or pruner that cannot run here:
    an unknown name, a missing package, or arguments its class does not take (a name it
    has not, a value of the wrong type, or one the class itself refuses)."""
    chosen = algorithm(kind, name)
    missing = missing_package(chosen)
    if missing:
        raise ValueError(missing)
    _check_args(chosen, dict(args or {}))
    built = build(kind, name, args)  # the class checks the values it cares about
    factor = getattr(built, "_reduction_factor", None)
    if factor is not None and factor < 2:  # Optuna takes it, then divides by log(1)
        raise ValueError(f"reduction_factor must be 2 or more, got {factor}")


def build(kind: str, name: str | None = None, args: Mapping[str, Any] | None = None, *,
          seed: int | None = None) -> Any:
    """A new sampler or pruner by name (default: TPE, or the median pruner), with Pursuit's
    defaults overridden by ``args``. A sampler is seeded: ``seed`` if given, else the
    ``seed`` in ``args``, else 0, so that a run is reproducible."""
    chosen = algorithm(kind, name or (DEFAULT_SAMPLER if kind == "sampler" else DEFAULT_PRUNER))
    kwargs = {**chosen.defaults, **(args or {})}
    if kind == "sampler":
        kwargs["seed"] = seed if seed is not None else kwargs.get("seed", 0)
    with warnings.catch_warnings():  # chosen by name: its being experimental is known
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return chosen.factory(**kwargs)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{chosen.factory.__name__}({_call(kwargs)}) refused: "
                             f"{error}") from None


def require(*objects: Any) -> None:
    """Raise PursuitError, before anything runs, when a sampler or pruner object needs a
    package that is missing (Optuna would fail on its first use, after the baselines)."""
    for obj in objects:
        for chosen in (*SAMPLERS.values(), *PRUNERS.values()):
            missing = missing_package(chosen) if isinstance(obj, chosen.factory) else None
            if missing:
                raise PursuitError(missing)


def of_goal(kind: str, spec: Any) -> Any:
    """The sampler or pruner a goal names (its ``sampler`` or ``pruner``), or the default."""
    return build(kind, spec.name, spec.args) if spec is not None else build(kind)


# A goal file gives plain values; these are the annotations they can meet.
_PLAIN: dict[str, type | tuple[type, ...]] = {
    "int": int, "float": (int, float), "bool": bool, "str": str, "None": type(None),
    "dict": dict, "list": list, "Sequence": list, "Mapping": dict}


def _check_args(chosen: Algorithm, args: dict[str, Any]) -> None:
    params = inspect.signature(chosen.factory).parameters
    cls = chosen.factory.__name__
    for key, value in args.items():
        if key not in params:
            raise ValueError(f"{cls} takes no argument {key!r}; it takes "
                             f"{', '.join(params) or 'none'}")
        annotation = params[key].annotation
        if annotation is inspect.Parameter.empty:
            continue
        text = annotation if isinstance(annotation, str) else inspect.formatannotation(
            annotation)
        parts = [part.strip() for part in text.split("|")]
        plain = [part for part in parts if part.split("[")[0] in _PLAIN]
        if not plain:
            continue  # nothing a goal file can say is known to be wrong here
        types = [_PLAIN[part.split("[")[0]] for part in plain]
        fits = any(isinstance(value, t) for t in types) and (
            type(value) is not bool or "bool" in plain)  # YAML's yes is no number
        if fits:
            continue
        if plain == ["None"]:
            raise ValueError(f"{cls} argument {key!r} takes a Python object, not {value!r}: "
                             f"pass the {chosen.kind} from Python, "
                             f"pursuit.run(goal, {chosen.kind}=...)")
        raise ValueError(f"{cls} argument {key!r} must be {' or '.join(plain)}, got {value!r}")


def _call(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
