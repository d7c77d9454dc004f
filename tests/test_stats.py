import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from pursuit.analysis.stats import holm, leaderboard, mean_interval, welch

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(finite, min_size=2, max_size=30))
def test_mean_interval_matches_scipy(values):
    mean, lo, hi = mean_interval(values)
    x = np.asarray(values)
    if x.std() == 0:
        assert lo == pytest.approx(mean) and hi == pytest.approx(mean)
        return
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert lo == pytest.approx(ref[0], rel=1e-9, abs=1e-6)
    assert hi == pytest.approx(ref[1], rel=1e-9, abs=1e-6)


def test_one_value_has_no_interval():
    mean, lo, hi = mean_interval([0.3])
    assert mean == 0.3 and math.isnan(lo) and math.isnan(hi)


@settings(max_examples=50)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=20),
       st.lists(st.floats(0, 1), min_size=2, max_size=20))
@example([0.0, 0.0], [0.0, 2.302824978211734e-97])  # variances whose squares underflow
def test_welch_matches_scipy(a, b):
    d = welch(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy warns on near-equal samples
        ref = stats.ttest_ind(a, b, equal_var=False)
    if np.var(a) + np.var(b) > 1e-12:
        assert d.p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-9)
        assert d.lo <= d.diff <= d.hi


def test_holm_adjusts_in_order_and_keeps_nan():
    assert holm([0.01, 0.04, math.nan, 0.03]) == pytest.approx(
        [0.03, 0.06, math.nan, 0.06], nan_ok=True)


def frame(rows):
    """A results table: each (method, configuration)'s rows are its seeds 0, 1, ...,
    run at the baselines stage (so that every one counts)."""
    table = pd.DataFrame(rows, columns=["method", "baseline", "source", "config", "state",
                                        "value"])
    table["stage"] = "baselines"
    table["seed"] = table.groupby(["method", "config"]).cumcount()
    return table


def test_leaderboard_says_not_significant_for_a_small_difference():
    rng = np.random.default_rng(0)
    rows = [("base", True, "paper", "{}", "completed", v) for v in 0.80 + 0.05 * rng.random(3)]
    rows += [("ours", False, "ours", '{"a":1}', "completed", v)
             for v in 0.81 + 0.05 * rng.random(3)]
    rows += [("ours", False, "ours", '{"a":2}', "failed", math.nan)]
    board = leaderboard(frame(rows), metric="value", direction="maximize", target=0.9, seeds=3)
    methods = board.methods.set_index("method")
    assert methods.loc["base", "verdict"] == "best baseline"
    assert methods.loc["ours", "verdict"] == "not significant"
    assert methods.loc["ours", "n"] == 3 and methods.loc["ours", "failed"] == 1
    assert not board.progress["reached"] and board.progress["gap"] > 0


def test_leaderboard_significant_difference_and_direction():
    rows = [("base", True, "p", "{}", "completed", v) for v in (1.0, 1.1, 0.9, 1.05)]
    rows += [("ours", False, "o", "{}", "completed", v) for v in (0.5, 0.55, 0.45, 0.5)]
    board = leaderboard(frame(rows), metric="value", direction="minimize", target=0.6, seeds=4)
    ours = board.methods.set_index("method").loc["ours"]
    assert ours["verdict"] == "better" and ours["diff"] < 0 and ours["diff_hi"] < 0
    # The leader was chosen for these values: only fresh seeds can say the target is met.
    assert not board.progress["reached"] and board.progress["best_method"] == "ours"
    verified = frame(rows)
    fresh = verified[verified["method"] == "ours"].assign(stage="verify", seed=[4, 5, 6, 7])
    board = leaderboard(pd.concat([verified, fresh]), metric="value", direction="minimize",
                        target=0.6, seeds=4)
    assert board.progress["reached"] and board.progress["best_verified"]
    assert board.progress["best_n"] == 4


def test_nan_and_inf_are_never_best():
    rows = [("a", True, "p", "{}", "completed", v) for v in (0.5, 0.6, 0.55)]
    rows += [("b", False, "o", "{}", "completed", v) for v in (math.inf, math.nan, math.inf)]
    board = leaderboard(frame(rows), metric="value", direction="maximize", target=None, seeds=3)
    assert board.progress["best_method"] == "a"
    assert board.methods.set_index("method").loc["b", "verdict"] == "no completed trials"
