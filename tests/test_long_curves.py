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
from pursuit.search import pruner_step
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
    told = [len(t.intermediate_values) for t in study.trials]
    assert told and max(told) == sum(pruner_step(s) for s in range(LONG_CURVE)) < 1_000


@pytest.mark.parametrize("step", [0, 1, 127, 128, 129, 255, 256, 4096, 10**9, 2**62])
def test_every_trial_is_thinned_at_the_same_steps(step):
    # A pruner compares trials at a step both reported: the rule depends on the step alone.
    told = pruner_step(step)
    assert told == pruner_step(step)
    assert told if step < 128 else True
    if step >= 128:
        spacing = 2 ** (step.bit_length() - 7)
        assert told == (step % spacing == 0)


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
