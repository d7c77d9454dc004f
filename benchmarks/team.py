"""Engines sharing one goal on PostgreSQL: 1, 2 and 4 engines, each a `pursuit run`
process with its own workers, on a goal of sleeping methods (so that the figures are
the engines' and the store's, not the CPU's).

For each count: trials per second and total trials against a budget of 120 (no
target: the budget ends the run), and the wall time until every engine has stopped on
a goal with a target (baselines, search, confirmation and a verification).

    python benchmarks/team.py --store postgresql://user@host/db [--engines 1,2,4] [--json]

Each measurement runs in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

METHODS = '''
import time
import numpy as np
import pursuit
from pursuit import Float

NAP = float(__import__("os").environ.get("TEAM_NAP", "0.2"))


@pursuit.method(source="a paper", baseline=True)
def steady(trial):
    time.sleep(NAP)
    return 0.5 + 0.005 * np.random.default_rng(trial.seed).standard_normal()


@pursuit.method(source="ours")
def peaked(trial, *, x=Float(0.0, 1.0, default=0.1)):
    time.sleep(NAP)
    noise = 0.005 * np.random.default_rng([trial.seed, int(x * 1e6)]).standard_normal()
    return 1.0 - (x - 0.7) ** 2 + noise
'''

GOAL = """name: team
metric: value
direction: maximize
seeds: 3
budget: {{max_trials: {budget}}}
{target}methods:
  - methods:steady
  - methods:peaked
"""


def schema_url(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}", schema


def drop(base: str, schema: str) -> None:
    engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def run_team(base: str, folder: Path, engines: int, workers: int, *, budget: int,
             target: float | None) -> dict[str, float | int | bool]:
    (folder / "goal.yaml").write_text(GOAL.format(
        budget=budget, target="" if target is None else f"target: {target}\n"))
    url, schema = schema_url(base)
    command = [sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store", url,
               "--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(folder)}
    try:
        started = time.perf_counter()
        procs = [subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(engines)]
        for proc in procs:
            _, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise SystemExit(f"an engine failed:\n{err[-2000:]}")
        wall = time.perf_counter() - started
        import pursuit

        with pursuit.open(url) as results:
            frame = results.results("team")
            progress = results.leaderboard("team", frame=frame).progress
        keys = frame[["method", "config", "seed"]].astype(str).agg("|".join, axis=1)
        return {"engines": engines, "trials": int(len(frame)), "budget": budget,
                "wall_seconds": wall, "trials_per_second": len(frame) / wall,
                "reached": bool(progress["reached"]),
                "duplicate_seeds": int(len(keys) - keys.nunique())}
    finally:
        drop(base, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.environ.get("PURSUIT_TEST_POSTGRES"),
                        help="PostgreSQL URL [default: $PURSUIT_TEST_POSTGRES]")
    parser.add_argument("--engines", default="1,2,4")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per engine")
    parser.add_argument("--budget", type=int, default=120)
    parser.add_argument("--nap", type=float, default=0.2, help="seconds each trial sleeps")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.store or not args.store.startswith("postgresql"):
        parser.error("--store must be a PostgreSQL URL (or set PURSUIT_TEST_POSTGRES)")
    os.environ["TEAM_NAP"] = str(args.nap)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "methods.py").write_text(METHODS)
        for count in (int(n) for n in args.engines.split(",")):
            spend = run_team(args.store, folder, count, args.workers, budget=args.budget,
                             target=None)
            reach = run_team(args.store, folder, count, args.workers, budget=400,
                             target=0.95)
            rows.append({"engines": count, "budget_trials": spend["trials"],
                         "budget": args.budget,
                         "trials_per_second": spend["trials_per_second"],
                         "budget_wall_seconds": spend["wall_seconds"],
                         "target_wall_seconds": reach["wall_seconds"],
                         "target_trials": reach["trials"], "reached": reach["reached"],
                         "duplicate_seeds": spend["duplicate_seeds"]
                         + reach["duplicate_seeds"]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.workers} workers per engine, trials sleep {args.nap} s; PostgreSQL")
    print(f"{'engines':>7} {'trials/budget':>13} {'trials/s':>9} {'to target':>10} "
          f"{'trials':>7} {'reached':>8} {'dup seeds':>9}")
    for r in rows:
        print(f"{r['engines']:>7} {r['budget_trials']:>6}/{r['budget']:<6} "
              f"{r['trials_per_second']:>9.1f} {r['target_wall_seconds']:>9.1f}s "
              f"{r['target_trials']:>7} {str(r['reached']):>8} {r['duplicate_seeds']:>9}")


if __name__ == "__main__":
    main()
