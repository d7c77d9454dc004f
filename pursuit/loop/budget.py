"""The budget: what a goal may spend (trials, compute seconds, wall clock) and what it has.

Trials count whatever their state, and whichever engine on the goal made them; compute
is the wall time of trials (finished, and this engine's running); the wall clock spans
every engine run on the goal, so a budget holds across restarts. ``warnings`` says
before a run starts when the budget cannot do what the loop needs: cover the baselines'
seeds, then search and confirm.
"""

from __future__ import annotations

import time

from pursuit.goal import Goal
from pursuit.loop.record import TrialBook


class BudgetKeeper:
    def __init__(self, goal: Goal, book: TrialBook) -> None:
        self.budget = goal.budget
        self.book = book
        self.started = time.monotonic()
        self.wall_before = 0.0  # wall seconds earlier engines spent on this goal
        self.elsewhere = 0  # trials in the store this engine has not read (others' running)

    def used(self) -> int:
        """The goal's trials, this engine's and every other's on the goal."""
        return len(self.book) + self.elsewhere

    def trials_left(self, extra: int = 0) -> float:
        limit = self.budget.max_trials
        return float("inf") if limit is None else limit - self.used() - extra

    def wall_used(self) -> float:
        return self.wall_before + time.monotonic() - self.started

    def wall_spent(self) -> bool:
        limit = self.budget.wall_seconds
        return limit is not None and self.wall_used() >= limit

    def compute_spent(self) -> bool:
        limit = self.budget.compute_seconds
        return limit is not None and self.book.compute_spent() >= limit

    def spent(self, extra: int = 0) -> bool:
        """Whether nothing more may start (``extra``: trials planned but not yet written)."""
        return self.trials_left(extra) <= 0 or self.compute_spent() or self.wall_spent()

    def fraction(self) -> float:
        budget, parts = self.budget, []
        if budget.max_trials:
            parts.append(self.used() / budget.max_trials)
        if budget.compute_seconds:
            parts.append(self.book.compute_spent() / budget.compute_seconds)
        if budget.wall_seconds:
            parts.append(self.wall_used() / budget.wall_seconds)
        return min(1.0, max(parts, default=0.0))

    def what_ran_out(self) -> str:
        budget = self.budget
        if self.wall_spent():
            return f"{budget.wall_seconds:g} s of wall clock"
        if self.compute_spent():
            return f"{budget.compute_seconds:g} compute seconds"
        return f"{budget.max_trials} trials"


WARNING = "warning: "


def warnings(goal: Goal, *, search_round: int, reserve: int) -> list[str]:
    """What the trial budget cannot do, in words, before anything runs."""
    limit = goal.budget.max_trials
    methods = goal.resolved_methods()
    if limit is None:
        return []
    baselines = len(methods) * goal.seeds
    searchable = [m for m in methods if goal.searchable(m)]
    if limit < baselines:
        return [f"{WARNING}the budget of {limit} trials does not cover the baselines: "
                f"{len(methods)} methods x {goal.seeds} seeds = {baselines} trials; some "
                "methods will have no claim. Raise budget.max_trials or lower seeds."]
    left = limit - baselines
    if searchable and left <= reserve:
        return [f"{WARNING}the budget of {limit} trials leaves {left} after the baselines "
                f"({len(methods)} methods x {goal.seeds} seeds): not enough to search and "
                f"then confirm what search finds (a round of {search_round} search trials "
                f"and {reserve} to confirm and verify). Searched configurations will have "
                f"no claim. Raise budget.max_trials to at least "
                f"{baselines + search_round + reserve}."]
    return []
