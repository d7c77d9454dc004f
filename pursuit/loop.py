"""The research loop: decides what runs next, within the budget, until the goal is met.

Stages, in order:

* **baselines**: every method at its published defaults, once per seed (``goal.seeds``).
* **search**: the dials of every method that has them, through Optuna's ask/tell; each
  configuration runs once (seed 0) and may be stopped early by the pruner.
* **ladder**: once a round's claims are confirmed, the leading configuration's dials with
  a scale role (``params``, ``data``, ``steps``, ``epochs``) are stepped by factors of 2
  (x1/4 to x4, within their ranges) with the other dials held, over all seeds, if the
  whole ladder fits the trial budget. ``pursuit.scaling`` fits these rungs and forecasts
  what reaching the target takes.
* **confirm**: the most promising searched configurations re-run until they rest on
  ``goal.seeds`` seeds, so that claims are made over seeds, never over one lucky run.

Search and confirm alternate in rounds until a configuration's seed-mean interval
clears the target, or the budget is spent, or nothing is left to try; the run says which.

Sharing the search budget (the policy): every searchable method first gets
``min_search_trials`` trials. After that each search trial goes to the method with the
lowest ``trials / weight``, where ``weight = 1 / rank`` and rank 1 is the method whose best
value so far is best (closest to the target). The leading method thus gets the largest
share, and no method is starved: a method at rank r still gets about 1/r of the leader's
trials. Confirmation trials are reserved out of a trial budget before a round's search.

The engine is the only writer to the store. Its state is the store: starting it again
on the same goal re-reads every trial, takes back the trials a dead engine left
running (as *preempted*) and runs them again; finished trials are never run twice.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from pursuit.analysis.stats import clears, mean_interval
from pursuit.dials import Int, Value
from pursuit.exceptions import DialError
from pursuit.execution import Executor, InlineExecutor, ProcessExecutor
from pursuit.goal import Goal
from pursuit.methods import Method
from pursuit.search import MethodSearch, default_pruner, default_sampler
from pursuit.store import NewTrial, Store, WriteBatch, config_key, open_store
from pursuit.trial import Outcome, Point, Task, TrialState


@dataclass(frozen=True)
class Policy:
    """The loop's tunable rules; the defaults suit small goals on one machine."""

    search_round: int | None = None  # search trials per round; None: max(8, 4 x searchable)
    min_search_trials: int = 4  # trials every searchable method gets before the budget leans
    confirm_top: int = 2  # searched configurations confirmed per round, besides each method's best
    max_attempts: int = 3  # runs of a trial whose worker was killed before it counts as failed
    reap_after: float = 60.0  # seconds of silence before another engine's trial is taken back
    heartbeat_every: float = 5.0
    flush_every: float = 0.25  # seconds curve points may wait before they are written


@dataclass(frozen=True)
class Progress:
    """A snapshot for live views."""

    goal: str
    stage: str
    trials: int
    max_trials: int | None
    running: int
    completed: int
    failed: int
    pruned: int
    compute_seconds: float
    wall_seconds: float
    budget_fraction: float
    best_method: str | None
    best_mean: float
    best_lo: float
    best_hi: float
    best_n: int
    target: float | None
    direction: str


@dataclass(frozen=True)
class Summary:
    goal: str
    reason: str
    reached: bool
    trials: int
    wall_seconds: float
    refused_writes: int


@dataclass
class _Record:
    method: str
    stage: str
    dials: dict[str, Value]
    seed: int
    state: TrialState
    attempt: int
    value: float = math.nan
    wall: float = 0.0

    @property
    def config(self) -> str:
        return config_key(self.dials)


@dataclass
class _Live:
    trial_id: int
    attempt: int
    started: float
    optuna_trial: optuna.Trial | None = None


@dataclass
class _Plan:
    method: Method
    stage: str
    dials: dict[str, Value]
    seed: int
    optuna_trial: optuna.Trial | None = None
    rerun_of: int | None = None


class Engine:
    """Runs one goal (not its sub-goals) to its end on one store and one executor."""

    def __init__(self, goal: Goal, store: Store, executor: Executor, *,
                 goal_name: str | None = None, parent_id: int | None = None,
                 sampler: optuna.samplers.BaseSampler | None = None,
                 pruner: optuna.pruners.BasePruner | None = None,
                 policy: Policy | None = None, workdir: str | Path = "pursuit-work",
                 on_progress: Callable[[Progress], None] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.goal, self.store, self.executor = goal, store, executor
        self.name = goal_name or goal.name
        self.policy = policy or Policy()
        self.methods = {m.name: m for m in goal.resolved_methods()}
        self.searchable = [m for m in self.methods.values() if goal.searchable(m)]
        sampler = sampler or default_sampler()
        pruner = pruner or default_pruner()
        self.searches = {m.name: MethodSearch(m, goal.direction, sampler, pruner)
                         for m in self.searchable}
        self.goal_id = store.ensure_goal(self.name, goal.spec(), parent_id)
        self.engine_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.workdir = Path(workdir)
        self.on_progress, self.log = on_progress, log or (lambda _: None)
        self._records: dict[int, _Record] = {}
        # Tallies kept as trials come and go, so planning stays O(methods) per trial.
        self._searched: Counter[str] = Counter()  # search trials per method
        self._best: dict[str, float] = {}  # best completed value per method
        self._compute_done = 0.0  # wall seconds of finished trials
        self._keys: set[tuple[str, str, str, int]] = set()
        self._live: dict[int, _Live] = {}
        self._rerun: deque[int] = deque()
        self._kills: dict[int, int] = defaultdict(int)
        # Completed values per (method, configuration), to judge claims over seeds.
        self._claims: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        # The means of those with every seed, and the best of them, kept as values come
        # in: planning asks for the best claim often, and a scan of every configuration
        # each time made long runs quadratic.
        self._claim_means: dict[tuple[str, str], float] = {}
        self._best_key: tuple[str, str] | None = None
        self._config_dials: dict[tuple[str, str], dict[str, Value]] = {}
        self._batch = WriteBatch(engine=self.engine_id)
        self._refused = 0
        self._round_end = 0
        self._stage = "baselines"
        self._reached = False
        self._started = time.monotonic()
        self._wall_before = 0.0  # wall seconds earlier engines spent on this goal
        self._last_flush = self._last_beat = self._last_view = 0.0
        self._round_size = self.policy.search_round or max(8, 4 * len(self.searchable))

    # ----------------------------------------------------------------- running
    def run(self) -> Summary:
        self._wall_before = self.store.start_run(self.goal_id, self.engine_id)
        self._resume()
        self.executor.start(self)
        reason = ""
        try:
            while True:
                self.executor.poll(0.05)
                if self._wall_spent() and self._live:
                    self._preempt_live("the wall-clock budget ran out")
                planned = self._fill_slots()  # writes its new trials before they are submitted
                self._flush()
                for plan, trial_id, attempt in planned:
                    self.executor.submit(self._task(plan, trial_id, attempt))
                self._maybe_heartbeat()
                self._view()
                if not self._live and not planned:
                    reason = self._why_stopped()
                    break
        except BaseException as error:
            # Whatever stops the engine, what finished is written and what ran is given back.
            self.executor.close(kill=True)
            why = "the engine was interrupted (Ctrl-C)" if isinstance(
                error, KeyboardInterrupt) else f"the engine stopped: {error!r}"[:500]
            self._preempt_live(why)
            # Trials written a moment before, not yet handed to a worker, go back too.
            held = {trial_id for trial_id, _, _ in self._batch.preempted}
            for running in self.store.running(self.goal_id):
                if running.engine == self.engine_id and running.id not in held:
                    self._batch.preempted.append((running.id, running.attempt, why))
            self._flush(force=True)
            reason = f"{why}: run the same command again to resume"
            with contextlib.suppress(Exception):  # the store may be what failed
                self.store.end_run(self.goal_id, self.engine_id, reason)
            raise
        else:
            self.executor.close()
            self._flush(force=True)
            # The run's end counts toward its wall time, and says why it ended.
            self.store.end_run(self.goal_id, self.engine_id, reason)
        finally:
            self._view(force=True)
            if reason:
                self.log(f"{self.name}: {reason}")
        return Summary(self.name, reason, self._reached, len(self._records),
                       time.monotonic() - self._started, self._refused)

    def _task(self, plan: _Plan, trial_id: int, attempt: int) -> Task:
        self._live[trial_id] = _Live(trial_id, attempt, time.monotonic(), plan.optuna_trial)
        return Task(trial_id, attempt, plan.method, plan.dials, plan.seed, self.goal.metric,
                    str(self.workdir / self.name / str(trial_id)), self.goal.trial_timeout)

    def _fill_slots(self) -> list[tuple[_Plan, int, int]]:
        """Plan trials for the free slots and put them in the pending batch."""
        plans: list[_Plan] = []
        while self.executor.busy() + len(plans) < self.executor.slots:
            plan = self._next(plans)
            if plan is None:
                break
            plans.append(plan)
        if not plans:
            return []
        fresh = [p for p in plans if p.rerun_of is None]
        self._batch.new.extend(NewTrial(self.goal_id, p.method.name, p.stage, p.dials, p.seed)
                               for p in fresh)
        out = []
        for plan in plans:
            if plan.rerun_of is not None:
                record = self._records[plan.rerun_of]
                record.attempt += 1
                record.state = TrialState.RUNNING
                self._batch.restarts.append((plan.rerun_of, record.attempt))
                out.append((plan, plan.rerun_of, record.attempt))
        ids = self._flush(force=True)
        for plan, trial_id in zip(fresh, ids, strict=True):
            if trial_id is None:  # another engine on this goal planned it first
                self._keys.add((plan.stage, plan.method.name, config_key(plan.dials),
                                plan.seed))
                continue
            self._remember(trial_id, _Record(plan.method.name, plan.stage, plan.dials, plan.seed,
                                             TrialState.RUNNING, 1))
            out.append((plan, trial_id, 1))
        return out

    # ----------------------------------------------------------------- planning
    def _next(self, planned: list[_Plan]) -> _Plan | None:
        while self._rerun:
            trial_id = self._rerun.popleft()
            record = self._records[trial_id]
            if record.state is not TrialState.PREEMPTED:
                continue
            optuna_trial = None
            if record.stage == "search" and record.method in self.searches:
                optuna_trial, _ = self.searches[record.method].ask(record.dials)
            return _Plan(self.methods[record.method], record.stage, record.dials, record.seed,
                         optuna_trial, rerun_of=trial_id)
        if self._reached or self._budget_spent(len(planned)):
            return None
        taken = {(p.stage, p.method.name, config_key(p.dials), p.seed) for p in planned}
        for seed in range(self.goal.seeds):
            for method in self.methods.values():
                dials = method.defaults()
                key = ("baselines", method.name, config_key(dials), seed)
                if key not in self._keys and key not in taken:
                    self._stage = "baselines"
                    return _Plan(method, "baselines", dials, seed)
        searched = sum(self._searched.values()) + sum(p.stage == "search" for p in planned)
        if self.searchable and searched < self._round_end and self._search_allowed(planned):
            return self._search_plan(planned)
        if any(r.stage == "search" for r in self._live_records()) or \
                any(p.stage == "search" for p in planned):
            return None  # the round's search is still running; confirm once it is in
        confirm = self._confirm_plan(taken)
        if confirm is not None:
            self._stage = "confirm"
            return confirm
        if self._live or planned:
            return None  # the round's claims are still being confirmed
        ladder = self._ladder_plan(taken)
        if ladder is not None:
            self._stage = "ladder"
            return ladder
        if not self.searchable or not self._search_allowed(planned):
            return None
        self._round_end = searched + self._round_size
        return self._search_plan(planned)

    def _search_allowed(self, planned: list[_Plan]) -> bool:
        limit = self.goal.budget.max_trials
        reserve = (self.goal.seeds - 1) * self.policy.confirm_top
        return limit is None or len(self._records) + len(planned) + reserve < limit

    def _search_plan(self, planned: list[_Plan]) -> _Plan:
        method = self._pick_method(planned)
        optuna_trial, dials = self.searches[method.name].ask()
        self._stage = "search"
        return _Plan(method, "search", dials, 0, optuna_trial)

    def _pick_method(self, planned: list[_Plan]) -> Method:
        counts = {m.name: self._searched[m.name] for m in self.searchable}
        for plan in planned:
            if plan.stage == "search":
                counts[plan.method.name] += 1
        under = [m for m in self.searchable if counts[m.name] < self.policy.min_search_trials]
        if under:
            return min(under, key=lambda m: counts[m.name])
        best = {m.name: self._best.get(m.name, math.nan) for m in self.searchable}
        sign = -1.0 if self.goal.direction == "maximize" else 1.0
        ranked = sorted(self.searchable,
                        key=lambda m: math.inf if math.isnan(best[m.name]) else sign * best[m.name])
        rank = {m.name: i + 1 for i, m in enumerate(ranked)}
        return min(self.searchable, key=lambda m: counts[m.name] * rank[m.name])

    def _ladder_plan(self, taken: set[tuple[str, str, str, int]]) -> _Plan | None:
        """The next rung of the leader's scaling ladder: each dial with a scale role stepped
        by factors of 2 (1/4, 1/2, 2, 4) with the other dials at the leader's values."""
        best = self._best_claim(with_config=True)
        if best is None:
            return None
        method = self.methods[best[0]]
        leader = dict(self._config_dials[(best[0], best[5])])
        rungs = ladder_rungs(method, leader)
        cost = sum(1 for dials in rungs for seed in range(self.goal.seeds)
                   if ("ladder", method.name, config_key(dials), seed) not in self._keys)
        limit = self.goal.budget.max_trials
        if cost == 0 or (limit is not None and len(self._records) + cost > limit):
            return None  # climbed already, or the whole ladder does not fit the budget
        for dials in rungs:
            key = config_key(dials)
            for seed in range(self.goal.seeds):
                k = ("ladder", method.name, key, seed)
                if k not in self._keys and k not in taken:
                    return _Plan(method, "ladder", dials, seed)
        return None

    def _confirm_plan(self, taken: set[tuple[str, str, str, int]]) -> _Plan | None:
        """The next missing seed of a configuration worth confirming."""
        for method_name, dials in self._confirm_candidates():
            key = config_key(dials)
            for seed in range(1, self.goal.seeds):
                k = ("confirm", method_name, key, seed)
                if k not in self._keys and k not in taken and \
                        ("baselines", method_name, key, seed) not in self._keys:
                    return _Plan(self.methods[method_name], "confirm", dials, seed)
        return None

    def _confirm_candidates(self) -> list[tuple[str, dict[str, Value]]]:
        searched = [r for r in self._records.values() if r.stage == "search"
                    and r.state is TrialState.COMPLETED and math.isfinite(r.value)]
        sign = -1.0 if self.goal.direction == "maximize" else 1.0
        searched.sort(key=lambda r: sign * r.value)
        chosen: list[tuple[str, dict[str, Value]]] = []
        seen: set[tuple[str, str]] = set()
        best_per_method = {}
        for record in searched:
            best_per_method.setdefault(record.method, record)
        for record in searched[: self.policy.confirm_top] + list(best_per_method.values()):
            if (record.method, record.config) not in seen:
                seen.add((record.method, record.config))
                chosen.append((record.method, record.dials))
        return chosen

    def _live_records(self) -> list[_Record]:
        return [self._records[i] for i in self._live]

    # ----------------------------------------------------------------- budget
    def _compute_spent(self) -> float:
        now = time.monotonic()
        return self._compute_done + sum(now - live.started for live in self._live.values())

    def _wall_spent(self) -> bool:
        limit = self.goal.budget.wall_seconds
        return limit is not None and self._wall_used() >= limit

    def _wall_used(self) -> float:
        return self._wall_before + time.monotonic() - self._started

    def _budget_spent(self, extra: int = 0) -> bool:
        budget = self.goal.budget
        if budget.max_trials is not None and len(self._records) + extra >= budget.max_trials:
            return True
        if budget.compute_seconds is not None and \
                self._compute_spent() >= budget.compute_seconds:
            return True
        return self._wall_spent()

    def _budget_fraction(self) -> float:
        budget, parts = self.goal.budget, []
        if budget.max_trials:
            parts.append(len(self._records) / budget.max_trials)
        if budget.compute_seconds:
            parts.append(self._compute_spent() / budget.compute_seconds)
        if budget.wall_seconds:
            parts.append(self._wall_used() / budget.wall_seconds)
        return min(1.0, max(parts, default=0.0))

    def _why_stopped(self) -> str:
        if self._reached:
            return f"target reached: {self._best_text()}"
        if self._budget_spent() or (self.searchable and not self._search_allowed([])):
            budget = self.goal.budget
            if self._wall_spent():
                which = f"{budget.wall_seconds:g} s of wall clock"
            elif budget.compute_seconds is not None and \
                    self._compute_spent() >= budget.compute_seconds:
                which = f"{budget.compute_seconds:g} compute seconds"
            else:
                which = f"{budget.max_trials} trials, less those kept to confirm claims"
            return f"budget spent ({which}); best so far: {self._best_text()}"
        return f"nothing left to try; best: {self._best_text()}"

    def _best_text(self) -> str:
        best = self._best_claim()
        if best is None:
            return f"no configuration has {self.goal.seeds} completed seeds yet"
        method, mean, lo, hi, n = best
        interval = f" [{lo:.4g}, {hi:.4g}]" if n > 1 else ""
        return f"{method} {self.goal.metric} {mean:.4g}{interval} over {n} seeds"

    def _best_claim(self, with_config: bool = False) -> tuple[Any, ...] | None:
        """(method, mean, lo, hi, n[, config]) of the best configuration with all seeds."""
        if self._best_key is None:
            return None
        method, config = self._best_key
        values = self._claims[self._best_key]
        mean, lo, hi = mean_interval(values)
        best = (method, mean, lo, hi, len(values), config)
        return best if with_config else best[:5]

    # ----------------------------------------------------------------- events (Sink)
    def on_report(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        live = self._live.get(trial_id)
        if live is None or live.attempt != attempt:
            self._refused += 1
            return
        self._batch.add_points(trial_id, attempt, points)
        if live.optuna_trial is not None:
            search = self.searches[self._records[trial_id].method]
            for step, metric, value in points:
                if metric == self.goal.metric:
                    search.report(live.optuna_trial, step, value)

    def should_stop(self, trial_id: int, attempt: int) -> bool:
        live = self._live.get(trial_id)
        if live is None or live.attempt != attempt:
            return True  # a trial the engine no longer runs: stop it
        if live.optuna_trial is None:
            return False  # baselines and confirmations always run to the end
        return self.searches[self._records[trial_id].method].should_prune(live.optuna_trial)

    def on_finish(self, outcome: Outcome) -> None:
        live = self._live.get(outcome.trial_id)
        if live is None or live.attempt != outcome.attempt:
            self._refused += 1
            self.log(f"refused a late outcome for trial {outcome.trial_id}")
            return
        del self._live[outcome.trial_id]
        record = self._records[outcome.trial_id]
        if outcome.state is TrialState.PREEMPTED:
            self._kills[outcome.trial_id] += 1
            if self._kills[outcome.trial_id] < self.policy.max_attempts:
                self._batch.preempted.append((outcome.trial_id, outcome.attempt,
                                              outcome.error or "preempted"))
                record.state = TrialState.PREEMPTED
                self._rerun.append(outcome.trial_id)
                return
            outcome = replace(outcome, state=TrialState.FAILED, error=(
                f"preempted {self._kills[outcome.trial_id]} times; last: {outcome.error}"))
        self._batch.outcomes.append(outcome)
        value = outcome.values.get(self.goal.metric, math.nan)
        record.state, record.value, record.wall = outcome.state, value, outcome.wall_seconds
        self._tally_finished(record)
        if live.optuna_trial is not None:
            self.searches[record.method].tell(live.optuna_trial, outcome.state.value, value)
        if outcome.state is TrialState.COMPLETED:
            self._claim(record)

    def _tally_finished(self, record: _Record) -> None:
        self._compute_done += record.wall
        if record.state is TrialState.COMPLETED and math.isfinite(record.value):
            best = self._best.get(record.method)
            if best is None or self.goal.better(record.value, best):
                self._best[record.method] = record.value

    def _claim(self, record: _Record) -> None:
        self._config_dials[(record.method, record.config)] = record.dials
        key = (record.method, record.config)
        values = self._claims[key]
        values.append(record.value)
        if len(values) >= self.goal.seeds:
            mean, lo, hi = mean_interval(values)
            self._claim_means[key] = mean
            if key == self._best_key:  # the best moved: any other may now lead
                self._best_key = None
                for other, other_mean in self._claim_means.items():
                    if self._best_key is None or self.goal.better(
                            other_mean, self._claim_means[self._best_key]):
                        self._best_key = other
            elif self._best_key is None or self.goal.better(
                    mean, self._claim_means[self._best_key]):
                self._best_key = key
            if clears(lo, hi, mean, len(values), self.goal.seeds, self.goal.target,
                      self.goal.direction):
                self._reached = True

    def _preempt_live(self, why: str) -> None:
        for trial_id, live in list(self._live.items()):
            self._batch.preempted.append((trial_id, live.attempt, why))
            self._records[trial_id].state = TrialState.PREEMPTED
            if live.optuna_trial is not None:
                self.searches[self._records[trial_id].method].tell(
                    live.optuna_trial, "failed", None)
        self._live.clear()
        if self.executor.busy():
            self.executor.close(kill=True)
            self.executor.start(self)

    # ----------------------------------------------------------------- the store
    def _resume(self) -> None:
        """Rebuild the engine's view from the store and take back orphaned trials."""
        clock = self.store.now()
        for running in self.store.running(self.goal_id):
            if engine_gone(running.engine, self.engine_id) or running.heartbeat_at is None or \
                    clock - running.heartbeat_at > self.policy.reap_after:
                self._batch.preempted.append(
                    (running.id, running.attempt, "its engine stopped while it ran"))
        self._flush(force=True)
        curves = self.store.curves(self.goal_id, self.goal.metric) if self.searches else {}
        for trial in self.store.trials(self.goal_id):
            if trial.method not in self.methods:
                continue  # a method since removed from the goal: its results stay in the store
            record = _Record(trial.method, trial.stage, trial.dials, trial.seed, trial.state,
                             trial.attempt, trial.values.get(self.goal.metric, math.nan),
                             trial.wall_seconds or 0.0)
            self._remember(trial.id, record)
            if trial.state is TrialState.PREEMPTED:
                self._rerun.append(trial.id)
            elif trial.state.finished and trial.method in self.searches:
                self.searches[trial.method].record(trial.dials, record.value, trial.state.value,
                                                   curves.get(trial.id, {}))
            if trial.state is TrialState.COMPLETED:
                self._claim(record)
        searched = sum(self._searched.values())
        self._round_end = math.ceil(searched / self._round_size) * self._round_size

    def _remember(self, trial_id: int, record: _Record) -> None:
        self._records[trial_id] = record
        if record.stage == "search":
            self._searched[record.method] += 1
        if record.state.finished:
            self._tally_finished(record)
        self._keys.add((record.stage, record.method, record.config, record.seed))

    def _flush(self, *, force: bool = False) -> list[int | None]:
        batch = self._batch
        if not batch:
            return []
        only_points = not (batch.new or batch.restarts or batch.outcomes or batch.preempted)
        if only_points and not force and len(batch.points) < 50_000 and \
                time.monotonic() - self._last_flush < self.policy.flush_every:
            return []
        self._batch = WriteBatch(engine=self.engine_id)
        result = self.store.write(batch)
        self._last_flush = time.monotonic()
        for line in result.refused:
            self._refused += 1
            self.log(f"refused write: {line}")
        return result.new_ids

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= self.policy.heartbeat_every:
            self.store.heartbeat(self.engine_id)
            self._last_beat = now

    def _view(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self._last_view < 0.2):
            return
        self._last_view = now
        states = [r.state for r in self._records.values()]
        best = self._best_claim()
        self.on_progress(Progress(
            goal=self.name, stage=self._stage, trials=len(self._records),
            max_trials=self.goal.budget.max_trials, running=len(self._live),
            completed=states.count(TrialState.COMPLETED), failed=states.count(TrialState.FAILED),
            pruned=states.count(TrialState.PRUNED), compute_seconds=self._compute_spent(),
            wall_seconds=now - self._started, budget_fraction=self._budget_fraction(),
            best_method=best[0] if best else None, best_mean=best[1] if best else math.nan,
            best_lo=best[2] if best else math.nan, best_hi=best[3] if best else math.nan,
            best_n=best[4] if best else 0, target=self.goal.target,
            direction=self.goal.direction))


LADDER_FACTORS = (0.25, 0.5, 2.0, 4.0)


def ladder_rungs(method: Method, leader: dict[str, Value]) -> list[dict[str, Value]]:
    """The configurations of a scaling ladder around ``leader``, within the dials' ranges."""
    rungs: list[dict[str, Value]] = []
    for name, dial in method.dials.items():
        if dial.scale is None or not isinstance(leader.get(name), int | float):
            continue
        for factor in LADDER_FACTORS:
            value: Value = leader[name] * factor  # type: ignore[operator]
            if isinstance(dial, Int):
                value = int(round(value))
            try:
                value = dial.validate(name, value)
            except DialError:
                continue  # off the end of the dial's range
            rung = {**leader, name: value}
            if rung != leader and rung not in rungs:
                rungs.append(rung)
    return rungs


def engine_gone(engine: str | None, current: str | None = None) -> bool:
    """Whether ``engine`` (host:pid:token) was a process of this machine that has ended.

    An engine of another machine is never judged gone here, only by its heartbeats.
    ``current`` is the asking engine's id: another id with its pid is an earlier engine
    of the same process."""
    if not engine:
        return True
    host, _, rest = engine.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return engine != current
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def run(goal: Goal, store: Store | str | None = None, executor: Executor | str | None = None,
        *, workers: int | None = None, sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None, policy: Policy | None = None,
        workdir: str | Path = "pursuit-work",
        on_progress: Callable[[Progress], None] | None = None,
        log: Callable[[str], None] | None = None) -> list[Summary]:
    """Run a goal, then each of its sub-goals, and say how each one ended.

    ``store`` is a Store or a URL (default: $PURSUIT_STORE, else ./pursuit.db);
    ``executor`` an Executor, ``"inline"`` or ``"processes"`` (the default).
    """
    owned = not isinstance(store, Store)
    opened = store if isinstance(store, Store) else open_store(store)
    try:
        summaries: list[Summary] = []
        _run_tree(goal, opened, executor, workers, None, None, summaries,
                  dict(sampler=sampler, pruner=pruner, policy=policy, workdir=workdir,
                       on_progress=on_progress, log=log))
        return summaries
    finally:
        if owned:
            opened.close()


def _run_tree(goal: Goal, store: Store, executor: Executor | str | None, workers: int | None,
              name: str | None, parent_id: int | None, summaries: list[Summary],
              options: dict[str, Any]) -> None:
    engine = Engine(goal, store, _executor(executor, workers), goal_name=name,
                    parent_id=parent_id, **options)
    summaries.append(engine.run())
    for sub in goal.subgoals:
        _run_tree(sub, store, executor, workers, f"{engine.name}/{sub.name}", engine.goal_id,
                  summaries, options)


def _executor(executor: Executor | str | None, workers: int | None) -> Executor:
    if isinstance(executor, Executor):
        return executor
    if executor in (None, "processes"):
        return ProcessExecutor(workers)
    if executor == "inline":
        return InlineExecutor()
    raise ValueError(f"executor must be 'processes', 'inline' or an Executor, got {executor!r}")
