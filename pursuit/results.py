"""The one flat results table, and a read-only view of a store: ``pursuit.open(url)``.

Columns of ``results()``, one row per trial: ``trial_id, goal, method, baseline,
source, stage, seed, state, attempt, config, dial.<name>..., <metric>...,
cost.wall_seconds, cost.cpu_seconds, cost.<name>..., error``. NaN stays NaN.

``curves()`` is every learning-curve point of a goal, one row per point: ``trial_id,
attempt, step, metric, value, method, stage, seed, config``.

A metric is never filed under one of the table's own columns: one named like them
(``seed``, ``error``, ``dial.x``) is the column ``metric.<name>`` (``metric_column``),
and a cost a method reports as ``wall_seconds`` or ``cpu_seconds`` is
``cost.reported.<name>``, beside the measured one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pursuit.analysis.stats import Leaderboard, leaderboard
from pursuit.exceptions import GoalError
from pursuit.store import GoalRecord, Store, TrialRecord, open_store

BASE_COLUMNS = ["trial_id", "goal", "method", "baseline", "source", "stage", "seed", "state",
                "attempt", "config"]
OWN_COLUMNS = frozenset([*BASE_COLUMNS, "error"])
OWN_PREFIXES = ("dial.", "cost.", "metric.")
MEASURED_COSTS = ("wall_seconds", "cpu_seconds")
CURVE_COLUMNS = ["trial_id", "attempt", "step", "metric", "value", "method", "stage", "seed",
                 "config"]


def metric_column(name: str) -> str:
    """The column that holds metric ``name`` in the results table."""
    return f"metric.{name}" if name in OWN_COLUMNS or name.startswith(OWN_PREFIXES) else name


def _cost_column(name: str) -> str:
    return f"cost.reported.{name}" if name in MEASURED_COSTS else f"cost.{name}"


def results_frame(goal: GoalRecord, trials: list[TrialRecord]) -> pd.DataFrame:
    methods = {m["name"]: m for m in goal.spec.get("methods", [])}
    rows = []
    for t in trials:
        info = methods.get(t.method, {})
        row: dict[str, Any] = {
            "trial_id": t.id, "goal": goal.name, "method": t.method,
            "baseline": bool(info.get("baseline", False)), "source": info.get("source"),
            "stage": t.stage, "seed": t.seed, "state": t.state.value, "attempt": t.attempt,
            "config": t.config}
        row.update({f"dial.{k}": v for k, v in t.dials.items()})
        row.update({metric_column(k): v for k, v in t.values.items()})
        row["cost.wall_seconds"] = t.wall_seconds if t.wall_seconds is not None else math.nan
        row["cost.cpu_seconds"] = t.cpu_seconds if t.cpu_seconds is not None else math.nan
        row.update({_cost_column(k): v for k, v in t.costs.items()})
        row["error"] = t.error
        rows.append(row)
    metric = metric_column(goal.spec.get("metric", "value"))
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=[*BASE_COLUMNS, metric, "cost.wall_seconds",
                                      "cost.cpu_seconds", "error"])
    if metric not in frame:
        frame[metric] = math.nan
    return frame


class Results:
    """A read-only view of the goals and trials in a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def goals(self) -> list[GoalRecord]:
        return self.store.goals()

    def goal(self, name: str | None = None) -> GoalRecord:
        """The named goal; without a name, the only top-level goal in the store."""
        goals = self.store.goals()
        if name is not None:
            for goal in goals:
                if goal.name == name:
                    return goal
            raise GoalError(f"no goal named {name!r} in {self.store.url}; it holds "
                               f"{[g.name for g in goals] or 'no goals'}")
        top = [g for g in goals if g.parent_id is None]
        if len(top) == 1:
            return top[0]
        if not top:
            raise GoalError(f"{self.store.url} holds no goals yet; run one first")
        raise GoalError(f"{self.store.url} holds several goals "
                           f"({', '.join(g.name for g in top)}); name one with --goal")

    def subgoals(self, goal: GoalRecord) -> list[GoalRecord]:
        return [g for g in self.store.goals() if g.parent_id == goal.id]

    def results(self, goal: str | None = None) -> pd.DataFrame:
        record = self.goal(goal)
        return results_frame(record, self.store.trials(record.id))

    def curves(self, goal: str | None = None) -> pd.DataFrame:
        """Every learning-curve point of the goal's trials (every attempt), with the trial's
        method, stage, seed and configuration: the columns of ``CURVE_COLUMNS``."""
        record = self.goal(goal)
        trials = self.store.trials(record.id)
        points: list[tuple[int, int, str, float]] = []
        counts = []
        for trial in trials:  # one read per trial: time linear in trials and points
            curve = self.store.curve(trial.id)
            points.extend(curve)
            counts.append(len(curve))
        frame = pd.DataFrame(points, columns=CURVE_COLUMNS[1:5]).astype(
            {"attempt": "int64", "step": "int64", "value": "float64"})
        owner = np.repeat(np.arange(len(trials)), counts)  # each point's trial
        frame["trial_id"] = np.array([t.id for t in trials], dtype=np.int64)[owner]
        frame["seed"] = np.array([t.seed for t in trials], dtype=np.int64)[owner]
        for name in ("method", "stage", "config"):
            frame[name] = np.array([getattr(t, name) for t in trials], dtype=object)[owner]
        return frame[CURVE_COLUMNS]

    def trial(self, trial_id: int) -> tuple[GoalRecord, TrialRecord] | None:
        """The trial with this id and its goal; None when the store has no such trial."""
        trial = self.store.trial(trial_id)
        if trial is None:
            return None
        return next(g for g in self.store.goals() if g.id == trial.goal_id), trial

    def leaderboard(self, goal: str | None = None, *,
                    frame: pd.DataFrame | None = None) -> Leaderboard:
        """The leaderboard of a goal, from ``frame`` when the caller has read it already."""
        record = self.goal(goal)
        spec = record.spec
        frame = results_frame(record, self.store.trials(record.id)) if frame is None else frame
        return leaderboard(frame, metric=metric_column(spec["metric"]),
                           direction=spec["direction"],
                           target=spec.get("target"), seeds=spec.get("seeds", 3))

    def ladder(self, goal: str | None = None, *,
               frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
        """Scaling fits of the ladder stage and what reaching the target takes (see
        ``pursuit.scaling.ladder_forecasts``), from ``frame`` when already read."""
        from pursuit.scaling import ladder_forecasts

        record = self.goal(goal)
        spec = record.spec
        frame = results_frame(record, self.store.trials(record.id)) if frame is None else frame
        ranges = {f"{m['name']}.{dial}": tuple(bounds) for m in spec.get("methods", [])
                  for dial, bounds in m.get("ranges", {}).items()}
        return ladder_forecasts(frame, metric=metric_column(spec["metric"]),
                                direction=spec["direction"],
                                target=spec.get("target"), dial_ranges=ranges)

    def run_state(self, goal: str | None = None) -> tuple[str, str | None]:
        """Whether an engine works on the goal: ("running", None); ("ended", why) when
        the last engine said why it stopped; ("stopped", None) when it went silent
        without a word (killed, or its machine lost); ("not started", None)."""
        from pursuit.loop import Policy, engine_gone

        record = self.goal(goal)
        runs = self.store.runs(record.id)
        if not runs:  # or trials from before runs were recorded
            return ("stopped" if self.store.trials(record.id) else "not started"), None
        now = self.store.now()
        # An engine is gone when its process on this machine has ended, or when it has
        # been silent for longer than engines wait before taking its trials back.
        if any(run.reason is None and not engine_gone(run.engine)
               and now - run.last_seen <= Policy.reap_after for run in runs):
            return "running", None
        # The run heard from last speaks for the goal: an engine killed while a teammate
        # went on to finish is not how the goal ended.
        last = max(runs, key=lambda run: run.last_seen)
        return ("stopped", None) if last.reason is None else ("ended", last.reason)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def open(url: str | None = None) -> Results:  # noqa: A001 - mirrors pursuit.open(url)
    """Open the store at ``url`` (default: $PURSUIT_STORE, else ./pursuit.db) for reading.

    A reader never makes a store: where there is none (a mistyped path, ``memory:``),
    this raises UnusableStoreError."""
    return Results(open_store(url, create=False))
