"""Reliability battery T4: damaged copies of a SQLite store.

A store cut short (a copy interrupted, a disk filled) must be refused with a clear
error or read back exactly as it was; a write-ahead log with a torn tail must give back
every transaction committed before the tear, whole, and nothing after it.
"""

import shutil
import sqlite3

import pytest

from pursuit.exceptions import StoreError
from pursuit.store import NewTrial, WriteBatch, open_store
from pursuit.testing import SPEC
from pursuit.trial import Outcome, TrialState

STEPS = 20


def write_trials(store, goal_id, count):
    """Each trial as the engine writes it: created, then curve and outcome together."""
    for i in range(count):
        [trial_id] = store.write(WriteBatch("e", new=[NewTrial(goal_id, "m", "search",
                                                              {"i": i}, 0)])).new_ids
        batch = WriteBatch("e", outcomes=[Outcome(trial_id, 1, TrialState.COMPLETED,
                                                  {"loss": i / 7})])
        batch.add_points(trial_id, 1, [(s, "loss", i + s / 10) for s in range(STEPS)])
        store.write(batch)


def read_back(path):
    store = open_store(str(path))
    try:
        goal_id = store.goal_id("g")
        if goal_id is None:
            return [], {}
        return store.trials(goal_id), store.curves(goal_id, "loss")
    finally:
        store.close()


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    folder = tmp_path_factory.mktemp("original")
    store = open_store(str(folder / "p.db"))
    write_trials(store, store.ensure_goal("g", SPEC), 300)
    store.close()  # the last connection folds the log into the file
    trials, curves = read_back(folder / "p.db")
    return folder / "p.db", {t.id: t for t in trials}, curves


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97, 0.995,
                                      1.0])  # the last, uncut, must read back whole
def test_a_store_cut_short_is_refused_or_read_exactly(tmp_path, original, fraction):
    path, truth, truth_curves = original
    data = path.read_bytes()
    copy = tmp_path / "cut.db"
    copy.write_bytes(data[:int(len(data) * fraction)])
    try:
        trials, curves = read_back(copy)
    except StoreError as error:
        assert "malformed" in str(error) or "not a database" in str(error)
        return
    for trial in trials:  # whatever is read is what was written
        assert trial == truth[trial.id]
        assert curves.get(trial.id) == truth_curves.get(trial.id)
    if fraction == 1.0:
        assert len(trials) == len(truth)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.999])
def test_a_torn_log_gives_back_the_committed_prefix_whole(tmp_path, fraction):
    live = tmp_path / "live.db"
    store = open_store(str(live))
    goal_id = store.ensure_goal("g", SPEC)
    # A reader holding its snapshot keeps every later write in the log, as a copy of a
    # running store would find it.
    reader = sqlite3.connect(live)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM goals").fetchall()
    write_trials(store, goal_id, 40)
    shutil.copy(live, tmp_path / "copy.db")
    log = (tmp_path / f"{live.name}-wal").read_bytes()
    reader.close()
    store.close()
    (tmp_path / "copy.db-wal").write_bytes(log[:int(len(log) * fraction)])

    trials, curves = read_back(tmp_path / "copy.db")
    assert [t.id for t in trials] == list(range(1, len(trials) + 1))  # a prefix, no gaps
    for trial in trials[:-1]:
        assert trial.state is TrialState.COMPLETED
        assert trial.values == {"loss": (trial.id - 1) / 7}
        assert curves[trial.id] == {s: trial.id - 1 + s / 10 for s in range(STEPS)}
    if trials:  # the last transaction kept may be the one that created its trial
        last = trials[-1]
        assert last.state in (TrialState.COMPLETED, TrialState.RUNNING)
        if last.state is TrialState.RUNNING:
            assert last.values == {} and last.id not in curves
