import math
import os
from collections import Counter

import optuna
import pytest
import sample_methods
from hypothesis import given, settings
from hypothesis import strategies as st

import pursuit
from pursuit import Goal, Policy
from pursuit.execution import InlineExecutor, ProcessExecutor
from pursuit.store import open_store


def toy_goal(**overrides):
    spec = dict(name="toy", metric="value", direction="maximize", target=0.5, seeds=3,
                budget={"max_trials": 80},
                methods=[sample_methods.quadratic, sample_methods.curve, sample_methods.constant])
    spec.update(overrides)
    return Goal(**spec)


def run_toy(goal, store_url, executor=None, tmp_path=None, **kw):
    return pursuit.run(goal, store_url, executor or InlineExecutor(),
                       sampler=optuna.samplers.TPESampler(seed=1),
                       workdir=tmp_path or "pursuit-work", **kw)


def test_stages_run_in_order_and_the_target_is_reached(sql_url, tmp_path):
    [summary] = run_toy(toy_goal(), sql_url, tmp_path=tmp_path)
    assert summary.reached and summary.reason.startswith("target reached: quadratic value")
    with pursuit.open(sql_url) as results:
        frame = results.results()
        stages = frame["stage"].tolist()
        first_search = stages.index("search")
        assert set(stages[:first_search]) == {"baselines"}
        baselines = frame[frame["stage"] == "baselines"]
        assert Counter(baselines["method"]) == {"quadratic": 3, "curve": 3, "constant": 3}
        assert set(frame[frame["stage"] == "search"]["method"]) <= {"quadratic", "curve"}
        assert stages.index("confirm") < stages.index("verify")
        board = results.leaderboard()
        assert board.progress["reached"] and board.progress["best_method"] == "quadratic"
        assert board.progress["best_lo"] >= 0.5 and board.progress["best_verified"]
        # The claim that reached the target rests on the verification's fresh seeds alone.
        verified = frame[frame["stage"] == "verify"]
        assert board.progress["best_n"] == len(verified) == 3
        assert set(verified["config"]) == {board.progress["best_config"]}


def test_memory_store_run_reaches_target():
    from pursuit.store import MemoryStore

    store = MemoryStore()
    [summary] = run_toy(toy_goal(), store)
    assert summary.reached
    trials = store.trials(store.goal_id("toy"))
    assert all(t.state.finished for t in trials)


def test_budget_spent_when_target_is_out_of_reach(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    [summary] = run_toy(toy_goal(target=5.0, budget={"max_trials": 25}), store)
    assert not summary.reached and summary.reason.startswith("budget spent")
    assert len(store.trials(store.goal_id("toy"))) <= 25


def test_nothing_to_search_stops_after_baselines():
    from pursuit.store import MemoryStore

    store = MemoryStore()
    goal = toy_goal(methods=[sample_methods.constant], target=None)
    [summary] = run_toy(goal, store)
    assert summary.reason.startswith("nothing left to try")
    assert len(store.trials(store.goal_id("toy"))) == 3


def test_search_policy_gives_every_method_its_minimum():
    from pursuit.store import MemoryStore

    store = MemoryStore()
    goal = toy_goal(target=None, budget={"max_trials": 40})
    run_toy(goal, store, policy=Policy(min_search_trials=5))
    searched = Counter(t.method for t in store.trials(1) if t.stage == "search")
    assert searched["quadratic"] >= 5 and searched["curve"] >= 5


def test_pruned_search_trials_end_early():
    from pursuit.store import MemoryStore

    store = MemoryStore()
    goal = Goal(name="p", metric="value", direction="minimize", seeds=1,
                budget={"max_trials": 30}, methods=[sample_methods.curve])
    run_toy(goal, store, policy=Policy(min_search_trials=30),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    trials = store.trials(1)
    pruned = [t for t in trials if t.state.value == "pruned"]
    assert pruned, "a median pruner on a rising curve must prune some trials"
    assert all(t.stage == "search" for t in pruned)


def test_short_trials_that_ask_whether_to_stop_run_in_worker_processes(tmp_path):
    """Workers are sent short trials ahead of time; a trial asking whether to stop must
    get its answer, not the next trial (a real run, bounded, in its own process)."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "goal.yaml").write_text(
        "name: asks\nmetric: value\ndirection: maximize\nseeds: 2\n"
        "budget: {max_trials: 150}\nmethods:\n  - sample_methods:curve\n"
        "  - sample_methods:quadratic\n")
    here = str(Path(__file__).parent)
    result = subprocess.run([sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store",
                             "a.db", "--workers", "2"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": here})
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr
    trials = open_store(str(tmp_path / "a.db")).trials(1)
    assert len(trials) >= 140 and all(t.state.finished for t in trials)
    assert not [t for t in trials if t.state.value == "failed"]


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_repeated_and_out_of_order_reports_are_kept_once_in_step_order(tmp_path, executor):
    """T7: the first report of each step stands, whatever order the steps come in."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    goal = Goal(name="r", metric="value", direction="maximize", seeds=1,
                budget={"max_trials": 1}, methods=["sample_methods:reports_twice"])
    pursuit.run(goal, url, InlineExecutor() if executor == "inline" else ProcessExecutor(1),
                workdir=tmp_path / "work")
    store = open_store(url)
    [trial] = store.trials(1)
    assert trial.values["value"] == 3.0
    assert store.curve(trial.id) == [(1, 0, "value", 0.0), (1, 1, "value", 1.0),
                                     (1, 2, "value", 2.0)]
    store.close()


def test_subgoals_run_after_their_parent(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    goal = toy_goal(target=None, budget={"max_trials": 6},
                    subgoals=[{"name": "part", "metric": "value",
                               "methods": ["sample_methods:constant"]}])
    summaries = run_toy(goal, url)
    assert [s.goal for s in summaries] == ["toy", "toy/part"]
    with pursuit.open(url) as results:
        top = results.goal()
        assert top.name == "toy"
        assert [g.name for g in results.subgoals(top)] == ["toy/part"]


FAULTS = Goal(name="faults", metric="value", direction="maximize", seeds=1, trial_timeout=3,
              budget={"max_trials": 50},
              methods=["sample_methods:quadratic", "sample_methods:raises",
                       "sample_methods:returns_nan", "sample_methods:returns_text",
                       "sample_methods:exits", "sample_methods:segfaults",
                       "sample_methods:hangs", "sample_methods:sigkilled_once",
                       "sample_methods:always_sigkilled"])


def test_every_kind_of_crash_fails_its_trial_and_the_loop_goes_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    [summary] = pursuit.run(FAULTS, url, ProcessExecutor(2), workdir=tmp_path / "work",
                            policy=Policy(max_attempts=2))
    with pursuit.open(url) as results:
        frame = results.results().query("stage == 'baselines'").set_index("method")
    assert frame.loc["quadratic", "state"] == "completed"
    errors = frame["error"].fillna("").to_dict()
    states = frame["state"].to_dict()
    assert "RuntimeError: boom" in errors["raises"]
    assert "is nan" in errors["returns_nan"] and math.isnan(frame.loc["returns_nan", "value"])
    assert "expected a number" in errors["returns_text"]
    assert "exited with status 3" in errors["exits"]
    assert "SIGSEGV" in errors["segfaults"]
    assert "timed out after 3 s" in errors["hangs"]
    assert states["sigkilled_once"] == "completed" and frame.loc["sigkilled_once", "attempt"] == 2
    assert "preempted 2 times" in errors["always_sigkilled"]
    assert {states[m] for m in ("raises", "returns_nan", "returns_text", "exits", "segfaults",
                                "hangs", "always_sigkilled")} == {"failed"}
    assert summary.trials > 9  # the search went on after the crashes


def test_a_method_defined_in_a_test_runs_inline_only_when_importable():
    from pursuit.store import MemoryStore

    @pursuit.method
    def local(trial, *, x=pursuit.Float(0, 1, default=0.5)):
        return x

    goal = Goal(name="l", metric="value", direction="maximize", seeds=2,
                budget={"max_trials": 4}, methods=[local])
    store = MemoryStore()
    run_toy(goal, store)
    assert [t.values["value"] for t in store.trials(1)][:2] == [0.5, 0.5]


@pytest.mark.parametrize("bad", ["threads", 3])
def test_unknown_executor_is_refused(bad):
    with pytest.raises(ValueError, match="executor must be"):
        pursuit.run(toy_goal(), "memory:", bad)


def test_a_script_without_a_main_guard_gets_a_clear_error(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import pursuit, sample_methods\n"
        "goal = pursuit.Goal(name='g', metric='value', direction='maximize', seeds=1,\n"
        "                    budget={'max_trials': 3}, methods=[sample_methods.constant])\n"
        "pursuit.run(goal, 'memory:', workers=1)\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120,
                            env={"PYTHONPATH": str(Path(__file__).parent), "PATH": "/usr/bin"})
    assert result.returncode != 0
    assert "WorkerError" in result.stderr and "if __name__ == '__main__'" in result.stderr


def test_wall_clock_budget_spans_restarts():
    from pursuit.store import MemoryStore

    store = MemoryStore()
    goal = Goal(name="w", metric="value", direction="maximize", seeds=1,
                budget={"wall_seconds": 1.0}, methods=["sample_methods:slow"])
    [first] = run_toy(goal, store, policy=Policy(heartbeat_every=0.1))
    assert first.reason.startswith("budget spent (1 s of wall clock)")
    done = len(store.trials(1))
    [second] = run_toy(goal, store, policy=Policy(heartbeat_every=0.1))
    assert second.reason.startswith("budget spent (1 s of wall clock)")
    assert len(store.trials(1)) == done  # the budget was spent by the first run


def test_the_ladder_steps_scale_dials_and_forecasts_what_the_target_takes(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    goal = Goal(name="ladder", metric="value", direction="minimize", target=0.15, seeds=3,
                budget={"max_trials": 60}, methods=["sample_methods:scaled"])
    run_toy(goal, url, policy=Policy(search_round=8))
    with pursuit.open(url) as results:
        frame = results.results()
        ladder = frame[frame["stage"] == "ladder"]
        entries = results.ladder()
    # The ladder climbs from a leader chosen after search and confirmation, over the
    # seeds of the leader's claim (1..3: seed 0 screened it in search).
    assert ladder.index.min() > frame[frame["stage"] == "confirm"].index.min()
    assert len(ladder) >= 6 and set(ladder["seed"]) == {1, 2, 3}
    first = ladder[ladder["config"].isin(ladder["config"].iloc[:3])]
    assert first["dial.lr"].nunique() == 1  # the other dials stay at the leader's values
    # One law per ladder climbed (the leader may change between rounds), each at the lr
    # its leader had.
    assert entries and all(e["dial"] == "width" and len(e["rungs"]) >= 3 for e in entries)
    assert len({e["at"]["lr"] for e in entries}) == len(entries)
    for entry in entries:
        outlook = entry["forecast"]
        # The truth: 0.1 + 2 w^-0.5 = 0.15 at w = 1600, times the lr penalty of the leader.
        assert outlook["reachable"] and 400 < outlook["x"] < 10_000
        assert outlook["lower"] <= outlook["x"] <= outlook["upper"]
        assert entry["compute_seconds"]["value"] > 0


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["baselines", "confirm",
                                                                      "search", "verify"]),
                                 st.integers(0, 4), st.floats(-10, 10)), max_size=40),
       direction=st.sampled_from(["minimize", "maximize"]), seeds=st.integers(1, 3))
def test_the_leader_kept_as_values_come_matches_a_full_scan(values, direction, seeds):
    """The claim book keeps its leader as values arrive; a full scan of every claim must
    agree, and no claim counts a seed twice or a screening run at all."""
    from pursuit.analysis.claims import ClaimBook

    book = ClaimBook(direction, None, seeds)
    for config, stage, seed, value in values:
        book.add("m", str(config), stage, seed, value)
        claims = book.claims()
        for claim in claims:
            assert len(set(claim.seeds)) == claim.n  # distinct seeds only
        full = {c.config: c.mean for c in claims if c.n >= seeds}
        leader = book.leader()
        if not full:
            assert leader is None
            continue
        top = max(full.values()) if direction == "maximize" else min(full.values())
        assert leader.mean == top and leader.n >= seeds
    searched_only = {str(c) for c, stage, _, _ in values} - {
        str(c) for c, stage, _, _ in values if stage != "search"}
    assert not {c.config for c in book.claims()} & searched_only


def test_an_interrupt_between_writing_a_trial_and_starting_it_gives_the_trial_back(tmp_path):
    """Ctrl-C can land after a trial is written and before a worker has it: the trial
    must not be left *running* in the store."""

    class InterruptedOnFirstSubmit(InlineExecutor):
        slots = 2  # two trials are written, then Ctrl-C lands as the first is handed over

        def submit(self, task):
            raise KeyboardInterrupt

    url = f"sqlite:///{tmp_path / 'i.db'}"
    with pytest.raises(KeyboardInterrupt):
        run_toy(toy_goal(), url, InterruptedOnFirstSubmit(), tmp_path=tmp_path)
    store = open_store(url)
    trials = store.trials(1)
    store.close()
    assert [t.state.value for t in trials] == ["preempted", "preempted"]
    [summary] = run_toy(toy_goal(), url, tmp_path=tmp_path)  # and the run resumes
    store = open_store(url)
    assert all(t.state.finished for t in store.trials(1))
    store.close()


def test_workers_share_the_cores_instead_of_each_taking_all(tmp_path, monkeypatch):
    """Numerical libraries sized to every core in every worker make trials fight for
    the cores; each worker gets its share, unless the user chose otherwise."""
    from pursuit.store import MemoryStore

    goal = Goal(name="threads", metric="value", direction="maximize", seeds=2,
                budget={"max_trials": 2}, methods=["sample_methods:thread_pools"])
    store = MemoryStore()
    run_toy(goal, store, ProcessExecutor(2), tmp_path=tmp_path)
    share = max(1, (os.cpu_count() or 1) // 2)
    assert [t.values for t in store.trials(1)] == [{"value": share, "omp": share}] * 2
    assert "OMP_NUM_THREADS" not in os.environ  # the engine's own are left alone
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    store = MemoryStore()
    run_toy(goal, store, ProcessExecutor(2), tmp_path=tmp_path)
    assert {t.values["omp"] for t in store.trials(1)} == {3.0}


def test_a_verification_runs_as_many_fresh_seeds_as_a_claim_needs_whatever_the_slots(tmp_path):
    """With more free slots than the verification needs seeds, it plans no more."""
    for seeds in (1, 2):
        goal = Goal(name=f"v{seeds}", metric="value", direction="maximize", target=0.2,
                    seeds=seeds, budget={"max_trials": 20},
                    methods=[sample_methods.constant])
        [summary] = pursuit.run(goal, str(tmp_path / "v.db"), ProcessExecutor(3),
                                workdir=tmp_path / "work")
        assert summary.reached
        with pursuit.open(str(tmp_path / "v.db")) as results:
            frame = results.results(f"v{seeds}")
        assert (frame["stage"] == "verify").sum() == seeds
