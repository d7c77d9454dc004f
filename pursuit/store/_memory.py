"""A store that lives in the engine's memory: for tests and throwaway runs."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from pursuit.exceptions import StoreError
from pursuit.store._base import (
    EngineRun,
    GoalRecord,
    RunningTrial,
    Store,
    TrialRecord,
    WriteBatch,
    WriteResult,
    config_key,
)
from pursuit.trial import TrialState


class MemoryStore(Store):
    def __init__(self) -> None:
        self.url = "memory:"
        self._lock = threading.Lock()
        self._goals: list[GoalRecord] = []
        self._trials: dict[int, TrialRecord] = {}
        self._engines: dict[int, tuple[str, float]] = {}
        self._points: dict[tuple[int, int, int, str], float] = {}
        self._runs: dict[tuple[str, int], EngineRun] = {}
        self._identities: set[tuple[int, str, str, int]] = set()  # (goal, method, dials, seed)

    def ensure_goal(self, name: str, spec: dict[str, Any], parent_id: int | None = None) -> int:
        with self._lock:
            for index, goal in enumerate(self._goals):
                if goal.name == name:
                    check_same_question(goal.spec, spec, name)
                    self._goals[index] = replace(goal, spec=spec)
                    return goal.id
            record = GoalRecord(len(self._goals) + 1, name, parent_id, spec)
            self._goals.append(record)
            return record.id

    def goals(self) -> list[GoalRecord]:
        return list(self._goals)

    def write(self, batch: WriteBatch) -> WriteResult:
        with self._lock:
            now = time.time()
            new_ids: list[int | None] = []
            refused: list[str] = []
            for new in batch.new:
                key = (new.goal_id, new.method, config_key(new.dials), new.seed)
                if key in self._identities:
                    new_ids.append(None)  # that seed of that configuration exists
                    continue
                self._identities.add(key)
                trial_id = len(self._trials) + 1
                self._trials[trial_id] = TrialRecord(
                    trial_id, new.goal_id, new.method, new.stage, dict(new.dials), new.seed,
                    TrialState.RUNNING, 1, started_at=now)
                self._engines[trial_id] = (batch.engine, now)
                new_ids.append(trial_id)
            live = {(t, a) for t, a, *_ in batch.points if self._is_running(t, a)}
            for trial_id, attempt, step, metric, value in batch.points:
                if (trial_id, attempt) not in live:
                    refused.append(f"curve point for trial {trial_id} attempt {attempt}: "
                                   "not running")
                    continue
                self._points.setdefault((trial_id, attempt, step, metric), value)
            for out in batch.outcomes:
                if not self._is_running(out.trial_id, out.attempt):
                    refused.append(f"outcome for trial {out.trial_id} attempt {out.attempt}: "
                                   "not running")
                    continue
                self._trials[out.trial_id] = replace(
                    self._trials[out.trial_id], state=out.state, finished_at=now,
                    wall_seconds=out.wall_seconds, cpu_seconds=out.cpu_seconds,
                    error=out.error, values=dict(out.values), costs=dict(out.costs))
            for trial_id, attempt, why in batch.preempted:
                if not self._is_running(trial_id, attempt):
                    refused.append(f"preemption of trial {trial_id}: not running")
                    continue
                self._trials[trial_id] = replace(self._trials[trial_id],
                                                 state=TrialState.PREEMPTED, error=why)
            for trial_id, attempt in batch.restarts:
                old = self._trials.get(trial_id)
                if old is None or old.state is not TrialState.PREEMPTED:
                    refused.append(f"restart of trial {trial_id}: not preempted")
                    continue
                self._trials[trial_id] = replace(old, state=TrialState.RUNNING, attempt=attempt,
                                                 started_at=now)
                self._engines[trial_id] = (batch.engine, now)
            return WriteResult(new_ids, refused)

    def _is_running(self, trial_id: int, attempt: int) -> bool:
        trial = self._trials.get(trial_id)
        return trial is not None and trial.state is TrialState.RUNNING and trial.attempt == attempt

    def trials(self, goal_id: int) -> list[TrialRecord]:
        return [t for t in self._trials.values() if t.goal_id == goal_id]

    def curve(self, trial_id: int) -> list[tuple[int, int, str, float]]:
        return sorted((a, s, m, v) for (t, a, s, m), v in self._points.items() if t == trial_id)

    def running(self, goal_id: int) -> list[RunningTrial]:
        return [RunningTrial(t.id, t.attempt, *self._engines.get(t.id, (None, None)))
                for t in self.trials(goal_id) if t.state is TrialState.RUNNING]

    def curves(self, goal_id: int, metric: str) -> dict[int, dict[int, float]]:
        attempts = {t.id: t.attempt for t in self.trials(goal_id)}
        out: dict[int, dict[int, float]] = {}
        for (trial_id, attempt, step, name), value in self._points.items():
            if name == metric and attempts.get(trial_id) == attempt:
                out.setdefault(trial_id, {})[step] = value
        return out

    def start_run(self, goal_id: int, engine: str) -> float:
        with self._lock:
            spent = sum(run.last_seen - run.started_at
                        for (_, goal), run in self._runs.items() if goal == goal_id)
            now = time.time()
            self._runs[(engine, goal_id)] = EngineRun(engine, now, now, None)
            return spent

    def end_run(self, goal_id: int, engine: str, reason: str) -> None:
        with self._lock:
            run = self._runs.get((engine, goal_id))
            if run is not None:
                self._runs[(engine, goal_id)] = replace(run, last_seen=time.time(),
                                                        reason=reason[:500])

    def runs(self, goal_id: int) -> list[EngineRun]:
        with self._lock:
            return sorted((run for (_, goal), run in self._runs.items() if goal == goal_id),
                          key=lambda run: run.started_at)

    def heartbeat(self, engine: str) -> None:
        now = time.time()
        with self._lock:
            for trial_id, (owner, _) in self._engines.items():
                if owner == engine:
                    self._engines[trial_id] = (owner, now)
            for key, run in self._runs.items():
                if key[0] == engine:
                    self._runs[key] = replace(run, last_seen=now)

    def now(self) -> float:
        return time.time()


def check_same_question(old: dict[str, Any], new: dict[str, Any], name: str) -> None:
    """One name, one goal: its results only make sense for one metric, one direction, and
    methods that are the same code under the same names. A goal may gain methods and
    change its target and budget; anything else is another goal, never merged."""
    for key in ("metric", "direction"):
        if old.get(key) != new.get(key):
            raise StoreError(f"goal {name!r} is stored with {key} {old.get(key)!r}, not "
                             f"{new.get(key)!r}; give the changed goal a new name")
    entries = {m["name"]: m.get("entry") for m in old.get("methods", [])}
    for method in new.get("methods", []):
        before = entries.get(method["name"])
        if before is not None and before != method.get("entry"):
            raise StoreError(
                f"goal {name!r} is stored with method {method['name']!r} from {before}, "
                f"not from {method.get('entry')}: this looks like another project's goal of "
                "the same name. Give this goal a new name (name: in its file) or use "
                "another store (--store)")
