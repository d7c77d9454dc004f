"""Hostile input and rude signals (reliability T15, T16): seeded probes, counted outcomes.

Every probe runs the real ``pursuit`` command in a fresh folder, as a user would, and is
judged from the outside: its exit status, what it printed, and the store it left.

    clear error   exit status 2 (bad input) or 1 (a store that cannot be reached) and a
                  line "error: ..." that says what is wrong, no traceback
    handled       the command did what it should (a bad trial failed with its reason,
                  the rest ran; a signal stopped the run cleanly and it resumed)
    crash         a traceback, or an exit status the command does not promise
    hang          still running at the probe's time limit (then killed)
    data lost     the store misses, repeats or misfiles something it had

Classes: hostile YAML (alias bombs, deep nesting, bytes that are not UTF-8), odd store
URLs and foreign files, colliding names, signals (SIGTERM and SIGINT mid-run, then a
resume), forking methods, methods ending by BaseException, huge steps and curves, and
``pursuit fit`` on degenerate CSVs. Sizes, byte positions and signal moments are drawn
from ``--seed``, so a run can be replayed.

    python benchmarks/hostile.py --seed 0 [--probes-per-class 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

OUTCOMES = ("clear error", "handled", "crash", "hang", "data lost")
LIMIT = 60.0  # seconds a probe may take before it counts as a hang

METHODS = textwrap.dedent('''
    import os, time
    import pursuit
    from pursuit import Float

    @pursuit.method(source="probe", baseline=True)
    def steady(trial, *, x=Float(0.0, 1.0, default=0.5)):
        time.sleep(0.05)
        return {"score": x + trial.seed / 100}

    @pursuit.method(source="probe")
    def slow(trial, *, x=Float(0.0, 1.0, default=0.5)):
        for step in range(20):
            time.sleep(0.05)
            trial.report(step, score=x * step / 20)
        return {"score": x}

    def forks(trial):
        if os.fork() == 0:
            return 0.5          # the child returns instead of calling os._exit
        os.wait()
        return 0.5

    class Quit(BaseException):
        pass

    def base_exception(trial):
        raise Quit("the method gave up")

    def interrupts(trial):
        raise KeyboardInterrupt

    def huge_step(trial):
        trial.report(2**63, score=1.0)
        return 1.0

    def long_curve(trial):
        for step in range(CURVE):
            trial.report(step, score=step / CURVE)
        return 1.0

    def columns(trial):
        return {"score": 0.5, "seed": 99.0, "error": 1.0, "state": 3.0}

    CURVE = {curve}
''')


class Probe:
    def __init__(self, cls: str, name: str, run: Callable[[Path], str]) -> None:
        self.cls, self.name, self.run = cls, name, run


def pursuit(args: list[str], cwd: Path, timeout: float = LIMIT) -> tuple[int | None, str]:
    """Run the command; (exit status or None if it hung, stderr + stdout)."""
    try:
        done = subprocess.run([sys.executable, "-m", "pursuit", *args], cwd=cwd,
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "COLUMNS": "200"})
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stderr + done.stdout


def judge_error(status: int | None, output: str) -> str:
    """A probe that must be refused with a clear line."""
    if status is None:
        return "hang"
    if status in (1, 2) and "Traceback" not in output and "error:" in output:
        return "clear error"
    return "crash"


def goal_file(folder: Path, methods: list[str], *, seeds: int = 2, trials: int = 6,
              timeout: int = 20, curve: int = 10) -> Path:
    (folder / "methods.py").write_text(METHODS.replace("{curve}", str(curve)))
    lines = ["name: probe", "metric: score", "direction: maximize", f"seeds: {seeds}",
             f"trial_timeout: {timeout}", f"budget: {{max_trials: {trials}}}", "methods:"]
    lines += [f"  - methods:{m}" for m in methods]
    path = folder / "goal.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def trials(folder: Path) -> list[tuple]:
    """(id, method, dials, seed, state, error) of every trial in the folder's store."""
    db = folder / "p.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'trials'").fetchone():
            return []  # stopped before its schema was written: nothing to lose yet
        return conn.execute("SELECT t.id, m.name, t.dials, t.seed, t.state, t.error FROM "
                            "trials t JOIN methods m ON m.id = t.method_id ORDER BY t.id"
                            ).fetchall()


# ------------------------------------------------------------------ probe makers
def yaml_probes(rng: random.Random, n: int) -> list[Probe]:
    def bomb(depth: int) -> Callable[[Path], str]:
        def run(folder: Path) -> str:
            lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
            lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, "
                      f"*a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, depth)]
            lines += ["name: bomb", "metric: score", "direction: maximize",
                      f"statement: *a{depth - 1}", "methods: [methods:steady]"]
            (folder / "goal.yaml").write_text("\n".join(lines) + "\n")
            return judge_error(*pursuit(["run", "goal.yaml", "--store", "p.db"], folder))
        return run

    def nested(depth: int) -> Callable[[Path], str]:
        def run(folder: Path) -> str:
            (folder / "goal.yaml").write_text("name: deep\nstatement: " + "[" * depth
                                              + "]" * depth + "\n")
            return judge_error(*pursuit(["run", "goal.yaml", "--store", "p.db"], folder))
        return run

    def not_utf8(position: int) -> Callable[[Path], str]:
        def run(folder: Path) -> str:
            path = goal_file(folder, ["steady"])
            data = bytearray(path.read_bytes())
            data[position % len(data)] = 0xFF
            path.write_bytes(bytes(data))
            return judge_error(*pursuit(["run", "goal.yaml", "--store", "p.db"], folder))
        return run

    probes = []
    for _ in range(n):
        probes.append(Probe("hostile YAML", "alias bomb", bomb(rng.randint(6, 9))))
        probes.append(Probe("hostile YAML", "deep nesting", nested(rng.randint(2000, 20000))))
        probes.append(Probe("hostile YAML", "not UTF-8", not_utf8(rng.randint(0, 10**6))))
    return probes


def url_probes(rng: random.Random, n: int) -> list[Probe]:
    def status(url: str, prepare: Callable[[Path], None] | None = None
               ) -> Callable[[Path], str]:
        def run(folder: Path) -> str:
            if prepare is not None:
                prepare(folder)
            before = {p.name for p in folder.iterdir()}
            outcome = judge_error(*pursuit(["status", "--store", url], folder))
            created = {p.name for p in folder.iterdir()} - before
            # A reader that leaves a new store behind is wrong, however clearly it speaks.
            return "crash" if outcome == "clear error" and created - {"pursuit-work"} \
                else outcome
        return run

    def foreign(folder: Path) -> None:
        with sqlite3.connect(folder / "theirs.db") as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")

    def newer(folder: Path) -> None:
        goal_file(folder, ["steady"], trials=2)
        pursuit(["run", "goal.yaml", "--store", "new.db", "--inline"], folder)
        with sqlite3.connect(folder / "new.db") as conn:
            conn.execute("UPDATE alembic_version SET version_num = '9999'")

    fixed = [("foo://bar/baz", None), ("mysql://u@h/db", None), ("typo.db", None),
             ("sqlite:////no/such/dir/p.db", None), ("theirs.db", foreign),
             ("new.db", newer), ("postgresql://u@127.0.0.1:1/db", None)]
    probes = [Probe("odd store URLs", url, status(url, prep)) for url, prep in fixed]
    for _ in range(n):
        junk = "".join(rng.choice("abc:/@?%#&=.") for _ in range(rng.randint(3, 30)))
        probes.append(Probe("odd store URLs", f"junk {junk!r}", status(junk)))
    return probes


def run_probes(rng: random.Random, n: int) -> list[Probe]:
    def failing(method: str, words: tuple[str, ...], **kw: int) -> Callable[[Path], str]:
        """A method that misbehaves: its trials fail with a reason; the run finishes."""
        def run(folder: Path) -> str:
            goal_file(folder, ["steady", method], **kw)
            status, output = pursuit(["run", "goal.yaml", "--store", "p.db"], folder)
            if status is None:
                return "hang"
            rows = trials(folder)
            bad = [r for r in rows if r[1] == method]
            if status != 0 or "Traceback" in output or not bad:
                return "crash"
            if any(r[4] != "failed" or not any(w in (r[5] or "") for w in words)
                   for r in bad):
                return "crash"
            good = [r for r in rows if r[1] == "steady"]
            return "handled" if good and all(r[4] == "completed" for r in good) \
                else "data lost"
        return run

    def curve(points: int) -> Callable[[Path], str]:
        def run(folder: Path) -> str:
            goal_file(folder, ["long_curve"], seeds=1, trials=1, curve=points)
            status, _ = pursuit(["run", "goal.yaml", "--store", "p.db"], folder, LIMIT * 2)
            if status is None:
                return "hang"
            with sqlite3.connect(folder / "p.db") as conn:
                stored = conn.execute("SELECT count(*) FROM curve_points").fetchone()[0]
            return ("handled" if stored == points else "data lost") if status == 0 \
                else "crash"
        return run

    def columns(folder: Path) -> str:
        goal_file(folder, ["columns"], seeds=2, trials=2)
        status, output = pursuit(["run", "goal.yaml", "--store", "p.db"], folder)
        if status != 0:
            return "hang" if status is None else "crash"
        status, _ = pursuit(["export", "--store", "p.db", "-o", "x.csv"], folder)
        import csv

        rows = list(csv.DictReader((folder / "x.csv").open()))
        right = [r["seed"] for r in rows] == ["0", "1"] and \
            all(r["state"] == "completed" and not r["error"] for r in rows)
        return "handled" if status == 0 and right else "data lost"

    probes = [Probe("forks and BaseException", "fork, child returns",
                    failing("forks", ("fork", "child"), timeout=10)),
              Probe("forks and BaseException", "BaseException subclass",
                    failing("base_exception", ("Quit", "gave up"))),
              Probe("forks and BaseException", "KeyboardInterrupt in a method",
                    failing("interrupts", ("KeyboardInterrupt",))),
              Probe("huge steps and curves", "step 2**63",
                    failing("huge_step", ("step",))),
              Probe("colliding names", "metrics named seed, error, state", columns)]
    for _ in range(n):
        probes.append(Probe("huge steps and curves", "long curve",
                            curve(rng.randint(100_000, 300_000))))
    return probes


def signal_probes(rng: random.Random, n: int) -> list[Probe]:
    def stop(sig: signal.Signals, after: float) -> Callable[[Path], str]:
        def run(folder: Path) -> str:
            goal_file(folder, ["slow", "steady"], seeds=2, trials=16)
            engine = subprocess.Popen([sys.executable, "-m", "pursuit", "run", "goal.yaml",
                                       "--store", "p.db", "--workers", "2"], cwd=folder,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True, start_new_session=True)
            time.sleep(after)
            engine.send_signal(sig)
            try:
                _, err = engine.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(engine.pid, signal.SIGKILL)
                return "hang"
            expected = {signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
            # Before Python has loaded Pursuit a signal ends the process as it would any
            # (-SIGTERM, or a KeyboardInterrupt traceback): nothing has started then.
            early = not trials(folder) and (engine.returncode == -sig or "Traceback" in err)
            if not early and (engine.returncode not in (expected, 0) or "Traceback" in err):
                return "crash"
            deadline = time.monotonic() + 5.0  # workers take a moment to die
            while _alive_in_group(engine.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive_in_group(engine.pid):
                return "crash"  # workers left behind, still training
            before = {r[0]: r for r in trials(folder) if r[4] in ("completed", "failed")}
            if any(r[4] == "running" for r in trials(folder)):
                return "data lost"
            status, _ = pursuit(["run", "goal.yaml", "--store", "p.db"], folder)
            if status is None:
                return "hang"
            after_rows = {r[0]: r for r in trials(folder)}
            keys = [(r[1], r[2], r[3]) for r in after_rows.values()]
            lost = any(after_rows.get(i) != r for i, r in before.items())
            if status != 0 or lost or len(keys) != len(set(keys)):
                return "data lost"
            return "handled"
        return run

    probes = []
    for _ in range(n):
        for sig in (signal.SIGTERM, signal.SIGINT):
            after = round(rng.uniform(1.5, 4.0), 2)
            probes.append(Probe("signals", f"{sig.name} at {after} s", stop(sig, after)))
    return probes


def _alive_in_group(pgid: int) -> bool:
    """Whether a process of the engine's group still runs (a zombie, dead and waiting to
    be reaped by init, does not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended as we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def fit_probes(rng: random.Random, n: int) -> list[Probe]:
    def fit(csv: str, *extra: str) -> Callable[[Path], str]:
        def run(folder: Path) -> str:
            (folder / "d.csv").write_text(csv)
            return judge_error(*pursuit(["fit", "d.csv", "--x", "x", "--y", "y", *extra],
                                        folder))
        return run

    curve = "".join(f"{x},{2 * x ** -0.3 + 0.1}\n" for x in (1, 2, 4, 8, 16, 32, 64))
    cases = [("a single row", "x,y\n1,2\n", ()), ("header only", "x,y\n", ()),
             ("all-equal x", "x,y\n" + "4,1\n" * 8, ()),
             ("an inf x", "x,y\n" + curve + "inf,0.1\n", ()),
             ("a NaN y", "x,y\nnan,nan\n" + curve.replace("1,", "1,nan,", 1), ()),
             ("a negative x", "x,y\n-1,3\n" + curve, ()),
             ("holdout column 2/3", "x,y,h\n" + "".join(
                 line + f",{2 + i % 2}\n" for i, line in enumerate(curve.splitlines())),
              ("--holdout-column", "h")),
             ("--plot into no folder", "x,y\n" + curve, ("--plot", "/no/such/dir/f.png"))]
    probes = [Probe("fit on degenerate CSVs", name, fit(csv, *extra))
              for name, csv, extra in cases]
    for _ in range(n):
        k = rng.randint(0, 6)
        bad = curve.splitlines()
        bad[k] = f"{bad[k].split(',')[0]},{rng.choice(['0', '-1', 'nan', '-inf'])}"
        probes.append(Probe("fit on degenerate CSVs", f"bad y at row {k + 2}",
                            fit("x,y\n" + "\n".join(bad) + "\n")))
    return probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probes-per-class", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    n = args.probes_per_class
    probes = [*yaml_probes(rng, n), *url_probes(rng, n), *run_probes(rng, n),
              *signal_probes(rng, n), *fit_probes(rng, n)]
    counts: dict[str, Counter[str]] = {}
    details = []
    start = time.perf_counter()
    for probe in probes:
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            try:
                outcome = probe.run(Path(tmp))
            except Exception as error:  # the probe itself broke: count it, say what
                outcome = "crash"
                print(f"  probe {probe.name}: {error!r}", file=sys.stderr)
        counts.setdefault(probe.cls, Counter())[outcome] += 1
        details.append({"class": probe.cls, "probe": probe.name, "outcome": outcome,
                        "seconds": round(time.perf_counter() - began, 2)})
        if outcome in ("crash", "hang", "data lost"):
            print(f"  {probe.cls}: {probe.name}: {outcome}", file=sys.stderr)
    print(f"hostile: seed {args.seed}, {len(probes)} probes in "
          f"{time.perf_counter() - start:.0f} s")
    print(f"| class | probes | {' | '.join(OUTCOMES)} |")
    print("| --- | ---: |" + " ---: |" * len(OUTCOMES))
    for cls, count in counts.items():
        print(f"| {cls} | {sum(count.values())} | "
              + " | ".join(str(count[o]) for o in OUTCOMES) + " |")
    total = sum(counts.values(), Counter())
    print(f"| all | {sum(total.values())} | " + " | ".join(str(total[o]) for o in OUTCOMES)
          + " |")
    print("goal: 0 crashes, 0 hangs, 0 data lost: "
          + ("met" if not (total["crash"] or total["hang"] or total["data lost"])
             else "NOT met"))
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "counts": {
            cls: dict(c) for cls, c in counts.items()}, "probes": details}, indent=2))


if __name__ == "__main__":
    main()
