"""The ``pursuit`` command: a thin face over the library.

Exit status: 0 done, 1 a run or store failed, 2 bad input (a goal file, an option).
"""

from __future__ import annotations

import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import optuna
import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pursuit.analysis.stats import Leaderboard
from pursuit.exceptions import GoalError, PursuitError, UnusableStoreError
from pursuit.execution import SigtermGuard, Terminated
from pursuit.goal import load_goal
from pursuit.loop import Progress, Summary
from pursuit.loop import run as run_goal
from pursuit.loop.budget import WARNING
from pursuit.overview import (
    board_dict,
    claim_basis,
    config_text,
    fmt,
    goal_overview,
    interval_text,
    jsonable,
    ladder_lines,
    members_lines,
)
from pursuit.results import Results
from pursuit.results import open as open_results
from pursuit.store import resolve_url

app = typer.Typer(help="Pursuit: goal-driven research. Baselines first, then search, "
                       "with honest intervals.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
out = Console()
err = Console(stderr=True)

StoreOption = Annotated[str | None, typer.Option(
    "--store", help="Results store URL or SQLite path [default: $PURSUIT_STORE or ./pursuit.db]")]
GoalOption = Annotated[str | None, typer.Option(
    "--goal", help="Which goal in the store (needed when it holds several).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "cmaes": optuna.samplers.CmaEsSampler, "qmc": optuna.samplers.QMCSampler,
            "gp": optuna.samplers.GPSampler}


def main() -> None:
    # Messages quote what the user wrote (a file, a name, a URL): printed as text, never
    # read as Rich markup, whose tags ("[/x]") would raise instead of the error; and on
    # one line, however narrow the terminal, for scripts and logs to grep.
    try:
        app()
    except (GoalError, UnusableStoreError) as error:  # bad input: a goal file, --store
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except PursuitError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run handles its own)
        err.print("interrupted")
        sys.exit(130)


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to create.")]) -> None:
    """Write DIRECTORY/goal.yaml and DIRECTORY/methods.py, commented, ready to run."""
    if directory.exists() and any(directory.iterdir()):
        err.print(f"[bold red]error:[/] {escape(str(directory))} exists and is not empty",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(2)
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
              f"(goal {name!r})\nnext: pursuit run {directory / 'goal.yaml'}", highlight=False,
              markup=False)


@app.command()
def run(goal_file: Annotated[Path, typer.Argument(help="The goal's YAML file.")],
        store: StoreOption = None,
        workers: Annotated[int | None, typer.Option(
            help="Worker processes [default: one per core].", min=1)] = None,
        inline: Annotated[bool, typer.Option(
            help="Run trials in this process, one at a time (for debugging).")] = False,
        sampler: Annotated[str, typer.Option(
            help=f"Optuna sampler: {', '.join(SAMPLERS)}.")] = "tpe",
        seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
        workdir: Annotated[Path, typer.Option(
            help="Where trials keep their files.")] = Path("pursuit-work")) -> None:
    """Run a goal: baselines over seeds, dial search, confirmation; resumes where it stopped."""
    if sampler not in SAMPLERS:
        err.print(f"[bold red]error:[/] --sampler must be one of {', '.join(SAMPLERS)}, "
                  f"got {sampler!r}")
        raise typer.Exit(2)
    # From here on SIGTERM (kill, systemd, Slurm, Kubernetes) stops the command as Ctrl-C
    # does, also while the goal loads and the engine starts.
    guard = SigtermGuard()
    guard.hold()
    try:
        summaries, url = _run(goal_file, store, workers, inline, sampler, seed, workdir)
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
        out.print(f"[bold]{summary.goal}[/]: {summary.reason} "
                  f"({summary.trials} trials, {summary.wall_seconds:.1f} s)", highlight=False)
    with open_results(url) as results:
        _print_leaderboard(results, summaries[0].goal)


def _run(goal_file: Path, store: str | None, workers: int | None, inline: bool, sampler: str,
         seed: int, workdir: Path) -> tuple[list[Summary], str]:
    """Load the goal and run it under a live view; return how it ended and the store."""
    goal = load_goal(goal_file)
    url = resolve_url(store)
    view = _LiveView()
    with Live(view.render(), console=out, refresh_per_second=8, transient=False) as live:
        def show(progress: Progress) -> None:
            view.progress = progress
            live.update(view.render())

        def log(line: str) -> None:
            if WARNING in line:  # said once, above the live view, where it stays
                live.console.print(f"[yellow]{escape(line)}[/]", highlight=False)
            else:
                view.log(line)

        return run_goal(goal, url, "inline" if inline else None, workers=workers,
                        sampler=SAMPLERS[sampler](seed=seed), workdir=workdir,
                        on_progress=show, log=log), url


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
                    help="Configurations to list under the methods (0: none).", min=0)] = 10
                ) -> None:
    """Methods and configurations with 95% intervals, compared with the best baseline."""
    with open_results(store) as results:
        if json_:
            record = results.goal(goal)
            boards = {}
            for g in [record, *results.subgoals(record)]:
                frame = results.results(g.name)  # read once, used by both
                boards[g.name] = {**board_dict(results.leaderboard(g.name, frame=frame)),
                                  "ladder": results.ladder(g.name, frame=frame)}
            print(json.dumps(jsonable(boards), indent=2))
            return
        _print_leaderboard(results, goal, top=top)


@app.command()
def export(output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
           store: StoreOption = None, goal: GoalOption = None,
           format: Annotated[str, typer.Option(help="csv or parquet.")] = "csv") -> None:
    """Write the flat results table (one row per trial) as CSV or Parquet."""
    if format not in ("csv", "parquet"):
        err.print(f"[bold red]error:[/] --format must be csv or parquet, got {format!r}")
        raise typer.Exit(2)
    if output.is_dir() or not output.parent.is_dir():  # said before the store is read
        why = "it is a folder" if output.is_dir() else f"there is no folder {output.parent}"
        err.print(f"[bold red]error:[/] cannot write {escape(str(output))}: {escape(why)}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    with open_results(store) as results:
        frame = results.results(goal)
    try:
        if format == "csv":
            frame.to_csv(output, index=False)
        else:
            frame.to_parquet(output, index=False)
    except ImportError:
        err.print("[bold red]error:[/] Parquet needs pyarrow: pip install 'pursuit[parquet]'")
        raise typer.Exit(1) from None
    except OSError as error:  # no permission, a full disk
        err.print(f"[bold red]error:[/] cannot write {escape(str(output))}: "
                  f"{escape(error.strerror or str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(f"wrote {len(frame)} trials to {output}")


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
    from typing import NoReturn

    import pandas as pd
    from rich.markup import escape

    from pursuit.scaling._summary import study
    from pursuit.scaling._table import lines_of_csv

    def fail(message: str) -> NoReturn:  # messages quote the user's values: never markup
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)

    if plot is not None and not plot.parent.is_dir():  # said before the fit, not after it
        fail(f"cannot write the plot to {plot}: there is no folder {plot.parent}")
    try:
        frame = pd.read_csv(data)
    except (OSError, ValueError) as error:
        fail(f"cannot read {data}: {error}")
    try:
        result = study(frame, [c.strip() for c in x.split(",")], y, form=form,
                       holdout=holdout, holdout_column=holdout_column, target=target,
                       group=group, bootstrap=resamples, line=lines_of_csv(data))
    except ValueError as error:
        fail(str(error))
    summary = result.summary()
    if plot is not None:
        from pursuit.scaling._plot import plot as draw

        try:
            draw(result, plot, x_label=x, y_label=y)
        except (ImportError, ValueError) as error:
            fail(str(error))
    if json_:
        print(json.dumps(jsonable(summary), indent=2))
        return
    _print_fit(summary)


def _print_fit(summary: dict[str, Any]) -> None:
    """The law written out (a blend's members, their weights and why), its parameters,
    the held-out check and the forecast, in words when far past the data."""
    from rich.markup import escape

    def say(text: str) -> None:  # laws and column names may hold brackets: never markup
        out.print(text, highlight=False, markup=False)

    described = "" if summary["points_described"] == summary["points_fitted"] else \
        f"; the law describes the last {summary['points_described']}"
    if summary.get("points_pooled"):  # many rows: fitted as fewer, pooled points
        described += f"; fitted as at most {summary['points_pooled']} pooled points"
    out.print(f"[bold]{summary['form']}[/]: {escape(summary['law'])}  "
              f"({summary['points_fitted']} points{described}, "
              f"{summary['resamples']} bootstrap refits)", highlight=False)
    if summary["selection_scores"]:
        scores = ", ".join(f"{k} {fmt(v, 3)}" for k, v in sorted(
            summary["selection_scores"].items(), key=lambda kv: (math.isnan(kv[1]), kv[1])))
        say(f"  RMSLE of each candidate on the held-back largest x: {scores}")
    for line in members_lines(summary["members"], "on the held-back largest x"):
        say(line)
    table = Table(title=f"parameters, {summary['param_level']:.0%} bootstrap intervals",
                  title_justify="left")
    for column in ("parameter", "value", "interval"):
        table.add_column(column)
    for name, p in summary["params"].items():
        table.add_row(escape(name), fmt(p["value"], 5), escape(interval_text(p["lower"],
                                                                          p["upper"])))
    out.print(table)
    if summary["holdout"]:
        say(f"held out: {len(summary['holdout'])} points, RMSLE "
            f"{summary['holdout_rmsle']:.4g}; {summary['holdout_coverage']:.0%} inside the "
            f"{summary['prediction_level']:.0%} prediction interval")
    f = summary.get("forecast")
    if f and f["reachable"]:
        what = "compute C" if "x_is" in f else "x"
        far = f.get("extrapolation")  # far past the data: never a plain number
        say(f"target {f['target']:g} reached at {what} {'≈' if far else '='} {f['x']:.4g} "
            f"({f['level']:.0%} interval {interval_text(f['lower'], f['upper'])}; "
            f"{f['reachable_fraction']:.0%} of refits reach it)"
            + (f" — {far}: an extrapolation, not a measurement" if far else ""))
        if "params_opt" in f:
            say(f"  compute-optimal there: N = {f['params_opt']:.3g} parameters, "
                f"D = {f['tokens_opt']:.3g} tokens")
    elif f:
        say(f"target {f['target']:g} is not reachable under this law: {f['reason']}")


# ---------------------------------------------------------------------------- rendering
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
    out.print(f"[bold]{report['goal']}[/] — {report['statement']}".rstrip(" —"),
              highlight=False)
    out.print(f"  {report['metric']} ({report['direction']}), target {fmt(report['target'])}",
              highlight=False)
    out.print(f"  {_state_line(report)}", highlight=False)
    spent = f"{report['trials_total']}" + (f"/{budget['max_trials']}"
                                          if budget.get("max_trials") else "")
    out.print(f"  budget: {spent} trials, {report['compute_seconds']:.1f} compute s"
              + (f"/{budget['compute_seconds']:g}" if budget.get("compute_seconds") else ""),
              highlight=False)
    t = report["trials"]
    out.print(f"  trials: {t['completed']} completed, {t['pruned']} pruned, "
              f"{t['failed']} failed, {t['running']} running, {t['preempted']} preempted",
              highlight=False)
    best = report["best"]
    if best["best_method"] is None:
        out.print("  best: no configuration has the full seed count yet")
    else:
        verdict = "[green]target reached[/]" if report["reached"] else (
            f"gap to target {fmt(report['gap'])}" if report["target"] is not None else "")
        out.print(f"  best: {best['best_method']} {config_text(best['best_config'])}: "
                  f"{fmt(best['best_mean'])} {interval_text(best['best_lo'], best['best_hi'])} "
                  f"{claim_basis(best)}; {verdict}", highlight=False)
    _print_ladder(report["ladder"])
    for row in report["failed"][-5:]:
        out.print(f"  [red]failed[/] trial {row['trial_id']} ({row['method']}): "
                  f"{row['error'][0][:160]}", highlight=False)


def _print_leaderboard(results: Results, goal: str | None, *, top: int = 10) -> None:
    record = results.goal(goal)
    for child in [record, *results.subgoals(record)]:
        frame = results.results(child.name)
        board = results.leaderboard(child.name, frame=frame)
        spec = child.spec
        title = f"{child.name}: {spec['metric']} ({spec['direction']}), mean over seeds " \
                f"with 95% interval"
        table = Table(title=title, title_justify="left")
        for column in ("method", "n", "mean", "95% interval", "Δ vs best baseline [95%]",
                       "p (corrected)", "verdict", "trials (failed)", "best configuration"):
            table.add_column(column, overflow="fold")
        for row in board.methods.itertuples():
            diff = "—" if math.isnan(row.diff) else \
                f"{row.diff:+.3g} {interval_text(row.diff_lo, row.diff_hi)}"
            table.add_row(row.method + (" (baseline)" if row.baseline else ""), str(row.n),
                          fmt(row.mean), interval_text(row.lo, row.hi), diff,
                          fmt(row.p_holm, 2), row.verdict, f"{row.trials} ({row.failed})",
                          config_text(row.config))
        out.print(table)
        if top and len(board.configs):
            _print_configs(board, top)
        sources = [f"{r.method}: {r.source}" for r in board.methods.itertuples() if r.source]
        if sources:
            out.print("sources: " + "; ".join(sources), highlight=False, style="dim")
        p = board.progress
        if p["best_method"] is None:
            out.print(f"target {fmt(p['target'])}: no configuration has {p['seeds']} "
                      f"completed seeds yet", highlight=False)
        else:
            state = "reached" if p["reached"] else "not reached"
            out.print(f"target {fmt(p['target'])}: {state}; best claim {p['best_method']} "
                      f"{config_text(p['best_config'])} {fmt(p['best_mean'])} "
                      f"{interval_text(p['best_lo'], p['best_hi'])} {claim_basis(p)}; "
                      f"{p['trials']} trials, "
                      f"{p['compute_seconds']:.1f} compute s", highlight=False)
        _print_ladder(results.ladder(child.name, frame=frame))


def _print_ladder(ladder: list[dict[str, Any]]) -> None:
    for line in ladder_lines(ladder):  # laws and names may hold brackets: never markup
        out.print(line, highlight=False, markup=False)


def _print_configs(board: Leaderboard, top: int) -> None:
    table = Table(title=f"top {min(top, len(board.configs))} of {len(board.configs)} "
                        "configurations (full seed count first)", title_justify="left",
                  caption="a searched configuration's screening run chose it: its claim "
                          "rests on other seeds", caption_justify="left")
    for column in ("method", "configuration", "n", "mean", "95% t-interval",
                   "95% bootstrap", "best run", "claim rests on", "screening run"):
        table.add_column(column, overflow="fold")
    for row in board.configs.head(top).itertuples():
        table.add_row(row.method, config_text(row.config), str(row.n), fmt(row.mean),
                      interval_text(row.lo, row.hi), interval_text(row.boot_lo, row.boot_hi),
                      fmt(row.best), row.basis, fmt(row.screen))
    out.print(table)


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
