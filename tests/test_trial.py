import math

import numpy as np
import pytest
import sample_methods
from hypothesis import given
from hypothesis import strategies as st

from pursuit import DialError, Float, Int, MethodError, method
from pursuit.dials import Choice
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
    (lambda trial: trial.report(-1, value=1.0), "step must be an integer >= 0"),
    (lambda trial: trial.report(0, value="high"), "metric 'value' must be a number"),
    (lambda trial: exit(4), "sys.exit(4)"),
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
