"""Honest answers from the loop: a seed of a configuration runs once and counts once,
whoever plans it; claims rest on seeds that did not choose them; budgets are spent."""

from collections import Counter

import optuna
import sample_methods

import pursuit
from pursuit import Goal, Policy
from pursuit.execution import InlineExecutor
from pursuit.loop import Engine
from pursuit.store import MemoryStore


def assert_each_seed_once(results, goal=None):
    """The export holds no (method, configuration, seed) twice, and every claim's n is
    its number of distinct seeds."""
    frame = results.results(goal)
    runs = Counter(zip(frame["method"], frame["config"], frame["seed"], strict=True))
    assert set(runs.values()) <= {1}, runs.most_common(3)
    board = results.leaderboard(goal, frame=frame)
    for claim in board.book.claims():
        assert claim.n == len(set(claim.seeds))
    for row in board.configs.itertuples():
        own = frame[(frame["method"] == row.method) & (frame["config"] == row.config)
                    & (frame["state"] == "completed") & (frame["stage"] != "search")]
        assert row.n <= own["seed"].nunique()
    return frame, board


def run(goal, store, **kw):
    return pursuit.run(goal, store, "inline", sampler=optuna.samplers.TPESampler(seed=3),
                       **kw)


def test_a_small_discrete_space_searched_past_its_size_runs_each_seed_once(tmp_path):
    store = MemoryStore()
    goal = Goal(name="small", metric="value", direction="maximize", target=0.95, seeds=3,
                budget={"max_trials": 120}, methods=[sample_methods.discrete])
    [summary] = run(goal, store, workdir=tmp_path)
    results = pursuit.Results(store)
    frame, board = assert_each_seed_once(results)
    screened = frame[frame["stage"] == "search"]
    assert len(screened) <= 12 - 1  # twelve configurations, the defaults run as a baseline
    # The one configuration that truly reaches the target is found, confirmed and verified.
    assert summary.reached, summary.reason
    assert board.progress["best_config"] == '{"k":7}' and board.progress["best_verified"]


def test_a_raised_budget_goes_on_searching_instead_of_replaying(tmp_path):
    store = MemoryStore()
    goal = Goal(name="raise", metric="value", direction="maximize", seeds=2,
                budget={"max_trials": 14}, methods=[sample_methods.quadratic,
                                                   sample_methods.curve])
    sampler = optuna.samplers.TPESampler(seed=1)  # the same sampler and seed both times
    Engine(goal, store, InlineExecutor(), sampler=sampler, workdir=tmp_path).run()
    raised = goal.model_copy(update={"budget": pursuit.Budget(max_trials=60)})
    engine = Engine(raised, store, InlineExecutor(), sampler=sampler, workdir=tmp_path)
    summary = engine.run()
    assert summary.trials == 60
    # A sampler seeded as before would propose its first run's configurations again.
    assert engine.planner.answered == 0
    assert_each_seed_once(pursuit.Results(store))


def test_a_ladder_whose_leader_changes_reuses_what_it_has(tmp_path):
    store = MemoryStore()
    goal = Goal(name="ladder", metric="value", direction="minimize", target=0.15, seeds=3,
                budget={"max_trials": 60}, methods=["sample_methods:scaled"])
    run(goal, store, policy=Policy(search_round=8), workdir=tmp_path)
    frame, board = assert_each_seed_once(pursuit.Results(store))
    ladder = frame[frame["stage"] == "ladder"]
    assert len(ladder)
    # The leader's own seeds are rungs of its ladder: they were not run again.
    claimed = frame[frame["stage"].isin(["confirm", "ladder"])]
    assert not set(ladder["config"]) & set(frame[frame["stage"] == "confirm"]["config"])
    assert len(claimed) == claimed[["config", "seed"]].drop_duplicates().shape[0]


def test_the_ladder_waits_for_search_when_a_baseline_with_a_scale_dial_leads(tmp_path):
    store = MemoryStore()
    goal = Goal(name="wait", metric="value", direction="minimize", target=0.05, seeds=2,
                budget={"max_trials": 40}, methods=["sample_methods:scaled"])
    run(goal, store, policy=Policy(search_round=8), workdir=tmp_path)
    stages = pursuit.Results(store).results()["stage"].tolist()
    assert "ladder" not in stages[: stages.index("confirm")]


def test_a_run_ends_at_its_trial_budget(tmp_path):
    store = MemoryStore()
    goal = Goal(name="spend", metric="value", direction="maximize", target=5.0, seeds=3,
                budget={"max_trials": 25}, methods=[sample_methods.quadratic,
                                                   sample_methods.curve])
    [summary] = run(goal, store, workdir=tmp_path)
    assert summary.trials == 25 and summary.reason.startswith("budget spent (25 trials)")


def test_a_budget_that_leaves_no_search_is_said_before_the_run(tmp_path):
    lines = []
    goal = Goal(name="tight", metric="value", direction="maximize", seeds=3,
                budget={"max_trials": 8}, methods=[sample_methods.quadratic,
                                                  sample_methods.curve])
    run(goal, MemoryStore(), workdir=tmp_path, log=lines.append)
    [warning] = [line for line in lines if "warning" in line]
    assert "leaves 2 after the baselines" in warning and "max_trials" in warning
    short = goal.model_copy(update={"budget": pursuit.Budget(max_trials=4)})
    lines.clear()
    run(short, MemoryStore(), workdir=tmp_path, log=lines.append)
    assert any("does not cover the baselines" in line for line in lines)


def test_each_method_searches_with_its_own_random_numbers(tmp_path):
    """One seeded sampler for the goal, copied per method: the copies must not screen
    every method at the same points of its range."""
    store = MemoryStore()
    goal = Goal(name="streams", metric="value", direction="maximize", seeds=1,
                budget={"max_trials": 12},
                methods=[{"entry": "sample_methods:quadratic", "name": "a"},
                         {"entry": "sample_methods:quadratic", "name": "b"}])
    run(goal, store, workdir=tmp_path)
    frame = pursuit.Results(store).results()
    screened = frame[frame["stage"] == "search"]
    a = screened[screened["method"] == "a"]["dial.x"].tolist()
    b = screened[screened["method"] == "b"]["dial.x"].tolist()
    assert a and b and not set(a) & set(b)
