"""The trial a method receives, the states a trial moves through, and how one is run.

    queued ──► running ──► completed | pruned | failed
                  │
                  └──► preempted (its worker or engine died) ──► running (attempt + 1)

``run_task`` is the one place that calls a user's method: it measures cost, turns the
return value into metrics by a documented rule, and maps exceptions to states. It runs
inside whichever process the executor chose.

What a method sends is checked here, where it is made: a value the store cannot hold (a
step past its integer column, a name past its ``String(100)``) fails that one trial with
the reason, instead of failing the engine's write of a whole batch on every resume.
"""

from __future__ import annotations

import functools
import math
import mmap
import numbers
import os
import random
import struct
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
# What the store holds (pursuit/store/_models.py): curve_points.step is a 64-bit integer
# (a curve may be logged by tokens seen), and metric and cost names are String(100).
MAX_STEP = 2**63 - 1
MAX_NAME = 100


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


def check_name(name: str, what: str) -> str:
    """A metric or cost name the store can hold: at most ``MAX_NAME`` characters, without
    NUL (PostgreSQL refuses it) or unpaired surrogates (not UTF-8)."""
    if len(name) > MAX_NAME or storable(name) != name:
        raise ValueError(f"{what} name must be at most {MAX_NAME} characters, without NUL or "
                         f"unpaired surrogates, got {name[:MAX_NAME + 20]!r}")
    return name


def storable(text: str) -> str:
    """``text`` as the store can hold it: NUL and unpaired surrogates (an undecodable file
    name in an exception's message) written as escapes."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class Trial:
    """What a method receives: its dials, its seed, a place for files, and the curve."""

    def __init__(self, task: Task, channel: Channel) -> None:
        self._task = task
        self._channel = channel
        self._buffer: list[Point] = []
        self._buffered_since = 0.0
        self._costs: dict[str, float] = {}
        self._names: set[str] = set()  # metric names already checked
        self._pid = os.getpid()  # the process that runs the trial, the only one to send

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
        """Record points of the learning curve at ``step``.

        Limits (what the store holds): ``step`` is an integer from 0 to 2**63 - 1
        (tokens seen fit); a metric name has at most 100 characters, without NUL; a
        value is a number (NaN and ±inf are kept). Past them the trial fails with the
        reason. The same holds for the names given to ``report_cost`` and the keys of a
        returned dict.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"trial.report: step must be an integer, got {step!r}")
        if not 0 <= step <= MAX_STEP:
            raise ValueError(f"trial.report: step must be from 0 to {MAX_STEP} (what the store "
                             f"holds), got {step!r}")
        if not metrics:
            raise TypeError("trial.report needs at least one metric, e.g. report(3, loss=0.5)")
        if not self._buffer:
            self._buffered_since = time.monotonic()
        for name, value in metrics.items():
            if name not in self._names:
                self._names.add(check_name(name, "trial.report: metric"))
            self._buffer.append((int(step), name, as_number(value, f"metric {name!r}")))
        if (len(self._buffer) >= FLUSH_POINTS
                or time.monotonic() - self._buffered_since >= FLUSH_SECONDS):
            self.flush()

    def report_cost(self, **costs: Any) -> None:
        """Record a cost the method measures itself (e.g. ``flops=1.2e12``)."""
        for name, value in costs.items():
            self._costs[check_name(name, "trial.report_cost: cost")] = \
                as_number(value, f"cost {name!r}")

    def should_stop(self) -> bool:
        """Whether the engine's early-stopping rule says this trial should end now.

        Raise ``pursuit.Pruned`` (or return) when it does.
        """
        self.flush()
        return self._channel.should_stop(self._task.trial_id, self._task.attempt)

    def flush(self) -> None:
        if os.getpid() != self._pid:
            # A process the method forked shares the engine's pipe: bytes it sent or read
            # would mix with the worker's, and the engine could read neither.
            raise RuntimeError("trial.report and trial.should_stop work only in the process "
                               "that runs the trial, not in a process the method forked")
        if self._buffer:
            points, self._buffer = self._buffer, []
            self._channel.report(self._task.trial_id, self._task.attempt, points)


def run_task(task: Task, channel: Channel, *,
             interrupts: tuple[type[BaseException], ...] = (KeyboardInterrupt,)) -> Outcome:
    """Run one attempt of a method and say how it ended; never raises for the method's faults.

    ``interrupts`` pass through: what stops the process that runs the trial rather than
    the trial (Ctrl-C in the engine's own process). A worker passes none: there Ctrl-C is
    the engine's to handle, so a KeyboardInterrupt, like any BaseException (GeneratorExit,
    a class of the method's own), comes from the method and fails the trial.
    """
    trial = Trial(task, channel)
    wall, cpu = time.perf_counter(), time.process_time()
    state, values, error = TrialState.FAILED, {}, None
    try:
        returned = _call(task, trial)
        values = _metrics(returned, task.metric)
        bad = [name for name, v in values.items() if name == task.metric and not math.isfinite(v)]
        if bad:
            error = f"metric {task.metric!r} is {values[task.metric]} (not a finite number)"
        else:
            state = TrialState.COMPLETED
    except Pruned:
        state = TrialState.PRUNED
    except interrupts:
        raise
    except SystemExit as exc:
        error = f"the method called sys.exit({exc.code!r})"
    except BaseException as exc:  # the method's own fault: record it, never crash the engine
        error = describe(exc)
    if error is None and _STRAY.unpack_from(_stray_page()) == (
            os.getpid(), task.trial_id, task.attempt):
        state, error = TrialState.FAILED, (
            "a process the method forked came back out of it instead of ending with "
            "os._exit(), and was ended (a forked child must end with os._exit())")
    try:
        trial.flush()
    except Exception as exc:  # a report that cannot be sent must not hide the outcome
        state, error = TrialState.FAILED, error or f"reports could not be sent: {exc!r}"
    return Outcome(task.trial_id, task.attempt, state, values, dict(trial._costs),
                   None if error is None else storable(error),
                   time.perf_counter() - wall, time.process_time() - cpu)


# A process the method forks must end inside it, with os._exit(). One that comes back out
# (returns, raises, calls sys.exit) would run on as a second worker sharing the engine's
# pipe, or inline as a second engine; ``_call`` ends it at once. Through this page, mapped
# shared before the method runs, it first leaves word for the process running the trial:
# (that process's pid, trial id, attempt), which fails the trial if it has not ended yet.
_STRAY = struct.Struct("qqq")


@functools.cache
def _stray_page() -> mmap.mmap:
    return mmap.mmap(-1, _STRAY.size)  # anonymous and MAP_SHARED: shared with forks


def _call(task: Task, trial: Trial) -> Any:
    owner, page = os.getpid(), _stray_page()
    try:
        return task.method.call(trial, task.dials)
    finally:
        if os.getpid() != owner:  # a forked child came back: end it, touching nothing
            try:
                _STRAY.pack_into(page, 0, owner, task.trial_id, task.attempt)
                came = sys.exc_info()[1]
                how = "returned" if came is None else f"raised {type(came).__name__}"
                print(f"pursuit: a process forked by trial {task.trial_id}'s method {how} "
                      "instead of ending with os._exit(); it was ended", file=sys.stderr,
                      flush=True)
            finally:
                os._exit(1)


def _metrics(returned: Any, metric: str) -> dict[str, float]:
    if isinstance(returned, Mapping):
        if metric not in returned:
            raise ValueError(f"the method returned a dict without the goal metric {metric!r} "
                             f"(keys: {sorted(map(str, returned))})")
        return {check_name(str(k), "returned metric"): as_number(v, f"returned metric {k!r}")
                for k, v in returned.items()}
    try:
        return {metric: as_number(returned, "the returned value")}
    except TypeError:
        raise TypeError(f"the method returned {returned!r} ({type(returned).__name__}); expected "
                        f"a number or a dict containing {metric!r}") from None


def describe(exc: BaseException) -> str:
    """The end of an exception's traceback, as a trial's reason."""
    lines = traceback.format_exception(exc)
    return storable("".join(lines[-6:]).strip()[-4000:])
