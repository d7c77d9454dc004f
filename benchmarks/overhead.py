"""Engine overhead: trials that do nothing but report 10 curve points.

Pursuit (SQLite store, local worker processes) beside Optuna with its SQLite storage
doing the same work (trial.report x 10) in the same run, both with random sampling so
that only the machinery is measured. Also: curve points ingested per second by the
SQLite store in one batch, and, when Ray is installed, the same trials through the Ray
executor on a local Ray instance of as many CPUs as there are workers (its start is
not counted: a cluster is started once, and outlives many runs).

    python benchmarks/overhead.py --trials 2000
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import optuna

import pursuit
from pursuit.execution import Executor, RayExecutor
from pursuit.store import NewTrial, WriteBatch, open_store


@pursuit.method
def report_ten(trial, *, x=pursuit.Float(0.0, 1.0, default=0.5)):
    for step in range(10):
        trial.report(step, loss=x / (step + 1))
    return x


def run_pursuit(trials: int, workers: int, folder: Path, executor: Executor | None = None,
                name: str = "pursuit") -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the engine's own process (its decisions, writes
    and messages; the workers are other processes): the second hardly moves with what
    else the machine is doing."""
    goal = pursuit.Goal(name="overhead", metric="loss", direction="minimize", seeds=1,
                        budget={"max_trials": trials}, methods=[report_ten])
    start, cpu = time.perf_counter(), time.process_time()
    pursuit.run(goal, f"sqlite:///{folder / f'{name}.db'}", executor, workers=workers,
                sampler=optuna.samplers.RandomSampler(seed=0), workdir=folder / name)
    return time.perf_counter() - start, time.process_time() - cpu


def run_ray(trials: int, workers: int, folder: Path) -> tuple[float, float, float]:
    """As ``run_pursuit``, through the Ray executor on a local Ray instance of
    ``workers`` CPUs; and the seconds the instance took to start (not counted)."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
    started = time.perf_counter() - start
    try:
        wall, cpu = run_pursuit(trials, workers, folder, RayExecutor(), name="ray")
    finally:
        ray.shutdown()
    return wall, cpu, started


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
    parser.add_argument("--ray-trials", type=int, default=1000,
                        help="trials through the Ray executor (0: none; without Ray "
                             "installed, none)")
    args = parser.parse_args()
    with_ray = args.ray_trials > 0 and importlib.util.find_spec("ray") is not None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours, engine_cpu = run_pursuit(args.trials, args.workers, folder)
        theirs = run_optuna(args.optuna_trials, folder)
        rate = ingest_points(args.points, folder)
        if with_ray:
            ray_wall, ray_cpu, ray_start = run_ray(args.ray_trials, args.workers, folder)
    ours_rate, theirs_rate = args.trials / ours, args.optuna_trials / theirs
    print(f"pursuit  {args.trials:6d} trials in {ours:7.2f} s: {ours_rate:8.1f} trials/s "
          f"({ours_rate * 10:,.0f} curve points/s end to end, {args.workers} workers)")
    print(f"optuna   {args.optuna_trials:6d} trials in {theirs:7.2f} s: {theirs_rate:8.1f} "
          f"trials/s (SQLite storage, n_jobs=1)")
    print(f"engine   {engine_cpu:.2f} CPU s in the engine's process: "
          f"{1000 * engine_cpu / args.trials:.2f} ms per trial")
    print(f"ratio    {ours_rate / theirs_rate:.1f}x Optuna's SQLite throughput (goal: >= 20x)")
    print(f"ingest   {rate:,.0f} curve points/s into SQLite in one batch (goal: >= 200,000)")
    if with_ray:
        ray_rate = args.ray_trials / ray_wall
        print(f"ray      {args.ray_trials:6d} trials in {ray_wall:7.2f} s: {ray_rate:8.1f} "
              f"trials/s ({ray_rate * 10:,.0f} curve points/s end to end, a local Ray "
              f"instance of {args.workers} CPUs; its start, {ray_start:.1f} s, not counted)")
        print(f"ray      {1000 * ray_cpu / args.ray_trials:.2f} ms of the engine's CPU per "
              f"trial; {ray_rate / ours_rate:.2f}x the worker processes' throughput")


if __name__ == "__main__":
    main()
