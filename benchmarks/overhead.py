"""Engine overhead: trials that do nothing but report 10 curve points.

Pursuit (SQLite store, local worker processes) beside Optuna with its SQLite storage
doing the same work (trial.report x 10) in the same run, both with random sampling so
that only the machinery is measured. Also: curve points ingested per second by the
SQLite store in one batch.

    python benchmarks/overhead.py --trials 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

import pursuit
from pursuit.store import NewTrial, WriteBatch, open_store


@pursuit.method
def report_ten(trial, *, x=pursuit.Float(0.0, 1.0, default=0.5)):
    for step in range(10):
        trial.report(step, loss=x / (step + 1))
    return x


def run_pursuit(trials: int, workers: int, folder: Path) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the engine's own process (its decisions, writes
    and messages; the workers are other processes): the second hardly moves with what
    else the machine is doing."""
    goal = pursuit.Goal(name="overhead", metric="loss", direction="minimize", seeds=1,
                        budget={"max_trials": trials}, methods=[report_ten])
    start, cpu = time.perf_counter(), time.process_time()
    pursuit.run(goal, f"sqlite:///{folder / 'pursuit.db'}", workers=workers,
                sampler=optuna.samplers.RandomSampler(seed=0), workdir=folder / "work")
    return time.perf_counter() - start, time.process_time() - cpu


def run_optuna(trials: int, folder: Path) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{folder / 'optuna.db'}",
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(10):
            trial.report(x / (step + 1), step)
        return x

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - start


def ingest_points(points: int, folder: Path) -> float:
    store = open_store(f"sqlite:///{folder / 'ingest.db'}")
    goal_id = store.ensure_goal("ingest", {"metric": "loss", "direction": "minimize",
                                           "methods": [{"name": "m", "entry": "x:m"}]})
    [trial_id] = store.write(WriteBatch("bench", new=[NewTrial(goal_id, "m", "search", {}, 0)]
                                        )).new_ids
    batch = WriteBatch("bench")
    batch.points = [(trial_id, 1, step, "loss", 1.0 / (step + 1)) for step in range(points)]
    start = time.perf_counter()
    store.write(batch)
    elapsed = time.perf_counter() - start
    store.close()
    return points / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--optuna-trials", type=int, default=300,
                        help="Optuna's rate is steady; fewer trials measure it well")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--points", type=int, default=500_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours, engine_cpu = run_pursuit(args.trials, args.workers, folder)
        theirs = run_optuna(args.optuna_trials, folder)
        rate = ingest_points(args.points, folder)
    ours_rate, theirs_rate = args.trials / ours, args.optuna_trials / theirs
    print(f"pursuit  {args.trials:6d} trials in {ours:7.2f} s: {ours_rate:8.1f} trials/s "
          f"({ours_rate * 10:,.0f} curve points/s end to end, {args.workers} workers)")
    print(f"optuna   {args.optuna_trials:6d} trials in {theirs:7.2f} s: {theirs_rate:8.1f} "
          f"trials/s (SQLite storage, n_jobs=1)")
    print(f"engine   {engine_cpu:.2f} CPU s in the engine's process: "
          f"{1000 * engine_cpu / args.trials:.2f} ms per trial")
    print(f"ratio    {ours_rate / theirs_rate:.1f}x Optuna's SQLite throughput (goal: >= 20x)")
    print(f"ingest   {rate:,.0f} curve points/s into SQLite in one batch (goal: >= 200,000)")


if __name__ == "__main__":
    main()
