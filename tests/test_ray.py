"""The Ray executor on real Ray: one local cluster for the module (a head of 2 CPUs, to
which T14 adds worker nodes and takes them away), goals run through the real engine on
SQLite, engines in processes of their own interrupted, stopped and killed mid-run, and
(last) an instance the executor starts itself.

Skipped without Ray, unless PURSUIT_REQUIRE_RAY=1 (CI), which makes that a failure.
"""

import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from conftest import wait_gone

import pursuit
from pursuit import Goal, Policy
from pursuit.exceptions import PursuitError
from pursuit.execution import RayExecutor
from pursuit.methods import load_method
from pursuit.store import open_store
from pursuit.trial import Task, TrialState

HERE = Path(__file__).parent


def import_ray():
    try:
        import ray
    except ImportError as error:
        if os.environ.get("PURSUIT_REQUIRE_RAY") == "1":
            pytest.fail(f"PURSUIT_REQUIRE_RAY is set but Ray does not import: {error}")
        pytest.skip("Ray is not installed (pip install 'pursuit[ray]'); "
                    "PURSUIT_REQUIRE_RAY=1 makes this a failure")
    return ray


@pytest.fixture(scope="module")
def cluster():
    ray = import_ray()
    from ray.cluster_utils import Cluster

    # A node taken away is known for dead after 3 missed checks 0.5 s apart (not after
    # 15 s); each check still waits its own timeout, so a slow node is not taken for dead.
    head = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 500,
                           "health_check_failure_threshold": 3}})
    found, environment = signal.getsignal(signal.SIGTERM), dict(os.environ)
    try:
        ray.init(address=head.address, logging_level="WARNING")
        signal.signal(signal.SIGTERM, found)  # ray.init sets its own
        yield head
    finally:
        ray.shutdown()
        head.shutdown()
        # (ray.init also sets variables, PYTHONBREAKPOINT among them, for the tests after)
        for name in set(os.environ) - set(environment):
            del os.environ[name]
        os.environ.update(environment)


class Recorder:
    """The engine's side of the executor contract, written down."""

    def __init__(self):
        self.reports, self.outcomes = [], []

    def on_report(self, trial_id, attempt, points):
        self.reports.append((trial_id, attempt, points))

    def should_stop(self, trial_id, attempt):
        return False

    def on_finish(self, outcome):
        self.outcomes.append(outcome)


def results(url):
    with pursuit.open(url) as opened:
        return opened.results()


def running_pids(folder):
    """The worker processes of the trials that began and did not end (ray_methods)."""
    return [int(path.name.split("-")[1]) for path in folder.rglob("running-*")]


# ----------------------------------------------------------------- without a cluster
def test_importing_pursuit_imports_no_ray():
    code = ("import sys, pursuit, pursuit.execution\n"
            "from pursuit.execution import RayExecutor\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without Ray
    with pytest.raises(PursuitError, match=r"pip install 'pursuit\[ray\]'"):
        RayExecutor()


@pytest.mark.parametrize("options, message", [
    ({"num_cpus": -1}, "num_cpus must be a number >= 0, got -1"),
    ({"num_gpus": math.nan}, "num_gpus must be a number >= 0, got nan"),
    ({"memory": 0}, "memory must be a number of bytes > 0, got 0"),
    ({"memory": "2GB"}, "memory must be a number of bytes > 0, got '2GB'"),
    ({"slots": 0}, "slots must be a whole number >= 1, got 0"),
    ({"resources": {"GPU": 1}}, "give GPU as num_cpus, num_gpus or memory"),
    ({"resources": {"disk": True}}, r"resources\['disk'\] must be a number >= 0, got True"),
])
def test_bad_resources_are_refused(options, message):
    import_ray()
    with pytest.raises(PursuitError, match=message):
        RayExecutor(**options)


def test_an_address_where_no_cluster_answers_is_refused_at_once(tmp_path):
    import_ray()
    code = ("from pursuit.execution import RayExecutor\n"
            "for address in ['127.0.0.1:1', 'ray://127.0.0.1:1']:\n"
            "    try:\n"
            "        RayExecutor(address)\n"
            "    except Exception as error:\n"
            "        print(type(error).__name__, error)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.stdout.splitlines() == [
        f"PursuitError could not connect to the Ray cluster at {address!r}: [Errno 111] "
        "Connection refused" for address in ["127.0.0.1:1", "ray://127.0.0.1:1"]], done.stderr
    assert time.monotonic() - started < 30  # (Ray itself tries again for minutes)


# ----------------------------------------------------------------- on the module's cluster
def test_trials_that_no_node_can_hold_are_refused_at_once(cluster):
    with pytest.raises(PursuitError, match=r"each trial asks for 1 GPU, more than the Ray "
                                           r"cluster has \(2 CPU, .*\)"):
        RayExecutor(num_gpus=1)
    assert RayExecutor(num_gpus=1, slots=1).slots == 1  # (for nodes still to come)


def test_curves_reach_the_store_should_stop_prunes_and_subgoals_run(cluster, tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    goal = Goal(name="curves", metric="value", direction="minimize", seeds=1,
                budget={"max_trials": 14}, methods=["sample_methods:curve"],
                subgoals=[{"name": "part", "metric": "value", "direction": "maximize",
                           "seeds": 2, "methods": ["sample_methods:quadratic"]}])
    executor = RayExecutor()
    summaries = pursuit.run(goal, url, executor, workdir=tmp_path / "work",
                            sampler=optuna.samplers.TPESampler(seed=1),
                            policy=Policy(min_search_trials=14),
                            pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                               n_warmup_steps=0))
    assert [s.goal for s in summaries] == ["curves", "curves/part"]
    frame = results(url)
    assert set(frame["state"]) == {"completed", "pruned"}, frame["error"].tolist()
    store = open_store(url)
    try:
        for trial in store.trials(store.goal_id("curves")):
            steps = trial.dials["steps"]
            curve = [step for _, step, _, _ in store.curve(trial.id)]
            if trial.state is TrialState.COMPLETED:
                assert curve == list(range(steps)), trial
            else:  # pruned: it stopped when the engine said so, its curve kept that far
                assert trial.state is TrialState.PRUNED and curve == list(range(len(curve)))
                assert 1 <= len(curve) < steps, trial
        assert sum(t.state is TrialState.PRUNED for t in store.trials(1)) >= 1
        part = store.trials(store.goal_id("curves/part"))
        assert part and all(t.state is TrialState.COMPLETED for t in part)
        assert all([p[1] for p in store.curve(t.id)] == [0, 1, 2] for t in part)
    finally:
        store.close()


def test_every_kind_of_fault_ends_its_trial_as_it_should(cluster, tmp_path, monkeypatch):
    # A module the engine imports and the workers cannot (it is gone before they look).
    (tmp_path / "vanishing.py").write_text("def method(trial):\n    return 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    vanishing = load_method("vanishing:method")
    (tmp_path / "vanishing.py").unlink()
    monkeypatch.chdir(tmp_path)  # the workers read ray-input.txt from here
    (tmp_path / "ray-input.txt").write_text("0.625")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    goal = Goal(name="faults", metric="value", direction="maximize", seeds=1, trial_timeout=3,
                budget={"max_trials": 10},
                methods=["sample_methods:quadratic", "sample_methods:raises",
                         "sample_methods:returns_nan", "sample_methods:returns_text",
                         "sample_methods:hangs", "sample_methods:sigkilled_once",
                         "sample_methods:always_sigkilled", "sample_methods:reports_twice",
                         "ray_methods:reads_beside", vanishing])
    [summary] = pursuit.run(goal, url, RayExecutor(), workdir=tmp_path / "work",
                            policy=Policy(max_attempts=2))
    frame = results(url).set_index("method")
    states, errors = frame["state"].to_dict(), frame["error"].fillna("").to_dict()
    assert states["quadratic"] == "completed"
    # A method that raises: failed, with the traceback's end, as in a worker process.
    assert 'sample_methods.py", line' in errors["raises"]
    assert "RuntimeError: boom in the method" in errors["raises"]
    assert "is nan" in errors["returns_nan"] and math.isnan(frame.loc["returns_nan", "value"])
    assert "expected a number" in errors["returns_text"]
    assert errors["hangs"] == "timed out after 3 s"
    # A worker killed under its trial: preempted, and run again.
    assert states["sigkilled_once"] == "completed" and frame.loc["sigkilled_once",
                                                                  "attempt"] == 2
    assert errors["always_sigkilled"].startswith("preempted 2 times; last: the Ray worker")
    assert states["reports_twice"] == "completed"
    assert frame.loc["reads_beside", "value"] == 0.625
    assert "the worker could not load the method" in errors["method"]
    assert "vanishing" in errors["method"]
    assert {states[m] for m in ("raises", "returns_nan", "returns_text", "hangs",
                                "always_sigkilled", "method")} == {"failed"}
    assert summary.refused_writes == 0
    store = open_store(url)
    try:  # the first report of each step stands, whatever order the steps came in (T7)
        [twice] = [t for t in store.trials(1) if t.method == "reports_twice"]
        assert store.curve(twice.id) == [(1, 0, "value", 0.0), (1, 1, "value", 1.0),
                                         (1, 2, "value", 2.0)]
    finally:
        store.close()


def test_close_with_kill_ends_running_tasks_and_the_executor_starts_again(cluster, tmp_path):
    executor, sink = RayExecutor(), Recorder()
    executor.start(sink)
    assert executor.slots == 2  # the head's 2 CPUs, one per trial

    def task(trial_id, entry, **dials):
        return Task(trial_id, 1, load_method(entry), dials, 0, "value",
                    str(tmp_path / str(trial_id)))

    executor.submit(task(1, "ray_methods:naps_for_a_minute"))
    deadline = time.monotonic() + 60
    while not running_pids(tmp_path):
        executor.poll(0.05)
        assert time.monotonic() < deadline, "the trial never began"
    executor.close(kill=True)
    assert not wait_gone(running_pids(tmp_path), seconds=2), "a cancelled task ran on"
    assert executor.busy() == 0 and sink.outcomes == []  # the engine gives it back

    executor.start(sink)  # as the engine does after its wall-clock budget preempts
    executor.submit(task(2, "sample_methods:quadratic", x=1.0))
    deadline = time.monotonic() + 60
    while executor.busy():
        executor.poll(0.05)
        assert time.monotonic() < deadline, "the trial never ended"
    executor.close()
    [outcome] = sink.outcomes
    assert (outcome.trial_id, outcome.state) == (2, TrialState.COMPLETED), outcome.error
    assert [(t, a, [p[0] for p in points]) for t, a, points in sink.reports] == \
        [(2, 1, [0, 1, 2])]


def test_a_node_lost_mid_trial_preempts_it_and_it_runs_again_elsewhere(cluster, tmp_path):
    """T14: a trial pinned (by a custom resource) to a worker node; the node is killed
    mid-trial, and another with the resource joins."""
    watching = RayExecutor()  # one trial per CPU: its slots follow the nodes
    watching.start(Recorder())
    assert watching.slots == 2
    first = cluster.add_node(num_cpus=1, resources={"t14": 1})
    url = f"sqlite:///{tmp_path / 'p.db'}"
    goal = Goal(name="t14", metric="value", direction="maximize", seeds=1,
                methods=["ray_methods:lost_with_its_node"])
    ended = {}

    def run():
        try:
            ended["summaries"] = pursuit.run(goal, url, RayExecutor(resources={"t14": 1}),
                                             workdir=tmp_path / "work")
        except BaseException as error:
            ended["error"] = error

    engine = threading.Thread(target=run)
    engine.start()
    deadline = time.monotonic() + 60
    while not list(tmp_path.rglob("began-*")):
        assert engine.is_alive() and time.monotonic() < deadline, ended
        time.sleep(0.05)
    cluster.remove_node(first, allow_graceful=False)
    second = cluster.add_node(num_cpus=1, resources={"t14": 1})
    try:
        engine.join(timeout=120)
        assert not engine.is_alive(), "the engine never ended"
        assert "error" not in ended, ended
        store = open_store(url)
        try:
            [trial] = store.trials(1)
            assert (trial.state, trial.attempt) == (TrialState.COMPLETED, 2)
            # Nothing lost: what the lost attempt reported, and the whole curve of the one
            # that completed.
            assert store.curve(trial.id) == [(1, 0, "value", 0.0), (2, 0, "value", 0.0),
                                             (2, 1, "value", 1.0)]
        finally:
            store.close()
        nodes = {path.read_text() for path in tmp_path.rglob("node-*")}
        assert nodes == {first.node_id, second.node_id}
        watching.poll(0)  # (slots are read again at most every 2 s: the run took longer)
        assert watching.slots == 3  # the head's 2 CPUs and the second node's
    finally:
        watching.close()
        cluster.remove_node(second)


ENGINE = """\
import sys

import pursuit
from pursuit.execution import RayExecutor

goal = pursuit.Goal(name="resume", metric="value", direction="maximize", seeds=2,
                    budget={"max_trials": 30},
                    methods=["ray_methods:dozes", "sample_methods:quadratic"])
if __name__ == "__main__":
    try:
        pursuit.run(goal, sys.argv[1], RayExecutor(sys.argv[2]), workdir="work")
    except KeyboardInterrupt:
        sys.exit(130)
"""


def test_an_engine_interrupted_stopped_or_killed_resumes_losing_and_repeating_nothing(
        cluster, tmp_path):
    """T14's other half: an engine on an existing cluster stopped by Ctrl-C, by SIGTERM
    and by SIGKILL mid-run; each new engine reconnects (by the head's address, by
    "auto", by Ray Client) and takes back what ran."""
    (tmp_path / "engine.py").write_text(ENGINE)
    db = tmp_path / "p.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    # A Ray Client server on the head, as `ray start --head` runs one; in its mode that
    # serves clients itself (the proxy of `ray start` forks a server for each client,
    # which now and then dies at once on a busy machine).
    client_server = subprocess.Popen(
        [sys.executable, "-m", "ray.util.client.server", f"--address={cluster.address}",
         f"--port={port}", "--host=127.0.0.1", "--mode=legacy"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(address, **more_env):
        return subprocess.Popen([sys.executable, "engine.py", str(db), address],
                                cwd=tmp_path, env={**env, **more_env},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def trials():
        store = open_store(str(db))
        try:
            return store.trials(store.goal_id("resume"))
        finally:
            store.close()

    seen = {}
    try:
        for how, status, why, address, more_env in [
                (signal.SIGINT, 130, "the engine was interrupted (Ctrl-C)", cluster.address,
                 {}),
                (signal.SIGTERM, 143, "the engine was stopped by SIGTERM", "auto",
                 {"RAY_ADDRESS": cluster.address}),
                (signal.SIGKILL, -9, None, cluster.address, {})]:
            engine = start(address, **more_env)
            deadline = time.monotonic() + 90
            while not db.exists() or sum(t.state.finished for t in trials()) < len(seen) + 4:
                assert engine.poll() is None, engine.communicate()
                assert time.monotonic() < deadline, "the trials never finished"
                time.sleep(0.25)
            engine.send_signal(how)
            _, err = engine.communicate(timeout=60)
            assert engine.returncode == status, err
            assert "Traceback" not in err
            assert not wait_gone(running_pids(tmp_path), seconds=10), f"a task outlived {how.name}"
            now = {t.id: t for t in trials()}
            for trial_id, before in seen.items():  # nothing finished is lost or changed
                assert (now[trial_id].state, now[trial_id].attempt, now[trial_id].values) == \
                    before, f"trial {trial_id} changed after {how.name}"
            seen = {t.id: (t.state, t.attempt, t.values) for t in now.values()
                    if t.state.finished}
            if why is not None:  # stopped cleanly: what ran is given back, with the reason
                assert not [t for t in now.values() if t.state is TrialState.RUNNING]
                given_back = [t for t in now.values() if t.state is TrialState.PREEMPTED]
                assert given_back and {t.error for t in given_back} == {why}
        engine = start(f"ray://127.0.0.1:{port}")
        _, err = engine.communicate(timeout=180)
        assert engine.returncode == 0, err
    finally:
        client_server.terminate()
        client_server.wait(timeout=30)
    final = trials()
    for trial in final:
        if trial.id in seen:
            assert (trial.state, trial.attempt, trial.values) == seen[trial.id]
    assert all(t.state is TrialState.COMPLETED for t in final), Counter(t.state for t in final)
    assert len(final) <= 30
    runs = Counter((t.method, t.config, t.seed) for t in final)
    assert set(runs.values()) == {1}, runs.most_common(2)  # none run twice
    assert sum(t.attempt - 1 for t in final) >= 3  # each stop gave back a trial, run again


LOCAL = """\
import signal
import sys

import ray

import pursuit
from pursuit.execution import RayExecutor

goal = pursuit.Goal(name="local", metric="value", direction="maximize", seeds=2,
                    methods=["sample_methods:constant"])
if __name__ == "__main__":
    [summary] = pursuit.run(goal, sys.argv[1], RayExecutor(), workdir="work")
    node = ray._private.worker.global_worker.node
    print(summary.trials, node.address_info["webui_url"] or "no dashboard",
          signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""


def test_without_an_address_a_local_instance_starts_without_a_dashboard(tmp_path):
    import_ray()
    (tmp_path / "local.py").write_text(LOCAL)
    # A Ray folder of its own (short: Ray's sockets live there), so that no record of
    # another instance on this machine is found.
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_dir:
        env = {**os.environ, "RAY_TMPDIR": ray_dir, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run([sys.executable, "local.py", str(tmp_path / "p.db")],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "no", "dashboard", "True"], done.stdout


def test_a_goal_file_sends_its_trials_to_ray_through_the_command(tmp_path):
    """`executor: ray` in the goal file, through the `pursuit` command, on a local
    instance it starts."""
    import_ray()
    (tmp_path / "goal.yaml").write_text(
        "name: onray\nmetric: value\ndirection: maximize\nseeds: 2\n"
        "executor: {name: ray, num_cpus: 1}\nmethods: [sample_methods:constant]\n")
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_dir:
        env = {**os.environ, "RAY_TMPDIR": ray_dir, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run([sys.executable, "-m", "pursuit", "run", "goal.yaml",
                               "--store", str(tmp_path / "r.db")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    with pursuit.open(str(tmp_path / "r.db")) as results:
        frame = results.results("onray")
        assert results.goal("onray").spec["executor"]["name"] == "ray"
    assert list(frame["state"]) == ["completed", "completed"]
