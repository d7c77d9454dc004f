import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pursuit import scaling
from pursuit.cli import app

ROOT = Path(__file__).parent.parent
DATA = Path(os.environ.get("PURSUIT_DATA", ROOT.parent / "shared" / "data"))


def needs_data(path: Path) -> None:
    if not path.exists():
        if os.environ.get("PURSUIT_REQUIRE_DATA") == "1":
            pytest.fail(f"{path} is missing but PURSUIT_REQUIRE_DATA is set")
        pytest.skip(f"benchmark data not found at {path} (set PURSUIT_DATA)")


@settings(max_examples=25, deadline=None)
@given(e=st.floats(0.1, 2.0), a=st.floats(1.0, 100.0), b=st.floats(0.15, 0.9),
       seed=st.integers(0, 10_000))
@example(e=1.341796875, a=20.0, b=0.78125, seed=275)  # once stopped far from the minimum
def test_offset_power_law_recovers_its_parameters(e, a, b, seed):
    """Where the data pin the law down (it falls a lot and comes near its floor), the fit
    finds the parameters that made it."""
    x = np.geomspace(1.0, 1e8, 40)
    assume(a * 1e8**-b < 0.2 * e)
    noise = np.exp(0.002 * np.random.default_rng(seed).standard_normal(x.size))
    y = (e + a * x**-b) * noise
    p = scaling.fit("m2", x, y, bootstrap=0).params
    assert p["e"] == pytest.approx(e, rel=0.05)
    assert p["a"] == pytest.approx(a, rel=0.15)
    assert p["b"] == pytest.approx(b, rel=0.1)


@settings(max_examples=20, deadline=None)
@given(e=st.floats(0.0, 1.0), e0=st.floats(1.5, 5.0), alpha=st.floats(0.0, 2.0),
       log_beta=st.floats(-5, 5), c=st.floats(-2.0, -0.05))
@example(e=0.44912689619132784, e0=1.5527510907488404, alpha=0.0, log_beta=1.0, c=-1.0)
def test_m4_prediction_solves_its_equation(e, e0, alpha, log_beta, c):
    x = np.geomspace(1.0, 1e6, 25)
    y = scaling.M4().predict(np.array([e, e0, alpha, log_beta, c]), x)
    assert np.all((y >= e) & (y <= e0))
    inside = (y - e > 1e-9 * e0) & (e0 - y > 1e-9 * e0)
    y = y[inside]
    lhs = (y - e) / np.power(e0 - y, alpha)
    rhs = (math.exp(log_beta) * x**c)[inside]
    assert np.allclose(lhs, rhs, rtol=1e-6)


def test_m4_remembers_its_last_solve_only_for_the_same_point():
    form, fresh = scaling.M4(), scaling.M4()
    first, second = np.array([0.1, 1.2, 0.7, 2.0, -0.4]), np.array([0.2, 1.5, 0.3, 1.0, -0.6])
    x, other_x = np.geomspace(10, 1e5, 12), np.geomspace(20, 2e5, 12)
    y = form.predict(first, x)
    y[:] = 0.0  # a caller writing into its prediction leaves the remembered solve alone
    assert np.array_equal(form.predict(first, x), fresh.predict(first, x))
    assert np.array_equal(form.predict(second, x), fresh.predict(second, x))
    assert np.array_equal(form.predict(second, other_x), fresh.predict(second, other_x))
    assert np.array_equal(form.jacobian(first, x), scaling.M4().jacobian(first, x))


JACOBIAN_CASES = {
    "m1": [1.0, 0.3], "m2": [0.2, 1.0, 0.4], "m3": [0.5, -8.0, 0.4],
    "m4": [0.1, 1.2, 0.7, 2.0, -0.4], "bnsl": [0.1, 0.5, 0.2, 0.5, 7.0, -1.0],
    "chinchilla": [6.0, 7.0, 0.6, 0.34, 0.37],
    "data-constrained": [6.0, 7.0, 0.6, 0.34, 0.37, 2.5]}


@pytest.mark.parametrize("name", sorted(JACOBIAN_CASES))
@settings(max_examples=10, deadline=None)
@given(shift=st.lists(st.floats(-0.2, 0.2), min_size=6, max_size=6))
def test_exact_jacobians_match_finite_differences(name, shift):
    form = scaling.FORMS[name]
    theta = np.array(JACOBIAN_CASES[name]) + np.array(shift[:form.size])
    n = np.geomspace(1e7, 1e10, 12)
    x = {1: np.geomspace(10, 1e5, 12), 2: np.column_stack([n, 20 * n]),
         3: np.column_stack([n, 20 * n, 20 * n / np.linspace(1, 30, 12)])}[form.variables]
    exact = form.jacobian(theta, x)
    for k in range(form.size):
        h = np.zeros(form.size)
        h[k] = 1e-6
        numeric = (form.predict(theta + h, x) - form.predict(theta - h, x)) / 2e-6
        assert np.allclose(exact[:, k], numeric, rtol=1e-4, atol=1e-8 * np.abs(numeric).max())


@settings(max_examples=20, deadline=None)
@given(x0=st.floats(1e3, 1e9))
def test_forecast_inverts_predict(x0):
    x = np.geomspace(1e2, 1e5, 30)
    y = 0.3 + 20 * x**-0.4
    fitted = scaling.fit("m2", x, y, bootstrap=20)
    target = float(fitted.predict([x0])[0])
    outlook = scaling.forecast(fitted, target)
    assert outlook.reachable
    assert outlook.x == pytest.approx(x0, rel=1e-4)
    assert outlook.lower <= outlook.x * 1.0001 and outlook.upper >= outlook.x * 0.9999


def test_a_target_past_the_asymptote_is_unreachable():
    x = np.geomspace(1e2, 1e5, 30)
    fitted = scaling.fit("m2", x, 0.3 + 20 * x**-0.4, bootstrap=30)
    outlook = scaling.forecast(fitted, 0.25)
    assert not outlook.reachable and math.isnan(outlook.x)
    assert outlook.asymptote == pytest.approx(0.3, rel=1e-3)
    assert outlook.asymptote_lower * 0.999 <= 0.3 <= outlook.asymptote_upper * 1.001
    assert outlook.reachable_fraction == 0.0


@pytest.mark.parametrize("x, y, words", [
    ([1, 2], [3, 2], "only 2 distinct x values"),
    ([1, 1, 1, 2], [3, 2.9, 3.1, 2], "duplicates count once"),
    ([1, 2, 3, 4], [3, 0, 2, 1], "must be > 0"),
    ([1, 2, -3, 4], [3, 2, 2, 1], "must be > 0"),
    ([1, 2, 3, 4], [3, float("nan"), 2, 1], "finite"),
    ([1, 2, 3, 4], [2, 2, 2, 2], "constant"),
    ([1, 2, 3], [3, 2], "x has 3 values but y has 2"),
])
def test_bad_data_gets_a_clear_error(x, y, words):
    with pytest.raises(ValueError, match=words):
        scaling.fit("m2", x, y)


def test_a_broken_power_law_follows_a_break():
    # Caballero et al.'s noiseless simulation, fitted on its first 405 points.
    truth = dict(a=0.41388453071629455, b=2.2772722897737556, c0=0.055077348404973955,
                 c1=5.662903816010331, d1=612.5836172918001, f1=0.059193036393742314)
    x = np.arange(1, 4096, dtype=float)
    y = truth["a"] + truth["b"] * x ** -truth["c0"] * (
        1 + (x / truth["d1"]) ** (1 / truth["f1"])) ** (-truth["c1"] * truth["f1"])
    fitted = scaling.fit("bnsl", x[:405:4], y[:405:4], bootstrap=0)
    assert scaling.rmsle(fitted.predict(x[:405]), y[:405]) < 0.01


def test_selection_picks_the_form_that_extrapolates():
    x = np.geomspace(1e2, 1e6, 40)
    y = 0.5 + 30 * x**-0.5  # a floor: a pure power law extrapolates badly
    whole = [math.inf]
    choice = scaling.select(x, y, forms=["m1", "m2"], windows=whole, bootstrap=10, blend=False)
    assert choice.fit.form.name == "m2"
    assert choice.scores["m2"] < choice.scores["m1"]
    blended = scaling.select(x, y, forms=["m1", "m2"], windows=whole, bootstrap=10)
    assert blended.fit.form.name == "blend" and blended.weights["m2"] > 0.9
    assert set(blended.fit.params) == {"m1.a", "m1.b", "m2.e", "m2.a", "m2.b"}
    assert set(blended.members) == {"m1", "m2"}
    assert scaling.rmsle(blended.fit.predict(x), y) < 0.01
    assert blended.fit.form.asymptote(blended.fit.theta) == 0.0  # m1 has no floor


def test_laws_fitted_to_the_end_of_the_curve_skip_an_early_transient():
    x = np.geomspace(1, 1e6, 80)
    y = (0.2 + 5 * x**-0.3) * (1 + 2 * np.exp(-x / 30))  # a warm-up, then the power law
    seen = x <= 1e5
    whole = scaling.select(x[seen], y[seen], windows=[math.inf], bootstrap=0)
    ends = scaling.select(x[seen], y[seen], bootstrap=0)
    assert all(" on last " in name for name in ends.weights)
    assert np.min(ends.fit.x) >= np.max(x[seen]) / 32  # it describes the window it saw
    error = scaling.rmsle(ends.fit.predict(x[~seen]), y[~seen])
    assert error < 0.002 < scaling.rmsle(whole.fit.predict(x[~seen]), y[~seen])


def test_prediction_intervals_cover_new_observations_without_a_bootstrap():
    rng = np.random.default_rng(3)
    x = np.geomspace(1e2, 1e5, 200)
    truth = 0.4 + 8 * x**-0.5
    fitted = scaling.fit("m2", x, truth * np.exp(0.02 * rng.standard_normal(x.size)),
                         bootstrap=0)
    lower, upper = fitted.band(x, 0.9)
    fresh = truth * np.exp(0.02 * rng.standard_normal(x.size))
    assert 0.85 <= np.mean((fresh >= lower) & (fresh <= upper)) <= 0.95


def test_a_blend_shares_its_bootstrap_among_its_members():
    rng = np.random.default_rng(4)
    x = np.geomspace(1e2, 1e6, 60)
    y = (0.5 + 30 * x**-0.5) * np.exp(0.01 * rng.standard_normal(x.size))
    choice = scaling.select(x, y, bootstrap=30)
    share = -(-30 // len(choice.members))
    rows = [len(m.boot) for m in choice.members.values()]
    assert max(rows) == share and min(rows) > 0  # a resample too thin for a form is skipped
    assert len(choice.fit.boot) == min(rows)
    lower, upper = choice.fit.band([2e6], 0.9)
    assert lower[0] < choice.fit.predict([2e6])[0] < upper[0]


def test_too_few_points_for_any_window_fall_back_to_the_whole_curve():
    x = np.geomspace(1, 1e3, 7)
    choice = scaling.select(x, 0.3 + 2 * x**-0.5, bootstrap=0)
    assert choice.weights and all(" on last " not in name for name in choice.weights)
    with pytest.raises(ValueError, match="needs points at 6 or more distinct x values"):
        scaling.select(x[:4], (0.3 + 2 * x**-0.5)[:4], forms=["m4"], bootstrap=0)


def test_compute_to_reach_meets_the_closed_form():
    epoch = {"A": 482.01, "B": 2085.43, "E": 1.817, "alpha": 0.3478, "beta": 0.3659}
    compute = scaling.compute_to_reach(epoch, 2.0)
    allocation = scaling.optimal_allocation(epoch, compute)
    assert allocation.loss == pytest.approx(2.0, rel=1e-9)
    assert 6 * allocation.params * allocation.tokens == pytest.approx(compute, rel=1e-9)
    # N_opt grows as C^(beta / (alpha + beta)), about 0.513 for these exponents.
    bigger = scaling.optimal_allocation(epoch, compute * 10)
    assert math.log10(bigger.params / allocation.params) == pytest.approx(0.5127, abs=1e-3)
    assert scaling.compute_to_reach(epoch, 1.5) == math.inf


def test_data_constrained_law_discounts_repeats():
    law = scaling.DataConstrainedLaw()
    theta = np.array([math.log(400), math.log(2000), math.log(1.8), 0.34, 0.37, math.log(15)])
    fresh = np.array([[1e9, 1e11, 1e11]])
    repeated = np.array([[1e9, 1e11, 1e10]])  # the same tokens seen 10 times
    assert law.effective_data(theta[5], fresh)[0] == pytest.approx(1e11)
    assert law.effective_data(theta[5], repeated)[0] < 1e11
    assert law.predict(theta, repeated)[0] > law.predict(theta, fresh)[0]
    rng = np.random.default_rng(0)
    n = rng.uniform(8, 10, 80)
    u = rng.uniform(9, 11, 80)
    d = u + rng.uniform(0, 1.5, 80)
    x = np.column_stack([10**n, 10**d, 10**u])
    fitted = scaling.fit(law, x, law.predict(theta, x), bootstrap=0, top_starts=6)
    assert fitted.params["R_star"] == pytest.approx(15, rel=0.25)


def test_chinchilla_reproduces_epochs_fit():
    path = DATA / "scaling" / "epoch_chinchilla" / "chinchilla_NDL_tidy.csv"
    needs_data(path)
    data = pd.read_csv(path).sort_values("loss").iloc[:-5]
    fitted = scaling.fit("chinchilla", data[["N_params", "D_tokens"]].to_numpy(),
                         data["loss"].to_numpy(), bootstrap=0, top_starts=20)
    epoch = {"A": 477.84, "B": 2143.86, "E": 1.8172, "alpha": 0.34731, "beta": 0.36718}
    for name, value in epoch.items():
        assert fitted.params[name] == pytest.approx(value, rel=0.01)


def test_fit_command_prints_json_and_draws(tmp_path):
    x = np.geomspace(1e3, 1e7, 24)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"compute": np.repeat(x, 2), "seed": np.tile([0, 1], 24)})
    frame["loss"] = (1.5 + 40 * frame["compute"] ** -0.3) * np.exp(
        0.005 * rng.standard_normal(len(frame)))
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    runner = CliRunner()
    result = runner.invoke(app, ["fit", str(path), "--x", "compute", "--y", "loss",
                                 "--holdout", "0.2", "--target", "1.8", "--group", "seed",
                                 "--resamples", "30", "--json", "--plot",
                                 str(tmp_path / "fit.png")])
    assert result.exit_code == 0, result.stdout
    summary = json.loads(result.stdout)
    assert summary["form"] == "blend" and abs(sum(summary["blend_weights"].values()) - 1) < 1e-9
    for entry in summary["params"].values():
        assert set(entry) == {"value", "lower", "upper"}
    assert summary["holdout"] and {"x", "y", "prediction", "lower", "upper"} <= set(
        summary["holdout"][0])
    assert all(row["x"] >= np.quantile(x, 0.75) for row in summary["holdout"])
    assert summary["forecast"]["target"] == 1.8
    assert (tmp_path / "fit.png").stat().st_size > 10_000
    two = runner.invoke(app, ["fit", str(path), "--x", "compute", "--y", "loss", "--form",
                              "m2", "--holdout-column", "seed"])
    assert two.exit_code == 0 and "m2" in two.stdout
    bad = runner.invoke(app, ["fit", str(path), "--x", "flops", "--y", "loss"])
    assert bad.exit_code == 2 and "no column 'flops'" in bad.output


def test_the_benchmark_runs_on_a_few_curves():
    needs_data(DATA / "scaling" / "revisiting_nsl")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scaling.py"),
                             "--data", str(DATA), "--curves", "3", "--resamples", "5",
                             "--chinchilla-resamples", "5", "--workers", "1"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "median RMSLE ratio" in result.stdout and "Calibration" in result.stdout
    assert "Chinchilla L(N, D)" in result.stdout
    assert "four-digit addition" in result.stdout


def test_overfit_step_finds_the_turn_and_ignores_one_noisy_point():
    steps = np.arange(1, 41)
    loss = 1.0 / steps + 0.002 * np.maximum(steps - 20, 0) ** 1.5
    loss[8] = 0.01  # one lucky evaluation early on
    turn = scaling.overfit_step(steps, loss)
    assert turn.step is not None and 15 <= turn.step <= 25 and turn.worsening > 0
    still = scaling.overfit_step(steps, 1.0 / steps)
    assert still.step is None
    accuracy = scaling.overfit_step(steps, -loss, direction="maximize")
    assert accuracy.step == turn.step


def test_overfit_trend_recovers_the_exponent_with_an_interval():
    sizes = np.array([1e3, 2e3, 4e3, 8e3, 16e3])
    steps = 3.0 * sizes**0.7 * np.exp([0.01, -0.02, 0.015, 0.0, -0.01])
    trend = scaling.overfit_trend(sizes, list(steps) + [])
    assert trend.lower < 0.7 < trend.upper and trend.upper - trend.lower < 0.2
    with pytest.raises(ValueError, match="at least 3 runs"):
        scaling.overfit_trend([1, 2, 3], [10, None, None])


def test_repeated_tokens_are_worth_less_than_new_ones():
    theta = np.array([math.log(400), math.log(2000), math.log(1.8), 0.34, 0.37, math.log(15)])
    once = scaling.value_of_repeats(theta, 1e9, unique=1e11, tokens=1e11)
    assert once.worth == pytest.approx(1.0) and once.loss_repeated == once.loss_fresh
    four = scaling.value_of_repeats(theta, 1e9, unique=2.5e10, tokens=1e11)
    assert 0.8 < four.worth < 1.0  # four epochs are nearly as good as new (Muennighoff)
    forty = scaling.value_of_repeats(theta, 1e9, unique=2.5e9, tokens=1e11)
    assert forty.worth < 0.5 and forty.loss_repeated > four.loss_repeated


# ------------------------------------------------------------------ honest answers
def _ladder_frame(shortfall, rungs, seeds=3, noise=0.002, seed=0):
    """A ladder of a maximised score: accuracy = 1 - shortfall(x), over a few seeds."""
    rng = np.random.default_rng(seed)
    rows = [{"method": "rf", "stage": "ladder", "state": "completed", "seed": s,
             "dial.n": x, "dial.depth": 5,
             "accuracy": 1 - shortfall(x) * math.exp(noise * rng.standard_normal()),
             "cost.wall_seconds": 0.01 * x} for x in rungs for s in range(seeds)]
    return pd.DataFrame(rows)


def _printed(capsys, print_function, *args):
    """What a CLI printer wrote, with the terminal's line wrapping undone."""
    capsys.readouterr()
    print_function(*args)
    return " ".join(capsys.readouterr().out.split())


def _evaluate(law, **variables):
    """A written law's right side, evaluated at the variables' values (checks that the
    text says what the fit does)."""
    right = law.split("≈")[1].replace("·", "*").replace("^", "**")
    return eval(right, {}, variables)  # our own law's text, nothing else


def test_a_forecast_lies_inside_its_own_interval_when_the_refits_all_fall_to_one_side():
    # Refits that all fall faster than the fit put every bootstrap crossing below the
    # fit's: the percentile interval alone would leave the forecast outside it.
    x = np.geomspace(1, 100, 10)
    law = scaling.FORMS["m1"]
    theta = np.array([0.0, 0.3])
    boot = np.array([[0.0, b] for b in np.linspace(0.4, 0.5, 20)])
    fitted = scaling.Fit(law, theta, x, law.predict(theta, x), 0.0, boot)
    outlook = scaling.forecast(fitted, 0.01)
    assert outlook.x == pytest.approx(0.01 ** (-1 / 0.3), rel=1e-6)  # the written law's
    assert outlook.lower <= outlook.x <= outlook.upper
    assert outlook.upper == pytest.approx(outlook.x)  # stretched to it, not shifted

    chinchilla = scaling.FORMS["chinchilla"]
    theta = np.array([math.log(482.0), math.log(2085.0), math.log(1.817), 0.35, 0.37])
    boot = np.array([theta + [0, 0, 0, d, d] for d in np.linspace(0.02, 0.05, 20)])
    n = np.geomspace(1e7, 1e10, 12)
    x2 = np.column_stack([n, 20 * n])
    fitted = scaling.Fit(chinchilla, theta, x2, chinchilla.predict(theta, x2), 0.0, boot)
    outlook = scaling.compute_forecast(fitted, 2.0)
    assert outlook.x == pytest.approx(scaling.compute_to_reach(fitted.params, 2.0))
    assert outlook.lower <= outlook.x <= outlook.upper


def test_a_parameter_estimate_on_its_bound_lies_inside_its_interval():
    # m4's alpha at its bound 0, with every refit a little inside: the percentile interval
    # alone excluded the estimate (alpha 2.1e-15 [3.1e-15, 0.78]).
    x = np.geomspace(1, 1e3, 10)
    law = scaling.FORMS["m4"]
    theta = np.array([0.1, 1.2, 2.1e-15, 0.5, -0.4])
    boot = np.array([theta + [0.01 * k, 0, 3.1e-15 + 0.04 * k, 0, 0] for k in range(20)])
    fitted = scaling.Fit(law, theta, x, law.predict(theta, x), 0.0, boot)
    for name, (value, lower, upper) in fitted.param_intervals(0.95).items():
        assert lower <= value <= upper, name
    assert fitted.param_intervals(0.95)["alpha"][1] == 2.1e-15


@settings(max_examples=20, deadline=None)
@given(e=st.floats(0.0, 0.5), a=st.floats(0.5, 5.0), b=st.floats(0.1, 1.0),
       noise=st.floats(0.001, 0.2), reach=st.floats(1.05, 30.0), seed=st.integers(0, 1000),
       form=st.sampled_from(["m1", "m2", "m3"]))
@example(e=0.0, a=1.0, b=0.1, noise=0.2, reach=1.05, seed=0, form="m2")
def test_forecasts_and_parameters_lie_inside_their_intervals(e, a, b, noise, reach, seed,
                                                             form):
    rng = np.random.default_rng(seed)
    x = np.repeat(np.geomspace(4, 64, 5), 2)
    y = (e + a * x**-b) * np.exp(noise * rng.standard_normal(x.size))
    fitted = scaling.fit(form, x, y, bootstrap=15, groups=np.tile([0, 1], 5), seed=seed)
    for name, (value, lower, upper) in fitted.param_intervals(0.95).items():
        assert lower <= value <= upper, name
    outlook = scaling.forecast(fitted, float(np.min(y)) / reach)
    if outlook.reachable:
        assert outlook.lower <= outlook.x <= outlook.upper
    else:
        assert math.isnan(outlook.x) and outlook.reason
    assert outlook.asymptote_lower <= outlook.asymptote <= outlook.asymptote_upper


def test_a_forecast_far_past_the_rungs_says_so_in_words(capsys):
    from pursuit.cli import _print_ladder

    frame = _ladder_frame(lambda x: 0.02 + 0.5 * x**-0.3, [4, 8, 16, 32, 64, 128])
    near, far = (scaling.ladder_forecasts(frame, metric="accuracy", direction="maximize",
                                          target=t, dial_ranges={"n": (4, 400)})[0]
                 for t in (0.85, 0.97))
    assert near["forecast"]["reachable"] and near["forecast"]["x"] <= 128
    assert near["forecast"]["extrapolation"] is None
    words = far["forecast"]["extrapolation"]
    assert far["forecast"]["x"] > 400
    assert "beyond the dial's range [4, 400]" in words
    assert "past the largest rung measured (128)" in words
    # Without the dial's range, the 10x rule alone; a range given per method wins.
    [plain] = scaling.ladder_forecasts(frame, metric="accuracy", direction="maximize",
                                       target=0.97)
    assert plain["forecast"]["extrapolation"] == \
        f"{plain['forecast']['x'] / 128:.1e}× past the largest rung measured (128)"
    [own] = scaling.ladder_forecasts(frame, metric="accuracy", direction="maximize",
                                     target=0.97, dial_ranges={"rf.n": (4, 1e9), "n": (4, 8)})
    assert "dial's range" not in own["forecast"]["extrapolation"]
    text = _printed(capsys, _print_ladder, [far])
    assert f"target needs n ≈ {far['forecast']['x']:.3g}" in text
    assert f"— {words}: an extrapolation, not a measurement" in text
    assert "not a measurement" not in _printed(capsys, _print_ladder, [near])


def test_fit_labels_a_forecast_past_ten_times_the_largest_x(tmp_path):
    x = np.geomspace(1e3, 1e5, 12)
    frame = pd.DataFrame({"compute": x, "loss": 1.5 + 40 * x**-0.3})
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    runner = CliRunner()
    args = ["fit", str(path), "--x", "compute", "--y", "loss", "--form", "m2",
            "--resamples", "10"]
    near = json.loads(runner.invoke(app, [*args, "--target", "2.2", "--json"]).stdout)
    assert 1e5 < near["forecast"]["x"] < 1e6  # past the data, but not 10x past it
    assert near["forecast"]["extrapolation"] is None
    far = json.loads(runner.invoke(app, [*args, "--target", "1.6", "--json"]).stdout)
    assert far["forecast"]["x"] > 10 * 1e5
    assert "past the largest compute measured (1e+05)" in far["forecast"]["extrapolation"]
    text = " ".join(runner.invoke(app, [*args, "--target", "1.6"]).stdout.split())
    assert "reached at x ≈" in text and "an extrapolation, not a measurement" in text


def test_the_law_is_written_out_with_its_fitted_values(capsys):
    from pursuit.cli import _print_ladder

    x = np.geomspace(4, 400, 12)
    for name, y in (("m1", 0.8 * x**-0.3), ("m2", 0.05 + 0.8 * x**-0.4),
                    ("m3", 0.5 * (1 / x + 0.01) ** 0.4)):
        fitted = scaling.fit(name, x, y, bootstrap=0)
        law, [member] = scaling.describe(fitted, {}, {})
        assert member == {"form": name, "formula": law, "weight": 1.0, "holdout_rmsle": None}
        assert np.allclose(_evaluate(law, x=x), fitted.predict(x), rtol=0.02), law
    # A ladder's blend: the law, and each member with its weight and held-back error.
    frame = _ladder_frame(lambda x: 0.02 + 0.5 * x**-0.3, [4, 8, 16, 32, 64, 128])
    [entry] = scaling.ladder_forecasts(frame, metric="accuracy", direction="maximize",
                                       target=0.9)
    assert entry["form"] == "blend" and entry["law"].startswith("1 - accuracy ≈ (")
    shortfall = 1 - frame.groupby("dial.n")["accuracy"].mean().to_numpy()
    assert np.allclose(_evaluate(entry["law"], n=np.array(entry["rungs"])), shortfall,
                       rtol=0.05)
    assert [m["form"] for m in entry["members"]] == ["m1", "m2"]
    assert sum(m["weight"] for m in entry["members"]) == pytest.approx(1.0)
    for m in entry["members"]:  # weights are 1 / held-back error, normalised
        assert m["weight"] == pytest.approx((1 / m["holdout_rmsle"]) / sum(
            1 / k["holdout_rmsle"] for k in entry["members"]))
    text = _printed(capsys, _print_ladder, [entry])
    assert entry["law"] in text and "(m1)^" not in text
    for m in entry["members"]:
        assert f"{m['form']}: weight {m['weight']:.2f}" in text and m["formula"] in text


def test_fit_prints_a_blends_members_weights_and_held_back_errors(tmp_path):
    x = np.geomspace(1e3, 1e7, 24)
    frame = pd.DataFrame({"compute": x, "loss": 1.5 + 40 * x**-0.3})
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    runner = CliRunner()
    args = ["fit", str(path), "--x", "compute", "--y", "loss", "--resamples", "10"]
    summary = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert summary["form"] == "blend" and summary["law"].startswith("loss ≈ ")
    assert {m["form"] for m in summary["members"]} == set(summary["blend_weights"])
    for m in summary["members"]:
        assert m["weight"] == pytest.approx(summary["blend_weights"][m["form"]])
        assert m["holdout_rmsle"] == pytest.approx(summary["selection_scores"][m["form"]])
        assert "compute" in m["formula"]
    text = " ".join(runner.invoke(app, args).stdout.split())
    assert "weighted by 1 / its RMSLE" in text
    assert all(m["formula"] in text for m in summary["members"])


def test_a_target_out_of_representable_reach_says_so_and_never_overflows(capsys):
    from pursuit.cli import _print_ladder

    # A score near 0.8 climbing so slowly that 0.99 lies past the largest float.
    frame = _ladder_frame(lambda x: 0.2 * x**-0.002, [4, 8, 16, 32, 64])
    [entry] = scaling.ladder_forecasts(frame, metric="accuracy", direction="maximize",
                                       target=0.99)
    f = entry["forecast"]
    assert not f["reachable"] and math.isnan(f["x"]) and f["upper"] == math.inf
    assert f["reason"].startswith("not reachable within representable values")
    assert "not reachable within representable values" in _printed(capsys, _print_ladder,
                                                                   [entry])
    # The same for a single law, and for one that rises: it never reaches the target.
    x = np.geomspace(4, 64, 5)
    law = scaling.FORMS["m1"]
    for b, words in ((0.001, "representable"), (-0.2, "does not fall")):
        theta = np.array([math.log(0.2), b])
        fitted = scaling.Fit(law, theta, x, law.predict(theta, x), 0.0, np.array([theta]))
        outlook = scaling.forecast(fitted, 0.01)
        assert not outlook.reachable and words in outlook.reason
    # L(N, D) with the target a hair above its floor, or with an exponent at 0.
    epoch = {"A": 482.01, "B": 2085.43, "E": 1.817, "alpha": 0.3478, "beta": 0.3659}
    assert scaling.compute_to_reach(epoch, 1.817 * (1 + 1e-60)) == math.inf
    assert scaling.compute_to_reach({**epoch, "alpha": 0.0}, 2.0) == math.inf
    # The cost trend, far out.
    trend = scaling.power_trend([1, 2, 4], [1, 4, 16])
    assert trend.predict(1e300) == math.inf and trend.predict(2.0) == pytest.approx(4.0)


# ------------------------------------------------------------------ `pursuit fit`'s input
def _runs(tmp_path, rows=24, **columns):
    """A CSV of a law's points (compute, loss), with extra or replaced columns."""
    x = np.geomspace(1e3, 1e7, rows)
    frame = pd.DataFrame({"compute": x, "loss": 1.5 + 40 * x**-0.3, **columns})
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    return path


def _fit(path, *args):
    result = CliRunner().invoke(app, ["fit", str(path), "--x", "compute", "--y", "loss",
                                      "--resamples", "5", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("column, row, value, shown", [
    ("loss", 0, math.nan, "a missing value"), ("loss", 1, 0.0, "0.0"),
    ("loss", 2, -1.0, "-1.0"), ("compute", 3, -5.0, "-5.0"), ("compute", 23, math.inf, "inf"),
    ("loss", 4, "abc", "'abc'")])
@pytest.mark.parametrize("form", ["auto", "m2"])
def test_fit_checks_every_row_alike_whatever_the_form(tmp_path, column, row, value, shown,
                                                      form):
    """A bad value outside the end of the curve that auto fits is refused all the same,
    by its column, its line in the file and the value."""
    x = np.geomspace(1e3, 1e7, 24)
    frame = pd.DataFrame({"compute": x, "loss": 1.5 + 40 * x**-0.3}).astype(object)
    frame.loc[row, column] = value
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    code, output = _fit(path, "--form", form)
    assert code == 2, output
    assert output.startswith(f"error: column '{column}', line {row + 2}: ")
    assert f"got {shown}" in output and output.count("\n") == 1
    assert "finite number > 0" in output


def test_a_bad_value_is_named_by_its_line_past_blank_lines_and_quoted_newlines(tmp_path):
    from pursuit.scaling._summary import study

    path = tmp_path / "runs.csv"
    x = np.geomspace(1e3, 1e7, 12)
    lines = [f"{v},{1.5 + 40 * v**-0.3},a" for v in x]
    lines[3] = f'{x[3]},{1.5 + 40 * x[3]**-0.3},"two\nlines"'  # one row over two lines
    lines[6] = f"{x[6]},-2,a"
    path.write_text("compute,loss,note\n\n" + "\n".join(lines[:5]) + "\n   \n"
                    + "\n".join(lines[5:]) + "\n")
    code, output = _fit(path)
    assert code == 2 and "column 'loss', line 11: " in output and "got -2.0" in output
    # From Python, a row is named by its position in the table.
    with pytest.raises(ValueError, match=r"column 'loss', row 6: .* got -2.0"):
        study(pd.read_csv(path), ["compute"], "loss")


def test_select_checks_every_point_not_only_the_end_it_fits():
    x = np.geomspace(1e3, 1e7, 24)
    y = 1.5 + 40 * x**-0.3
    for bad, words in ((math.nan, "y\\[0\\] is nan: .* finite"), (-1.0, "y\\[0\\] is -1: .*> 0")):
        with pytest.raises(ValueError, match=words):
            scaling.select(x, np.r_[bad, y[1:]])
    with pytest.raises(ValueError, match=r"x\[2\] is 0: "):
        scaling.select(np.r_[x[:2], 0.0, x[3:]], y)


@pytest.mark.parametrize("values, words", [
    ([2] * 20 + [3] * 4, "got 2"), (["train"] * 20 + ["test"] * 4, "got 'train'"),
    ([1] * 20 + [math.nan] * 4, "got a missing value")])
def test_a_holdout_column_takes_only_0_1_or_true_false(tmp_path, values, words):
    code, output = _fit(_runs(tmp_path, h=values), "--holdout-column", "h")
    assert code == 2, output
    assert "column 'h', line " in output and "1 or true (fit the row) or 0 or false" in output
    assert words in output


@pytest.mark.parametrize("values", [[1] * 20 + [0] * 4, [True] * 20 + [False] * 4,
                                    ["true"] * 20 + ["FALSE"] * 4, [1.0] * 20 + [0.0] * 4])
def test_a_holdout_column_of_0_1_or_true_false_holds_out_its_zeros(tmp_path, values):
    code, output = _fit(_runs(tmp_path, h=values), "--holdout-column", "h", "--form", "m2",
                        "--json")
    assert code == 0, output
    held = json.loads(output)["holdout"]
    assert len(held) == 4 and min(row["x"] for row in held) > 1e6


@pytest.mark.parametrize("rows, args, words", [
    ([1e3], [], "the table has 1 row at 1 distinct x value"),
    ([5.0] * 10, [], "the table has 10 rows at 1 distinct x value"),
    ([], [], "the table has no rows"),
    ([1e3, 1e4, 1e5], [], "the table has 3 rows at 3 distinct x values"),
    ([1e3, 1e4], ["--form", "m2"], "(m2 has 3 parameters); the table has 2 rows"),
    ([1e3, 1e4, 1e5, 1e6], ["--holdout", "0.5"], "4 rows, 2 of them left to fit after "
                                                  "holding out 2, at 2 distinct x values")])
def test_too_little_data_says_what_the_fit_needs(tmp_path, rows, args, words):
    path = tmp_path / "runs.csv"
    x = np.array(rows, dtype=float)
    pd.DataFrame({"compute": x, "loss": 1.5 + 40 * x**-0.3}).to_csv(path, index=False)
    code, output = _fit(path, *args)
    assert code == 2, output
    assert output.startswith("error: the fit needs points at ") and output.count("\n") == 1
    assert words in output


def test_too_little_data_for_select_says_what_it_needs():
    with pytest.raises(ValueError, match="needs points at 4 or more distinct x values .* "
                                         "got 5 points at 1 distinct x value"):
        scaling.select([3.0] * 5, [1.0, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="got 0 points"):
        scaling.select([], [])


def test_a_plot_that_cannot_be_written_is_an_error_not_a_traceback(tmp_path):
    path = _runs(tmp_path)
    code, output = _fit(path, "--form", "m2", "--plot", "/no/such/dir/f.png")
    assert code == 2 and output == ("error: cannot write the plot to /no/such/dir/f.png: "
                                    "there is no folder /no/such/dir\n")
    (tmp_path / "taken.png").mkdir()  # the folder is there, the file cannot be written
    code, output = _fit(path, "--form", "m2", "--plot", str(tmp_path / "taken.png"))
    assert code == 2 and output.startswith("error: cannot write the plot to ")


# ---------------------------------------------------------------------------- many rows
def _law_rows(distinct, repeats, seed=0):
    x = np.repeat(np.geomspace(1e3, 1e9, distinct), repeats)
    noise = np.exp(0.02 * np.random.default_rng(seed).standard_normal(x.size))
    return x, (1.7 + 400 * x**-0.3) * noise


def test_pooling_rows_of_equal_x_fits_the_law_the_rows_make():
    x, y = _law_rows(40, 50)
    rows = scaling.fit("m2", x, y, bootstrap=20, pool=False)
    pooled = scaling.fit("m2", x, y, bootstrap=20, pool=True)
    assert pooled.pooled == 40 and rows.pooled == 0
    for name, value in rows.params.items():
        assert pooled.params[name] == pytest.approx(value, rel=0.02)
        assert pooled.params[name] == pytest.approx({"e": 1.7, "a": 400, "b": 0.3}[name],
                                                    rel=0.1)
    assert len(pooled.boot) == 20 and np.all(np.ptp(pooled.boot, axis=0) > 0)
    assert len(pooled.y) == len(y)  # the rows stay: intervals take their scatter
    lower, upper = pooled.band(x, 0.9)
    assert 0.85 < np.mean((y >= lower) & (y <= upper)) < 0.95
    # One row a point: the rows' own fit.
    once, _ = _law_rows(30, 1)
    alone = scaling.fit("m2", once, 1.7 + 400 * once**-0.3, bootstrap=0, pool=True)
    plain = scaling.fit("m2", once, 1.7 + 400 * once**-0.3, bootstrap=0, pool=False)
    assert np.allclose(alone.theta, plain.theta, rtol=1e-6)
    # Seeds resampled whole, pooled.
    seeds = np.tile(np.arange(50), 40)
    grouped = scaling.fit("m2", x, y, bootstrap=10, groups=seeds, pool=True)
    assert len(grouped.boot) == 10


def test_many_distinct_x_pool_into_steps_of_log_x(monkeypatch):
    from pursuit.scaling import _fit

    monkeypatch.setattr(_fit, "POOLS", 100)
    x, y = _law_rows(5000, 1)
    pool = _fit.Pool.of(x)
    assert pool.size == 100 and pool.x is None
    px, py, weight = pool.points(x, y)
    assert weight.sum() == 5000 and np.all(np.diff(px) > 0)
    fitted = scaling.fit("m2", x, y, bootstrap=5, pool=True)
    assert fitted.pooled == 100
    assert fitted.params["b"] == pytest.approx(0.3, rel=0.1)
    two = _fit.Pool.of(np.column_stack([x, x[::-1]]))
    assert two.size <= 100


def test_fit_of_many_rows_works_on_pooled_points(tmp_path):
    """200,000 rows (200 x, 1000 seeds each) fit in seconds, not minutes: the solver sees
    200 points."""
    x, y = _law_rows(200, 1000)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"compute": x, "seed": np.tile(np.arange(1000), 200), "loss": y}).to_csv(
        path, index=False)
    code, output = _fit(path, "--group", "seed", "--target", "1.8", "--json")
    assert code == 0, output
    summary = json.loads(output)
    end = x >= x.max() / 32  # the widest window a candidate law fits
    assert summary["points_fitted"] == 200_000 and summary["points_described"] == end.sum()
    assert summary["points_pooled"] == len(np.unique(x[end]))
    assert summary["resamples"] > 0 and summary["forecast"]["target"] == 1.8
    text = " ".join(CliRunner().invoke(app, ["fit", str(path), "--x", "compute", "--y",
                                             "loss", "--resamples", "5", "--form", "m2"]
                                       ).output.split())
    assert "fitted as at most 200 pooled points" in text


def test_a_method_that_climbs_two_ladders_gets_its_law_from_the_latest():
    """The leader changed between rounds: each ladder is a line of its own, never mixed
    into a configuration that does not exist; of two as long, the dial's law is the
    current leader's (the later line)."""
    import pandas as pd

    from pursuit.scaling import ladder_forecasts

    rows = []
    for lr, start in ((0.1, 16), (0.3, 32)):  # two leaders, one ladder each
        for width in [start // 4, start // 2, start, start * 2, start * 4]:
            for seed in (1, 2, 3):
                loss = (0.1 + 2.0 * width ** -0.5) * (1 + lr) + 0.001 * seed
                stage = "confirm" if width == start else "ladder"
                rows.append({"method": "m", "stage": stage, "state": "completed",
                             "seed": seed, "dial.lr": lr, "dial.width": width, "loss": loss,
                             "cost.wall_seconds": 0.01 * width})
    entries = ladder_forecasts(pd.DataFrame(rows), metric="loss", direction="minimize",
                               target=0.2)
    assert [(e["dial"], e["at"]["lr"]) for e in entries] == [("width", 0.3)]
    assert all("law" in e and len(e["rungs"]) == 5 for e in entries)


def test_a_blend_that_reaches_the_target_only_through_a_floorless_member_says_so():
    """m2 (weight 0.8) levels off at 1.0; m1 has no floor: the blend reaches 0.9 only
    through m1, and the forecast says so; a target above both floors needs no word."""
    import math

    from pursuit.overview import ladder_lines
    from pursuit.scaling import FORMS, Blend, Fit, forecast

    blend = Blend({"m1": FORMS["m1"], "m2": FORMS["m2"]}, [0.2, 0.8])
    theta = np.array([math.log(3.0), 0.5, 1.0, math.log(2.0), 0.5])
    x = np.geomspace(1, 100, 6)
    law = Fit(blend, theta, x, blend.predict(theta, x), 0.0)
    assert "m2 (weight 0.80) levels off at 1" in blend.floor_caveat(theta, 0.9)
    assert blend.floor_caveat(theta, 1.5) is None
    outlook = forecast(law, 0.9)
    assert outlook.reachable  # the blend's floor is zero
    entry = {"kind": "law", "method": "m", "dial": "x", "rungs": [1.0, 100.0], "law": "…",
             "form": "blend",
             "members": [], "params": {}, "forecast": {**outlook.as_dict(),
                                                       "caveat": blend.floor_caveat(theta, 0.9)}}
    text = "\n".join(ladder_lines([entry]))
    assert "but m2 (weight 0.80) levels off at 1, short of the target" in text
