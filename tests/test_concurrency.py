"""Reliability battery at CI size: T3 (16 writers and 2 readers at once) and T13 (8
engines opening one empty database at once), on SQLite and on PostgreSQL.

Every process is real and starts at the same moment; the invariants are checked on the
store afterwards and, for the readers, on every read they made while the writers wrote.
"""

import multiprocessing
import time

import pytest
from conftest import raw_engine

import pursuit.store._sql  # noqa: F401 - loaded before the fork, so every process starts at once
from pursuit.store import NewTrial, WriteBatch, open_store
from pursuit.testing import SPEC
from pursuit.trial import Outcome, TrialState

WRITERS, READERS, TRIALS, STEPS = 16, 2, 15, 5


@pytest.fixture(params=["sqlite", "postgres"])
def new_database(request, tmp_path):
    """A maker of empty databases of one kind."""
    from conftest import postgres_url

    names = iter(range(1000))
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'shared{next(names)}.db'}"
    return postgres_url


@pytest.fixture
def empty_url(new_database):
    return new_database()


def _wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time() - 0.01))
    while time.time() < moment:  # the last moment spun, for a start within microseconds
        pass


def _open_and_write(url: str, index: int, start: float) -> str:
    """One engine's start: open (and migrate) the store, record the goal, write a trial."""
    _wait_until(start)
    try:
        store = open_store(url)
        goal_id = store.ensure_goal("g", SPEC)
        store.write(WriteBatch(f"e{index}", new=[NewTrial(goal_id, "m", "search",
                                                          {"engine": index}, 0)]))
        store.close()
        return "ok"
    except Exception as error:  # reported to the test, which names it
        return repr(error)


def _writer(url: str, index: int, start: float) -> str:
    """Each trial in two batches, as the engine writes them: created running, then its
    curve and outcome together."""
    store = open_store(url)
    goal_id = store.goal_id("g")
    _wait_until(start)
    try:
        for number in range(TRIALS):
            [trial_id] = store.write(WriteBatch(f"w{index}", new=[NewTrial(
                goal_id, "m", "search", {"writer": index, "number": number}, 0)])).new_ids
            batch = WriteBatch(f"w{index}", outcomes=[Outcome(
                trial_id, 1, TrialState.COMPLETED, {"loss": index + number / 100})])
            batch.add_points(trial_id, 1, [(step, "loss", float(step)) for step in range(STEPS)])
            store.write(batch)
        return "ok"
    except Exception as error:
        return repr(error)
    finally:
        store.close()


def _reader(url: str, start: float, until: float) -> str:
    """Reads while the writers write: a finished trial always shows its value and its
    whole curve (batches are atomic), and nothing once seen disappears."""
    store = open_store(url)
    goal_id = store.goal_id("g")
    _wait_until(start)
    seen, reads = 0, 0
    try:
        while time.time() < until:
            trials = store.trials(goal_id)
            curves = store.curves(goal_id, "loss")
            reads += 1
            if len(trials) < seen:
                return f"{seen} trials were seen, then {len(trials)}"
            seen = len(trials)
            for trial in trials:
                if trial.state is TrialState.COMPLETED and "loss" not in trial.values:
                    return f"trial {trial.id} completed without its value"
                if trial.state is TrialState.COMPLETED and trial.id in curves and \
                        len(curves[trial.id]) != STEPS:
                    return f"trial {trial.id} completed with part of its curve"
        return f"ok {reads}"
    except Exception as error:
        return repr(error)
    finally:
        store.close()


@pytest.mark.parametrize("round_", range(3))  # a race shows in some rounds, not all
def test_engines_opening_one_empty_database_at_once_migrate_it_once(new_database, round_):
    url = new_database()
    start = time.time() + 1.0
    with multiprocessing.get_context("fork").Pool(8) as pool:
        outcomes = pool.starmap(_open_and_write, [(url, i, start) for i in range(8)])
    assert outcomes == ["ok"] * 8
    store = open_store(url)
    [goal] = store.goals()  # one goal, however many engines created it at once
    assert len(store.trials(goal.id)) == 8
    store.close()
    engine = raw_engine(url)
    with engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    engine.dispose()
    assert len(versions) == 1  # one schema, at one revision


def test_sixteen_writers_and_two_readers_lose_and_duplicate_nothing(empty_url):
    store = open_store(empty_url)
    goal_id = store.ensure_goal("g", SPEC)
    store.close()
    start = time.time() + 2.0
    with multiprocessing.get_context("fork").Pool(WRITERS + READERS) as pool:
        readers = [pool.apply_async(_reader, (empty_url, start, start + 6.0))
                   for _ in range(READERS)]
        writers = pool.starmap(_writer, [(empty_url, i, start) for i in range(WRITERS)])
        read = [r.get(timeout=120) for r in readers]
    assert writers == ["ok"] * WRITERS
    assert all(r.startswith("ok") for r in read), read
    assert all(int(r.split()[1]) > 1 for r in read), read  # they read while others wrote

    store = open_store(empty_url)
    trials = store.trials(goal_id)
    curves = store.curves(goal_id, "loss")
    store.close()
    written = sorted((t.dials["writer"], t.dials["number"]) for t in trials)
    assert written == [(w, n) for w in range(WRITERS) for n in range(TRIALS)]  # 0 lost, 0 twice
    assert all(t.state is TrialState.COMPLETED and t.attempt == 1 for t in trials)
    assert all(t.values["loss"] == t.dials["writer"] + t.dials["number"] / 100 for t in trials)
    assert all(curves[t.id] == {s: float(s) for s in range(STEPS)} for t in trials)
    if empty_url.startswith("sqlite"):
        engine = raw_engine(empty_url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()


def test_two_engines_on_one_goal_run_each_seed_of_a_configuration_once(empty_url, tmp_path):
    """A team's engines share a goal: a trial that both plan at once (a baseline, a
    search proposal, a confirmation) is run by one of them, so no seed counts twice."""
    import os
    import subprocess
    import sys
    from collections import Counter
    from pathlib import Path

    (tmp_path / "goal.yaml").write_text(
        "name: team\nmetric: value\ndirection: maximize\nseeds: 3\n"
        "budget: {max_trials: 40}\nmethods:\n  - sample_methods:quadratic\n"
        "  - sample_methods:constant\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    command = [sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store", empty_url,
               "--workers", "1"]
    engines = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for engine in engines:
        _, err = engine.communicate(timeout=180)
        assert engine.returncode == 0, err
    store = open_store(empty_url)
    trials = store.trials(store.goal_id("team"))
    store.close()
    runs = Counter((t.method, t.config, t.seed) for t in trials)  # whatever the stage
    assert runs and set(runs.values()) == {1}, runs.most_common(3)
    baselines = Counter((t.method, t.seed) for t in trials if t.stage == "baselines")
    assert baselines == {(m, s): 1 for m in ("quadratic", "constant") for s in range(3)}
