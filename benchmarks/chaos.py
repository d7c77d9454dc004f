"""Reliability battery, full size: T1 (engine SIGKILLed at seeded moments) and T2
(workers SIGKILLed), with pass/fail from invariants on the final store.

    python benchmarks/chaos.py --kills 10 --seed 0

T1 compares with a fault-free run of the same goal: every baseline trial exists
exactly once, nothing finished before a kill is lost or changed, nothing is left
running, and each restart is timed from the command's launch to the first trial
running again ("resume"; the bar is 5 s).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

METHODS = '''
import time
import pursuit

@pursuit.method(source="bench", baseline=True)
def steady(trial, *, x=pursuit.Float(0.0, 1.0, default=0.5)):
    for step in range(4):
        time.sleep(0.02)
        trial.report(step, value=x * step)
    return x

@pursuit.method(source="ours")
def rising(trial, *, lr=pursuit.Float(0.01, 1.0, log=True, default=0.1)):
    for step in range(4):
        time.sleep(0.02)
        trial.report(step, value=lr * step)
    return lr
'''
GOAL = """\
name: chaos
metric: value
direction: maximize
seeds: 3
budget: {max_trials: 400}
methods: [methods:steady, methods:rising]
"""


def launch(folder: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store",
                             str(db), "--workers", "2"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def snapshot(db: Path) -> dict[int, tuple]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT t.id, t.state, t.attempt, r.value FROM trials t LEFT JOIN "
                            "results r ON r.trial_id = t.id AND r.name = 'value' "
                            "WHERE t.state IN ('completed', 'pruned', 'failed')").fetchall()
    return {row[0]: row[1:] for row in rows}


def first_start_after(db: Path, moment: float, timeout: float = 10.0) -> float:
    """Seconds from ``moment`` until a trial starts (new or re-run) in the store."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with sqlite3.connect(db) as conn:
                started = conn.execute("SELECT MIN(started_at) FROM trials WHERE started_at > ?",
                                       (moment,)).fetchone()[0]
        except sqlite3.OperationalError:
            started = None
        if started is not None:
            return started - moment
        time.sleep(0.02)
    return float("nan")


def counts(db: Path) -> tuple[Counter, int, int]:
    with sqlite3.connect(db) as conn:
        baselines = Counter(conn.execute(
            "SELECT m.name, t.seed FROM trials t JOIN methods m ON m.id = t.method_id "
            "WHERE t.stage = 'baselines'").fetchall())
        unfinished = conn.execute("SELECT COUNT(*) FROM trials WHERE state NOT IN "
                                  "('completed', 'pruned', 'failed')").fetchone()[0]
        total = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    return baselines, unfinished, total


def t1(folder: Path, kills: int, rng: random.Random) -> dict:
    db = folder / "t1.db"
    seen: dict[int, tuple] = {}
    changed, resumes = 0, []
    for round_ in range(kills + 1):
        launched = time.time()
        engine = launch(folder, db)
        if round_:
            resumes.append(first_start_after(db, launched))
        if round_ == kills:
            engine.wait(timeout=600)
            break
        time.sleep(rng.uniform(0.5, 3.0))
        engine.send_signal(signal.SIGKILL)
        engine.wait()
        now = snapshot(db)
        changed += sum(1 for k, v in seen.items() if now.get(k) != v)
        seen.update(now)
    final = snapshot(db)
    lost = sum(1 for k, v in seen.items() if final.get(k) != v) + changed
    baselines, unfinished, total = counts(db)
    duplicated = sum(n - 1 for n in baselines.values() if n > 1)
    timed = [r for r in resumes if r == r]  # a restart with nothing left to run starts nothing
    return {"kills": kills, "lost_or_changed": lost, "duplicated_baselines": duplicated,
            "missing_baselines": 6 - len(baselines), "orphaned_running": unfinished,
            "trials": total, "restarts_timed": len(timed),
            "resume_max_s": round(max(timed), 2),
            "resume_mean_s": round(sum(timed) / len(timed), 2), "exit": engine.returncode}


def t2(folder: Path, kills: int, rng: random.Random) -> dict:
    db = folder / "t2.db"
    engine = launch(folder, db)
    killed = 0
    while killed < kills and engine.poll() is None:
        time.sleep(rng.uniform(0.2, 0.8))
        workers = subprocess.run(["pgrep", "-P", str(engine.pid), "-f", "spawn_main"],
                                 capture_output=True, text=True).stdout.split()
        if workers:
            os.kill(int(rng.choice(workers)), signal.SIGKILL)
            killed += 1
    engine.wait(timeout=600)
    with sqlite3.connect(db) as conn:
        states = Counter(r[0] for r in conn.execute("SELECT state FROM trials"))
        reruns = conn.execute("SELECT COUNT(*) FROM trials WHERE attempt > 1").fetchone()[0]
    return {"worker_kills": killed, "states": dict(states), "trials_run_again": reruns,
            "exit": engine.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--worker-kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "methods.py").write_text(METHODS)
        (folder / "goal.yaml").write_text(GOAL)
        start = time.perf_counter()
        engine = launch(folder, folder / "clean.db")
        engine.wait(timeout=600)
        clean_baselines, _, clean_total = counts(folder / "clean.db")
        print(f"fault-free: {clean_total} trials, {len(clean_baselines)} baseline keys, "
              f"{time.perf_counter() - start:.1f} s")
        one = t1(folder, args.kills, rng)
        print("T1 engine SIGKILL:", one)
        ok1 = (one["lost_or_changed"] == 0 and one["duplicated_baselines"] == 0 and
               one["missing_baselines"] == 0 and one["orphaned_running"] == 0 and
               one["resume_max_s"] < 5.0 and one["exit"] == 0)
        two = t2(folder, args.worker_kills, rng)
        print("T2 worker SIGKILL:", two)
        ok2 = (two["exit"] == 0 and set(two["states"]) <= {"completed", "pruned"})
    print(f"T1 {'PASS' if ok1 else 'FAIL'}; T2 {'PASS' if ok2 else 'FAIL'}")


if __name__ == "__main__":
    main()
