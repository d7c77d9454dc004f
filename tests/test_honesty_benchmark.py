"""The honesty benchmark (benchmarks/honesty.py) runs end to end and says what it measured.

Six worlds are too few to judge the goals; these tests check that every world runs
through the loop without a crash and that the figures are there, well formed and
consistent with their counts. The worlds' hidden truth is checked directly.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "honesty.py"
PROPORTIONS = ("false_target_claims", "aa_significant", "claim_coverage", "power",
               "power_right_config")


@pytest.fixture(scope="module")
def honesty():
    spec = importlib.util.spec_from_file_location("honesty_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_six_worlds_run_and_report_every_figure(tmp_path):
    out = tmp_path / "honesty.json"
    # Warnings are errors here as in the rest of the suite; a run that raises is a crash.
    done = subprocess.run(
        [sys.executable, "-W", "error", "-W", "ignore::DeprecationWarning",
         "-W", "ignore::PendingDeprecationWarning", str(SCRIPT), "--worlds", "6", "--jobs", "2",
         "--seed", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    for key in PROPORTIONS:
        assert isinstance(report[key], float), (key, report[key])
        assert 0.0 <= report[key] <= 1.0, (key, report[key])
        figure = report["figures"][key]
        assert figure["value"] == pytest.approx(figure["k"] / figure["n"])
        assert figure["lo"] <= figure["value"] <= figure["hi"]
        assert key in done.stdout
    duplicates = report["duplicate_seeds"]
    assert isinstance(duplicates, int) and not isinstance(duplicates, bool) and duplicates >= 0
    assert "duplicate_seeds" in done.stdout
    assert report["worlds"] == 6 and report["runs"] == 18 and report["crashes"] == 0
    # Every world has one run of each goal; each run ends with at most one best claim.
    for key in ("false_target_claims", "aa_significant", "power", "power_right_config"):
        assert report["figures"][key]["n"] == 6, key
    assert 1 <= report["figures"]["claim_coverage"]["n"] <= 18


def test_a_seed_is_a_fixed_draw_around_the_true_mean(honesty):
    world = honesty.make_world(0, 1)
    dials = {"k": 3, "c": "b"}
    first = honesty.draw(world, "near_grid", dials, 0)
    assert honesty.draw(world, "near_grid", dials, 0) == first
    assert honesty.draw(world, "near_grid", dials, 1) != first
    assert honesty.draw(world, "near_grid", {"k": 4, "c": "b"}, 0) != first
    assert honesty.draw(honesty.make_world(0, 2), "near_grid", dials, 0) != first
    values = np.array([honesty.draw(world, "near_grid", dials, s) for s in range(2000)])
    truth = honesty.true_mean(world, "near_grid", dials)
    assert abs(values.mean() - truth) < 4 * world.sigma / np.sqrt(values.size)
    assert values.std() == pytest.approx(world.sigma, rel=0.1)


@pytest.mark.parametrize("index", range(20))
def test_the_worlds_hold_what_the_benchmark_says(honesty, index):
    world = honesty.make_world(7, index)
    grid = [(k, c) for k in range(12) for c in honesty.CHOICES]
    near = [honesty.true_mean(world, "near_grid", {"k": k, "c": c}) for k, c in grid]
    assert max(near) == pytest.approx(world.target - 0.3 * world.sigma)
    assert min(near) >= world.target - world.sigma - 1e-9
    rng = np.random.default_rng(index)
    smooth = [honesty.true_mean(world, "near_smooth", {"x": x, "y": y})
              for x, y in rng.uniform(size=(200, 2))]
    assert max(smooth) < world.target
    power = {(k, c): honesty.true_mean(world, "power_grid", {"k": k, "c": c})
             for k in range(8) for c in honesty.CHOICES}
    above = [config for config, mean in power.items() if mean >= world.target]
    assert above == [(world.power_k, world.power_c)] != [(0, "a")]
    assert power[above[0]] == pytest.approx(world.target + 2 * world.sigma)
    assert honesty.true_mean(world, "aa_twin", {"lr": 0.01, "width": 20, "act": "tanh"}) == \
        honesty.true_mean(world, "aa_baseline", {})


def test_wilson_interval(honesty):
    lo, hi = honesty.wilson(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35
    lo, hi = honesty.wilson(5, 10)
    assert lo < 0.5 < hi and lo == pytest.approx(1 - hi)
    assert honesty.wilson(25, 500) == pytest.approx((0.0341, 0.0728), abs=1e-3)
