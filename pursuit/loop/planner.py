"""What runs next: the loop's decisions, with no I/O.

The planner reads the record of trials, the claims and the budget, asks the samplers,
and answers with the next trial to run (or None: wait, or stop). In order:

1. a preempted trial, run again (same trial, next attempt);
2. **baselines**: every method at its published defaults, seeds 0 .. S-1;
3. a **verification** already begun, to its end;
4. **search**, a round at a time: each proposal runs at seed 0 (its screening run);
   a proposal that repeats a configuration already run (or running) is not run again:
   the sampler is told the known result and asked again;
5. **confirm**, once the round's search is in: the best screened configurations run at
   seeds 1 .. S, the seeds their claims rest on;
6. **verify**, once every confirmation is in: a leader whose mean is past the target
   runs on S fresh seeds (``pursuit.analysis.claims``);
7. **ladder**, after at least one round of search and confirmation: the leader's scale
   dials stepped by factors of 2 (x1/4 .. x4), with a 2 x 2 grid over model size and
   data where it has both, seeds as the leader's claim, reusing every trial that
   exists; climbed only if the whole ladder fits the budget, its rungs side by side;
   then the same for the best claim of each method the goal studies (``study: true``);
8. the next search round.

Sharing the search budget: every searchable method first gets ``min_search_trials``
trials; then each search trial goes to the method with the lowest ``trials x rank``,
rank 1 being the method whose best value so far is best. Trials are kept back from
search to confirm and verify what it finds (``Policy.reserve``); when nothing is left
to confirm, search may spend them too, so a run ends at its trial budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import optuna

from pursuit.analysis.claims import ClaimBook, Stage
from pursuit.dials import Dial, Int, Value
from pursuit.exceptions import DialError
from pursuit.goal import Goal
from pursuit.loop.budget import BudgetKeeper
from pursuit.loop.record import Key, Record, TrialBook
from pursuit.methods import Method
from pursuit.search import MethodSearch
from pursuit.store import config_key
from pursuit.trial import TrialState

MAX_REPEATS = 32  # proposals in a row that repeat a run before the planner lists the space


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
    sync_every: float = 1.0  # seconds between reads of what other engines on the goal did

    def reserve(self, seeds: int) -> int:
        """Trials kept back from a round's search: its confirmations and a verification."""
        return seeds * (self.confirm_top + 1)


@dataclass
class Plan:
    method: Method
    stage: Stage
    dials: dict[str, Value]
    seed: int
    optuna_trial: optuna.Trial | None = None
    rerun_of: int | None = None
    key: Key = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.method.name, config_key(self.dials), self.seed)


LADDER_FACTORS = (0.25, 0.5, 2.0, 4.0)
GRID_FACTORS = (0.5, 2.0)


def _scaled(dial: Dial, name: str, value: Value, factor: float) -> Value | None:
    """``value`` times ``factor`` on the dial, or None off the end of its range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    scaled = value * factor
    try:
        return dial.validate(name, round(scaled) if isinstance(dial, Int) else scaled)
    except DialError:
        return None


def ladder_rungs(method: Method, leader: dict[str, Value]) -> list[dict[str, Value]]:
    """The configurations of a scaling ladder around ``leader``, within the dials' ranges:
    each scale dial stepped alone, and, where the method has a ``params`` and a ``data``
    dial, the corners of a small grid over both, so that a law of loss in model size and
    data together, L(N, D), has points off the two lines."""
    rungs: list[dict[str, Value]] = []

    def add(rung: dict[str, Value]) -> None:
        if rung != leader and rung not in rungs:
            rungs.append(rung)

    for name, dial in method.dials.items():
        if dial.scale is None:
            continue
        for factor in LADDER_FACTORS:
            stepped = _scaled(dial, name, leader.get(name), factor)
            if stepped is not None:
                add({**leader, name: stepped})
    by_role: dict[str, str] = {}
    for name, dial in method.dials.items():
        if dial.scale is not None:
            by_role.setdefault(dial.scale, name)  # the first dial of each role
    if "params" in by_role and "data" in by_role:
        size, data = by_role["params"], by_role["data"]
        for f_size in GRID_FACTORS:
            for f_data in GRID_FACTORS:
                n = _scaled(method.dials[size], size, leader.get(size), f_size)
                d = _scaled(method.dials[data], data, leader.get(data), f_data)
                if n is not None and d is not None:
                    add({**leader, size: n, data: d})
    return rungs


class Planner:
    def __init__(self, goal: Goal, methods: dict[str, Method], searches: dict[str, MethodSearch],
                 book: TrialBook, claims: ClaimBook, budget: BudgetKeeper,
                 policy: Policy) -> None:
        self.goal, self.methods, self.searches = goal, methods, searches
        self.book, self.claims, self.budget, self.policy = book, claims, budget, policy
        self.seeds = goal.seeds
        self.studied = [m.name for m in methods.values() if goal.studied(m)]
        self.round_size = policy.search_round or max(8, 4 * len(searches))
        self.round_end = 0  # search trials (all methods) at which this round ends
        self.stage = Stage.BASELINES
        self.reruns: list[int] = []  # preempted trials, to run again first
        self.waiting: dict[int, list[tuple[MethodSearch, optuna.Trial]]] = {}
        self.answered = 0  # proposals answered from the record instead of run again
        self._exhausted: set[str] = set()  # methods whose every configuration has run
        self._spending_reserve = False  # nothing was left to confirm: search may use it

    # -------------------------------------------------------------------- setup
    def resumed(self) -> None:
        """Continue the round the record was in."""
        searched = self.book.searched()
        self.round_end = math.ceil(searched / self.round_size) * self.round_size

    def claim_seeds(self, method: Method, dials: dict[str, Value]) -> range:
        """The seeds a configuration's claim rests on: 0 .. S-1 for published defaults
        (chosen by no one), 1 .. S for others (seed 0 screens them in search)."""
        return range(self.seeds) if dials == method.defaults() else range(1, self.seeds + 1)

    # -------------------------------------------------------------------- deciding
    def next(self, planned: list[Plan]) -> Plan | None:
        while self.reruns:
            trial_id = self.reruns.pop(0)
            record = self.book.records[trial_id]
            if record.state is not TrialState.PREEMPTED:
                continue
            optuna_trial = None
            if record.stage is Stage.SEARCH and record.method in self.searches:
                optuna_trial, _ = self.searches[record.method].ask(record.dials)
            return Plan(self.methods[record.method], record.stage, record.dials, record.seed,
                        optuna_trial, rerun_of=trial_id)
        if self.claims.reached or self.budget.spent(len(planned)):
            return None
        taken = {plan.key for plan in planned}
        plan = self._baseline(taken) or self._verification(taken)
        if plan is not None:
            return plan
        live = self.book.live_stages() | {p.stage for p in planned}
        if self.book.searched() + self._count(planned, Stage.SEARCH) < self.round_end:
            plan = self._search(planned, reserve=not self._spending_reserve)
            if plan is not None:
                return plan
        if Stage.SEARCH in live:
            return None  # the round's search is still running; confirm once it is in
        plan = self._confirmation(taken)
        if plan is not None:
            return plan
        if live - {Stage.LADDER}:
            return None  # the round's claims are still coming in
        # A ladder's rungs run side by side; a verification starts once nothing runs.
        plan = (None if live else self._start_verification()) or self._ladder(taken)
        if plan is not None:
            return plan
        if live:
            return None  # the ladder's last rungs are running: its laws come first
        plan = self._search(planned, reserve=True)
        if plan is not None:
            self.round_end = self.book.searched() + self.round_size
            return plan
        # Nothing is left to confirm: the trials kept back for it may search.
        plan = self._search(planned, reserve=False)
        if plan is not None:
            self._spending_reserve = True
            self.round_end = self.book.searched() + self.round_size
        return plan

    @staticmethod
    def _count(planned: list[Plan], stage: Stage) -> int:
        return sum(plan.stage is stage for plan in planned)

    def _free(self, key: Key, taken: set[Key]) -> bool:
        return not self.book.has(key) and key not in taken

    def _baseline(self, taken: set[Key]) -> Plan | None:
        for seed in range(self.seeds):
            for method in self.methods.values():
                plan = Plan(method, Stage.BASELINES, method.defaults(), seed)
                if self._free(plan.key, taken):
                    self.stage = Stage.BASELINES
                    return plan
        return None

    def _verification(self, taken: set[Key]) -> Plan | None:
        """The next seed of a verification that has begun and lacks seeds."""
        for method, config in self.claims.verifying:
            known = self.book.seeds(method, config)
            planned = {k[2] for k in taken if k[:2] == (method, config)} - known
            if self.book.verify_trials(method, config) + len(planned) >= self.seeds:
                continue  # every seed it needs is run, running or planned a moment ago
            used = known | planned
            plan = Plan(self.methods[method], Stage.VERIFY, self.book.dials(method, config),
                        max(used, default=-1) + 1)
            self.stage = Stage.VERIFY
            return plan
        return None

    def _start_verification(self) -> Plan | None:
        leader = self.claims.wants_verification()
        if leader is None or self.budget.trials_left() < self.seeds:
            return None
        self.claims.start_verification(leader.method, leader.config)
        return self._verification(set())

    def _confirmation(self, taken: set[Key]) -> Plan | None:
        """The next missing claim seed of a screened configuration worth confirming,
        keeping back the trials a verification of the leader would need."""
        keep = self.seeds if self.goal.target is not None else 0
        if self.budget.trials_left(len(taken)) <= keep:
            return None
        for record in self._confirm_candidates():
            method = self.methods[record.method]
            for seed in self.claim_seeds(method, record.dials):
                plan = Plan(method, Stage.CONFIRM, record.dials, seed)
                if self._free(plan.key, taken):
                    self.stage = Stage.CONFIRM
                    return plan
        return None

    def _confirm_candidates(self) -> list[Record]:
        """The best screened configurations overall, and each method's best (a method's
        published defaults have their claim from the baselines already)."""
        return [r for r in self.book.best_screened(self.policy.confirm_top)
                if r.dials != self.methods[r.method].defaults()]

    def _ladder(self, taken: set[Key]) -> Plan | None:
        """The next rung of a scaling ladder, once a round of search is done: the
        leader's first, then each studied method's best claim's (a method the goal asks
        to study scales even when another leads)."""
        if self.searches and self.book.searched() == 0 and \
                len(self._exhausted) < len(self.searches):
            return None  # a leader chosen before any search is not worth climbing from
        leader = self.claims.leader()
        if leader is None:
            return None
        # A studied method climbs from its best claim that search found or its
        # defaults, never from a rung of its own ladder: it climbs once per such claim.
        climbs = [leader, *(self.claims.leader_of(name, partial(self._not_ladder_born, name))
                            for name in self.studied if name != leader.method)]
        for claim in climbs:
            if claim is None:
                continue
            method = self.methods[claim.method]
            rungs = ladder_rungs(method, self.book.dials(claim.method, claim.config))
            missing = [Plan(method, Stage.LADDER, dials, seed) for dials in rungs
                       for seed in self.claim_seeds(method, dials)]
            missing = [plan for plan in missing if self._free(plan.key, taken)]
            if missing and self.budget.trials_left() >= len(missing):
                self.stage = Stage.LADDER
                return missing[0]
            # climbed already, or the whole ladder does not fit the budget: the next
        return None

    def _not_ladder_born(self, method: str, config: str) -> bool:
        """Whether a configuration was first run other than as a rung of a ladder."""
        seeds = self.book.seeds(method, config)
        found = self.book.find((method, config, min(seeds))) if seeds else None
        return found is None or found[1].stage is not Stage.LADDER

    # -------------------------------------------------------------------- search
    def _search(self, planned: list[Plan], *, reserve: bool) -> Plan | None:
        kept = self.policy.reserve(self.seeds) if reserve else 0
        if self.budget.trials_left(len(planned)) <= kept:
            return None
        taken = {plan.key for plan in planned}
        for method in self._search_order(planned):
            plan = self._propose(method, taken)
            if plan is not None:
                self.stage = Stage.SEARCH
                return plan
        return None

    def _search_order(self, planned: list[Plan]) -> list[Method]:
        """Searchable methods, the one whose turn it is first."""
        open_ = [self.methods[name] for name in self.searches if name not in self._exhausted]
        counts = {m.name: self.book.searched(m.name) for m in open_}
        for plan in planned:
            if plan.stage is Stage.SEARCH and plan.method.name in counts:
                counts[plan.method.name] += 1
        sign = -1.0 if self.goal.direction == "maximize" else 1.0

        def score(m: Method) -> float:
            best = self.book.best_seen.get(m.name)
            return math.inf if best is None else sign * best

        ranked = sorted(open_, key=score)
        rank = {m.name: i + 1 for i, m in enumerate(ranked)}
        least = self.policy.min_search_trials

        def turn(m: Method) -> tuple[bool, float]:
            under = counts[m.name] < least
            return (not under, counts[m.name] if under else counts[m.name] * rank[m.name])

        return sorted(open_, key=turn)

    def _propose(self, method: Method, taken: set[Key]) -> Plan | None:
        """A configuration of ``method`` not yet run at seed 0, from its sampler."""
        search = self.searches[method.name]
        for _ in range(MAX_REPEATS):
            optuna_trial, dials = search.ask()
            plan = Plan(method, Stage.SEARCH, dials, 0, optuna_trial)
            if self._free(plan.key, taken):
                return plan
            self._answer(search, optuna_trial, plan.key, taken)
        # The sampler keeps proposing what has run: list the space and take an untried
        # configuration, or call the method's search done.
        space = search.space() or []
        untried = [d for d in space if self._free((method.name, config_key(
            method.validate(d)), 0), taken)]
        if not untried:
            self._exhausted.add(method.name)
            return None
        rng = np.random.default_rng(self.book.searched(method.name))
        dials = untried[int(rng.integers(len(untried)))]
        optuna_trial, dials = search.ask(dials)
        return Plan(method, Stage.SEARCH, dials, 0, optuna_trial)

    def _answer(self, search: MethodSearch, optuna_trial: optuna.Trial, key: Key,
                taken: set[Key]) -> None:
        """Tell the sampler what a repeated proposal gave, now or when it is known."""
        self.answered += 1
        found = self.book.find(key)
        if found is None or key in taken:  # another engine's, or planned a moment ago
            search.tell(optuna_trial, "failed", None)
            return
        trial_id, record = found
        if record.state.finished:
            search.tell(optuna_trial, record.state.value, record.value)
        else:
            self.waiting.setdefault(trial_id, []).append((search, optuna_trial))

    def settled(self, trial_id: int, state: str, value: float | None) -> None:
        """A trial ended: tell the proposals that waited for it."""
        for search, optuna_trial in self.waiting.pop(trial_id, []):
            search.tell(optuna_trial, state, value)
