"""A learning curve of any length costs time linear in its length, and the engine's
heartbeat does not wait for it."""

import threading
import time

import optuna
import pytest

from pursuit import Goal
from pursuit.execution import InlineExecutor
from pursuit.loop import Engine, Policy
from pursuit.loop.journal import Journal
from pursuit.search import MethodSearch, told
from pursuit.store import MemoryStore


def test_a_long_curve_is_kept_whole_and_thinned_for_the_pruner(tmp_path):
    from sample_methods import LONG_CURVE

    store = MemoryStore()
    goal = Goal(name="long", metric="value", direction="maximize", seeds=1,
                budget={"max_trials": 3}, methods=["sample_methods:long_curve"])
    engine = Engine(goal, store, InlineExecutor(), workdir=tmp_path,
                    sampler=optuna.samplers.RandomSampler(seed=0),
                    policy=Policy(min_search_trials=2))
    engine.run()
    trials = store.trials(1)
    assert [t.stage for t in trials] == ["baselines", "search", "search"]
    for trial in trials:
        assert len(store.curve(trial.id)) == LONG_CURVE  # every point is kept
    [study] = [s._study for s in engine.searches.values()]
    counts = [len(t.intermediate_values) for t in study.trials]
    assert counts and max(counts) == sum(told(n) for n in range(LONG_CURVE)) < 1_000


@pytest.mark.parametrize("every", [1, 7, 4096, 5000])
def test_a_curve_reported_at_any_steps_reaches_the_pruner_thinned_alike(every):
    """Curves reported every 5,000 steps (or at episode ends) must reach the pruner too,
    at the same steps in every trial that reports alike."""
    import sample_methods

    from pursuit.analysis.claims import Direction

    search = MethodSearch(sample_methods.quadratic, Direction.MAXIMIZE,
                          optuna.samplers.RandomSampler(seed=0),
                          optuna.pruners.MedianPruner())
    steps_told = []
    for _ in range(2):
        trial, _ = search.ask()
        for k in range(3000):
            search.report(trial, every * k, 0.5)
        steps_told.append(sorted(trial.storage.get_trial(trial._trial_id)
                                 .intermediate_values))
        search.tell(trial, "completed", 0.5)
    assert steps_told[0] == steps_told[1]
    assert len(steps_told[0]) == sum(told(n) for n in range(3000)) > 128
    assert steps_told[0][:128] == [every * k for k in range(128)]


def test_the_heartbeat_goes_on_while_the_engine_is_busy():
    store = MemoryStore()
    goal_id = store.ensure_goal("g", {"metric": "m", "direction": "minimize"})
    journal = Journal(store, goal_id, "e1", flush_every=0.25, heartbeat_every=0.05,
                      log=lambda _: None)
    journal.start()
    [before] = store.runs(goal_id)
    journal.start_beating()
    time.sleep(0.5)  # the engine's own thread, busy with one trial's messages
    [during] = store.runs(goal_id)
    journal.stop_beating()
    assert during.last_seen - before.last_seen >= 0.3
    assert not [t for t in threading.enumerate() if t.name == "pursuit-heartbeat"]
