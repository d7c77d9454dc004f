"""How fast the dashboard answers on a large store: 100,000 trials and 10 million curve
points in one SQLite file by default.

    python benchmarks/dashboard.py                    # builds /tmp/pursuit-dashboard.db
    python benchmarks/dashboard.py --trials 2000 --points 200000 --json

The store is made by the real store (its schema and goal), then filled in bulk through
SQLAlchemy's connection (a search as the engine leaves it: baselines, screening runs,
confirmed seeds, pruned and failed trials with their reasons, the last few still
running, a learning curve per trial). A real server (``pursuit.dashboard.serve`` in its
own process, on a free port) is then asked, over HTTP, for

* the leaderboard (``/api/goals/1/leaderboard``), and
* the goal page: its HTML and the data its script draws (``/api/goals/1/view``),
  the two requests a browser makes once the scripts are cached,

each ``--repeat`` times once warm, and the first (cold) request; p50 and p95 are
printed, with the trials API and the longest trial's thinned curve beside them.
``--browser`` also times the goal page's first screen in headless Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = [  # name, baseline, best loss, how much its dials matter
    ("linear", True, 0.40, 0.05), ("knn", True, 0.32, 0.08), ("mlp", False, 0.22, 0.30),
    ("gbm", False, 0.25, 0.15), ("transformer", False, 0.20, 0.40),
]
SEEDS = 3
ERRORS = ["RuntimeError: CUDA out of memory", "ValueError: loss is NaN at step 120",
          "worker exited with status -9"]


def spec() -> dict[str, Any]:
    return {"metric": "loss", "direction": "minimize", "target": 0.19, "seeds": SEEDS,
            "statement": "A large search, as a benchmark of the dashboard",
            "budget": {"max_trials": None},
            "methods": [{"name": name, "entry": f"bench:{name}", "source": "benchmark",
                         "baseline": baseline, "defaults": {"lr": 0.01, "width": 64},
                         "ranges": {"lr": [1e-4, 1.0], "width": [8, 1024]}}
                        for name, baseline, _, _ in METHODS]}


def plan(trials: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The trials, in the order an engine would create them: the baselines, then the
    search's screening runs, one in 200 confirmed on fresh seeds soon after."""
    rows: list[dict[str, Any]] = []

    def add(method: int, stage: str, lr: float, width: int, seed: int) -> None:
        rows.append({"method": method, "stage": stage, "lr": lr, "width": width, "seed": seed})

    for m in range(len(METHODS)):  # published defaults over the seeds
        for seed in range(SEEDS):
            add(m, "baselines", 0.01, 64, seed)
    while len(rows) < trials:
        m = int(rng.integers(len(METHODS)))
        lr, width = float(10 ** rng.uniform(-4, 0)), int(2 ** rng.integers(3, 11))
        add(m, "search", lr, width, 0)
        if rng.random() < 1 / 200:
            for seed in range(1, SEEDS + 1):
                add(m, "confirm", lr, width, seed)
    return rows[:trials]


def build(path: Path, trials: int, points: int, seed: int = 0) -> dict[str, Any]:
    """Fill a new store at ``path``; returns what it holds."""
    import sqlalchemy as sa

    from pursuit.store import _models as m
    from pursuit.store import open_store

    started = time.perf_counter()
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    store = open_store(url)
    goal_id = store.ensure_goal("bench", spec())
    store.start_run(goal_id, "bench-engine")
    store.end_run(goal_id, "bench-engine", "budget spent: benchmark")
    store.close()
    rng = np.random.default_rng(seed)
    rows = plan(trials, rng)
    # Curve lengths spread as runs' are (a few a hundred times the typical one), adding
    # up to ``points`` exactly, at least one point each.
    weights = rng.lognormal(0.0, 1.0, size=len(rows))
    per_trial = 1 + rng.multinomial(points - len(rows), weights / weights.sum())
    engine = sa.create_engine(url)
    now = time.time() - trials  # one trial a second, ending now
    with engine.begin() as conn:
        method_ids = dict(conn.execute(sa.select(m.methods.c.name, m.methods.c.id)
                                       .where(m.methods.c.goal_id == goal_id)).all())
        trial_rows, result_rows = [], []
        for i, row in enumerate(rows, start=1):
            name, _, best, spread = METHODS[row["method"]]
            running = i > len(rows) - 4
            roll = rng.random()
            state = "running" if running else "failed" if roll < 0.02 else \
                "pruned" if roll < 0.12 and row["stage"] == "search" else "completed"
            loss = best + spread * (np.log10(row["lr"] / 0.01) ** 2 / 4
                                    + abs(np.log2(row["width"] / 256)) / 8) \
                + 0.005 * rng.standard_normal()
            wall = float(rng.uniform(5, 60))
            trial_rows.append({
                "goal_id": goal_id, "method_id": method_ids[name], "stage": row["stage"],
                "dials": json.dumps({"lr": row["lr"], "width": row["width"]}, sort_keys=True,
                                    separators=(",", ":")),
                "seed": row["seed"], "state": state, "attempt": 1, "engine": "bench-engine",
                "heartbeat_at": now + i, "started_at": now + i - wall,
                "finished_at": None if running else now + i, "wall_seconds": None if running
                else wall, "cpu_seconds": None if running else wall * 0.9,
                "error": ERRORS[i % len(ERRORS)] if state == "failed" else None})
            if state == "completed":
                result_rows += [(i, "metric", "loss", float(loss)),
                                (i, "metric", "accuracy", float(1 - loss)),
                                (i, "cost", "flops", float(row["width"] ** 2 * 1e9))]
        conn.execute(m.trials.insert(), trial_rows)
        conn.exec_driver_sql("INSERT INTO results (trial_id, kind, name, value) "
                             "VALUES (?, ?, ?, ?)", result_rows)
        written = 0
        chunk: list[tuple[int, int, str, int, float]] = []
        for trial_id, n in enumerate(per_trial.tolist(), start=1):
            steps = np.arange(n) * 100
            values = (0.2 + 2.0 / np.sqrt(1 + steps / 100)
                      + 0.01 * rng.standard_normal(n)).tolist()
            chunk += zip([trial_id] * n, [1] * n, ["loss"] * n, steps.tolist(), values,
                         strict=True)
            if len(chunk) >= 200_000:
                conn.exec_driver_sql("INSERT INTO curve_points (trial_id, attempt, metric, "
                                     "step, value) VALUES (?, ?, ?, ?, ?)", chunk)
                written += len(chunk)
                chunk = []
        if chunk:
            conn.exec_driver_sql("INSERT INTO curve_points (trial_id, attempt, metric, step, "
                                 "value) VALUES (?, ?, ?, ?, ?)", chunk)
            written += len(chunk)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"trials": len(rows), "points": written, "build_s": time.perf_counter() - started,
            "store_mb": path.stat().st_size / 2**20,
            "longest_trial": int(np.argmax(per_trial)) + 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(path: Path, port: int) -> subprocess.Popen[bytes]:
    code = ("import sys; from pursuit.dashboard import serve; "
            "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))")
    server = subprocess.Popen([sys.executable, "-c", code, str(path), str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    import httpx

    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server ended: {server.stderr.read().decode()[-2000:]}"
                               if server.stderr else "the server ended")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start within 60 s")


def timed(client: Any, *paths: str) -> float:
    """Milliseconds to fetch ``paths`` one after another, each read to its end."""
    started = time.perf_counter()
    for path in paths:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
    return (time.perf_counter() - started) * 1000


def percentiles(samples: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(samples), "p95": float(np.percentile(samples, 95))}


def measure(path: Path, repeat: int, longest: int, browser: bool) -> dict[str, Any]:
    import httpx

    port = free_port()
    server = start_server(path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            cold = timed(client, "/api/goals/1/leaderboard")
            page = ("/goals/1", "/api/goals/1/view")
            out: dict[str, Any] = {"cold_ms": cold, "page_bytes": sum(
                len(client.get(p).content) for p in page)}
            for name, paths in (("leaderboard", ("/api/goals/1/leaderboard",)),
                                ("page", page),
                                ("version", ("/api/goals/1/version",)),
                                ("trials_api", ("/api/goals/1/trials?limit=100",
                                                "/api/goals/1/trials?state=failed")),
                                ("curve", (f"/api/trials/{longest}/curve?points=500",))):
                samples = [timed(client, *paths) for _ in range(repeat)]
                for key, value in percentiles(samples).items():
                    out[f"{name}_ms_{key}"] = value
            if browser:
                out.update(in_browser(f"http://127.0.0.1:{port}", max(3, repeat // 5)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def in_browser(base: str, repeat: int) -> dict[str, Any]:
    """Milliseconds from navigating to the goal page in headless Chromium until its
    first screen is drawn: the standing, the leaderboard table and its plot (the plots
    further down draw as they scroll into view). The scripts are cached by then."""
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        samples = []
        for _ in range(repeat + 1):  # the first loads and caches plotly.js
            started = time.perf_counter()
            page.goto(f"{base}/goals/1")
            page.wait_for_selector("body[data-version]", state="attached", timeout=60_000)
            page.wait_for_selector("#plot-leaderboard[data-drawn] .main-svg", state="attached",
                                   timeout=60_000)
            samples.append((time.perf_counter() - started) * 1000)
        chromium.close()
    return {f"browser_first_screen_ms_{k}": v for k, v in percentiles(samples[1:]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/pursuit-dashboard.db"),
                        help="where to build the store (rebuilt on every run)")
    parser.add_argument("--repeat", type=int, default=50, help="requests per measurement")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--browser", action="store_true",
                        help="also time the goal page's first screen in /usr/bin/chromium")
    args = parser.parse_args()
    if args.trials < 50 or args.points < args.trials:
        parser.error("give at least 50 trials and one curve point per trial")
    built = build(args.store, args.trials, args.points)
    figures = {**built, **measure(args.store, args.repeat, built["longest_trial"],
                                  args.browser),
               "repeat": args.repeat, "cores": os.cpu_count()}
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"store: {figures['trials']:,} trials, {figures['points']:,} curve points, "
          f"{figures['store_mb']:.0f} MB, built in {figures['build_s']:.0f} s")
    print(f"first request (computes the goal's view): {figures['cold_ms']:.0f} ms")
    for name in ("leaderboard", "page", "version", "trials_api", "curve"):
        print(f"{name:>12}: p50 {figures[f'{name}_ms_p50']:7.1f} ms   "
              f"p95 {figures[f'{name}_ms_p95']:7.1f} ms   ({args.repeat} warm requests)")
    if args.browser:
        print(f"goal page in Chromium, first screen drawn: p50 "
              f"{figures['browser_first_screen_ms_p50']:.0f} ms   p95 "
              f"{figures['browser_first_screen_ms_p95']:.0f} ms")


if __name__ == "__main__":
    main()
