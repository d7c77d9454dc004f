"""The store contract: what every backend records and how.

Rules every backend keeps (``pursuit.testing.check_store`` checks them):

* One writer per engine. ``write`` applies a whole ``WriteBatch`` in one transaction,
  so a crash leaves either all of it or none of it.
* Finished trials are frozen: an outcome or a curve point for a trial that is not
  *running* at that attempt is refused (and returned in ``WriteResult.refused``),
  never written over what is there.
* Curve points are idempotent on (trial, attempt, step, metric): the first write wins.
* A trial is created once per goal, method, dials and seed, whatever its stage and
  however many engines plan it at once: a seed of a configuration is one run and counts
  once. A second one gets None for its id in ``WriteResult.new_ids``.
* NaN is kept as NaN and ±inf as ±inf; a NaN never counts as a value in a filter.
* Times are seconds since the epoch; ``now()`` is the database's clock, so that
  engines on different machines judge heartbeats by one clock.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pursuit.trial import Outcome, Point, TrialState


def config_key(dials: Mapping[str, Any]) -> str:
    """A canonical text for a set of dial values: equal settings give equal keys."""
    return json.dumps(dict(dials), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class GoalRecord:
    id: int
    name: str
    parent_id: int | None
    spec: dict[str, Any]


@dataclass(frozen=True)
class NewTrial:
    """A trial to create; it starts *running* at attempt 1 on ``engine``."""

    goal_id: int
    method: str
    stage: str
    dials: Mapping[str, Any]
    seed: int


@dataclass(frozen=True)
class TrialRecord:
    id: int
    goal_id: int
    method: str
    stage: str
    dials: dict[str, Any]
    seed: int
    state: TrialState
    attempt: int
    started_at: float | None = None
    finished_at: float | None = None
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    error: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)

    @property
    def config(self) -> str:
        return config_key(self.dials)


@dataclass
class WriteBatch:
    """Everything one engine step writes, applied in this order in one transaction.

    The order lets one batch hold an attempt's last points, its preemption and the
    restart that follows it.
    """

    engine: str = ""
    new: list[NewTrial] = field(default_factory=list)
    points: list[tuple[int, int, int, str, float]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    preempted: list[tuple[int, int, str]] = field(default_factory=list)  # (trial, attempt, why)
    restarts: list[tuple[int, int]] = field(default_factory=list)  # (trial, new attempt)

    def add_points(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        self.points.extend((trial_id, attempt, s, m, v) for s, m, v in points)

    def __bool__(self) -> bool:
        return bool(self.new or self.restarts or self.points or self.outcomes or self.preempted)


@dataclass(frozen=True)
class WriteResult:
    new_ids: list[int | None]  # None: that (method, dials, seed) exists already
    refused: list[str]  # one line per refused write, for the log


@dataclass(frozen=True)
class RunningTrial:
    id: int
    attempt: int
    engine: str | None
    heartbeat_at: float | None


@dataclass(frozen=True)
class EngineRun:
    """One engine's work on a goal: when it started, when it was last heard from (both
    by the database's clock), and why it ended (None while it runs, or if it was killed)."""

    engine: str
    started_at: float
    last_seen: float
    reason: str | None


class Store(ABC):
    """Where goals, trials, curves and results live. Only the engine process writes."""

    url: str

    @abstractmethod
    def ensure_goal(self, name: str, spec: dict[str, Any], parent_id: int | None = None) -> int:
        """The id of the goal called ``name``, created with ``spec`` if it is new."""

    @abstractmethod
    def goals(self) -> list[GoalRecord]:
        """Every goal, parents before their sub-goals."""

    @abstractmethod
    def write(self, batch: WriteBatch) -> WriteResult:
        """Apply a batch atomically; see the module docstring for what is refused."""

    @abstractmethod
    def trials(self, goal_id: int) -> list[TrialRecord]:
        """Every trial of a goal, in creation order, with its final values and costs."""

    @abstractmethod
    def curve(self, trial_id: int) -> list[tuple[int, int, str, float]]:
        """The learning curve of a trial: (attempt, step, metric, value), sorted."""

    @abstractmethod
    def running(self, goal_id: int) -> list[RunningTrial]:
        """The trials of a goal that the store believes are running."""

    @abstractmethod
    def curves(self, goal_id: int, metric: str) -> dict[int, dict[int, float]]:
        """One metric's curve of every trial of a goal (its latest attempt): {trial: {step: v}}."""

    @abstractmethod
    def start_run(self, goal_id: int, engine: str) -> float:
        """Record that ``engine`` works on the goal from now; return the wall seconds that
        earlier engines spent on it (from their start to their last heartbeat)."""

    @abstractmethod
    def end_run(self, goal_id: int, engine: str, reason: str) -> None:
        """Record why ``engine`` stopped working on the goal, as it stops."""

    @abstractmethod
    def runs(self, goal_id: int) -> list[EngineRun]:
        """Every engine run of a goal, oldest first."""

    @abstractmethod
    def heartbeat(self, engine: str) -> None:
        """Mark ``engine`` and every trial running on it as alive now (database clock)."""

    @abstractmethod
    def now(self) -> float:
        """The database's clock, in seconds since the epoch."""

    def close(self) -> None:  # noqa: B027 - an optional hook; most stores hold nothing
        """Release connections; the default has none."""

    def goal_id(self, name: str) -> int | None:
        return next((g.id for g in self.goals() if g.name == name), None)

    # Reads for views of a large store (the dashboard), which must not read a whole goal
    # per request. The defaults derive them from the methods above, reading a whole goal
    # each time; the SQL store answers each with indexed queries.

    def changes(self, goal_id: int) -> tuple[Any, ...]:
        """A marker of the goal's trials, cheap to read: it changes whenever a trial of
        the goal is created, finishes, is preempted or restarts, or the goal's spec
        changes (curve points aside). A reader that kept what it computed from an equal
        marker need not read again."""
        spec = next((g.spec for g in self.goals() if g.id == goal_id), None)
        return (json.dumps(spec, sort_keys=True),
                *((t.id, t.state.value, t.attempt, t.finished_at) for t in self.trials(goal_id)))

    def trial(self, trial_id: int) -> TrialRecord | None:
        """One trial with its values and costs; None when there is none of that id."""
        for goal in self.goals():
            for record in self.trials(goal.id):
                if record.id == trial_id:
                    return record
        return None

    def trial_page(self, goal_id: int, *, states: Collection[TrialState] | None = None,
                   before: int | None = None, limit: int = 100) -> list[TrialRecord]:
        """A goal's trials newest first: those in ``states`` (any when None) with ids
        below ``before`` (any when None), at most ``limit`` of them."""
        chosen = [t for t in self.trials(goal_id)
                  if (states is None or t.state in states) and (before is None or t.id < before)]
        return sorted(chosen, key=lambda t: t.id, reverse=True)[:limit]

    def finished_since(self, goal_id: int, since: float, *, other_than: str | None = None
                       ) -> list[TrialRecord]:
        """The goal's trials that finished at ``since`` or later on the store's clock
        (the clock ``now`` reads), in id order: what engines sharing a goal read of each
        other's work, a little at a time. ``other_than`` names an engine whose own
        trials the reader knows already: a store may leave them out (the SQL store
        does), and a reader skips those it knows."""
        return [t for t in self.trials(goal_id)
                if t.finished_at is not None and t.finished_at >= since]

    def trial_counts(self, goal_id: int) -> dict[TrialState, int]:
        """How many trials of the goal are in each state (states with none left out)."""
        counts: dict[TrialState, int] = {}
        for record in self.trials(goal_id):
            counts[record.state] = counts.get(record.state, 0) + 1
        return counts

    def curve_metrics(self, trial_id: int, attempt: int) -> dict[str, tuple[int, int, int]]:
        """The metrics an attempt's curve holds: {metric: (points, first step, last step)}."""
        out: dict[str, tuple[int, int, int]] = {}
        for a, step, metric, _ in self.curve(trial_id):
            if a == attempt:
                n, first, last = out.get(metric, (0, step, step))
                out[metric] = (n + 1, min(first, step), max(last, step))
        return out

    def curve_sample(self, trial_id: int, attempt: int, metric: str, points: int
                     ) -> list[tuple[int, float, float, float]]:
        """One metric of an attempt's curve in at most ``points`` buckets of consecutive
        steps: (the bucket's last step, the mean, min and max of its values), in step
        order. A curve of ``points`` or fewer comes back whole. NaN values are left out
        of a bucket's numbers; a bucket of NaN alone reads NaN."""
        values = [(s, v) for a, s, m, v in self.curve(trial_id) if a == attempt and m == metric]
        n = len(values)
        buckets: dict[int, list[tuple[int, float]]] = {}
        for rank, point in enumerate(values):
            buckets.setdefault(rank * points // n, []).append(point)
        out = []
        for _, group in sorted(buckets.items()):
            real = [v for _, v in group if not math.isnan(v)]
            out.append((group[-1][0], sum(real) / len(real) if real else math.nan,
                        min(real, default=math.nan), max(real, default=math.nan)))
        return out
