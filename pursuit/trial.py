"""The trial a method receives, the states a trial moves through, and how one is run.

    queued ──► running ──► completed | pruned | failed
                  │
                  └──► preempted (its worker or engine died) ──► running (attempt + 1)

``run_task`` is the one place that calls a user's method: it measures cost, turns the
return value into metrics by a documented rule, and maps exceptions to states. It runs
inside whichever process the executor chose.
"""

from __future__ import annotations

import math
import numbers
import random
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pursuit.dials import Value
from pursuit.exceptions import Pruned
from pursuit.methods import Method

FLUSH_POINTS = 1000  # reports buffered in a worker before they are sent to the engine
FLUSH_SECONDS = 0.5  # ...or this long after the oldest unsent report, so live views move


class TrialState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    PRUNED = "pruned"
    FAILED = "failed"
    PREEMPTED = "preempted"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED)


Point = tuple[int, str, float]  # (step, metric, value)


@dataclass(frozen=True)
class Task:
    """One attempt at one trial, as an executor receives it."""

    trial_id: int
    attempt: int
    method: Method
    dials: Mapping[str, Value]
    seed: int
    metric: str
    workdir: str
    timeout: float | None = None


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended. ``values`` holds metrics; NaN is kept as NaN."""

    trial_id: int
    attempt: int
    state: TrialState
    values: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


class Channel(Protocol):
    """How a running trial talks to the engine: send curve points, ask whether to stop."""

    def report(self, trial_id: int, attempt: int, points: list[Point]) -> None: ...

    def should_stop(self, trial_id: int, attempt: int) -> bool: ...


def as_number(value: Any, what: str) -> float:
    """The coercion rule for every metric: Python/numpy reals and 0-d or size-1 arrays."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


class Trial:
    """What a method receives: its dials, its seed, a place for files, and the curve."""

    def __init__(self, task: Task, channel: Channel) -> None:
        self._task = task
        self._channel = channel
        self._buffer: list[Point] = []
        self._buffered_since = 0.0
        self._costs: dict[str, float] = {}

    @property
    def id(self) -> int:
        return self._task.trial_id

    @property
    def dials(self) -> dict[str, Value]:
        return dict(self._task.dials)

    @property
    def seed(self) -> int:
        return self._task.seed

    @property
    def rng(self) -> np.random.Generator:
        """A NumPy generator seeded with this trial's seed."""
        return np.random.default_rng(self._task.seed)

    @property
    def workdir(self) -> Path:
        """A directory of this trial's own, created on first use (checkpoints, outputs)."""
        path = Path(self._task.workdir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def seed_everything(self) -> None:
        """Seed ``random``, NumPy's global generator and, if imported, PyTorch."""
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.manual_seed(self.seed)

    def report(self, step: int, **metrics: Any) -> None:
        """Record points of the learning curve at ``step`` (an integer >= 0)."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise TypeError(f"trial.report: step must be an integer >= 0, got {step!r}")
        if not metrics:
            raise TypeError("trial.report needs at least one metric, e.g. report(3, loss=0.5)")
        if not self._buffer:
            self._buffered_since = time.monotonic()
        for name, value in metrics.items():
            self._buffer.append((int(step), name, as_number(value, f"metric {name!r}")))
        if (len(self._buffer) >= FLUSH_POINTS
                or time.monotonic() - self._buffered_since >= FLUSH_SECONDS):
            self.flush()

    def report_cost(self, **costs: Any) -> None:
        """Record a cost the method measures itself (e.g. ``flops=1.2e12``)."""
        for name, value in costs.items():
            self._costs[name] = as_number(value, f"cost {name!r}")

    def should_stop(self) -> bool:
        """Whether the engine's early-stopping rule says this trial should end now.

        Raise ``pursuit.Pruned`` (or return) when it does.
        """
        self.flush()
        return self._channel.should_stop(self._task.trial_id, self._task.attempt)

    def flush(self) -> None:
        if self._buffer:
            points, self._buffer = self._buffer, []
            self._channel.report(self._task.trial_id, self._task.attempt, points)


def run_task(task: Task, channel: Channel) -> Outcome:
    """Run one attempt of a method and say how it ended; never raises for the method's faults."""
    trial = Trial(task, channel)
    wall, cpu = time.perf_counter(), time.process_time()
    state, values, error = TrialState.FAILED, {}, None
    try:
        returned = task.method.call(trial, task.dials)
        values = _metrics(returned, task.metric)
        bad = [name for name, v in values.items() if name == task.metric and not math.isfinite(v)]
        if bad:
            error = f"metric {task.metric!r} is {values[task.metric]} (not a finite number)"
        else:
            state = TrialState.COMPLETED
    except Pruned:
        state = TrialState.PRUNED
    except SystemExit as exc:
        error = f"the method called sys.exit({exc.code!r})"
    except Exception as exc:  # the method's own fault: record it, never crash the engine
        error = _describe(exc)
    try:
        trial.flush()
    except Exception as exc:  # a report that cannot be sent must not hide the outcome
        state, error = TrialState.FAILED, error or f"reports could not be sent: {exc!r}"
    return Outcome(task.trial_id, task.attempt, state, values, dict(trial._costs), error,
                   time.perf_counter() - wall, time.process_time() - cpu)


def _metrics(returned: Any, metric: str) -> dict[str, float]:
    if isinstance(returned, Mapping):
        if metric not in returned:
            raise ValueError(f"the method returned a dict without the goal metric {metric!r} "
                             f"(keys: {sorted(map(str, returned))})")
        return {str(k): as_number(v, f"returned metric {k!r}") for k, v in returned.items()}
    try:
        return {metric: as_number(returned, "the returned value")}
    except TypeError:
        raise TypeError(f"the method returned {returned!r} ({type(returned).__name__}); expected "
                        f"a number or a dict containing {metric!r}") from None


def _describe(exc: BaseException) -> str:
    lines = traceback.format_exception(exc)
    return "".join(lines[-6:]).strip()[-4000:]
