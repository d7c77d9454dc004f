"""The engine's in-memory record of its goal's trials, kept as they come and go.

A trial is one (method, configuration, seed); the record finds it by that identity, so
that whoever plans (baselines, search, confirm, verify, ladder, a resumed engine) can
see that it exists and use it instead of running it again. Tallies are kept as trials
change so that planning costs O(methods) per trial, not O(trials).
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import optuna

from pursuit.analysis.claims import Direction, Stage
from pursuit.dials import Value
from pursuit.store import config_key
from pursuit.trial import TrialState

Key = tuple[str, str, int]  # (method, configuration key, seed)


@dataclass
class Record:
    method: str
    stage: Stage
    dials: dict[str, Value]
    seed: int
    state: TrialState
    attempt: int
    value: float = math.nan
    wall: float = 0.0
    config: str = field(init=False)

    def __post_init__(self) -> None:
        self.config = config_key(self.dials)

    @property
    def key(self) -> Key:
        return (self.method, self.config, self.seed)


@dataclass
class Live:
    """An attempt a worker has now."""

    trial_id: int
    attempt: int
    started: float
    optuna_trial: optuna.Trial | None = None


class TrialBook:
    """Every trial of the goal this engine knows, the live ones, and running tallies."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.records: dict[int, Record] = {}
        self.live: dict[int, Live] = {}
        self._index: dict[Key, int] = {}
        self._elsewhere: set[Key] = set()  # created by another engine first
        self._seeds: dict[tuple[str, str], set[int]] = {}  # every seed each config has
        self._dials: dict[tuple[str, str], dict[str, Value]] = {}
        # the seeds of each configuration's verification, this engine's and others'
        self._verifying: dict[tuple[str, str], set[int]] = {}
        self.per_stage: Counter[tuple[str, Stage]] = Counter()  # trials per (method, stage)
        self.states: Counter[TrialState] = Counter()
        self.best_seen: dict[str, float] = {}  # best completed value per method
        self._screens: list[tuple[float, int]] = []  # (value, best first; trial id), sorted
        self._best_screen: dict[str, int] = {}  # the best screening run of each method
        self.compute_done = 0.0  # wall seconds of finished trials

    def __len__(self) -> int:
        return len(self.records)

    def add(self, trial_id: int, record: Record) -> None:
        self.records[trial_id] = record
        self._index.setdefault(record.key, trial_id)
        self._seeds.setdefault((record.method, record.config), set()).add(record.seed)
        self._dials.setdefault((record.method, record.config), record.dials)
        if record.stage is Stage.VERIFY:
            self._verifying.setdefault((record.method, record.config), set()).add(record.seed)
        self.per_stage[(record.method, record.stage)] += 1
        self.states[record.state] += 1
        if record.state.finished:
            self._tally(record)

    def taken_elsewhere(self, key: Key, stage: Stage) -> None:
        """Another engine on the goal created this trial first: it is not ours to run
        (a verification seed it runs counts toward the verification all the same)."""
        self._elsewhere.add(key)
        self._seeds.setdefault(key[:2], set()).add(key[2])
        if stage is Stage.VERIFY:
            self._verifying.setdefault(key[:2], set()).add(key[2])

    def has(self, key: Key) -> bool:
        return key in self._index or key in self._elsewhere

    def find(self, key: Key) -> tuple[int, Record] | None:
        trial_id = self._index.get(key)
        return None if trial_id is None else (trial_id, self.records[trial_id])

    def seeds(self, method: str, config: str) -> set[int]:
        return self._seeds.get((method, config), set())

    def dials(self, method: str, config: str) -> dict[str, Value]:
        return self._dials[(method, config)]

    def verify_trials(self, method: str, config: str) -> int:
        return len(self._verifying.get((method, config), ()))

    def set_state(self, trial_id: int, state: TrialState) -> None:
        record = self.records[trial_id]
        self.states[record.state] -= 1
        self.states[state] += 1
        record.state = state

    def finish(self, trial_id: int, state: TrialState, value: float, wall: float) -> Record:
        self.set_state(trial_id, state)
        record = self.records[trial_id]
        record.value, record.wall = value, wall
        self._tally(record)
        return record

    def _tally(self, record: Record) -> None:
        self.compute_done += record.wall
        if record.state is TrialState.COMPLETED and math.isfinite(record.value):
            best = self.best_seen.get(record.method)
            if best is None or self.direction.better(record.value, best):
                self.best_seen[record.method] = record.value
            if record.stage is Stage.SEARCH:
                self._screened(record)

    def _screened(self, record: Record) -> None:
        trial_id = self._index[record.key]
        sign = -1.0 if self.direction is Direction.MAXIMIZE else 1.0
        bisect.insort(self._screens, (sign * record.value, trial_id))
        best = self._best_screen.get(record.method)
        if best is None or self.direction.better(record.value, self.records[best].value):
            self._best_screen[record.method] = trial_id

    def searched(self, method: str | None = None) -> int:
        """Search trials of one method, or of all."""
        if method is not None:
            return self.per_stage[(method, Stage.SEARCH)]
        return sum(n for (_, stage), n in self.per_stage.items() if stage is Stage.SEARCH)

    def live_stages(self) -> set[Stage]:
        return {self.records[trial_id].stage for trial_id in self.live}

    def compute_spent(self) -> float:
        """Wall seconds of finished trials and of the running ones so far."""
        now = time.monotonic()
        return self.compute_done + sum(now - live.started for live in self.live.values())

    def best_screened(self, top: int) -> list[Record]:
        """The ``top`` best screening runs (completed search trials), then each method's
        best, without repeats."""
        ids = [trial_id for _, trial_id in self._screens[:top]]
        ids += [i for i in self._best_screen.values() if i not in ids]
        return [self.records[i] for i in ids]
