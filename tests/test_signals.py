"""T15 (signals): SIGTERM stops a run as Ctrl-C does, through the CLI and the Python API,
and no worker outlives its engine, however the engine ends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_gone

import pursuit
from pursuit.store import open_store

HERE = Path(__file__).parent

GOAL = """\
name: term
metric: value
direction: maximize
seeds: 2
methods:
  - sample_methods:naps
"""

SCRIPT = """\
import sys

import pursuit

goal = pursuit.Goal(name="term", metric="value", direction="maximize", seeds=2,
                    methods=["sample_methods:naps"])
if __name__ == "__main__":
    pursuit.run(goal, sys.argv[1], sys.argv[2], workers=2, workdir="work")
"""


def start(tmp_path, *command):
    env = {**os.environ, "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE),
                                                       os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, *command], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_napping(tmp_path, engine, count):
    """Wait until ``count`` trials are inside the method; return the engine's workers."""
    deadline = time.monotonic() + 60
    while len(list(tmp_path.rglob("napping-*"))) < count:
        assert engine.poll() is None, engine.communicate()
        assert time.monotonic() < deadline, "the trials never started"
        time.sleep(0.05)
    return [int(path.name.split("-")[1]) for path in tmp_path.rglob("napping-*")]


def trials_and_run_state(db):
    store = open_store(str(db))
    try:
        trials = store.trials(store.goal_id("term"))
    finally:
        store.close()
    with pursuit.open(str(db)) as results:
        return trials, results.run_state("term")


def test_sigterm_stops_the_cli_as_ctrl_c_does_and_the_same_command_resumes(tmp_path):
    (tmp_path / "goal.yaml").write_text(GOAL)
    db = tmp_path / "term.db"
    command = ["-m", "pursuit", "run", "goal.yaml", "--store", str(db), "--workers", "2"]
    engine = start(tmp_path, *command)
    workers = wait_until_napping(tmp_path, engine, 2)
    sent = time.monotonic()
    engine.send_signal(signal.SIGTERM)
    _, err = engine.communicate(timeout=30)
    stopped_in = time.monotonic() - sent
    assert engine.returncode == 143, err
    assert "the engine was stopped by SIGTERM" in err and "Traceback" not in err
    assert stopped_in < 5, stopped_in
    assert not wait_gone(workers), "a worker outlived its engine"
    trials, (state, reason) = trials_and_run_state(db)
    assert [(t.state.value, t.error) for t in trials] == \
        [("preempted", "the engine was stopped by SIGTERM")] * 2
    assert state == "ended" and reason.startswith("the engine was stopped by SIGTERM")

    engine = start(tmp_path, *command)
    _, err = engine.communicate(timeout=60)
    assert engine.returncode == 0, err
    trials, (state, _) = trials_and_run_state(db)
    assert [(t.state.value, t.attempt) for t in trials] == [("completed", 2)] * 2


@pytest.mark.parametrize("executor", ["processes", "inline"])
def test_sigterm_stops_a_python_run_cleanly_with_status_143(tmp_path, executor):
    db = tmp_path / "term.db"
    engine = start(tmp_path, "-c", SCRIPT, str(db), executor)
    wait_until_napping(tmp_path, engine, 2 if executor == "processes" else 1)
    engine.send_signal(signal.SIGTERM)
    _, err = engine.communicate(timeout=30)
    assert engine.returncode == 143, err
    assert "Traceback" not in err, err
    trials, (state, reason) = trials_and_run_state(db)
    assert trials and not any(t.state.value == "running" for t in trials)
    assert {t.error for t in trials if t.state.value == "preempted"} == \
        {"the engine was stopped by SIGTERM"}
    assert state == "ended" and "SIGTERM" in reason


def test_a_run_holds_sigterm_only_while_it_runs_and_puts_back_the_handler_it_found(tmp_path):
    from pursuit.execution import InlineExecutor
    from pursuit.store import MemoryStore

    def mine(signum, frame):
        pass

    seen = []
    goal = pursuit.Goal(name="h", metric="value", direction="maximize", seeds=2,
                        methods=["sample_methods:constant"])
    before = signal.signal(signal.SIGTERM, mine)
    try:
        pursuit.run(goal, MemoryStore(), InlineExecutor(), workdir=tmp_path,
                    on_progress=lambda _: seen.append(signal.getsignal(signal.SIGTERM)))
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
    assert seen[0] is not mine  # the run's own handler, while trials ran


def test_workers_end_with_their_engine_even_when_it_is_sigkilled(tmp_path):
    """SIGKILL leaves no time to clean up: each worker watches its engine and ends with
    it, instead of training on into a directory a resumed engine hands to a new attempt."""
    (tmp_path / "goal.yaml").write_text(GOAL.replace("naps", "naps_long"))
    engine = start(tmp_path, "-m", "pursuit", "run", "goal.yaml", "--store",
                   str(tmp_path / "term.db"), "--workers", "2")
    workers = wait_until_napping(tmp_path, engine, 2)
    engine.send_signal(signal.SIGKILL)
    engine.communicate(timeout=30)
    assert not wait_gone(workers, seconds=5), "a worker outlived its engine"


def test_a_run_outside_the_main_thread_leaves_sigterm_alone(tmp_path):
    """Python runs signal handlers in the main thread only: a run in another thread
    neither installs one (which would raise) nor changes the process's."""
    import threading

    from pursuit.execution import InlineExecutor
    from pursuit.store import MemoryStore

    goal = pursuit.Goal(name="t", metric="value", direction="maximize", seeds=2,
                        methods=["sample_methods:constant"])
    before, summaries = signal.getsignal(signal.SIGTERM), []
    thread = threading.Thread(target=lambda: summaries.extend(pursuit.run(
        goal, MemoryStore(), InlineExecutor(), workdir=tmp_path)))
    thread.start()
    thread.join(timeout=60)
    assert [s.trials for s in summaries] == [2]
    assert signal.getsignal(signal.SIGTERM) is before
