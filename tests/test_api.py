import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pursuit

PUBLIC = {
    "Budget", "Choice", "DialError", "Float", "Goal", "GoalError", "Int", "Method",
    "MethodError", "Policy", "Progress", "Pruned", "PursuitError", "Results", "StoreError",
    "Summary", "Trial", "TrialState", "UnusableStoreError", "WorkerError", "load_goal",
    "method", "open", "run",
}


def test_public_api_is_locked():
    assert set(pursuit.__all__) == PUBLIC


odd_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**53), 2**53),
    st.floats(width=32).map(np.float32),
    st.integers(-1000, 1000).map(np.int64),
    st.floats(allow_nan=False).map(lambda v: np.array(v)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(value=odd_numbers, curve=st.lists(odd_numbers, min_size=1, max_size=5))
def test_odd_values_round_trip_exactly_through_sqlite(tmp_path_factory, value, curve):
    """T6: whatever number a method reports or returns comes back as the same float."""
    db = tmp_path_factory.mktemp("t6") / "p.db"

    def odd(trial):
        for step, point in enumerate(curve):
            trial.report(step, value=point)
        return value

    goal = pursuit.Goal(name="odd", metric="value", direction="maximize", seeds=1,
                        budget={"max_trials": 1}, methods=[pursuit.method(odd)])
    pursuit.run(goal, str(db), "inline", workdir=tmp_path_factory.mktemp("w"))
    with pursuit.open(str(db)) as results:
        row = results.results().iloc[0]
        stored = results.store.curve(int(row.trial_id))
    expected = float(np.asarray(value).item())
    got = float(row["value"])
    assert (math.isnan(got) and math.isnan(expected)) or got == expected
    assert row["state"] == ("completed" if math.isfinite(expected) else "failed")
    for (_, _, _, v), point in zip(stored, curve, strict=True):
        want = float(np.asarray(point).item())
        assert (math.isnan(v) and math.isnan(want)) or v == want
