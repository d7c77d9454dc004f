"""Conformance checks for stores, shipped so that third-party backends can run them too.

    from pursuit.testing import STORE_CHECKS
    @pytest.mark.parametrize("check", STORE_CHECKS)
    def test_my_store(check):
        check(MyStore(...))

Each check takes a fresh, empty store and raises AssertionError when the store breaks
the contract written in ``pursuit.store._base``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pursuit.store import NewTrial, Store, WriteBatch
from pursuit.trial import Outcome, TrialState

SPEC: dict[str, Any] = {"metric": "loss", "direction": "minimize", "target": 0.1,
        "methods": [{"name": "m", "entry": "mod:m", "source": "x", "baseline": True,
                     "defaults": {"lr": 0.1}}]}


def _one_trial(store: Store) -> tuple[int, int]:
    goal_id = store.ensure_goal("g", SPEC)
    [trial_id] = store.write(WriteBatch("e1", new=[NewTrial(goal_id, "m", "baselines",
                                                            {"lr": 0.1}, 0)])).new_ids
    assert trial_id is not None, "a new trial in an empty store was refused"
    return goal_id, trial_id


def check_goal_round_trip(store: Store) -> None:
    goal_id = store.ensure_goal("g", SPEC)
    assert store.ensure_goal("g", SPEC) == goal_id, "the same name must give the same goal"
    child = store.ensure_goal("g/sub", SPEC, parent_id=goal_id)
    goals = {g.name: g for g in store.goals()}
    assert goals["g"].spec == SPEC and goals["g/sub"].parent_id == goal_id and child != goal_id
    assert store.goal_id("g") == goal_id and store.goal_id("nope") is None


def check_changed_metric_refused(store: Store) -> None:
    from pursuit.exceptions import StoreError

    store.ensure_goal("g", SPEC)
    try:
        store.ensure_goal("g", {**SPEC, "metric": "accuracy"})
    except StoreError as error:
        assert "metric" in str(error)
    else:
        raise AssertionError("a goal's metric must not change under its results")


def check_another_goal_of_the_same_name_is_refused(store: Store) -> None:
    from pursuit.exceptions import StoreError

    store.ensure_goal("g", SPEC)
    grown = {**SPEC, "methods": [*SPEC["methods"], {"name": "n", "entry": "mod:n"}]}
    store.ensure_goal("g", grown)  # a goal may gain a method
    other = {**SPEC, "methods": [{**SPEC["methods"][0], "entry": "other_project:m"}]}
    try:
        store.ensure_goal("g", other)
    except StoreError as error:
        assert "mod:m" in str(error) and "other_project:m" in str(error)
    else:
        raise AssertionError("two goals of one name, with different methods, were merged")


def check_trial_lifecycle(store: Store) -> None:
    goal_id, trial_id = _one_trial(store)
    [running] = store.running(goal_id)
    assert (running.id, running.attempt, running.engine) == (trial_id, 1, "e1")
    batch = WriteBatch("e1")
    batch.add_points(trial_id, 1, [(0, "loss", 1.0), (1, "loss", 0.5)])
    batch.outcomes.append(Outcome(trial_id, 1, TrialState.COMPLETED, {"loss": 0.5},
                                  {"flops": 3e12}, None, 1.5, 1.2))
    assert store.write(batch).refused == []
    [trial] = store.trials(goal_id)
    assert trial.state is TrialState.COMPLETED and trial.values == {"loss": 0.5}
    assert trial.costs == {"flops": 3e12} and trial.wall_seconds == 1.5
    assert trial.dials == {"lr": 0.1} and trial.method == "m" and trial.stage == "baselines"
    assert store.curve(trial_id) == [(1, 0, "loss", 1.0), (1, 1, "loss", 0.5)]
    assert store.running(goal_id) == []


def check_finished_trials_are_frozen(store: Store) -> None:
    goal_id, trial_id = _one_trial(store)
    done = Outcome(trial_id, 1, TrialState.COMPLETED, {"loss": 0.5})
    store.write(WriteBatch("e1", outcomes=[done]))
    late = WriteBatch("e1", outcomes=[Outcome(trial_id, 1, TrialState.FAILED, {"loss": 9.0},
                                              error="late")])
    late.add_points(trial_id, 1, [(5, "loss", 9.0)])
    refused = store.write(late).refused
    assert len(refused) == 2, refused
    [trial] = store.trials(goal_id)
    assert trial.state is TrialState.COMPLETED and trial.values == {"loss": 0.5}
    assert store.curve(trial_id) == []


def check_points_idempotent(store: Store) -> None:
    _, trial_id = _one_trial(store)
    for value in (1.0, 2.0):  # a duplicate report: the first write wins
        batch = WriteBatch("e1")
        batch.add_points(trial_id, 1, [(3, "loss", value)])
        store.write(batch)
    assert store.curve(trial_id) == [(1, 3, "loss", 1.0)]


def check_preempt_and_restart(store: Store) -> None:
    goal_id, trial_id = _one_trial(store)
    store.write(WriteBatch("e1", preempted=[(trial_id, 1, "engine died")]))
    [trial] = store.trials(goal_id)
    assert trial.state is TrialState.PREEMPTED and trial.error == "engine died"
    stale = WriteBatch("e1", outcomes=[Outcome(trial_id, 1, TrialState.COMPLETED, {"loss": 1})])
    assert store.write(stale).refused, "an outcome for a preempted attempt must be refused"
    store.write(WriteBatch("e2", restarts=[(trial_id, 2)]))
    [running] = store.running(goal_id)
    assert (running.attempt, running.engine) == (2, "e2")
    batch = WriteBatch("e2", outcomes=[Outcome(trial_id, 2, TrialState.COMPLETED, {"loss": 2})])
    batch.add_points(trial_id, 2, [(0, "loss", 2.0)])
    assert store.write(batch).refused == []
    assert store.curve(trial_id) == [(2, 0, "loss", 2.0)]


def check_odd_numbers_kept(store: Store) -> None:
    goal_id, trial_id = _one_trial(store)
    values = {"loss": math.nan, "up": math.inf, "down": -math.inf, "tiny": 5e-324,
              "huge": 1.7976931348623157e308}
    batch = WriteBatch("e1", outcomes=[Outcome(trial_id, 1, TrialState.FAILED, values,
                                               error="nan")])
    batch.add_points(trial_id, 1, [(0, "loss", math.nan), (1, "loss", -math.inf)])
    store.write(batch)
    [trial] = store.trials(goal_id)
    assert math.isnan(trial.values["loss"])
    assert {k: v for k, v in trial.values.items() if k != "loss"} == \
        {k: v for k, v in values.items() if k != "loss"}
    curve = store.curve(trial_id)
    assert math.isnan(curve[0][3]) and curve[1][3] == -math.inf


def check_heartbeat_uses_store_clock(store: Store) -> None:
    goal_id, _ = _one_trial(store)
    before = store.now()
    store.heartbeat("e1")
    [running] = store.running(goal_id)
    assert running.heartbeat_at is not None and running.heartbeat_at >= before - 1.0


def check_atomic_batch(store: Store) -> None:
    goal_id, trial_id = _one_trial(store)
    bad = WriteBatch("e1", new=[NewTrial(goal_id, "no-such-method", "search", {}, 0)],
                     outcomes=[Outcome(trial_id, 1, TrialState.COMPLETED, {"loss": 1.0})])
    try:
        store.write(bad)
    except Exception:
        pass
    else:  # a store that accepts unknown methods must still have written the outcome
        assert store.trials(goal_id)[0].state is TrialState.COMPLETED
        return
    assert store.trials(goal_id)[0].state is TrialState.RUNNING, "a failed batch left a part"


def check_curves_of_latest_attempt(store: Store) -> None:
    goal_id, trial_id = _one_trial(store)
    first = WriteBatch("e1", preempted=[(trial_id, 1, "x")], restarts=[(trial_id, 2)])
    first.add_points(trial_id, 1, [(0, "loss", 9.0), (0, "acc", 0.1)])
    store.write(first)
    second = WriteBatch("e1")
    second.add_points(trial_id, 2, [(0, "loss", 1.0), (1, "loss", math.nan)])
    store.write(second)
    curves = store.curves(goal_id, "loss")
    assert list(curves) == [trial_id] and curves[trial_id][0] == 1.0
    assert math.isnan(curves[trial_id][1])


def check_runs_add_up_wall_time(store: Store) -> None:
    goal_id = store.ensure_goal("g", SPEC)
    assert store.start_run(goal_id, "e1") == 0.0
    store.heartbeat("e1")
    spent = store.start_run(goal_id, "e2")
    assert 0.0 <= spent < 60.0
    assert store.start_run(store.ensure_goal("other", SPEC), "e3") == 0.0


def check_runs_record_why_they_ended(store: Store) -> None:
    goal_id = store.ensure_goal("g", SPEC)
    store.start_run(goal_id, "e1")
    store.start_run(goal_id, "e2")
    store.end_run(goal_id, "e1", "target reached")
    runs = {run.engine: run for run in store.runs(goal_id)}
    assert (runs["e1"].reason, runs["e2"].reason) == ("target reached", None)
    assert runs["e1"].started_at <= runs["e1"].last_seen
    assert store.runs(store.ensure_goal("other", SPEC)) == []


def check_one_trial_per_configuration_and_seed(store: Store) -> None:
    goal_id = store.ensure_goal("g", SPEC)
    baseline = NewTrial(goal_id, "m", "baselines", {"lr": 0.1}, 0)
    draw = NewTrial(goal_id, "m", "search", {"lr": 0.5}, 0)
    first = store.write(WriteBatch("e1", new=[baseline, draw])).new_ids
    again = [NewTrial(goal_id, "m", "search", {"lr": 0.1}, 0),  # the baseline, by search
             NewTrial(goal_id, "m", "confirm", {"lr": 0.5}, 0),  # the draw, by confirm
             NewTrial(goal_id, "m", "ladder", {"lr": 0.5}, 1),  # a new seed
             NewTrial(goal_id, "m", "verify", {"lr": 0.5}, 1)]  # that seed again, in one batch
    second = store.write(WriteBatch("e2", new=again)).new_ids
    assert None not in first
    assert second[0] is None and second[1] is None, "a seed of a configuration ran twice"
    assert second[2] is not None and second[3] is None
    trials = store.trials(goal_id)
    assert len(trials) == 3 and [t.id for t in trials] == [first[0], first[1], second[2]]
    keys = [(t.method, t.config, t.seed) for t in trials]
    assert len(set(keys)) == len(keys)


STORE_CHECKS: list[Callable[[Store], None]] = [
    check_goal_round_trip, check_changed_metric_refused,
    check_another_goal_of_the_same_name_is_refused, check_trial_lifecycle,
    check_finished_trials_are_frozen, check_points_idempotent, check_preempt_and_restart,
    check_odd_numbers_kept, check_heartbeat_uses_store_clock, check_atomic_batch,
    check_curves_of_latest_attempt, check_runs_add_up_wall_time,
    check_runs_record_why_they_ended, check_one_trial_per_configuration_and_seed,
]
