"""Results are never misfiled: metric names that collide with the table's columns, two
projects' goals of one name, and work directories shared between stores."""

import subprocess
import sys
from pathlib import Path

import pytest

import pursuit
from pursuit import Goal
from pursuit.exceptions import StoreError
from pursuit.execution import InlineExecutor, ProcessExecutor
from pursuit.store import MemoryStore, open_store

HERE = Path(__file__).parent


def test_a_metric_named_like_a_column_is_filed_under_its_own_name(tmp_path):
    store = MemoryStore()
    goal = Goal(name="cols", metric="error", direction="minimize", target=0.0, seeds=3,
                budget={"max_trials": 3}, methods=["sample_methods:named_like_columns"])
    pursuit.run(goal, store, InlineExecutor(), workdir=tmp_path)
    results = pursuit.Results(store)
    frame = results.results()
    assert frame["seed"].tolist() == [0, 1, 2]  # the table's own seed, not the metric
    assert frame["error"].isna().all()  # no trial failed
    assert frame["metric.error"].tolist() == pytest.approx([0.1, 0.105, 0.11])
    assert frame["metric.seed"].tolist() == [99.0] * 3
    assert frame["metric.dial.x"].tolist() == [7.0] * 3 and frame["dial.x"].tolist() == [0.5] * 3
    assert frame["cost.reported.wall_seconds"].tolist() == [123.0] * 3
    assert (frame["cost.wall_seconds"] < 100).all()  # what was measured stays
    board = results.leaderboard()
    assert board.progress["best_n"] == 3
    assert board.progress["best_mean"] == pytest.approx(0.105)


def test_two_projects_goals_of_one_name_are_never_merged(tmp_path):
    for folder, module in (("A", "ma"), ("B", "mb")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{module}.py").write_text(
            "import pursuit\n\n@pursuit.method\ndef model(trial):\n"
            f"    return {0.5 if module == 'ma' else 0.9}\n")
        (tmp_path / folder / "goal.yaml").write_text(
            f"name: exp\nmetric: score\ndirection: maximize\nseeds: 2\n"
            f"budget: {{max_trials: 2}}\nmethods: [{module}:model]\n")
    store = tmp_path / "shared.db"

    def run(folder):
        return subprocess.run([sys.executable, "-m", "pursuit", "run",
                               str(tmp_path / folder / "goal.yaml"), "--store", str(store),
                               "--inline"], capture_output=True, text=True, timeout=120)

    assert run("A").returncode == 0
    second = run("B")
    assert second.returncode != 0
    assert "ma:model" in second.stderr and "mb:model" in second.stderr
    assert "Traceback" not in second.stderr
    opened = open_store(str(store))
    assert [t.values for t in opened.trials(1)] == [{"score": 0.5}] * 2  # A's, untouched
    opened.close()


def test_work_directories_are_absolute_and_one_per_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    goal = Goal(name="dirs", metric="value", direction="maximize", seeds=3,
                budget={"max_trials": 3}, methods=["sample_methods:marks_its_workdir"])
    for name in ("one.db", "two.db"):
        pursuit.run(goal, name, ProcessExecutor(1), workdir="work")
    marks = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("mark"))
    # Two stores, three trials each (ids 1..3 in both): six folders, none nested.
    assert len(marks) == 6 and all(len(m.parts) == 5 for m in marks), marks
    assert len({m.parts[1] for m in marks}) == 2  # one folder per store
    assert {m.parent.name for m in marks} == {"1", "2", "3"}
    assert {p.read_text() for p in tmp_path.rglob("mark")} == {"1", "2", "3"}


def test_the_store_refuses_another_goal_under_a_known_name():
    store = MemoryStore()
    spec = {"metric": "m", "direction": "minimize",
            "methods": [{"name": "model", "entry": "ma:model"}]}
    store.ensure_goal("exp", spec)
    with pytest.raises(StoreError, match="ma:model"):
        store.ensure_goal("exp", {**spec, "methods": [{"name": "model", "entry": "mb:model"}]})
