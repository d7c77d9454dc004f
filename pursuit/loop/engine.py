"""The engine: a short conductor of the loop's parts, for one goal on one store.

Each step: the executor delivers what happened (reports, questions, endings); the
planner says what runs next; the journal writes it; the executor runs it. The engine
is the only writer to the store, and the store is its memory: started again on the
same goal, it reads every trial back, takes back what a dead engine left running (as
*preempted*) and goes on; a finished trial is never run again.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import optuna

from pursuit.analysis.claims import ClaimBook, Direction, Stage
from pursuit.exceptions import GoalError
from pursuit.execution import Executor, InlineExecutor, ProcessExecutor, Terminated
from pursuit.goal import ExecutorSpec, Goal
from pursuit.loop.budget import BudgetKeeper, warnings
from pursuit.loop.journal import Journal, new_engine_id
from pursuit.loop.planner import Plan, Planner, Policy
from pursuit.loop.record import Live, Record, TrialBook
from pursuit.search import MethodSearch, of_goal, require
from pursuit.store import NewTrial, Store, TrialRecord, open_store
from pursuit.trial import Outcome, Point, Task, TrialState

SYNC_OVERLAP = 5.0  # seconds of the store's clock read again at each sync, so that a trial
# whose finish was stamped just before a read but committed after it is not missed


NEAR_THE_END = 4  # trials left per slot below which each start counts the store's trials


class StopReason(StrEnum):
    TARGET_REACHED = "target reached"
    BUDGET_SPENT = "budget spent"
    NOTHING_LEFT = "nothing left to try"
    INTERRUPTED = "interrupted"
    FAILED = "the engine stopped"


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
    stop: StopReason | None = None


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
        self.metric = goal.metric
        self.methods = {m.name: m for m in goal.resolved_methods()}
        sampler, pruner = sampler or of_goal("sampler", goal.sampler), \
            pruner or of_goal("pruner", goal.pruner)
        require(sampler, pruner)  # what Optuna would import only after the baselines
        searchable = [m for m in self.methods.values() if goal.searchable(m)]
        self.searches = {m.name: MethodSearch(m, goal.direction, sampler, pruner, stream=i)
                         for i, m in enumerate(searchable)}
        self.goal_id = store.ensure_goal(self.name, goal.spec(), parent_id)
        self.engine_id = new_engine_id()
        # Absolute, and one per store and goal: a method may chdir into its folder, and
        # two stores in one folder must never hand a trial the other's checkpoints.
        self.workdir = Path(workdir).resolve() / store_key(store) / self.name
        self.on_progress, self.log = on_progress, log or (lambda _: None)
        direction = Direction(goal.direction)
        self.book = TrialBook(direction)
        self.claims = ClaimBook(direction, goal.target, goal.seeds)
        self.budget = BudgetKeeper(goal, self.book)
        self.planner = Planner(goal, self.methods, self.searches, self.book, self.claims,
                               self.budget, self.policy)
        self.journal = Journal(store, self.goal_id, self.engine_id,
                               flush_every=self.policy.flush_every,
                               heartbeat_every=self.policy.heartbeat_every, log=self.log)
        self._kills: dict[int, int] = {}
        self._started = time.monotonic()
        self._last_view = 0.0
        self._last_sync = self._last_reap = time.monotonic()
        self._synced_to = 0.0  # the store's clock: what others finished before it is read
        self._running_elsewhere = 0  # the goal's trials other engines run, at the last read

    # ----------------------------------------------------------------- running
    def run(self) -> Summary:
        for line in warnings(self.goal, search_round=self.planner.round_size,
                             reserve=self.policy.reserve(self.goal.seeds)):
            self.log(f"{self.name}: {line}")
        self.budget.wall_before = self.journal.start()
        self._resume()
        self.journal.start_beating()
        reason, stop = "", None
        try:
            self.executor.start(self)  # inside: one that fails to start ends the run cleanly
            while True:
                self.executor.poll(0.05)
                self._sync()
                if self.budget.wall_spent() and self.book.live:
                    self._preempt_live("the wall-clock budget ran out")
                planned = self._start_next()
                self.journal.flush()
                self._view()
                if not self.book.live and not planned:
                    if self.claims.reached and self._running_elsewhere:
                        # Others' trials still run: their verifications may have begun
                        # before ours. Judge once they land, so that every engine on the
                        # goal names the claim the leaderboard names.
                        continue
                    stop, reason = self._why_stopped()
                    break
        except BaseException as error:
            # Whatever stops the engine, what finished is written and what ran is given back.
            self.executor.close(kill=True)

            interrupted = isinstance(error, KeyboardInterrupt | Terminated)
            stop = StopReason.INTERRUPTED if interrupted else StopReason.FAILED
            if isinstance(error, KeyboardInterrupt):
                why = "the engine was interrupted (Ctrl-C)"
            elif isinstance(error, Terminated):
                why = str(error)  # "the engine was stopped by SIGTERM"
            else:
                why = f"the engine stopped: {error!r}"[:500]
            self._preempt_live(why)
            self.journal.give_back_own(why)
            self.journal.flush(force=True)
            reason = f"{why}: run the same command again to resume"
            with contextlib.suppress(Exception):  # the store may be what failed
                self.journal.end(reason)
            raise
        else:
            self.executor.close()
            self.journal.flush(force=True)
            self.journal.end(reason)  # the run's end counts toward its wall time
        finally:
            self.journal.stop_beating()
            self._view(force=True)
            if reason:
                self.log(f"{self.name}: {reason}")
        return Summary(self.name, reason, self.claims.reached, len(self.book),
                       time.monotonic() - self._started, self.journal.refused, stop)

    def _start_next(self) -> int:
        """Plan trials for the free slots, write them, and hand them to the executor;
        return how many were planned. A plan another engine on the goal made first is
        not run here, and still counts: the planner has more to do, and says so next."""
        plans: list[Plan] = []
        if self.goal.budget.max_trials and self.executor.busy() < self.executor.slots and (
                self._running_elsewhere or
                self.budget.trials_left() <= NEAR_THE_END * self.executor.slots):
            # A shared trial budget, or the last trials of one: count the store's afresh
            # (read once a second, others' trials may be many since).
            self._count_others()
        while self.executor.busy() + len(plans) < self.executor.slots:
            plan = self.planner.next(plans)
            if plan is None:
                break
            plans.append(plan)
        if not plans:
            return 0
        ready: list[tuple[Plan, int, int]] = []
        for plan in plans:
            if plan.rerun_of is not None:
                record = self.book.records[plan.rerun_of]
                self.book.set_state(plan.rerun_of, TrialState.RUNNING)
                if not self.journal.claim(plan.rerun_of, record.attempt + 1):
                    # another engine on the goal runs it again: its ending arrives by sync
                    if plan.optuna_trial is not None:
                        self.searches[plan.method.name].tell(plan.optuna_trial, "failed", None)
                    continue
                record.attempt += 1
                ready.append((plan, plan.rerun_of, record.attempt))
        fresh = [p for p in plans if p.rerun_of is None]
        ids = self.journal.create([NewTrial(self.goal_id, p.method.name, p.stage, p.dials,
                                            p.seed) for p in fresh])
        for plan, trial_id in zip(fresh, ids, strict=True):
            if trial_id is None:  # another engine on this goal created it first
                self.book.taken_elsewhere(plan.key, plan.stage)
                if plan.optuna_trial is not None:
                    self.searches[plan.method.name].tell(plan.optuna_trial, "failed", None)
                continue
            self.book.add(trial_id, Record(plan.method.name, plan.stage, plan.dials,
                                           plan.seed, TrialState.RUNNING, 1))
            ready.append((plan, trial_id, 1))
        for plan, trial_id, attempt in ready:
            self.book.live[trial_id] = Live(trial_id, attempt, time.monotonic(),
                                            plan.optuna_trial)
            self.executor.submit(Task(
                trial_id, attempt, plan.method, plan.dials, plan.seed, self.metric,
                str(self.workdir / str(trial_id)), self.goal.trial_timeout))
        return len(plans)

    def _why_stopped(self) -> tuple[StopReason, str]:
        best = self.claims.best()
        best_text = best.text(self.metric) if best else \
            f"no configuration has {self.goal.seeds} completed seeds yet"
        if self.claims.reached:
            return StopReason.TARGET_REACHED, f"target reached: {best_text}"
        if self.budget.spent():
            return StopReason.BUDGET_SPENT, \
                f"budget spent ({self.budget.what_ran_out()}); best so far: {best_text}"
        return StopReason.NOTHING_LEFT, f"nothing left to try; best: {best_text}"

    # ----------------------------------------------------------------- events (Sink)
    def on_report(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        live = self.book.live.get(trial_id)
        if live is None or live.attempt != attempt:
            self.journal.refused += 1
            return
        self.journal.points(trial_id, attempt, points)
        if live.optuna_trial is not None:
            search = self.searches[self.book.records[trial_id].method]
            for step, metric, value in points:
                if metric == self.metric:
                    search.report(live.optuna_trial, step, value)

    def should_stop(self, trial_id: int, attempt: int) -> bool:
        live = self.book.live.get(trial_id)
        if live is None or live.attempt != attempt:
            return True  # a trial the engine no longer runs: stop it
        if live.optuna_trial is None:
            return False  # only search trials stop early; claims rest on whole runs
        return self.searches[self.book.records[trial_id].method].should_prune(
            live.optuna_trial)

    def on_finish(self, outcome: Outcome) -> None:
        live = self.book.live.get(outcome.trial_id)
        if live is None or live.attempt != outcome.attempt:
            self.journal.refused += 1
            self.log(f"refused a late outcome for trial {outcome.trial_id}")
            return
        del self.book.live[outcome.trial_id]
        if outcome.state is TrialState.PREEMPTED:
            kills = self._kills[outcome.trial_id] = self._kills.get(outcome.trial_id, 0) + 1
            if kills < self.policy.max_attempts:
                self.journal.preempt(outcome.trial_id, outcome.attempt,
                                     outcome.error or "preempted")
                self.book.set_state(outcome.trial_id, TrialState.PREEMPTED)
                self.planner.reruns.append(outcome.trial_id)
                if live.optuna_trial is not None:
                    self._search_of(outcome.trial_id).tell(live.optuna_trial, "failed", None)
                return
            outcome = replace(outcome, state=TrialState.FAILED, error=(
                f"preempted {kills} times; last: {outcome.error}"))
        self.journal.outcome(outcome)
        value = outcome.values.get(self.metric, math.nan)
        record = self.book.finish(outcome.trial_id, outcome.state, value, outcome.wall_seconds)
        told = value if outcome.state is TrialState.COMPLETED else None
        if live.optuna_trial is not None:
            self._search_of(outcome.trial_id).tell(live.optuna_trial, outcome.state.value,
                                                   told)
        self.planner.settled(outcome.trial_id, outcome.state.value, told)
        if outcome.state is TrialState.COMPLETED:
            self.claims.add(record.method, record.config, record.stage, record.seed, value)

    def _search_of(self, trial_id: int) -> MethodSearch:
        return self.searches[self.book.records[trial_id].method]

    def _preempt_live(self, why: str) -> None:
        for trial_id, live in list(self.book.live.items()):
            self.journal.preempt(trial_id, live.attempt, why)
            self.book.set_state(trial_id, TrialState.PREEMPTED)
            self.planner.reruns.append(trial_id)
            if live.optuna_trial is not None:
                self._search_of(trial_id).tell(live.optuna_trial, "failed", None)
            self.planner.settled(trial_id, "failed", None)
        self.book.live.clear()
        if self.executor.busy():
            self.executor.close(kill=True)
            self.executor.start(self)

    # ----------------------------------------------------------------- other engines
    def _sync(self, force: bool = False) -> None:
        """Read what the goal's other engines did since the last read: what they
        finished joins the record, the claims and the samplers (one budget, one
        judgement, one search); what they left to run again (preempted, or running
        under an engine gone silent) is run again here, if no other engine takes it
        first."""
        now = time.monotonic()
        if not force and now - self._last_sync < self.policy.sync_every:
            return
        self._last_sync = now
        self.journal.flush(force=True)  # what the others read of us
        learned = False
        for trial in self.journal.finished_since(self._synced_to - SYNC_OVERLAP):
            self._synced_to = max(self._synced_to, trial.finished_at or 0.0)
            learned |= self._learn(trial)
        if now - self._last_reap >= self.policy.reap_after / 4:
            self._last_reap = now
            self.journal.give_back_orphans(self.policy.reap_after)
        for trial in self.journal.preempted():
            record = self.book.records.get(trial.id)
            if record is None:
                learned |= self._learn(trial)
            elif trial.id not in self.book.live and record.state is not TrialState.PREEMPTED:
                record.attempt = trial.attempt  # ran elsewhere and was given back
                self.book.set_state(trial.id, TrialState.PREEMPTED)
            if trial.id not in self.planner.reruns and trial.id not in self.book.live:
                self.planner.reruns.append(trial.id)
        self._count_others()
        if learned:
            self._rejudge()

    def _count_others(self) -> None:
        """The goal's trials in the store that this engine has not read (others'
        running, counted in the budget), and how many run elsewhere."""
        counts = self.journal.counts()
        self.budget.elsewhere = max(0, sum(counts.values()) - len(self.book))
        self._running_elsewhere = max(0, counts.get(TrialState.RUNNING, 0)
                                      - len(self.book.live))

    def _learn(self, trial: TrialRecord) -> bool:
        """Add another engine's trial to the record (and, finished, to the search);
        False when it adds nothing (already known as it is, or one of ours)."""
        if trial.method not in self.methods or trial.id in self.book.live:
            return False
        known = self.book.records.get(trial.id)
        if known is not None and (known.state.finished or known.state is trial.state):
            return False
        value = trial.values.get(self.metric, math.nan)
        if known is None:
            self.book.add(trial.id, Record(trial.method, Stage(trial.stage), trial.dials,
                                           trial.seed, trial.state, trial.attempt, value,
                                           trial.wall_seconds or 0.0))
        elif trial.state.finished:
            known.attempt = trial.attempt
            self.book.finish(trial.id, trial.state, value, trial.wall_seconds or 0.0)
            if trial.id in self.planner.reruns:
                self.planner.reruns.remove(trial.id)
        else:
            self.book.set_state(trial.id, trial.state)
        if trial.state.finished and trial.method in self.searches:
            curve = {step: v for attempt, step, name, v in self.store.curve(trial.id)
                     if attempt == trial.attempt and name == self.metric}
            self.searches[trial.method].record(trial.dials, value, trial.state.value, curve)
        return True

    def _rejudge(self) -> None:
        """The claims again from every trial known, in the order they were created: the
        order the leaderboard reads them in, so that every engine on the goal and the
        leaderboard judge alike (the k-th verification is the k-th in the store)."""
        claims = ClaimBook(self.claims.direction, self.goal.target, self.goal.seeds)
        for trial_id in sorted(self.book.records):
            record = self.book.records[trial_id]
            value = record.value if record.state is TrialState.COMPLETED else math.nan
            claims.add(record.method, record.config, record.stage, record.seed, value)
        self.claims = self.planner.claims = claims

    # ----------------------------------------------------------------- the store
    def _resume(self) -> None:
        """Rebuild the engine's view from the store and take back orphaned trials."""
        self.journal.give_back_orphans(self.policy.reap_after)
        self._synced_to = self.store.now()  # read in full below; others' news from here on
        trials, curves = self.journal.past(self.metric, with_curves=bool(self.searches))
        for trial in trials:
            if trial.method not in self.methods:
                continue  # a method since removed from the goal: its results stay in the store
            value = trial.values.get(self.metric, math.nan)
            record = Record(trial.method, Stage(trial.stage), trial.dials, trial.seed,
                            trial.state, trial.attempt, value, trial.wall_seconds or 0.0)
            self.book.add(trial.id, record)
            if record.stage is Stage.VERIFY:
                self.claims.start_verification(record.method, record.config)
            if trial.state is TrialState.PREEMPTED:
                self.planner.reruns.append(trial.id)
            elif trial.state.finished and trial.method in self.searches:
                self.searches[trial.method].record(trial.dials, value, trial.state.value,
                                                   curves.get(trial.id, {}))
            if trial.state is TrialState.COMPLETED:
                self.claims.add(record.method, record.config, record.stage, record.seed,
                                value)
        for search in self.searches.values():
            search.resumed()
        self.planner.resumed()

    def _view(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self._last_view < 0.2):
            return
        self._last_view = now
        best = self.claims.best()
        states = self.book.states
        self.on_progress(Progress(
            goal=self.name, stage=self.planner.stage.value, trials=len(self.book),
            max_trials=self.goal.budget.max_trials, running=len(self.book.live),
            completed=states[TrialState.COMPLETED], failed=states[TrialState.FAILED],
            pruned=states[TrialState.PRUNED], compute_seconds=self.book.compute_spent(),
            wall_seconds=now - self._started, budget_fraction=self.budget.fraction(),
            best_method=best.claim.method if best else None,
            best_mean=best.claim.mean if best else math.nan,
            best_lo=best.lo if best else math.nan, best_hi=best.hi if best else math.nan,
            best_n=best.claim.n if best else 0, target=self.goal.target,
            direction=self.goal.direction))


def store_key(store: Store) -> str:
    """A short name for a store, the same wherever it is opened from."""
    url = store.url
    if url.startswith("sqlite:///"):
        url = f"sqlite:///{Path(url[len('sqlite:///'):]).resolve()}"
    elif url == "memory:":
        url = f"memory:{id(store)}"  # lives as long as this process
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def run(goal: Goal, store: Store | str | None = None,
        executor: Executor | ExecutorSpec | str | None = None,
        *, workers: int | None = None, sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None, policy: Policy | None = None,
        workdir: str | Path = "pursuit-work",
        on_progress: Callable[[Progress], None] | None = None,
        log: Callable[[str], None] | None = None,
        subgoal: str | None = None) -> list[Summary]:
    """Run a goal, then each of its sub-goals, and say how each one ended.

    ``store`` is a Store or a URL (default: $PURSUIT_STORE, else ./pursuit.db);
    ``executor`` an Executor, ``"processes"`` (local workers), ``"inline"``, ``"ray"``
    (a local Ray instance, or the cluster at $RAY_ADDRESS) or an ``ExecutorSpec``; by
    default the goal's ``executor``, else ``"processes"``.
    ``subgoal`` runs that one sub-goal (and its own) alone: a team member on one part of
    the goal, while others run the rest; the parent's status and leaderboard show it.
    """
    child = None
    if subgoal is not None:
        subgoal = subgoal.removeprefix(f"{goal.name}/")  # the name status shows it by
        child = next((sub for sub in goal.subgoals if sub.name == subgoal), None)
        if child is None:
            raise GoalError(f"goal {goal.name!r} has no sub-goal {subgoal!r}; its sub-goals "
                            f"are {[sub.name for sub in goal.subgoals] or 'none'}")
    # refused here, before a store is made, when it cannot run
    chosen = _executor(goal.executor if executor is None else executor, workers)
    owned = not isinstance(store, Store)
    opened = store if isinstance(store, Store) else open_store(store)
    try:
        summaries: list[Summary] = []
        options = dict(sampler=sampler, pruner=pruner, policy=policy, workdir=workdir,
                       on_progress=on_progress, log=log)
        if child is None:
            _run_tree(goal, opened, chosen, None, None, summaries, options)
        else:  # the parent is recorded (as a run of it would), not run
            parent_id = opened.ensure_goal(goal.name, goal.spec())
            _run_tree(child, opened, chosen, f"{goal.name}/{child.name}", parent_id,
                      summaries, options)
        return summaries
    finally:
        if owned:
            opened.close()


def _run_tree(goal: Goal, store: Store, executor: Executor, name: str | None,
              parent_id: int | None, summaries: list[Summary], options: dict[str, Any]
              ) -> None:
    engine = Engine(goal, store, executor, goal_name=name, parent_id=parent_id, **options)
    summaries.append(engine.run())
    for sub in goal.subgoals:  # one executor for the tree: it starts again for each goal
        _run_tree(sub, store, executor, f"{engine.name}/{sub.name}", engine.goal_id,
                  summaries, options)


def _executor(executor: Executor | ExecutorSpec | str | None, workers: int | None
              ) -> Executor:
    if isinstance(executor, Executor):
        return executor
    if not isinstance(executor, ExecutorSpec | None) and \
            executor not in ("processes", "inline", "ray"):
        raise ValueError("executor must be 'processes', 'inline', 'ray' or an Executor, "
                         f"got {executor!r}")
    spec = ExecutorSpec(name="processes") if executor is None else \
        ExecutorSpec.model_validate(executor) if isinstance(executor, str) else executor
    if spec.name == "processes":
        return ProcessExecutor(workers)
    if spec.name == "inline":
        return InlineExecutor()
    from pursuit.execution import RayExecutor  # imports Ray only now

    return RayExecutor(spec.address, num_cpus=spec.num_cpus, num_gpus=spec.num_gpus,
                       memory=spec.memory, slots=workers)
