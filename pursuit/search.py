"""Dial search through Optuna's ask/tell: Optuna proposes, Pursuit runs and records.

Each method has its own in-memory Optuna study, rebuilt from Pursuit's store when an
engine starts, so any Optuna sampler and pruner plug in while the store stays the
one source of truth. A rebuilt study's sampler is reseeded, so that a resumed search
goes on instead of replaying the proposals its first engine already ran.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping

import numpy as np
import optuna

from pursuit.analysis.claims import Direction
from pursuit.dials import MAX_LISTED, Value
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


def default_sampler(seed: int = 0) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def default_pruner() -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
