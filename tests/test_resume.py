"""Reliability battery at CI size: T1 (engine SIGKILLed at seeded moments) and T2 (workers
SIGKILLed). The full-size runs and their figures are in benchmarks/chaos.py."""

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pursuit.store import open_store
from pursuit.trial import TrialState

HERE = Path(__file__).parent

GOAL = """\
name: chaos
metric: value
direction: maximize
seeds: 2
budget: {max_trials: 36}
methods:
  - sample_methods:slow
  - sample_methods:quadratic
"""


def start_engine(tmp_path, store, *, errors=False):
    import os

    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store",
                             str(store), "--workers", "2"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE if errors else subprocess.DEVNULL, text=True)


def finished(db):
    store = open_store(str(db))
    try:
        goal_id = store.goal_id("chaos")
        trials = store.trials(goal_id) if goal_id else []
        return {t.id: (t.state, t.attempt, t.values) for t in trials if t.state.finished}, trials
    finally:
        store.close()


@pytest.mark.parametrize("seed, backend", [(1, "sqlite"), (2, "sqlite"), (3, "postgres")])
def test_engine_sigkilled_at_seeded_moments_loses_and_repeats_nothing(tmp_path, seed, backend):
    from conftest import postgres_url

    (tmp_path / "goal.yaml").write_text(GOAL)
    db = tmp_path / "chaos.db" if backend == "sqlite" else postgres_url()
    rng = random.Random(seed)
    seen: dict = {}
    for _ in range(3):
        engine = start_engine(tmp_path, db)
        time.sleep(rng.uniform(1.5, 3.5))
        engine.send_signal(signal.SIGKILL)
        engine.wait()
        done, _ = finished(db)
        for trial_id, before in seen.items():  # nothing finished is lost or changed
            assert done[trial_id] == before, f"trial {trial_id} changed after a kill"
        seen.update(done)
    engine = start_engine(tmp_path, db, errors=True)
    _, err = engine.communicate(timeout=240)
    assert engine.returncode == 0, err
    done, trials = finished(db)
    for trial_id, before in seen.items():
        assert done[trial_id] == before
    assert all(t.state.finished for t in trials), Counter(t.state for t in trials)
    assert len(trials) <= 36
    baselines = Counter((t.method, t.seed) for t in trials if t.stage == "baselines")
    assert set(baselines.values()) == {1} and len(baselines) == 4  # none lost, none twice
    assert not any(t.state is TrialState.FAILED for t in trials)
    runs = Counter((t.method, t.config, t.seed) for t in trials)  # in every stage, too
    assert set(runs.values()) == {1}, runs.most_common(2)


def test_killed_workers_preempt_their_trials_which_run_again(tmp_path):
    (tmp_path / "goal.yaml").write_text(GOAL.replace("max_trials: 36", "max_trials: 200"))
    db = tmp_path / "chaos.db"
    engine = start_engine(tmp_path, db, errors=True)
    killed = 0
    deadline = time.monotonic() + 60
    while killed < 2 and time.monotonic() < deadline:
        time.sleep(1.0)
        workers = subprocess.run(["pgrep", "-P", str(engine.pid), "-f", "spawn_main"],
                                 capture_output=True, text=True).stdout.split()
        if workers:
            subprocess.run(["kill", "-KILL", workers[0]])
            killed += 1
    _, err = engine.communicate(timeout=240)
    assert engine.returncode == 0, err
    _, trials = finished(db)
    assert killed == 2
    assert all(t.state.finished for t in trials)
    assert not any(t.state is TrialState.FAILED for t in trials)
    # A worker killed while idle preempts nothing, so at most two trials ran again.
    assert sum(t.attempt > 1 for t in trials) <= 2


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    (tmp_path / "goal.yaml").write_text(GOAL.replace("max_trials: 36", "max_trials: 400"))
    db = tmp_path / "chaos.db"
    engine = start_engine(tmp_path, db, errors=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt mid-run, once trials are finishing
        time.sleep(0.2)
        if db.exists() and len(finished(db)[0]) >= 4:
            break
    engine.send_signal(signal.SIGINT)
    _, err = engine.communicate(timeout=60)
    assert engine.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    _, trials = finished(db)
    assert trials and not any(t.state is TrialState.RUNNING for t in trials)
    engine = start_engine(tmp_path, db, errors=True)
    _, err = engine.communicate(timeout=240)
    assert engine.returncode == 0, err
    _, trials = finished(db)
    assert all(t.state.finished for t in trials)


def test_a_full_disk_stops_the_engine_clearly_and_nothing_written_is_lost(tmp_path):
    """T5: the store's files may not grow past a limit (the operating system refuses the
    write, as on a full disk); then the limit is lifted and the same command resumes."""
    import os
    import resource

    (tmp_path / "goal.yaml").write_text(GOAL.replace("max_trials: 36", "max_trials: 300"))
    db = tmp_path / "chaos.db"
    limit = 400 * 1024

    def full_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "200"}
    engine = subprocess.run([sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store",
                             str(db), "--workers", "2"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=240, preexec_fn=full_disk)
    assert engine.returncode == 1, engine.stderr
    assert "is the disk full?" in engine.stderr and "Traceback" not in engine.stderr
    before, trials = finished(db)
    assert before and len(trials) < 300  # it stopped part way, with trials written

    engine = start_engine(tmp_path, db, errors=True)
    _, err = engine.communicate(timeout=240)
    assert engine.returncode == 0, err
    after, trials = finished(db)
    for trial_id, outcome in before.items():  # nothing acknowledged was lost or changed
        assert after[trial_id] == outcome
    assert all(t.state.finished for t in trials)
    baselines = Counter((t.method, t.seed) for t in trials if t.stage == "baselines")
    assert set(baselines.values()) == {1} and len(baselines) == 4
