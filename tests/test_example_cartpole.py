"""The CartPole example: each method learns, a seed fixes a run, and the goal runs end to end.

Tiny budgets (a few thousand environment steps, small networks) keep the file fast; the
numbers are those of the fixed seeds, so the checks are exact, not statistical.
"""

import sys
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("gymnasium")

import pursuit  # noqa: E402
from pursuit.store import MemoryStore  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cartpole"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

# Dials that make each method's run take a second or two, and still learn on seed 0.
TINY = {
    "reinforce:reinforce": {"steps": 8_192},
    "dqn:dqn": {"steps": 6_144, "width": 64},
    "ppo:ppo": {"steps": 8_192},
}


@pytest.fixture(autouse=True)
def _torch_threads():
    """The methods train on one thread; give the test process its threads back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def goal_file():
    return yaml.safe_load((EXAMPLE / "goal.yaml").read_text())


def curve_of(entry, workdir):
    """The learning curve [(step, mean_return)] of one run of ``entry`` at its tiny
    dials on seed 0, through the engine (inline, in-memory store), and its result."""
    goal = pursuit.Goal(name="one", metric="mean_return", direction="maximize", seeds=1,
                        budget={"max_trials": 1},
                        methods=[{"entry": entry, "dials": TINY[entry], "search": False}])
    store = MemoryStore()
    pursuit.run(goal, store, "inline", workdir=workdir)
    [trial] = store.trials(store.goal_id("one"))
    assert trial.state.value == "completed", trial.error
    points = [(step, value) for _, step, name, value in store.curve(trial.id)
              if name == "mean_return"]
    return points, trial.values["mean_return"]


def test_the_goal_file_asks_for_the_solved_threshold_in_trials_only():
    goal = pursuit.load_goal(EXAMPLE / "goal.yaml")
    assert (goal.metric, goal.direction, goal.target, goal.seeds) == \
        ("mean_return", "maximize", 475, 3)
    assert goal.budget.max_trials and goal.budget.compute_seconds is None \
        and goal.budget.wall_seconds is None and goal.trial_timeout
    methods = goal.resolved_methods()
    assert [m.name for m in methods] == ["reinforce", "dqn", "ppo"]
    for method in methods:
        assert method.baseline and method.source
        assert {name: dial.scale for name, dial in method.dials.items()} == \
            {"lr": None, "width": "params", "steps": "steps"}


@pytest.mark.parametrize("entry", sorted(TINY))
def test_each_method_learns_and_a_seed_fixes_the_run(entry, tmp_path):
    points, result = curve_of(entry, tmp_path / "first")
    (first_step, untrained), *_ = points
    assert first_step == 0
    # An untrained policy drops the pole in a few dozen steps; a few thousand steps of
    # training at least double its return.
    assert result >= max(2 * untrained, untrained + 40), points
    assert points[-1] == (points[-1][0], result)
    assert curve_of(entry, tmp_path / "again") == (points, result)  # same seed, same numbers


def test_the_goal_runs_end_to_end_in_worker_processes(tmp_path):
    spec = goal_file()
    spec.update(name="cartpole-tiny", seeds=2, budget={"max_trials": 6},
                methods=[{"entry": entry, "dials": TINY[entry]} for entry in spec["methods"]])
    goal = pursuit.Goal(**spec)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    [summary] = pursuit.run(goal, url, workers=2, workdir=tmp_path / "work")
    assert summary.reason.startswith("budget spent"), summary.reason
    with pursuit.open(url) as results:
        frame = results.results()
        assert (frame["state"] == "completed").all(), frame["error"].tolist()
        assert sorted(zip(frame["method"], frame["seed"], strict=True)) == \
            [(m, s) for m in ("dqn", "ppo", "reinforce") for s in (0, 1)]
        board = results.leaderboard().methods.set_index("method")
        assert sorted(board.index) == ["dqn", "ppo", "reinforce"]
        assert (board["n"] == 2).all()
        assert board["mean"].between(0, 500).all()
        assert set(board["verdict"]) <= {"best baseline", "not significant", "better", "worse"}
