"""Reliability battery T8: clock skew.

Engines on different machines judge each other's trials by the heartbeats they write,
timed by the database's clock, never by their own. An engine whose clock is hours off
must neither take back a trial whose engine is alive nor leave one whose engine died.
The engine under test runs under libfaketime, which shifts every clock the process
reads; its trials' neighbours are engines of other machines, written into the store.
(On SQLite every engine shares one machine and is judged by whether its process lives.)
"""

import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pursuit.goal import load_goal
from pursuit.store import NewTrial, WriteBatch, open_store
from pursuit.trial import TrialState

HERE = Path(__file__).parent
REQUIRE_FAKETIME = os.environ.get("PURSUIT_REQUIRE_FAKETIME") == "1"
SKEW = 2 * 3600.0

GOAL = """\
name: skew
metric: value
direction: maximize
seeds: 2
budget: {max_trials: 2}
methods:
  - sample_methods:constant
"""


def faketime_library() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        if REQUIRE_FAKETIME:
            pytest.fail("PURSUIT_REQUIRE_FAKETIME is set but libfaketime is not installed")
        pytest.skip("libfaketime is not installed (apt-get install libfaketime)")
    return found[0]


def skewed_env(offset: float) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(HERE), "LD_PRELOAD": faketime_library(),
            "FAKETIME": f"{offset:+.0f}"}


@pytest.mark.parametrize("offset", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_an_engine_with_a_skewed_clock_takes_back_exactly_the_dead_engines_trial(
        tmp_path, offset):
    from conftest import postgres_url, raw_engine

    url = postgres_url()
    env = skewed_env(offset)
    seen = subprocess.run([sys.executable, "-c", "import time; print(time.time())"], env=env,
                          capture_output=True, text=True, check=True).stdout
    assert abs(float(seen) - time.time() - offset) < 60, "libfaketime did not shift the clock"

    (tmp_path / "goal.yaml").write_text(GOAL)
    goal = load_goal(tmp_path / "goal.yaml")
    store = open_store(url)
    try:
        goal_id = store.ensure_goal(goal.name, goal.spec())
        # Two engines on other machines: one died ten minutes ago, one is beating now.
        [dead] = store.write(WriteBatch(engine="far-a:41:deadbeef", new=[
            NewTrial(goal_id, "constant", "baselines", {}, 0)])).new_ids
        [alive] = store.write(WriteBatch(engine="far-b:42:cafecafe", new=[
            NewTrial(goal_id, "constant", "baselines", {}, 1)])).new_ids
        database = raw_engine(url)
        with database.begin() as conn:
            conn.execute(sa.text("UPDATE trials SET heartbeat_at = heartbeat_at - 600 "
                                 "WHERE id = :id"), {"id": dead})
        database.dispose()
        store.heartbeat("far-b:42:cafecafe")

        engine = subprocess.run([sys.executable, "-m", "pursuit", "run", "goal.yaml",
                                 "--store", url, "--workers", "1"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert engine.returncode == 0, engine.stderr

        trials = {t.id: t for t in store.trials(goal_id)}
        running = {r.id: r for r in store.running(goal_id)}
    finally:
        store.close()
    # The dead engine's trial was taken back and run again: no missed reap.
    assert trials[dead].state is TrialState.COMPLETED and trials[dead].attempt == 2
    # The live engine's trial was left to it: no false reap.
    assert trials[alive].state is TrialState.RUNNING and trials[alive].attempt == 1
    assert running[alive].engine == "far-b:42:cafecafe"
    assert len(trials) == 2
