"""The ladder's studies taken together: laws against reported parameters, overfitting
along curves and how it moves with data, new against repeated data, and the compute
to reach the target under L(N, D); checked against a world whose laws are known."""

import math

import numpy as np
import optuna
import pandas as pd
import pytest
import scaling_methods as world

import pursuit
from pursuit.goal import Goal, MethodSpec
from pursuit.loop.planner import ladder_rungs
from pursuit.overview import goal_overview, ladder_lines
from pursuit.scaling import compute_study, repeats_study


def run_world(tmp_path, methods, *, target, trials):
    goal = Goal(name="world", metric="loss", direction="minimize", target=target, seeds=3,
                budget={"max_trials": trials}, methods=methods)
    url = str(tmp_path / "world.db")
    pursuit.run(goal, url, "inline", sampler=optuna.samplers.TPESampler(seed=0))
    with pursuit.open(url) as results:
        return goal_overview(results, "world"), results.results("world")


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    return run_world(tmp_path_factory.mktemp("studied"),
                     [MethodSpec(method=world.unigram),
                      MethodSpec(method=world.toy_lm, study=True)], target=2.5, trials=120)


def test_the_ladder_gets_a_grid_over_model_size_and_data():
    rungs = ladder_rungs(world.toy_lm, world.toy_lm.defaults())
    corners = [r for r in rungs if r["width"] != 32 and r["data"] != 0.1]
    assert sorted((r["width"], r["data"]) for r in corners) == \
        [(16, 0.05), (16, 0.2), (64, 0.05), (64, 0.2)]
    # no grid without both roles: each dial stepped alone
    assert all(sum(r[d] != v for d, v in world.oracle.defaults().items()) <= 1
               for r in ladder_rungs(world.oracle, world.oracle.defaults()))


def test_a_model_size_law_is_fitted_against_the_parameters_the_trials_reported(studied):
    overview, _ = studied
    laws = {e["dial"]: e for e in overview["ladder"] if e["kind"] == "law"}
    assert laws["width"]["x"] == "params" and "params^" in laws["width"]["law"]
    assert laws["data"]["x"] == "data"  # a dial that does not size the model keeps its name
    assert any("against the params the trials reported" in line
               for line in ladder_lines(overview["ladder"]))


def test_overfitting_is_found_along_curves_and_moves_later_with_more_data(studied):
    overview, _ = studied
    [overfit] = [e for e in overview["ladder"] if e["kind"] == "overfit"]
    assert overfit["turned"] > 0 and overfit["data_dial"] == "data"
    # The world turns after 1.5 passes: in tokens, proportional to the data (exponent 1).
    trend = overfit["trend"]
    assert trend["lower"] <= trend["exponent"] <= trend["upper"] and trend["lower"] > 0
    turned = [g for g in overfit["by_data"] if g["median_step"] is not None]
    steps = [g["median_step"] for g in turned]
    assert steps == sorted(steps) and len(turned) >= 2
    text = "\n".join(ladder_lines(overview["ladder"]))
    assert "more data delays overfitting" in text


def test_compute_to_the_target_comes_with_an_interval_and_a_split(studied):
    overview, _ = studied
    [compute] = [e for e in overview["ladder"] if e["kind"] == "compute"]
    f = compute["forecast"]
    assert f["reachable"] and f["lower"] <= f["x"] <= f["upper"]
    assert f["params_opt"] * f["tokens_opt"] * 6 == pytest.approx(f["x"], rel=1e-6)
    assert compute["fresh_data_from"] == "data-constrained law"
    assert any("target needs C = 6 N D FLOP" in line
               for line in ladder_lines(overview["ladder"]))


def test_a_studied_method_climbs_though_another_method_leads(tmp_path):
    overview, frame = run_world(tmp_path, [MethodSpec(method=world.oracle),
                                           MethodSpec(method=world.toy_lm, study=True)],
                                target=0.5, trials=110)
    assert overview["best"]["best_method"] == "oracle"
    ladder = frame[frame["stage"] == "ladder"]
    assert set(ladder["method"]) == {"toy_lm"} and len(ladder) >= 3 * 12
    # climbed once, from a claim search or the defaults made, never from its own rung
    centres = {e["method"] for e in overview["ladder"] if e["kind"] == "law"}
    assert centres == {"toy_lm"}


def test_a_method_not_studied_does_not_climb_when_it_does_not_lead(tmp_path):
    _, frame = run_world(tmp_path, [MethodSpec(method=world.oracle),
                                    MethodSpec(method=world.toy_lm)], target=0.5, trials=60)
    assert not (frame["stage"] == "ladder").any()


def clean_world(seed=0):
    """Trials of a clean world (no overfitting) over a grid of N, U and passes."""
    rng = np.random.default_rng(seed)
    rows = []
    for width in (16, 32, 64, 128):
        for data in (0.02, 0.08, 0.3):
            for epochs in (1.0, 4.0, 16.0):
                for s in range(2):
                    n, u = 48.0 * width ** 2, data * world.CORPUS
                    value = world.loss(n, epochs * u, u, 1e-2) * (1 + 0.002 * rng.normal())
                    rows.append({"trial_id": len(rows), "method": "m", "stage": "ladder",
                                 "state": "completed", "seed": s, "dial.width": width,
                                 "dial.data": data, "dial.epochs": epochs, "loss": value,
                                 "cost.params": n, "cost.tokens_seen": epochs * u,
                                 "cost.unique_tokens_seen": u})
    return pd.DataFrame(rows)


def test_the_data_constrained_law_recovers_the_worlds_worth_of_repeats():
    entry = repeats_study(clean_world(), method="m", metric="loss", direction="minimize")
    r = entry["R_star"]
    assert r["lower"] <= world.R_STAR <= r["upper"] and r["upper"] / r["lower"] < 3
    at = entry["at"]
    repeats = at["tokens"] / at["unique"] - 1
    truth = world.effective(at["tokens"], at["unique"]) / at["tokens"]
    assert repeats > 0 and entry["worth"]["lower"] <= truth <= entry["worth"]["upper"]
    assert entry["loss_repeated"] > entry["loss_fresh"]


def test_compute_to_reach_agrees_with_the_worlds_own_optimum():
    target = 2.2
    entry = compute_study(clean_world(), method="m", metric="loss", direction="minimize",
                          target=target)
    f = entry["forecast"]
    # The truth: the least 6 N D on the world's fresh-data law that reaches the target.
    alpha, beta = world.ALPHA, world.BETA
    g = ((alpha * world.A) / (beta * world.B)) ** (1 / (alpha + beta))
    def loss_at(c):
        n = g * (c / 6) ** (beta / (alpha + beta))
        d = (c / 6) ** (alpha / (alpha + beta)) / g
        return world.E + world.A / n ** alpha + world.B / d ** beta
    lo, hi = 1e6, 1e30
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if loss_at(mid) <= target else (mid, hi)
    assert f["lower"] <= hi and lo <= f["upper"]
    assert f["x"] == pytest.approx(hi, rel=0.3)


def test_studies_say_why_when_the_trials_cannot_support_them():
    frame = clean_world().drop(columns=["cost.unique_tokens_seen", "cost.tokens_seen"])
    assert "do not report" in repeats_study(frame, method="m", metric="loss",
                                            direction="minimize")["note"]
    assert "do not report" in compute_study(frame, method="m", metric="loss",
                                            direction="minimize", target=2.0)["note"]
    few = clean_world().head(4)
    assert "needs trials at" in compute_study(few, method="m", metric="loss",
                                              direction="minimize", target=2.0)["note"]


def test_a_method_that_reports_neither_curves_nor_size_gets_no_studies():
    from pursuit.scaling import ladder_studies

    bare = clean_world().drop(columns=["cost.params", "cost.tokens_seen",
                                       "cost.unique_tokens_seen"])
    assert ladder_studies(bare, {}, metric="loss", direction="minimize", target=2.0,
                          scales={"m": {"data": "data"}}) == []
    full = ladder_studies(clean_world(), {}, metric="loss", direction="minimize",
                          target=2.0, scales={"m": {"data": "data"}})
    assert [e["kind"] for e in full] == ["repeats", "compute"]  # no curves: no overfit
