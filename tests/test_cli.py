import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pursuit.cli import app

HERE = Path(__file__).parent
runner = CliRunner()

GOAL = """\
name: clitoy
metric: value
direction: maximize
target: 0.5
seeds: 3
budget: {max_trials: 30}
methods:
  - sample_methods:quadratic
  - sample_methods:constant
"""


def pursuit_cmd(*args, cwd, env_extra=None):
    """The installed command, as a user runs it (a real process, real exit status)."""
    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "200", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "pursuit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One run for the tests that only read it."""
    tmp_path = tmp_path_factory.mktemp("ran")
    (tmp_path / "goal.yaml").write_text(GOAL)
    db = tmp_path / "r.db"
    result = pursuit_cmd("run", "goal.yaml", "--store", str(db), "--workers", "2",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path, db, result


def test_run_prints_the_outcome_and_leaderboard(ran):
    _, _, result = ran
    assert "clitoy: target reached: quadratic value" in result.stdout
    assert "95% interval" in result.stdout and "best baseline" in result.stdout
    assert "configurations (full seed count first)" in result.stdout


def test_status_and_leaderboard_json_agree_with_the_python_api(ran):
    import pursuit

    _, db, _ = ran
    status = json.loads(runner.invoke(app, ["status", "--store", str(db), "--json"]).stdout)
    board = json.loads(runner.invoke(app, ["leaderboard", "--store", str(db), "--json"]).stdout)
    with pursuit.open(str(db)) as results:
        lb = results.leaderboard()
        frame = results.results()
    assert status["reached"] is True and status["trials_total"] == len(frame)
    assert status["state"] == "ended" and status["reason"].startswith("target reached")
    assert status["best"]["best_mean"] == pytest.approx(lb.progress["best_mean"])
    methods = {row["method"]: row for row in board["clitoy"]["methods"]}
    assert methods["quadratic"]["mean"] == pytest.approx(
        lb.methods.set_index("method").loc["quadratic", "mean"])
    assert methods["constant"]["baseline"] is True
    assert status["budget"]["max_trials"] == 30
    assert status["best"]["best_config"] == json.loads(lb.progress["best_config"])
    assert methods["quadratic"]["config"] == json.loads(
        lb.methods.set_index("method").loc["quadratic", "config"])
    # the verdict is the claim record in words: the same numbers, never others
    assert status["verdict"].startswith(f"{lb.progress['best_method']} (")
    assert f"{lb.progress['best_mean']:.4g}" in status["verdict"]
    assert "target" in status["verdict"] and "reached." in status["verdict"]


def test_export_csv_and_parquet_give_the_flat_table(ran):
    tmp_path, db, _ = ran
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"results.{fmt}"
        result = runner.invoke(app, ["export", "--store", str(db), "--format", fmt, "-o",
                                     str(out)])
        assert result.exit_code == 0, result.stdout
        frame = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
        for column in ("trial_id", "method", "stage", "seed", "state", "dial.x", "value",
                       "cost.wall_seconds", "cost.cpu_seconds"):
            assert column in frame.columns
    assert runner.invoke(app, ["export", "--store", str(db), "--format", "xml", "-o",
                               "x"]).exit_code == 2


def test_bad_goal_file_exits_2_without_a_traceback(tmp_path):
    (tmp_path / "goal.yaml").write_text(GOAL.replace("direction: maximize", "direction: 7"))
    result = pursuit_cmd("run", "goal.yaml", "--store", str(tmp_path / "r.db"), cwd=tmp_path)
    assert result.returncode == 2
    assert "goal.yaml:3: field 'direction'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_goal_and_empty_store_are_clear_errors(tmp_path):
    from pursuit.store import open_store

    missing = pursuit_cmd("status", "--store", str(tmp_path / "missing.db"), cwd=tmp_path)
    assert missing.returncode == 2 and "there is no store at" in missing.stderr
    assert not (tmp_path / "missing.db").exists()  # a reader never makes a store
    open_store(str(tmp_path / "empty.db")).close()
    result = pursuit_cmd("status", "--store", str(tmp_path / "empty.db"), cwd=tmp_path)
    assert result.returncode == 2 and "holds no goals yet" in result.stderr
    assert "Traceback" not in result.stderr
    named = pursuit_cmd("leaderboard", "--store", str(tmp_path / "empty.db"), "--goal",
                        "nope", cwd=tmp_path)  # asking for what is not there: bad input
    assert named.returncode == 2 and "no goal named 'nope'" in named.stderr


def test_init_writes_a_goal_that_runs(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "mygoal")])
    assert result.exit_code == 0
    assert (tmp_path / "mygoal" / "goal.yaml").exists()
    from pursuit import load_goal

    goal = load_goal(tmp_path / "mygoal" / "goal.yaml")
    assert [m.name for m in goal.resolved_methods()] == ["logistic_regression", "my_method"]
    again = runner.invoke(app, ["init", str(tmp_path / "mygoal")])
    assert again.exit_code == 2


def test_every_command_has_help():
    for command in ("init", "run", "status", "leaderboard", "trials", "show", "export",
                    "report", "serve", "fit"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--help" in result.stdout, command
    listed = runner.invoke(app, ["--help"]).stdout
    assert "--version" in listed and all(c in listed for c in ("trials", "show", "report"))


def test_status_tells_a_running_engine_from_a_killed_one(tmp_path):
    import signal
    import time

    (tmp_path / "goal.yaml").write_text(GOAL.replace("clitoy", "states").replace(
        "sample_methods:quadratic", "sample_methods:hangs"))
    db = str(tmp_path / "s.db")

    def status():
        result = pursuit_cmd("status", "--store", db, "--json", cwd=tmp_path)
        return json.loads(result.stdout) if result.returncode == 0 else {}

    env = {**os.environ, "PYTHONPATH": str(HERE)}
    engine = subprocess.Popen([sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store", db,
                               "--workers", "2"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while status().get("trials", {}).get("running", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    report = status()
    assert report["state"] == "running" and report["reason"] is None
    assert "running, stage: baselines" in pursuit_cmd("status", "--store", db, cwd=tmp_path).stdout
    engine.send_signal(signal.SIGKILL)
    engine.wait()
    report = status()
    assert report["state"] == "stopped" and report["reason"] is None
    text = pursuit_cmd("status", "--store", db, cwd=tmp_path).stdout
    assert "stopped during stage baselines" in text and "resumes it" in text


def test_a_method_whose_every_trial_failed_still_gets_its_leaderboard_row(tmp_path):
    (tmp_path / "goal.yaml").write_text(
        "name: broken\nmetric: value\ndirection: maximize\nseeds: 2\n"
        "budget: {max_trials: 4}\nmethods: [sample_methods:raises, sample_methods:constant]\n")
    result = pursuit_cmd("run", "goal.yaml", "--store", "b.db", "--inline", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "no completed trials" in result.stdout
