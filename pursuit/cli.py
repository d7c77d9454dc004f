"""The ``pursuit`` command: a thin face over the library.

Exit status: 0 done, 1 a run or store failed, 2 bad input (a goal file, an option, an id).

What it prints is text, never Rich markup: goal names, dial values, error text and help
may hold square brackets, and all of them are shown as written. Tables fit the width of
the terminal (``$COLUMNS``, else 80 where output goes to a pipe or a file): a number is
never split across lines, text wraps between words, and the columns that do not fit are
left out, the least needed first, with a line that names them (``--wide`` shows all).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pandas as pd
import typer
from pydantic import ValidationError
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.live import Live
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pursuit import __version__, search
from pursuit.analysis.stats import Leaderboard
from pursuit.exceptions import GoalError, PursuitError, UnusableStoreError
from pursuit.execution import SigtermGuard, Terminated
from pursuit.goal import AlgorithmSpec, ExecutorSpec, load_goal
from pursuit.loop import Progress, StopReason, Summary
from pursuit.loop import run as run_goal
from pursuit.loop.budget import WARNING
from pursuit.overview import (
    board_dict,
    claim_basis,
    config_dict,
    config_text,
    fmt,
    goal_overview,
    interval_text,
    jsonable,
    ladder_lines,
    ladder_report,
    members_lines,
)
from pursuit.results import Results, metric_column
from pursuit.results import open as open_results
from pursuit.store import GoalRecord, TrialRecord, resolve_url
from pursuit.trial import TrialState

app = typer.Typer(help="Pursuit: goal-driven research. Baselines first, then search, "
                       "with honest intervals.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False,
                  rich_markup_mode=None)  # help is text: "[default: ...]" stays as written
out = Console(markup=False, highlight=False)
err = Console(stderr=True, markup=False, highlight=False)

StoreOption = Annotated[str | None, typer.Option(
    "--store", help="Results store URL or SQLite path [default: $PURSUIT_STORE or ./pursuit.db]")]
GoalOption = Annotated[str | None, typer.Option(
    "--goal", help="Which goal in the store (needed when it holds several).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
WideOption = Annotated[bool, typer.Option(
    "--wide", help="Show every column, however wide the table gets.")]
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def main() -> None:
    try:
        app()
    except (GoalError, UnusableStoreError) as error:  # bad input: a goal file, --store
        _error(str(error))
        sys.exit(2)
    except PursuitError as error:
        _error(str(error))
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run handles its own)
        err.print("interrupted")
        sys.exit(130)


def _show_version(value: bool) -> None:
    if value:
        out.print(f"pursuit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print Pursuit's version and exit.")] = False) -> None:
    """Pursuit: goal-driven research. Baselines first, then search, with honest intervals."""


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to create.")]) -> None:
    """Write DIRECTORY/goal.yaml and DIRECTORY/methods.py, commented, ready to run."""
    if directory.exists() and any(directory.iterdir()):
        _fail(f"{directory} exists and is not empty")
    import re
    import unicodedata

    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    templates = resources.files("pursuit") / "templates"
    # A goal name is ASCII letters, digits and _.- and starts with a letter or digit
    # (goal.NAME_PATTERN): café becomes cafe, "my goal" my-goal, and a name YAML would
    # read as another type (yes, 2024, 1.5) is written quoted, so that what init writes runs.
    plain = unicodedata.normalize("NFKD", directory.name).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", plain).lstrip("_.-")[:100] or "goal"
    written = name if yaml.safe_load(name) == name else json.dumps(name)
    (directory / "goal.yaml").write_text(
        (templates / "goal.yaml").read_text().replace("{name}", written))
    (directory / "methods.py").write_text((templates / "methods.py").read_text())
    out.print(f"wrote {directory / 'goal.yaml'} and {directory / 'methods.py'} "
              f"(goal {name!r})\nnext: pursuit run {directory / 'goal.yaml'}")


@app.command()
def run(goal_file: Annotated[Path, typer.Argument(help="The goal's YAML file.")],
        store: StoreOption = None,
        workers: Annotated[int | None, typer.Option(
            help="Worker processes [default: one per core].", min=1)] = None,
        inline: Annotated[bool, typer.Option(
            help="Run trials in this process, one at a time (for debugging).")] = False,
        sampler: Annotated[str | None, typer.Option(
            help=f"Optuna sampler: {', '.join(search.SAMPLERS)} [default: the goal file's "
                 f"sampler, else {search.DEFAULT_SAMPLER}].")] = None,
        pruner: Annotated[str | None, typer.Option(
            help=f"Optuna pruner: {', '.join(search.PRUNERS)} [default: the goal file's "
                 f"pruner, else {search.DEFAULT_PRUNER}].")] = None,
        seed: Annotated[int | None, typer.Option(
            help="Seed of the sampler [default: the goal file's, else 0].")] = None,
        workdir: Annotated[Path, typer.Option(
            help="Folder for trials' files.")] = Path("pursuit-work"),
        subgoal: Annotated[str | None, typer.Option(
            help="Run only this sub-goal (a team member's part; others may run the "
                 "rest at once on the same store).")] = None,
        executor: Annotated[str | None, typer.Option(
            help="Where trials run: processes (local workers), inline, or ray (tasks on "
                 "a Ray cluster) [default: the goal file's, else processes].")] = None,
        ray_address: Annotated[str | None, typer.Option(
            help="The Ray cluster: auto, host:port or ray://host:10001 [default: "
                 "$RAY_ADDRESS, else a Ray instance on this machine].")] = None,
        num_cpus: Annotated[float | None, typer.Option(
            help="CPUs each trial asks of the Ray cluster [default: 1].")] = None,
        num_gpus: Annotated[float | None, typer.Option(
            help="GPUs each trial asks of the Ray cluster [default: 0].")] = None,
        memory: Annotated[int | None, typer.Option(
            help="Bytes of memory each trial reserves on the Ray cluster.")] = None
        ) -> None:
    """Run a goal: baselines over seeds, dial search, confirmation; resumes where it stopped."""
    for kind, name in (("sampler", sampler), ("pruner", pruner)):
        if name is not None:  # said before anything runs, the install command included
            try:
                search.check(kind, name)
            except ValueError as error:
                _fail(f"--{kind} {name}: {error}")
    # From here on SIGTERM (kill, systemd, Slurm, Kubernetes) stops the command as Ctrl-C
    # does, also while the goal loads and the engine starts.
    guard = SigtermGuard()
    guard.hold()
    try:
        placement = dict(name=executor, address=ray_address, num_cpus=num_cpus,
                         num_gpus=num_gpus, memory=memory)
        summaries, url = _run(goal_file, store, workers, inline, sampler, pruner, seed,
                              workdir, subgoal, placement)
    except Terminated as stopped:
        err.print(f"{stopped}: running trials were marked preempted; run the same "
                  "command again to resume")
        raise typer.Exit(143) from None  # 128 + SIGTERM, as if SIGTERM had ended it
    except KeyboardInterrupt:
        err.print("interrupted: running trials were marked preempted; run the same "
                  "command again to resume")
        raise typer.Exit(130) from None
    finally:
        guard.release()
    out.print()
    for summary in summaries:
        _say(Text.assemble((summary.goal, "bold"), f": {summary.reason} ({summary.trials} "
                           f"trials, {summary.wall_seconds:.1f} s)"))
    with open_results(url) as results:
        _print_leaderboard(results, summaries[0].goal, more="pursuit leaderboard --wide")


def _run(goal_file: Path, store: str | None, workers: int | None, inline: bool,
         sampler: str | None, pruner: str | None, seed: int | None, workdir: Path,
         subgoal: str | None, placement: dict[str, Any]) -> tuple[list[Summary], str]:
    """Load the goal and run it, under a live view on a terminal; return how it ended and
    the store."""
    goal = load_goal(goal_file)
    url = resolve_url(store)
    options: dict[str, Any] = dict(
        sampler=_chosen("sampler", sampler, goal.sampler, seed),
        pruner=_chosen("pruner", pruner, goal.pruner), workdir=workdir, workers=workers,
        subgoal=subgoal)
    executor = "inline" if inline else _placed(goal.executor, placement)
    if not out.is_terminal:  # a pipe or a file: a line per stage, and what the engine says
        return run_goal(goal, url, executor, on_progress=_StageLog(), log=_log_line,
                        **options), url
    view = _LiveView()
    with Live(view.render(), console=out, refresh_per_second=8, transient=False) as live:
        def show(progress: Progress) -> None:
            view.progress = progress
            live.update(view.render())

        def log(line: str) -> None:
            if WARNING in line:  # said once, above the live view, where it stays
                live.console.print(Text(line, style="yellow"))
            else:
                view.log(line)

        return run_goal(goal, url, executor, on_progress=show, log=log, **options), url


def _placed(spec: ExecutorSpec | None, options: dict[str, Any]) -> ExecutorSpec:
    """The goal file's executor with what the command line says over it; said at once,
    before anything runs, when it cannot be."""
    name = options["name"] or (spec.name if spec else "processes")
    base = spec.model_dump() if spec is not None and spec.name == name else {}
    given = {k: v for k, v in options.items() if v is not None and k != "name"}
    try:
        chosen = ExecutorSpec(**{**base, **given, "name": name})
    except ValidationError as error:
        option = {"name": "executor", "address": "ray-address"}
        _fail("; ".join(f"--{option.get(str(e['loc'][0]), str(e['loc'][0])).replace('_', '-')}"
                        f": {e['msg']}" if e["loc"] else f"--executor: {e['msg']}"
                        for e in error.errors()))
    if chosen.name == "ray" and importlib.util.find_spec("ray") is None:
        _fail("--executor ray needs Ray, which is not installed: pip install 'pursuit[ray]'")
    return chosen


class _StageLog:
    """Progress for a log file: a line as each goal enters a stage."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, p: Progress) -> None:
        if (p.goal, p.stage) not in self.seen:
            self.seen.add((p.goal, p.stage))
            best = "no claim over all seeds yet" if p.best_method is None else \
                f"best {p.best_method} {fmt(p.best_mean)} over {p.best_n} seeds"
            _say(f"{p.goal}: stage {p.stage} ({p.completed} trials done, {p.running} "
                 f"running); {best}")


def _log_line(line: str) -> None:
    # How a goal ended is said once the run is over, with its trial count and time;
    # everything else the engine says (warnings, refused writes) is said as it comes.
    said_after = (StopReason.TARGET_REACHED, StopReason.BUDGET_SPENT, StopReason.NOTHING_LEFT)
    if WARNING in line or not line.partition(": ")[2].startswith(said_after):
        _say(line)


def _chosen(kind: str, name: str | None, spec: AlgorithmSpec | None, seed: int | None = None
            ) -> Any:
    """The sampler or pruner the command line names (or seeds), with the goal file's
    arguments where the file names the same one; None, for each goal's own, when the
    command line says nothing of it."""
    if name is None and seed is None:
        return None
    args = spec.args if spec is not None and name in (None, spec.name) else None
    return search.build(kind, name or (spec.name if spec else None), args, seed=seed)


@app.command()
def status(store: StoreOption = None, goal: GoalOption = None, json_: JsonOption = False
           ) -> None:
    """Stage, budget spent, best claim against the target, running and failed trials."""
    with open_results(store) as results:
        record = results.goal(goal)
        reports = [goal_overview(results, g.name) for g in [record, *results.subgoals(record)]]
    if json_:
        print(json.dumps(jsonable(reports if len(reports) > 1 else reports[0]), indent=2))
        return
    for report in reports:
        _print_status(report)


@app.command()
def leaderboard(store: StoreOption = None, goal: GoalOption = None, json_: JsonOption = False,
                top: Annotated[int, typer.Option(
                    help="Configurations to list under the methods (0: none).", min=0)] = 10,
                wide: WideOption = False) -> None:
    """Methods and configurations with 95% intervals, compared with the best baseline."""
    with open_results(store) as results:
        if json_:
            record = results.goal(goal)
            boards = {}
            for g in [record, *results.subgoals(record)]:
                frame = results.results(g.name)  # read once, used by both
                boards[g.name] = {**board_dict(results.leaderboard(g.name, frame=frame)),
                                  "ladder": ladder_report(results, g.name, frame)}
            print(json.dumps(jsonable(boards), indent=2))
            return
        _print_leaderboard(results, goal, top=top, wide=wide)


@app.command()
def trials(store: StoreOption = None, goal: GoalOption = None,
           state: Annotated[str | None, typer.Option(
               help="Only trials in this state: completed, pruned, failed, running, "
                    "preempted.")] = None,
           json_: JsonOption = False, wide: WideOption = False) -> None:
    """The trials of a goal: method, stage, seed, state, dials, value, why one failed."""
    states = [s.value for s in TrialState if s is not TrialState.QUEUED]
    if state is not None and state not in states:
        _fail(f"--state must be one of {', '.join(states)}, got {state!r}")
    with open_results(store) as results:
        record = results.goal(goal)
        goals = [record, *results.subgoals(record)]
        frames = [(g, results.results(g.name)) for g in goals]
    if json_:
        rows = [row for g, frame in frames for row in _trial_rows(g, frame, state)]
        print(json.dumps(jsonable(rows), indent=2))
        return
    for g, frame in frames:  # a goal's sub-goals under it, as status and leaderboard
        rows = _trial_rows(g, frame, state)
        if len(goals) > 1:
            out.print(Text(g.name, style="bold"))
        _print_trials(g, rows, state, wide)


def _trial_rows(record: GoalRecord, frame: Any, state: str | None) -> list[dict[str, Any]]:
    if state is not None:
        frame = frame[frame["state"] == state]
    metric = record.spec["metric"]
    return [{"goal": record.name, "trial_id": int(r["trial_id"]), "method": r["method"],
             "stage": r["stage"],
             "seed": int(r["seed"]), "state": r["state"], "attempt": int(r["attempt"]),
             "dials": config_dict(r["config"]) or {}, "value": r[metric_column(metric)],
             "error": r["error"] if isinstance(r["error"], str) else None}
            for r in frame.to_dict(orient="records")]


def _print_trials(record: GoalRecord, rows: list[dict[str, Any]], state: str | None,
                  wide: bool) -> None:
    metric = record.spec["metric"]
    if not rows:
        out.print(f"{record.name}: no {state + ' ' if state else ''}trials")
        return
    _print_table(
        [Column("id", 0, number=True), Column("method", 1, wraps=True), Column("stage", 6),
         Column("seed", 7, number=True), Column("state", 2), Column("dials", 5, wraps=True),
         Column(metric, 3, number=True),
         Column("reason", 4, wraps=True, optional=True, folds=True)],
        [[str(r["trial_id"]), r["method"], r["stage"], str(r["seed"]), r["state"],
          config_text(r["dials"]), fmt(r["value"]), _last_line(r["error"])] for r in rows],
        wide=wide)


@app.command()
def show(trial_id: Annotated[int, typer.Argument(help="The trial's id (see pursuit trials).")],
         store: StoreOption = None, json_: JsonOption = False) -> None:
    """One trial: its method, dials, seed, stage, state, values, curve, costs and error."""
    with open_results(store) as results:
        found = results.trial(trial_id)
        if found is None:
            _fail(f"no trial {trial_id} in this store; `pursuit trials` lists them")
        goal, trial = found
        curve = results.store.curve(trial_id)
    report = _trial_report(goal, trial, curve)
    if json_:
        print(json.dumps(jsonable(report), indent=2))
        return
    _print_trial(report)


@app.command()
def export(output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
           store: StoreOption = None, goal: GoalOption = None,
           format: Annotated[str | None, typer.Option(
               help="csv or parquet [default: from the file's suffix, .csv, .parquet or "
                    ".pq; csv for a name without one].")] = None,
           curves: Annotated[bool, typer.Option(
               "--curves", help="Write every learning-curve point instead (trial_id, "
                                "attempt, step, metric, value, method, stage, seed, "
                                "config).")] = False) -> None:
    """Write the flat results table (one row per trial) as CSV or Parquet."""
    if format is None:
        format = FORMATS.get(output.suffix.lower(), None if output.suffix else "csv")
        if format is None:
            _fail(f"cannot tell the format of {output} from its suffix {output.suffix!r}: "
                  "name it .csv or .parquet, or give --format csv or --format parquet")
    elif format not in ("csv", "parquet"):
        _fail(f"--format must be csv or parquet, got {format!r}")
    if output.is_dir() or not output.parent.is_dir():  # said before the store is read
        why = "it is a folder" if output.is_dir() else f"there is no folder {output.parent}"
        _fail(f"cannot write {output}: {why}")
    with open_results(store) as results:  # a goal and its sub-goals, as status shows them
        record = results.goal(goal)
        goals = [record, *results.subgoals(record)]
        frames = [results.curves(g.name) if curves else results.results(g.name)
                  for g in goals]
    if curves and len(goals) > 1:
        for g, part in zip(goals, frames, strict=True):
            part.insert(0, "goal", g.name)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    try:
        if format == "csv":
            frame.to_csv(output, index=False)
        else:
            frame.to_parquet(output, index=False)
    except ImportError:
        _fail("Parquet needs pyarrow: pip install 'pursuit[parquet]'", 1)
    except (TypeError, ValueError) as error:  # a column Parquet cannot hold as it is
        _fail(f"cannot write {output} as Parquet: {error}", 1)
    except OSError as error:  # no permission, a full disk
        _fail(f"cannot write {output}: {error.strerror or error}", 1)
    out.print(f"wrote {len(frame)} {'curve points' if curves else 'trials'} to {output} "
              f"({format})")


@app.command()
def report(store: StoreOption = None, goal: GoalOption = None,
           output: Annotated[Path, typer.Option(
               "-o", "--output", help="HTML file to write.")] = Path("report.html")) -> None:
    """Write one self-contained HTML report of a goal: it opens offline, anywhere."""
    if output.is_dir() or not output.parent.is_dir():
        why = "it is a folder" if output.is_dir() else f"there is no folder {output.parent}"
        _fail(f"cannot write {output}: {why}")
    from pursuit.report import write_report  # plotly loads only for a report

    with open_results(store) as results:
        write_report(results, goal, output)
    out.print(f"wrote {output}")


@app.command()
def serve(store: StoreOption = None,
          host: Annotated[str, typer.Option(
              help="Address to listen on; any but this machine's own needs a token.")
          ] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
          token: Annotated[str | None, typer.Option(
              envvar="PURSUIT_TOKEN", help="Token every request must carry (a bearer "
                                           "header, or the login page's cookie); "
                                           "'generate' makes a random one, printed once. "
                                           "Needed for any --host but this machine's "
                                           "own.")] = None
          ) -> None:
    """Serve a live dashboard of the store's goals, and its JSON API."""
    from pursuit.dashboard import serve as serve_dashboard  # FastAPI loads only to serve

    try:
        serve_dashboard(resolve_url(store), host=host, port=port, token=token)
    except UnusableStoreError:
        raise
    except PursuitError as error:  # an address or token refused: bad input, as elsewhere
        _fail(str(error))


@app.command(name="fit")
def fit_command(
        data: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
        x: Annotated[str, typer.Option(help="Column(s) of x: one name, or N,D for L(N, D).")],
        y: Annotated[str, typer.Option(help="Column of y (a loss or error, > 0).")],
        form: Annotated[str, typer.Option(
            help="auto (chosen by extrapolation on held-back points) or a form name.")] = "auto",
        target: Annotated[float | None, typer.Option(
            help="Forecast where y reaches this value.")] = None,
        holdout: Annotated[float | None, typer.Option(
            help="Hold back the largest-x fraction: predicted and scored, not fitted.")] = None,
        holdout_column: Annotated[str | None, typer.Option(
            help="Hold back the rows where this column is 0/false.")] = None,
        group: Annotated[str | None, typer.Option(
            help="Column of seeds: the bootstrap resamples whole seeds.")] = None,
        resamples: Annotated[int, typer.Option(help="Bootstrap refits.", min=0)] = 200,
        plot: Annotated[Path | None, typer.Option(help="Write a picture of the fit.")] = None,
        json_: JsonOption = False) -> None:
    """Fit a scaling law to a CSV; print parameters with intervals, held-out error, forecast."""
    import pandas as pd

    from pursuit.scaling._summary import study
    from pursuit.scaling._table import lines_of_csv

    if plot is not None and not plot.parent.is_dir():  # said before the fit, not after it
        _fail(f"cannot write the plot to {plot}: there is no folder {plot.parent}")
    try:
        frame = pd.read_csv(data)
    except (OSError, ValueError) as error:
        _fail(f"cannot read {data}: {error}")
    try:
        result = study(frame, [c.strip() for c in x.split(",")], y, form=form,
                       holdout=holdout, holdout_column=holdout_column, target=target,
                       group=group, bootstrap=resamples, line=lines_of_csv(data))
    except ValueError as error:
        _fail(str(error))
    summary = result.summary()
    if plot is not None:
        from pursuit.scaling._plot import plot as draw

        try:
            draw(result, plot, x_label=x, y_label=y)
        except (ImportError, ValueError) as error:
            _fail(str(error))
    if json_:
        print(json.dumps(jsonable(summary), indent=2))
        return
    _print_fit(summary)


def _print_fit(summary: dict[str, Any]) -> None:
    """The law written out (a blend's members, their weights and why), its parameters,
    the held-out check and the forecast, in words when far past the data."""
    described = "" if summary["points_described"] == summary["points_fitted"] else \
        f"; the law describes the last {summary['points_described']}"
    if summary.get("points_pooled"):  # many rows: fitted as fewer, pooled points
        described += f"; fitted as at most {summary['points_pooled']} pooled points"
    _say(Text.assemble((summary["form"], "bold"), f": {summary['law']}  "
                       f"({summary['points_fitted']} points{described}, "
                       f"{summary['resamples']} bootstrap refits)"))
    if summary["selection_scores"]:
        scores = ", ".join(f"{k} {fmt(v, 3)}" for k, v in sorted(
            summary["selection_scores"].items(), key=lambda kv: (math.isnan(kv[1]), kv[1])))
        _say(f"  RMSLE of each candidate on the held-back largest x: {scores}")
    for line in members_lines(summary["members"], "on the held-back largest x"):
        _say(line)
    _say(f"parameters, {summary['param_level']:.0%} bootstrap intervals")
    _print_table([Column("parameter", 0), Column("value", 1, number=True),
                  Column("interval", 2)],
                 [[name, fmt(p["value"], 5), interval_text(p["lower"], p["upper"])]
                  for name, p in summary["params"].items()])
    if summary["holdout"]:
        _say(f"held out: {len(summary['holdout'])} points, RMSLE "
             f"{summary['holdout_rmsle']:.4g}; {summary['holdout_coverage']:.0%} inside the "
             f"{summary['prediction_level']:.0%} prediction interval")
    f = summary.get("forecast")
    if f and f["reachable"]:
        what = "compute C" if "x_is" in f else "x"
        far = f.get("extrapolation")  # far past the data: never a plain number
        _say(f"target {f['target']:g} reached at {what} {'≈' if far else '='} {f['x']:.4g} "
             f"({f['level']:.0%} interval {interval_text(f['lower'], f['upper'])}; "
             f"{f['reachable_fraction']:.0%} of refits reach it)"
             + (f" — {far}: an extrapolation, not a measurement" if far else ""))
        if "params_opt" in f:
            _say(f"  compute-optimal there: N = {f['params_opt']:.3g} parameters, "
                 f"D = {f['tokens_opt']:.3g} tokens")
    elif f:
        _say(f"target {f['target']:g} is not reachable under this law: {f['reason']}")


# ---------------------------------------------------------------------------- printing
def _error(message: str) -> None:
    # On one line, however narrow the terminal, for scripts and logs to grep.
    err.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def _fail(message: str, status: int = 2) -> NoReturn:
    _error(message)
    raise typer.Exit(status)


def _say(text: str | Text, *, indent: int = 0, style: str = "") -> None:
    """A line of prose, wrapped between words at the terminal's width, under its indent."""
    line = text if isinstance(text, Text) else Text(text, style=style)
    out.print(Padding(line, (0, 0, 0, indent), expand=False) if indent else line)


@dataclass(frozen=True)
class Column:
    """A column of a printed table. As the terminal narrows, the columns of highest
    ``rank`` are left out first. Text that ``wraps`` breaks between words; other cells
    (numbers, intervals, names) never break. An ``optional`` column is left out when it
    holds no value (every cell ``—``)."""

    header: str
    rank: int
    wraps: bool = False
    number: bool = False  # aligned right
    optional: bool = False
    folds: bool = False  # text whose words past LONG_WORD may break (paths in error text)


GAP = 2  # columns apart (a table with collapsed padding and no edges)
LONG_WORD = 24


def _print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
                 wide: bool = False, more: str = "--wide") -> None:
    """Print ``rows`` as a table that fits the terminal, unless ``wide``; say which columns
    were left out, and that ``more`` shows them."""
    empty = ("—", "")
    keep = [i for i, c in enumerate(columns)
            if not (c.optional and all(row[i] in empty for row in rows))]

    def least(i: int) -> int:  # the narrowest it can be: its longest unbreakable piece
        pieces = [piece for row in rows for piece in
                  (row[i].split() if columns[i].wraps else [row[i]])]
        longest = max(cell_len(piece) for piece in [*pieces, *columns[i].header.split()])
        return min(longest, LONG_WORD) if columns[i].folds else longest

    def most(i: int) -> int:
        return max(cell_len(text) for text in [columns[i].header, *(row[i] for row in rows)])

    def total(indices: list[int], size: Callable[[int], int]) -> int:
        return sum(size(i) for i in indices) + GAP * (len(indices) - 1)

    available = out.width
    hidden = []
    if not wide:
        while len(keep) > 1 and total(keep, least) > available:
            drop = max(keep, key=lambda i: columns[i].rank)
            keep.remove(drop)
            hidden.append(drop)
    widths = {i: most(i) for i in keep}
    floor = {i: least(i) for i in keep}
    excess = total(keep, most) - available
    while not wide and excess > 0:  # narrow the widest text that wraps, down to its words
        narrowable = [i for i in keep if widths[i] > floor[i]]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for i in keep:
        column = columns[i]
        # Every cell fits its width whole (see least); only the header, and text that
        # wraps, ever break, and only between words.
        table.add_column(Text(column.header, style="bold"), width=widths[i], overflow="fold",
                         justify="right" if column.number else "left")
    for row in rows:
        table.add_row(*(Text(row[i]) for i in keep))
    console, natural = out, total(keep, most)
    if wide and natural > out.width:  # as wide as the table: its lines run past the terminal
        console = Console(file=out.file, width=natural, markup=False, highlight=False,
                          force_terminal=out.is_terminal, no_color=out.no_color)
    console.print(table)
    if hidden:
        names = ", ".join(columns[i].header for i in sorted(hidden))
        _say(f"not shown at {available} columns: {names} ({more} shows every column)",
             style="dim")


def _last_line(error: str | None) -> str:
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else "—"


def _state_line(report: dict[str, Any]) -> str:
    stage = report["stage"]
    if report["state"] == "running":
        return f"running, stage: {stage}" if stage else "running, no trial yet"
    if report["state"] == "ended":
        return f"ended after stage {stage}: {report['reason']}" if stage else \
            f"ended: {report['reason']}"
    if report["state"] == "stopped":
        where = f"during stage {stage}" if stage else "before its first trial"
        return (f"stopped {where} without saying why (killed, or its machine lost); "
                "`pursuit run` with the same goal resumes it")
    return "not started"


def _print_status(report: dict[str, Any]) -> None:
    budget = report["budget"]
    _say(Text.assemble((report["goal"], "bold"),
                       f" — {report['statement']}" if report["statement"] else ""))
    target = "no target" if report["target"] is None else f"target {fmt(report['target'])}"
    _say(f"{report['metric']} ({report['direction']}), {target}", indent=2)
    _say(_state_line(report), indent=2)
    spent = f"{report['trials_total']}" + (f"/{budget['max_trials']}"
                                          if budget.get("max_trials") else "")
    _say(f"budget: {spent} trials, {report['compute_seconds']:.1f} compute s"
         + (f"/{budget['compute_seconds']:g}" if budget.get("compute_seconds") else ""),
         indent=2)
    t = report["trials"]
    _say(f"trials: {t['completed']} completed, {t['pruned']} pruned, {t['failed']} failed, "
         f"{t['running']} running, {t['preempted']} preempted", indent=2)
    best = report["best"]
    if best["best_method"] is None:
        _say("best: no configuration has the full seed count yet", indent=2)
    else:
        line = Text(f"best: {best['best_method']} {config_text(best['best_config'])}: "
                    f"{fmt(best['best_mean'])} "
                    f"{interval_text(best['best_lo'], best['best_hi'])} {claim_basis(best)}")
        if report["reached"]:
            line.append("; ").append("target reached", style="green")
        elif report["target"] is not None:
            line.append(f"; gap to target {fmt(report['gap'])}")
        _say(line, indent=2)
    _print_ladder(report["ladder"])
    for row in report["failed"][-5:]:
        _say(Text.assemble(("failed", "red"), f" trial {row['trial_id']} ({row['method']}): "
                                              f"{row['error'][0][:160]}"), indent=2)


def _print_leaderboard(results: Results, goal: str | None, *, top: int = 10,
                       wide: bool = False, more: str = "--wide") -> None:
    record = results.goal(goal)
    for child in [record, *results.subgoals(record)]:
        frame = results.results(child.name)
        board = results.leaderboard(child.name, frame=frame)
        spec = child.spec
        _say(f"{child.name}: {spec['metric']} ({spec['direction']}), mean over seeds with "
             "95% interval", style="bold")
        _print_table(
            [Column("method", 0, wraps=True), Column("n", 4, number=True),
             Column("mean", 1, number=True), Column("95% interval", 2),
             Column("Δ vs best baseline", 5, number=True), Column("Δ 95% interval", 8),
             Column("p (corrected)", 7, number=True), Column("verdict", 3, wraps=True),
             Column("trials (failed)", 9, number=True),
             Column("best configuration", 6, wraps=True)],
            [[row.method + (" (baseline)" if row.baseline else ""), str(row.n), fmt(row.mean),
              interval_text(row.lo, row.hi), "—" if math.isnan(row.diff) else
              f"{row.diff:+.3g}", interval_text(row.diff_lo, row.diff_hi),
              fmt(row.p_holm, 2), row.verdict, f"{row.trials} ({row.failed})",
              config_text(row.config)] for row in board.methods.itertuples()],
            wide=wide, more=more)
        if top and len(board.configs):
            _print_configs(board, top, wide, more)
        sources = [f"{r.method}: {r.source}" for r in board.methods.itertuples()
                   if isinstance(r.source, str) and r.source]
        if sources:
            _say("sources: " + "; ".join(sources), style="dim")
        p = board.progress
        target = "no target" if p["target"] is None else f"target {fmt(p['target'])}"
        if p["best_method"] is None:
            _say(f"{target}: no configuration has {p['seeds']} completed seeds yet")
        else:
            state = "" if p["target"] is None else ": reached" if p["reached"] else \
                ": not reached"
            _say(f"{target}{state}; best claim {p['best_method']} "
                 f"{config_text(p['best_config'])} {fmt(p['best_mean'])} "
                 f"{interval_text(p['best_lo'], p['best_hi'])} {claim_basis(p)}; "
                 f"{p['trials']} trials, {p['compute_seconds']:.1f} compute s")
        _print_ladder(ladder_report(results, child.name, frame))


def _print_ladder(ladder: list[dict[str, Any]]) -> None:
    for line in ladder_lines(ladder):
        _say(line)


def _print_configs(board: Leaderboard, top: int, wide: bool, more: str) -> None:
    _say(f"top {min(top, len(board.configs))} of {len(board.configs)} configurations "
         "(full seed count first)", style="bold")
    _print_table(
        [Column("method", 0, wraps=True), Column("configuration", 1, wraps=True),
         Column("n", 4, number=True), Column("mean", 2, number=True),
         Column("95% t-interval", 3), Column("95% bootstrap", 8, optional=True),
         Column("best run", 7, number=True), Column("claim rests on", 5, wraps=True),
         Column("screening run", 6, number=True)],
        [[row.method, config_text(row.config), str(row.n), fmt(row.mean),
          interval_text(row.lo, row.hi), interval_text(row.boot_lo, row.boot_hi),
          fmt(row.best), row.basis, fmt(row.screen)]
         for row in board.configs.head(top).itertuples()],
        wide=wide, more=more)
    _say("a searched configuration's screening run chose it: its claim rests on other seeds",
         style="dim")


def _trial_report(goal: GoalRecord, trial: TrialRecord,
                  curve: list[tuple[int, int, str, float]]) -> dict[str, Any]:
    """One trial as plain data, its curve summed up per attempt and metric: points, the
    first and last, and for the goal's metric the best."""
    spec = goal.spec
    method: dict[str, Any] = next(
        (m for m in spec.get("methods", []) if m["name"] == trial.method), {})
    series: dict[tuple[int, str], list[tuple[int, float]]] = {}
    for attempt, step, name, value in curve:
        series.setdefault((attempt, name), []).append((step, value))
    summaries = []
    for (attempt, name), points in series.items():
        finite = [p for p in points if math.isfinite(p[1])]
        pick = max if spec.get("direction") == "maximize" else min
        best = pick(finite, key=lambda p: p[1]) if finite and name == spec["metric"] else None
        summaries.append({"attempt": attempt, "metric": name, "points": len(points),
                          **{k: {"step": p[0], "value": p[1]} if p else None for k, p in
                             (("first", points[0]), ("last", points[-1]), ("best", best))}})
    return {"trial_id": trial.id, "goal": goal.name, "method": trial.method,
            "baseline": bool(method.get("baseline")), "source": method.get("source"),
            "stage": trial.stage, "seed": trial.seed, "state": trial.state.value,
            "attempt": trial.attempt, "dials": trial.dials, "metric": spec["metric"],
            "values": trial.values,
            "costs": {"wall_seconds": trial.wall_seconds, "cpu_seconds": trial.cpu_seconds,
                      **trial.costs},
            "started_at": trial.started_at, "finished_at": trial.finished_at,
            "curve": summaries, "error": trial.error}


def _print_trial(report: dict[str, Any]) -> None:
    import time

    def at(seconds: float | None) -> str:
        return "—" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S",
                                                         time.localtime(seconds))

    def point(p: dict[str, Any] | None) -> str:
        return "—" if p is None else f"step {p['step']}: {fmt(p['value'])}"

    _say(Text.assemble((f"trial {report['trial_id']}", "bold"),
                       f": {report['method']}" + (" (baseline)" if report["baseline"] else "")
                       + f", goal {report['goal']}"))
    _say(f"stage {report['stage']}, seed {report['seed']}, attempt {report['attempt']}, "
         f"{report['state']}", indent=2)
    _say(f"dials: {config_text(report['dials'])}", indent=2)
    values = report["values"]
    _say("values: " + (", ".join(f"{k} {fmt(v)}" for k, v in values.items()) or "—"),
         indent=2)
    for c in report["curve"]:
        best = f"; best {point(c['best'])}" if c["best"] else ""
        _say(f"curve of {c['metric']} (attempt {c['attempt']}): {c['points']} points; first "
             f"{point(c['first'])}; last {point(c['last'])}{best}", indent=2)
    if not report["curve"]:
        _say("curve: none reported", indent=2)
    costs = report["costs"]
    _say("cost: " + (", ".join(
        f"{name.removesuffix('_seconds')} {fmt(value)} s" if name.endswith("_seconds") else
        f"{name} {fmt(value)}" for name, value in costs.items() if value is not None) or "—"),
        indent=2)
    _say(f"started {at(report['started_at'])}, finished {at(report['finished_at'])}",
         indent=2)
    if report["error"]:  # quoted as the method raised it, line for line
        _say("error:", indent=2)
        out.print(Text("\n".join(f"    {line}" for line in report["error"].rstrip().splitlines())),
                  soft_wrap=True)


class _LiveView:
    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines = [*self.lines[-4:], line]

    def render(self) -> Any:
        table = Table.grid(padding=(0, 1))
        p = self.progress
        if p is None:
            table.add_row(Text("starting workers…"))
            return table
        table.add_row(Text(f"{p.goal}", style="bold"), Text(f"stage: {p.stage}"))
        table.add_row(Text("budget"), ProgressBar(total=1.0, completed=p.budget_fraction,
                                                  width=40))
        trials = f"{p.trials}" + (f"/{p.max_trials}" if p.max_trials else "")
        table.add_row(Text("trials"), Text(
            f"{trials} — {p.completed} done, {p.running} running, {p.pruned} pruned, "
            f"{p.failed} failed; {p.wall_seconds:.0f} s"))
        if p.best_method is None:
            best = "no claim over all seeds yet"
        else:
            interval = "" if math.isnan(p.best_lo) else f" [{p.best_lo:.4g}, {p.best_hi:.4g}]"
            best = f"{p.best_method} {p.best_mean:.4g}{interval} over {p.best_n} seeds"
        target = "" if p.target is None else f"  (target {p.target:g})"
        table.add_row(Text("best"), Text(best + target))
        for line in self.lines:
            table.add_row(Text(""), Text(line, style="dim"))
        return table

