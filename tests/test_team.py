"""Engines that share one goal (a team on one store): one budget, one judgement, one
search, no seed run twice, and an engine killed mid-run taken over by the others.

Every engine is its own process (tests/team_engine.py, trials in the engine's process),
on SQLite and on PostgreSQL.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import postgres_url

import pursuit
from pursuit.store import open_store
from pursuit.trial import TrialState

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(HERE)}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    return f"sqlite:///{tmp_path / 'team.db'}" if request.param == "sqlite" else postgres_url()


def goal_file(tmp_path, *, budget, target=None, methods=("steady", "peaked"), subgoal=""):
    lines = ["name: team", "metric: value", "direction: maximize", "seeds: 3",
             f"budget: {{max_trials: {budget}}}"]
    lines += [f"target: {target}"] if target is not None else []
    lines += ["methods:", *(f"  - team_methods:{m}" for m in methods)]
    path = tmp_path / "goal.yaml"
    path.write_text("\n".join(lines) + "\n" + subgoal)
    return path


def start(url, path, *extra):
    return subprocess.Popen([sys.executable, str(HERE / "team_engine.py"), url, str(path),
                             *extra], cwd=path.parent, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(engines):
    ended = []
    for engine in engines:
        out, err = engine.communicate(timeout=240)
        assert engine.returncode == 0, err[-3000:]
        ended.append(json.loads(out.strip().splitlines()[-1]))
    return ended


def trials_of(url, goal="team"):
    store = open_store(url)
    try:
        return store.trials(store.goal_id(goal))
    finally:
        store.close()


def no_seed_twice(trials):
    runs = Counter((t.method, t.config, t.seed) for t in trials)
    assert runs and set(runs.values()) == {1}, runs.most_common(3)


@pytest.mark.parametrize("count", [2, 4])
def test_engines_spend_one_trial_budget_together(url, tmp_path, count):
    """Without a target the budget ends the run: together, not each."""
    path = goal_file(tmp_path, budget=30)
    ended = finish([start(url, path) for _ in range(count)])
    trials = trials_of(url)
    # every engine's own trials plus, at most, one in flight per engine when it ran out
    assert 30 <= len(trials) <= 30 + count, len(trials)
    assert sum(e["trials"] >= 1 for e in ended) >= 2  # they worked side by side
    no_seed_twice(trials)
    assert not [t for t in trials if t.state is TrialState.RUNNING]


@pytest.mark.parametrize("count", [2, 4])
def test_engines_judge_alike_and_all_stop_when_one_reaches_the_target(url, tmp_path, count):
    path = goal_file(tmp_path, budget=200, target=0.95)
    ended = finish([start(url, path) for _ in range(count)])
    with pursuit.open(url) as results:
        progress = results.leaderboard("team").progress
    assert progress["reached"]
    # one judgement: every engine says the target is reached, by the same claim the
    # leaderboard reads from the store
    assert {e["stop"] for e in ended} == {"target reached"}, ended
    assert len({e["reason"] for e in ended}) == 1, ended
    assert f"{progress['best_mean']:.4g}" in ended[0]["reason"]
    trials = trials_of(url)
    no_seed_twice(trials)
    # one search: the engines' search trials are one search's (no configuration screened
    # twice) and together far fewer than each engine searching alone would run
    screened = Counter(t.config for t in trials if t.stage == "search")
    assert set(screened.values()) == {1}


def running_under(url, engine=None):
    """(trial, engine) of the goal's running trials, of one engine or any."""
    store = open_store(url)
    try:
        goal_id = store.goal_id("team")
        if goal_id is None:
            return []
        return [(r.id, r.engine) for r in store.running(goal_id)
                if engine is None or r.engine == engine]
    finally:
        store.close()


def test_an_engine_killed_mid_run_is_taken_over_by_the_other(url, tmp_path):
    path = goal_file(tmp_path, budget=14, methods=("dozes",))
    victim = start(url, path, "3")
    deadline = time.time() + 60
    while time.time() < deadline and not running_under(url):
        time.sleep(0.1)
    [(_, engine)] = running_under(url)
    survivor = start(url, path, "3")
    time.sleep(2.0)  # the survivor is at work too
    held = []
    while time.time() < deadline and not held:  # kill the victim while it runs a trial
        held = [trial for trial, _ in running_under(url, engine)]
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert held, "the first engine never ran a trial while the second ran"
    [ended] = finish([survivor])
    trials = trials_of(url)
    no_seed_twice(trials)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.PREEMPTED)]
    for taken in (t for t in trials if t.id in held):  # given back, and run again here
        assert taken.state is TrialState.COMPLETED and taken.attempt == 2, taken
    assert len(trials) <= 14 and ended["stop"] == "budget spent"
    with pursuit.open(url) as results:  # the survivor's ending, not the victim's silence
        state, why = results.run_state("team")
    assert state == "ended" and why.startswith("budget spent"), (state, why)


def test_a_subgoal_runs_alone_and_the_parent_shows_it(tmp_path):
    subgoal = ("subgoals:\n  - name: part\n    metric: value\n    target: 0.6\n"
               "    methods: [team_methods:steady]\n")
    path = goal_file(tmp_path, budget=12, subgoal=subgoal)
    url = f"sqlite:///{tmp_path / 'team.db'}"
    result = subprocess.run([sys.executable, "-m", "pursuit", "run", str(path), "--store",
                             url, "--inline", "--subgoal", "part"], cwd=tmp_path, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert trials_of(url, "team") == []  # the parent was recorded, not run
    assert len(trials_of(url, "team/part")) == 3
    status = subprocess.run([sys.executable, "-m", "pursuit", "status", "--store", url,
                             "--json"], cwd=tmp_path, env=ENV, capture_output=True,
                            text=True, timeout=60)
    reports = json.loads(status.stdout)
    assert [r["goal"] for r in reports] == ["team", "team/part"]
    assert reports[1]["trials_total"] == 3
    # the name status shows it by runs it too (resuming: nothing new to run); export and
    # trials, without --goal, cover the goal and its sub-goals, as status does
    again = subprocess.run([sys.executable, "-m", "pursuit", "run", str(path), "--store",
                            url, "--inline", "--subgoal", "team/part"], cwd=tmp_path,
                           env=ENV, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    subprocess.run([sys.executable, "-m", "pursuit", "export", "--store", url, "-o",
                    str(tmp_path / "all.csv")], cwd=tmp_path, env=ENV, check=True,
                   timeout=60)
    import pandas as pd

    assert set(pd.read_csv(tmp_path / "all.csv")["goal"]) == {"team/part"}
    listed = subprocess.run([sys.executable, "-m", "pursuit", "trials", "--store", url,
                             "--json"], cwd=tmp_path, env=ENV, capture_output=True,
                            text=True, timeout=60)
    assert {row["goal"] for row in json.loads(listed.stdout)} == {"team/part"}
    wrong = subprocess.run([sys.executable, "-m", "pursuit", "run", str(path), "--store",
                            url, "--subgoal", "nope"], cwd=tmp_path, env=ENV,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "has no sub-goal 'nope'" in wrong.stderr
