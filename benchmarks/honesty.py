"""Honesty: are the loop's answers true? Synthetic methods with known means, many worlds.

Each method returns ``true_mean(dials) + sigma * z``, where ``z`` is a standard normal
drawn from a generator seeded by (benchmark seed, world, method, configuration, trial
seed): the same (method, configuration, seed) always gives the same value, as a seed is
a fixed draw in real training. Every world draws its own offset (the target sits at
it, uniform in [-10, 10]), seed standard deviation ``sigma`` (uniform in [0.5, 2]) and
the hidden best configurations below, and runs three goals through the real loop
(``pursuit.run`` with the inline executor, an in-memory store each, and Optuna's
TPESampler seeded per world and goal):

* **aa** (3 seeds, 40 trials, no target): ``aa_baseline``, a baseline without dials,
  and ``aa_twin``, the same method with dials that do nothing (a log-scale float, a
  log-scale int, a choice of 3). ``aa_significant``: the share of runs where the
  leaderboard calls the twin significantly "better" or "worse" than the baseline
  (column ``verdict``). Goal <= 5%.
* **near** (3 seeds, 60 trials): no configuration reaches the target. ``near_baseline``
  sits at target - 1.5 sigma; ``near_grid`` (an Int(0, 11) and a Choice of 3: 36
  configurations, where samplers repeat themselves) and ``near_smooth`` (two floats)
  span target - 1.0 to - 0.3 sigma around a hidden peak at - 0.3 sigma.
  ``false_target_claims``: the share of runs that say the target is reached
  (``Summary.reached`` or the leaderboard's ``progress["reached"]``). Goal <= 5%.
* **power** (6 seeds, 100 trials): ``power_grid`` (an Int(0, 7) and a Choice of 3: 24
  configurations) has one configuration at target + 2 sigma; the others lie at
  target - 0.5 to - 1.5 sigma, falling off with the distance from it, and the baseline
  at - 1.5 sigma. ``power``: the share of runs that reach the target. Goal >= 80%.
  ``power_right_config``: the share that reach it and whose best claim names the
  configuration above the target. Six seeds: a claim verified by a one-sided t-test at
  2.5% on 3 fresh seeds (2 degrees of freedom) detects +2 sigma in 47% of runs; on 6
  seeds in 97% (91% at a second verification's 1.25%), which leaves room for the
  search to miss the configuration now and then.

Over all three goals of every world:

* ``claim_coverage``: among runs that end with a best claim (``progress["best_method"]``),
  the share whose 95% interval ``[best_lo, best_hi]`` holds the claimed configuration's
  true mean (a NaN bound does not hold it). Goal >= 93%.
* ``duplicate_seeds``: (method, configuration, seed) keys with more than one completed
  trial, summed over all runs. Goal 0.

Every world runs all three goals, so that each figure but coverage rests on ``--worlds``
runs (coverage on up to three per world). A run that raises is caught, counted under
``crashes`` (with its error) and left out of every figure; the script then exits with
status 1. Goals unmet do not change the exit status. Worlds run in parallel (``--jobs``);
500 take about 3 minutes on 2 cores, most of it Optuna's TPE proposals (about 3 ms each)
and the leaderboard's pandas work (about 60 ms a run).

    python benchmarks/honesty.py --worlds 500 --json honesty.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

import pursuit
from pursuit import Choice, Float, Int
from pursuit.results import Results
from pursuit.store import MemoryStore

SIGMA_RANGE = (0.5, 2.0)  # seed standard deviation, drawn per world
AA_SEEDS, NEAR_SEEDS, POWER_SEEDS = 3, 3, 6
AA_TRIALS, NEAR_TRIALS, POWER_TRIALS = 40, 60, 100
GOALS = {"aa": 0.05, "near": 0.05, "power": 0.80, "coverage": 0.93}
CHOICES = ["a", "b", "c"]


@dataclass(frozen=True)
class World:
    """The hidden truth of one world."""

    key: int  # the benchmark's --seed
    index: int
    target: float
    sigma: float
    near_k: int  # near_grid's peak
    near_c: str
    near_x: float  # near_smooth's peak
    near_y: float
    power_k: int  # power_grid's configuration above the target
    power_c: str


_WORLD: World | None = None  # the world being run; the inline executor runs methods here


def make_world(key: int, index: int) -> World:
    rng = np.random.default_rng([key, index])
    power_k, power_c = int(rng.integers(0, 8)), CHOICES[int(rng.integers(0, 3))]
    if (power_k, power_c) == (0, "a"):  # never the published default: it must be found
        power_k = int(rng.integers(1, 8))
    return World(key, index, target=float(rng.uniform(-10, 10)),
                 sigma=float(rng.uniform(*SIGMA_RANGE)), near_k=int(rng.integers(0, 12)),
                 near_c=CHOICES[int(rng.integers(0, 3))], near_x=float(rng.uniform()),
                 near_y=float(rng.uniform()), power_k=power_k, power_c=power_c)


def true_mean(world: World, method: str, dials: dict[str, Any]) -> float:
    t, s = world.target, world.sigma
    if method == "aa_baseline" or method == "aa_twin":
        return t
    if method in ("near_baseline", "power_baseline"):
        return t - 1.5 * s
    if method == "near_grid":
        d = 0.5 * abs(dials["k"] - world.near_k) / 11 + 0.5 * (dials["c"] != world.near_c)
        return t - s * (0.3 + 0.7 * d)
    if method == "near_smooth":
        d = min(1.0, ((dials["x"] - world.near_x) ** 2 + (dials["y"] - world.near_y) ** 2) / 0.5)
        return t - s * (0.3 + 0.7 * d)
    if method == "power_grid":
        if (dials["k"], dials["c"]) == (world.power_k, world.power_c):
            return t + 2.0 * s
        d = 0.5 * abs(dials["k"] - world.power_k) / 7 + 0.5 * (dials["c"] != world.power_c)
        return t - s * (0.5 + d)
    raise ValueError(f"no true mean for method {method!r}")


def draw(world: World, method: str, dials: dict[str, Any], seed: int) -> float:
    """The method's value on this seed: fixed by (world, method, configuration, seed)."""
    text = f"{world.key}|{world.index}|{method}|{json.dumps(dials, sort_keys=True)}|{seed}"
    entropy = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    z = np.random.default_rng(entropy).standard_normal()
    return true_mean(world, method, dials) + world.sigma * float(z)


def _value(name: str, trial: Any) -> float:
    if _WORLD is None:
        raise RuntimeError("no world is set: run methods through run_world()")
    return draw(_WORLD, name, trial.dials, trial.seed)


@pursuit.method(source="synthetic", baseline=True)
def aa_baseline(trial):
    return _value("aa_baseline", trial)


@pursuit.method(source="synthetic")
def aa_twin(trial, *, lr=Float(1e-4, 1e-1, log=True, default=1e-3),
            width=Int(16, 512, log=True, default=64), act=Choice(["relu", "gelu", "tanh"])):
    return _value("aa_twin", trial)  # the dials do nothing


@pursuit.method(source="synthetic", baseline=True)
def near_baseline(trial):
    return _value("near_baseline", trial)


@pursuit.method(source="synthetic")
def near_grid(trial, *, k=Int(0, 11, default=0), c=Choice(CHOICES)):
    return _value("near_grid", trial)


@pursuit.method(source="synthetic")
def near_smooth(trial, *, x=Float(0.0, 1.0, default=0.5), y=Float(0.0, 1.0, default=0.5)):
    return _value("near_smooth", trial)


@pursuit.method(source="synthetic", baseline=True)
def power_baseline(trial):
    return _value("power_baseline", trial)


@pursuit.method(source="synthetic")
def power_grid(trial, *, k=Int(0, 7, default=0), c=Choice(CHOICES)):
    return _value("power_grid", trial)


def goals(world: World) -> dict[str, pursuit.Goal]:
    def goal(name: str, seeds: int, trials: int, target: float | None,
             methods: list[Any]) -> pursuit.Goal:
        return pursuit.Goal(name=name, metric="score", direction="maximize", target=target,
                            seeds=seeds, budget={"max_trials": trials}, methods=methods)

    return {"aa": goal("aa", AA_SEEDS, AA_TRIALS, None, [aa_baseline, aa_twin]),
            "near": goal("near", NEAR_SEEDS, NEAR_TRIALS, world.target,
                         [near_baseline, near_grid, near_smooth]),
            "power": goal("power", POWER_SEEDS, POWER_TRIALS, world.target,
                          [power_baseline, power_grid])}


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def run_goal(world: World, kind: str, goal: pursuit.Goal, workdir: str) -> dict[str, Any]:
    """Run one goal of one world through the loop and judge its answers against the truth."""
    store = MemoryStore()
    sampler_seed = int.from_bytes(hashlib.blake2b(
        f"{world.key}|{world.index}|{kind}".encode(), digest_size=4).digest(), "little")
    start = time.perf_counter()
    [summary, *_] = pursuit.run(goal, store, "inline",
                                sampler=optuna.samplers.TPESampler(seed=sampler_seed),
                                workdir=workdir)
    seconds = time.perf_counter() - start
    results = Results(store)
    board = results.leaderboard()
    progress = board.progress
    record = results.goal()
    trials = store.trials(record.id)
    completed = Counter((t.method, t.config, t.seed) for t in trials
                        if str(getattr(t.state, "value", t.state)) == "completed")
    out: dict[str, Any] = {
        "kind": kind, "world": world.index, "seconds": seconds, "trials": len(trials),
        "summary_reached": bool(summary.reached), "board_reached": bool(progress.get("reached")),
        "duplicates": sum(1 for n in completed.values() if n > 1),
        "duplicate_trials": sum(n - 1 for n in completed.values() if n > 1),
        "best_method": progress.get("best_method"), "best_config": progress.get("best_config")}
    out["reached"] = out["summary_reached"] or out["board_reached"]
    if out["best_method"] is not None:
        dials = json.loads(out["best_config"])
        truth = true_mean(world, out["best_method"], dials)
        lo, hi = _number(progress.get("best_lo")), _number(progress.get("best_hi"))
        out.update(best_true=truth, best_lo=lo, best_hi=hi,
                   best_n=int(progress.get("best_n") or 0),
                   covered=bool(lo <= truth <= hi),  # False when a bound is NaN
                   claim_true=truth >= world.target,
                   best_duplicated=any(n > 1 for (m, c, _), n in completed.items()
                                       if (m, c) == (out["best_method"], out["best_config"])))
    if kind == "aa":
        verdicts = board.methods.set_index("method")["verdict"]
        out["verdict"] = str(verdicts.get("aa_twin"))
    if kind == "power":
        out["peak_run"] = any(t.method == "power_grid" and t.dials.get("k") == world.power_k
                              and t.dials.get("c") == world.power_c for t in trials)
    return out


def run_world(job: tuple[int, int]) -> list[dict[str, Any]]:
    """Every goal of one world; a run that raises is recorded, not raised."""
    global _WORLD
    key, index = job
    world = make_world(key, index)
    _WORLD = world
    rows = []
    with tempfile.TemporaryDirectory(prefix="honesty-") as workdir:
        for kind, goal in goals(world).items():
            try:
                rows.append(run_goal(world, kind, goal, workdir))
            except Exception as error:
                rows.append({"kind": kind, "world": index, "crash": f"{type(error).__name__}: "
                             f"{error}", "traceback": traceback.format_exc()[-2000:]})
    _WORLD = None
    return rows


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))  # rounding


def proportion(k: int, n: int, goal: float, at_most: bool) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    value = k / n if n else None
    met = None if value is None else (value <= goal if at_most else value >= goal)
    return {"k": k, "n": n, "value": value, "lo": None if n == 0 else lo,
            "hi": None if n == 0 else hi, "goal": ("<= " if at_most else ">= ") + f"{goal:g}",
            "met": met}


def summarize(rows: list[dict[str, Any]], worlds: int, seconds: float) -> dict[str, Any]:
    ok = [r for r in rows if "crash" not in r]
    crashes = [r for r in rows if "crash" in r]
    of = {kind: [r for r in ok if r["kind"] == kind] for kind in ("aa", "near", "power")}
    claims = [r for r in ok if r["best_method"] is not None]
    figures = {
        "false_target_claims": proportion(sum(r["reached"] for r in of["near"]),
                                          len(of["near"]), GOALS["near"], True),
        "aa_significant": proportion(sum(r["verdict"] in ("better", "worse") for r in of["aa"]),
                                     len(of["aa"]), GOALS["aa"], True),
        "claim_coverage": proportion(sum(r["covered"] for r in claims), len(claims),
                                     GOALS["coverage"], False),
        "power": proportion(sum(r["reached"] for r in of["power"]), len(of["power"]),
                            GOALS["power"], False),
        "power_right_config": proportion(sum(r["reached"] and r.get("claim_true", False)
                                             for r in of["power"]), len(of["power"]),
                                         GOALS["power"], False)}
    duplicates = sum(r["duplicates"] for r in ok)
    detail = {
        "worlds": worlds, "seconds": round(seconds, 1), "pursuit": pursuit.__file__,
        "seeds": {"aa": AA_SEEDS, "near": NEAR_SEEDS, "power": POWER_SEEDS},
        "max_trials": {"aa": AA_TRIALS, "near": NEAR_TRIALS, "power": POWER_TRIALS},
        "runs": len(rows), "crashes": len(crashes),
        "crash_errors": dict(Counter(r["crash"][:300] for r in crashes).most_common(5)),
        "crash_traceback": crashes[0]["traceback"] if crashes else None,
        "figures": figures,
        "duplicate_trials": sum(r["duplicate_trials"] for r in ok),
        "duplicate_runs": {kind: sum(r["duplicates"] > 0 for r in rs) for kind, rs in of.items()},
        "aa_verdicts": dict(Counter(r["verdict"] for r in of["aa"])),
        "false_claims_by_method": dict(Counter(r["best_method"] for r in of["near"]
                                               if r["reached"])),
        "false_claims_on_duplicated_config": sum(r["reached"] and r.get("best_duplicated", False)
                                                 for r in of["near"]),
        "claims_summary_vs_board": {
            kind: {"summary": sum(r["summary_reached"] for r in rs),
                   "board": sum(r["board_reached"] for r in rs)} for kind, rs in of.items()},
        "coverage_by_goal": {kind: proportion(sum(r["covered"] for r in rs if r["best_method"]),
                                              sum(1 for r in rs if r["best_method"]),
                                              GOALS["coverage"], False)
                             for kind, rs in of.items()},
        "power_peak_run": sum(r["peak_run"] for r in of["power"]),
        "mean_trials": {kind: float(np.mean([r["trials"] for r in rs])) if rs else None
                        for kind, rs in of.items()},
        "mean_run_seconds": {kind: float(np.mean([r["seconds"] for r in rs])) if rs else None
                             for kind, rs in of.items()}}
    return {name: fig["value"] for name, fig in figures.items()} | {
        "duplicate_seeds": duplicates, "duplicate_seeds_met": duplicates == 0} | detail


def table(report: dict[str, Any]) -> str:
    lines = [f"{'figure':<20} {'value':>7} {'k of n':>11} {'95% interval':>17} {'goal':>8}  met",
             "-" * 72]
    for name, fig in report["figures"].items():
        if fig["n"] == 0:
            lines.append(f"{name:<20} {'n/a':>7} {'0 of 0':>11} {'':>17} {fig['goal']:>8}  n/a")
            continue
        interval = f"[{fig['lo']:.3f}, {fig['hi']:.3f}]"
        lines.append(f"{name:<20} {fig['value']:>7.3f} {fig['k']:>5} of {fig['n']:<4}"
                     f"{interval:>17} {fig['goal']:>8}  {'yes' if fig['met'] else 'NO'}")
    dup = report["duplicate_seeds"]
    lines.append(f"{'duplicate_seeds':<20} {dup:>7} {'':>11} {'':>17} {'= 0':>8}  "
                 f"{'yes' if dup == 0 else 'NO'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worlds run in parallel (default: the number of CPUs)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as one JSON object")
    parser.add_argument("--quick", action="store_true", help="6 worlds, for a smoke test")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say which pursuit is measured, and each crash's traceback")
    args = parser.parse_args(argv)
    worlds = 6 if args.quick else args.worlds
    if worlds < 1:
        parser.error(f"--worlds must be at least 1, got {worlds}")
    print(f"honesty: {worlds} worlds, seed {args.seed}, {args.jobs} jobs; seeds per claim: "
          f"aa {AA_SEEDS}, near {NEAR_SEEDS}, power {POWER_SEEDS}; max trials: aa {AA_TRIALS}, "
          f"near {NEAR_TRIALS}, power {POWER_TRIALS}")
    if args.verbose:
        print(f"pursuit from {pursuit.__file__}")
    jobs = [(args.seed, index) for index in range(worlds)]
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if args.jobs > 1 and worlds > 1:
        with multiprocessing.Pool(min(args.jobs, worlds)) as pool:
            for world_rows in pool.imap_unordered(run_world, jobs):
                rows.extend(world_rows)
    else:
        for job in jobs:
            rows.extend(run_world(job))
    report = summarize(sorted(rows, key=lambda r: (r["world"], r["kind"])), worlds,
                       time.perf_counter() - start)
    print(table(report))
    print(f"{report['worlds']} worlds ({report['runs']} runs, {report['crashes']} crashed) in "
          f"{report['seconds']} s")
    print(f"detail: duplicate trials {report['duplicate_trials']}, runs with duplicates "
          f"{report['duplicate_runs']}; AA verdicts {report['aa_verdicts']}; false claims by "
          f"method {report['false_claims_by_method']} "
          f"({report['false_claims_on_duplicated_config']} of them on a configuration with a seed "
          f"run twice); power: the peak was run in {report['power_peak_run']} of "
          f"{report['figures']['power']['n']}")
    print("coverage by goal: " + ", ".join(
        f"{kind} {fig['k']}/{fig['n']}" for kind, fig in report["coverage_by_goal"].items()))
    if report["crashes"]:
        print(f"CRASHES: {report['crash_errors']}", file=sys.stderr)
        if args.verbose:
            print(report["crash_traceback"], file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1, allow_nan=False)
    return 1 if report["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
