import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sample_methods
from hypothesis import given
from hypothesis import strategies as st

import pursuit
from pursuit import DialError, Float, Goal, Int, MethodError, method
from pursuit.dials import Choice
from pursuit.execution import ProcessExecutor
from pursuit.store import MemoryStore, open_store
from pursuit.trial import Task, TrialState, run_task


class Recorder:
    def __init__(self, stop=False):
        self.points, self.stop = [], stop

    def report(self, trial_id, attempt, points):
        self.points.extend(points)

    def should_stop(self, trial_id, attempt):
        return self.stop


def outcome(fn, dials=None, stop=False, tmp_path="/tmp/pursuit-test-work"):
    m = fn if isinstance(fn, type(sample_methods.quadratic)) else method(fn)
    recorder = Recorder(stop)
    task = Task(1, 1, m, m.validate(dials or {}), 0, "value", str(tmp_path))
    return run_task(task, recorder), recorder


def test_completed_with_curve_and_costs():
    out, recorder = outcome(sample_methods.quadratic)
    assert out.state is TrialState.COMPLETED and out.error is None
    assert math.isclose(out.values["value"], 1 - 4, abs_tol=0.01)
    assert recorder.points == [(0, "value", 0.0), (1, "value", 1.0), (2, "value", 2.0)]
    assert out.wall_seconds >= 0 and out.cpu_seconds >= 0


def test_numpy_values_follow_the_coercion_rule():
    out, recorder = outcome(sample_methods.numpy_result)
    assert out.values == {"value": 0.75} and type(out.values["value"]) is float
    assert recorder.points == [(0, "value", 0.5), (0, "other", 2.0)]


def test_dict_result_keeps_every_metric():
    out, _ = outcome(sample_methods.plain, {"mode": "b"})
    assert out.values == {"value": 0.75, "aux": 1.5}


@pytest.mark.parametrize("fn, words", [
    (sample_methods.raises, "RuntimeError: boom in the method"),
    (sample_methods.returns_nan, "metric 'value' is nan"),
    (sample_methods.returns_text, "returned 'not a number' (str)"),
    (lambda trial: {"other": 1.0}, "without the goal metric 'value'"),
    (lambda trial: {"value": "x"}, "must be a number"),
    (lambda trial: trial.report(-1, value=1.0), "step must be from 0 to 9223372036854775807"),
    (lambda trial: trial.report(1.5, value=1.0), "step must be an integer, got 1.5"),
    (lambda trial: trial.report(0, value="high"), "metric 'value' must be a number"),
    (lambda trial: exit(4), "sys.exit(4)"),
    # What the store cannot hold: a step past 64 bits, names past String(100).
    (sample_methods.step_past_64_bits, "step must be from 0 to 9223372036854775807"),
    (lambda trial: trial.report(0, **{"m" * 101: 1.0}), "metric name must be at most 100"),
    (lambda trial: trial.report(0, **{"a\x00b": 1.0}), "without NUL"),
    (lambda trial: trial.report_cost(**{"c" * 101: 1.0}), "cost name must be at most 100"),
    (sample_methods.long_metric_name, "returned metric name must be at most 100"),
    # A BaseException that is no Exception is the method's fault too.
    (sample_methods.raises_generator_exit, "GeneratorExit: closed"),
    (sample_methods.raises_base_exception, "CustomStop: a stop of the method's own"),
])
def test_method_faults_fail_the_trial_with_the_reason(fn, words):
    out, _ = outcome(fn)
    assert out.state is TrialState.FAILED
    assert words in out.error


def test_pruned_when_the_engine_says_stop():
    out, recorder = outcome(sample_methods.curve, stop=True)
    assert out.state is TrialState.PRUNED
    assert recorder.points == [(0, "value", 0.01)]


def test_nan_result_is_kept_as_nan():
    out, _ = outcome(sample_methods.returns_nan)
    assert math.isnan(out.values["value"])


def test_dial_declarations_are_checked():
    with pytest.raises(DialError, match="lo <= hi"):
        Float(2.0, 1.0)
    with pytest.raises(DialError, match="log-scale dial needs lo > 0"):
        Int(0, 10, log=True)
    with pytest.raises(DialError, match="scale must be one of"):
        Int(1, 10, scale="layers")
    with pytest.raises(MethodError, match="has no default"):
        method(lambda trial, *, x=Float(0, 1): x)
    with pytest.raises(MethodError, match="default out of range"):
        method(lambda trial, *, x=Float(0, 1, default=3.0): x)
    with pytest.raises(MethodError, match="trial as its first argument"):
        method(lambda *, x=Float(0, 1, default=0.5): x)


def test_choice_is_strict_about_types():
    dial = Choice([1, "1", True])
    assert dial.validate("c", "1") == "1" and dial.validate("c", True) is True
    with pytest.raises(DialError, match="must be one of"):
        dial.validate("c", 2)


@given(lo=st.floats(-1e6, 1e6), width=st.floats(0, 1e6), value=st.floats(allow_nan=True))
def test_float_dial_accepts_exactly_its_range(lo, width, value):
    dial = Float(lo, lo + width)
    if math.isfinite(value) and lo <= value <= lo + width:
        assert dial.validate("x", value) == value
        assert dial.validate("x", np.float64(value)) == value
    else:
        with pytest.raises(DialError, match="'x'"):
            dial.validate("x", value)


@given(st.one_of(st.text(), st.booleans(), st.none(), st.lists(st.integers())))
def test_int_dial_refuses_non_numbers(value):
    with pytest.raises(DialError, match="dial 'n' must be a number"):
        Int(0, 10).validate("n", value)


def test_the_largest_step_and_the_longest_names_the_store_holds_are_kept():
    def at_the_limits(trial):
        trial.report(2**63 - 1, **{"m" * 100: 1.0})
        trial.report_cost(**{"c" * 100: 2.0})
        return {"value": 0.5, "r" * 100: 3.0}

    out, recorder = outcome(at_the_limits)
    assert out.state is TrialState.COMPLETED, out.error
    assert recorder.points == [(2**63 - 1, "m" * 100, 1.0)]
    assert out.costs == {"c" * 100: 2.0} and out.values["r" * 100] == 3.0


def test_a_reason_the_store_could_not_hold_is_kept_escaped():
    out, _ = outcome(sample_methods.error_with_nul_and_surrogate)
    assert out.state is TrialState.FAILED
    assert "bad\\x00byte in /data/\\udcff.bin" in out.error
    out.error.encode("utf-8")  # no NUL (PostgreSQL refuses it), no lone surrogate


def test_ctrl_c_passes_through_the_engines_own_process_and_fails_the_trial_in_a_worker():
    """Inline, KeyboardInterrupt is Ctrl-C and stops the engine; in a worker (which ignores
    SIGINT) it can only be the method's, and fails the trial with it."""
    with pytest.raises(KeyboardInterrupt):
        outcome(sample_methods.raises_keyboard_interrupt)
    m = method(sample_methods.raises_keyboard_interrupt)
    task = Task(1, 1, m, {}, 0, "value", "/tmp/pursuit-test-work")
    out = run_task(task, Recorder(), interrupts=())
    assert out.state is TrialState.FAILED
    assert "KeyboardInterrupt: pressed inside the method" in out.error


def run_goal(tmp_path, methods, *, workers=2, seeds=1, timeout=20, store=None):
    """Run the methods in worker processes; the store, the summary and the seconds taken."""
    goal = Goal(name="faults", metric="value", direction="maximize", seeds=seeds,
                budget={"max_trials": 2 * len(methods) * seeds}, trial_timeout=timeout,
                methods=methods)
    store = store or MemoryStore()
    started = time.monotonic()
    [summary] = pursuit.run(goal, store, ProcessExecutor(workers), workdir=tmp_path / "work")
    return store, summary, time.monotonic() - started


def outcomes(store):
    return {t.method: (t.state.value, t.error or "", t.values)
            for t in store.trials(store.goal_id("faults"))}


def test_what_ends_a_method_in_its_worker_is_recorded_as_the_reason(tmp_path, monkeypatch):
    """KeyboardInterrupt, GeneratorExit, a BaseException of the method's own, or a module
    that imports in the engine but not in a worker: each fails its own trial with the
    real reason, not "the worker process exited with status 1"."""
    (tmp_path / "only_in_the_engine.py").write_text(
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise ImportError('no GPU in this process')\n"
        "def fit(trial):\n"
        "    return 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    store, summary, _ = run_goal(tmp_path, [
        "sample_methods:raises_keyboard_interrupt", "sample_methods:raises_base_exception",
        "sample_methods:raises_generator_exit", "only_in_the_engine:fit",
        "sample_methods:constant"])
    got = outcomes(store)
    assert "KeyboardInterrupt: pressed inside the method" in got["raises_keyboard_interrupt"][1]
    assert "CustomStop: a stop of the method's own" in got["raises_base_exception"][1]
    assert "GeneratorExit: closed" in got["raises_generator_exit"][1]
    assert "the worker could not load the method" in got["fit"][1]
    assert "ImportError: no GPU in this process" in got["fit"][1]
    assert got["constant"][0] == "completed"
    assert {state for state, _, _ in got.values()} == {"failed", "completed"}
    assert not any("exited with status" in error for _, error, _ in got.values())


def test_a_forked_child_that_comes_back_out_of_the_method_fails_its_trial_quickly(tmp_path):
    """A child must end with os._exit(). One that returns (or reports on the engine's pipe)
    is ended before it can run on as a second worker; the trial fails with the reason,
    and the run ends long before the trial timeout."""
    store, summary, seconds = run_goal(tmp_path, [
        "sample_methods:forks_and_returns", "sample_methods:forks_and_reports",
        "sample_methods:garbles_its_pipe", "sample_methods:constant"])
    got = outcomes(store)
    assert "forked came back out of it" in got["forks_and_returns"][1]
    assert "forked came back out of it" in got["forks_and_reports"][1]
    assert "messages to the engine were garbled" in got["garbles_its_pipe"][1]
    assert got["constant"][0] == "completed"
    assert {state for state, _, _ in got.values()} == {"failed", "completed"}
    assert seconds < 15  # the timeout is 20 s


def test_a_forked_child_that_comes_back_late_leaves_the_next_trials_alone(tmp_path):
    store, summary, seconds = run_goal(tmp_path, ["sample_methods:forks_and_returns_late"],
                                       workers=1, seeds=3)
    assert [(t.state.value, t.values) for t in store.trials(store.goal_id("faults"))] == \
        [("completed", {"value": 1.0})] * 3
    assert seconds < 15


def test_inline_a_forked_child_that_returns_does_not_go_on_as_a_second_engine(tmp_path):
    script = ("import pursuit\n"
              "goal = pursuit.Goal(name='f', metric='value', direction='maximize', seeds=1,\n"
              "                    methods=['sample_methods:forks_and_returns'])\n"
              "[summary] = pursuit.run(goal, 'memory:', 'inline', workdir='work')\n"
              "print('ended:', summary.reason)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
                                str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ended:") == 1  # one engine, not two
    assert "no configuration has 1 completed seeds" in result.stdout  # the trial failed
    assert "method returned instead of ending with os._exit()" in result.stderr


def test_values_the_store_cannot_hold_fail_their_own_trial_and_touch_nothing_else(
        sql_url, tmp_path):
    """A step past the store's integer, a name past its column, a reason with NUL: each
    fails its trial with the reason. Before, the engine's write failed (each resume
    again), and the other trials finished in that write ran again."""
    store = open_store(sql_url)
    try:
        run_goal(tmp_path, ["sample_methods:step_past_64_bits",
                            "sample_methods:step_past_32_bits",
                            "sample_methods:error_with_nul_and_surrogate",
                            "sample_methods:long_metric_name", "sample_methods:constant"],
                 seeds=2, store=store)
        trials = store.trials(store.goal_id("faults"))
        got = outcomes(store)
    finally:
        store.close()
    assert "step must be from 0 to 9223372036854775807" in got["step_past_64_bits"][1]
    assert got["step_past_32_bits"][0] == "completed"  # a 64-bit step is kept
    assert "bad\\x00byte" in got["error_with_nul_and_surrogate"][1]
    assert "returned metric name must be at most 100" in got["long_metric_name"][1]
    assert sorted((t.method, t.seed, t.state.value, t.attempt) for t in trials) == sorted(
        [(m, seed, "failed", 1) for m in ("step_past_64_bits",
                                         "error_with_nul_and_surrogate", "long_metric_name")
         for seed in (0, 1)] + [(m, seed, "completed", 1) for m in ("constant",
                                                                    "step_past_32_bits")
                                for seed in (0, 1)])
    big = [t for t in trials if t.method == "step_past_32_bits"]
    store = open_store(sql_url)
    try:  # read back exactly, past 32 bits, on both databases
        assert all(store.curve(t.id) == [(1, 2**31, "value", 1.0)] for t in big)
    finally:
        store.close()
