"""The terminal as a user meets it: tables that fit 80 columns and files, with no number
split; text in square brackets shown as written; export formats from the file name;
samplers and pruners checked before anything runs and chosen in goal files; learning
curves, single trials and the list of trials; the version; a script without the
``__main__`` guard told so, once."""

import importlib.metadata
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pandas as pd
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

import pursuit
from pursuit import Choice, Float, Int
from pursuit.cli import app
from pursuit.overview import config_text, fmt, interval_text
from pursuit.store import open_store

HERE = Path(__file__).parent
runner = CliRunner()
BRACKETS = "out of memory on [cuda:0] [bold]x[/] while allocating"


@pursuit.method(source="Breiman 2001 [random forests]", baseline=True)
def random_forest_classifier(trial, *, n_estimators=Int(10, 500, default=100),
                             max_features=Choice(["sqrt", "[log2]"], default="sqrt"),
                             min_samples_leaf=Int(1, 10, default=1)):
    """Accuracy with many digits, a curve of two metrics, and a FLOP count."""
    base = 0.91234567 - 0.0019 * trial.seed + 1e-5 * n_estimators - 1e-3 * min_samples_leaf
    for step in range(6):
        trial.report(step, accuracy=base - 0.1 / (step + 1), loss=1.0 / (step + 1))
    trial.report_cost(flops=1.234e9 * n_estimators)
    return base


@pursuit.method(source="Cox 1958", baseline=True)
def logistic_regression(trial, *, C=Float(1e-3, 1e3, log=True, default=1.0)):
    return 0.8812345 - 0.0123 * abs(math.log10(C)) + 0.00031 * trial.seed


@pursuit.method(source="ours")
def breaks_on_the_gpu(trial):
    raise RuntimeError(BRACKETS)


@pursuit.method(source="ours")
def noisy(trial):
    return 0.5 + 0.01 * ((trial.seed * 7919) % 13)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A finished goal: two baselines searched and confirmed, one method that fails."""
    folder = tmp_path_factory.mktemp("terminal")
    goal = pursuit.Goal(name="forest", statement="find the [best] forest", metric="accuracy",
                        direction="maximize", target=0.99, budget={"max_trials": 30},
                        methods=[random_forest_classifier, logistic_regression,
                                 breaks_on_the_gpu])
    db = str(folder / "forest.db")
    pursuit.run(goal, db, "inline", workdir=folder / "work")
    return db


def cli(*args, columns=80):
    return runner.invoke(app, [*map(str, args)], env={"COLUMNS": str(columns)})


@pytest.fixture
def pursuit_main(monkeypatch, capsys):
    """The command as users run it (``main``, which turns errors into exit statuses):
    (exit status, stdout, stderr)."""
    from pursuit import cli as cli_module

    monkeypatch.delenv("PURSUIT_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "80")

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["pursuit", *map(str, args)])
        with pytest.raises(SystemExit) as exited:
            cli_module.main()
        captured = capsys.readouterr()
        return exited.value.code, captured.out, captured.err

    return invoke


NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]\d+)?(?![\w.])")


def assert_fits_and_keeps_numbers_whole(text, reference, width):
    """Every line fits ``width``, and every number printed is one the unwrapped
    ``reference`` prints too: a number split across lines leaves pieces it has not."""
    for line in text.splitlines():
        assert cell_len(line) <= width, f"{cell_len(line)} > {width}: {line!r}"
    whole = set(NUMBER.findall(reference)) | {str(width)}
    pieces = set(NUMBER.findall(text)) - whole
    assert not pieces, f"numbers not in the unwrapped output: {pieces}\n{text}"


# ----------------------------------------------------------------- tables that fit
@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("command", [["leaderboard"], ["status"], ["trials"],
                                     ["trials", "--state", "failed"], ["show", "1"]])
def test_every_table_fits_the_width_and_keeps_numbers_whole(store, command, width):
    result = cli(*command, "--store", store, columns=width)
    assert result.exit_code == 0, result.output
    wide = ["--wide"] if command[0] in ("leaderboard", "trials") else []
    reference = cli(*command, "--store", store, *wide, columns=1000).output
    assert_fits_and_keeps_numbers_whole(result.stdout, reference, width)


def test_the_leaderboard_at_80_columns_shows_each_claim_whole_and_names_what_it_hides(store):
    text = cli("leaderboard", "--store", store).stdout
    with pursuit.open(store) as results:
        board = results.leaderboard()
    lines = text.splitlines()
    for row in board.methods.itertuples():
        if row.n:  # its mean and interval on the line that names it
            line = next(line for line in lines if line.startswith(row.method))
            assert fmt(row.mean) in line.split() and interval_text(row.lo, row.hi) in line
    assert "not shown at 80 columns: Δ 95% interval, p (corrected)" in " ".join(text.split())
    assert "--wide shows every column" in " ".join(text.split())


def test_wide_shows_every_column_each_row_on_one_line(store):
    text = cli("leaderboard", "--store", store, "--wide").stdout
    with pursuit.open(store) as results:
        board = results.leaderboard()
    for header in ("p (corrected)", "Δ 95% interval", "trials (failed)", "best configuration",
                   "claim rests on", "screening run"):
        assert header in text
    assert "not shown" not in text
    lines = text.splitlines()
    for row in board.methods.itertuples():
        line = next(line for line in lines if line.startswith(row.method))
        for cell in (fmt(row.mean), interval_text(row.lo, row.hi), fmt(row.p_holm, 2),
                     f"{row.trials} ({row.failed})", config_text(row.config)):
            assert cell in line, (cell, line)


def test_a_run_written_to_a_file_reads_at_80_columns(tmp_path):
    """`pursuit run ... > log`: a line per stage while it runs, then the leaderboard, in
    80 columns, with no live view drawn into the file."""
    (tmp_path / "goal.yaml").write_text(
        "name: piped\nmetric: value\ndirection: maximize\ntarget: 0.5\nseeds: 3\n"
        "budget: {max_trials: 24}\nmethods: [sample_methods:quadratic, "
        "sample_methods:constant]\n")
    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "80"}
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run([sys.executable, "-m", "pursuit", "run", "goal.yaml", "--store",
                               "r.db", "--workers", "1"], cwd=tmp_path, env=env, stdout=log,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "log").read_text()
    assert text.startswith("piped: stage baselines")
    assert "piped: target reached: quadratic value" in text and "━" not in text
    assert all(cell_len(line) <= 80 for line in text.splitlines())
    reference = runner.invoke(app, ["leaderboard", "--store", str(tmp_path / "r.db"),
                                    "--wide"], env={"COLUMNS": "1000"}).stdout
    board = text[text.index("piped: value (maximize)"):]  # as `pursuit leaderboard` prints
    assert_fits_and_keeps_numbers_whole(board, reference, 80)


@pytest.fixture(scope="module")
def eight_seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eight")
    goal = pursuit.Goal(name="eight", metric="accuracy", direction="maximize", seeds=8,
                        budget={"max_trials": 8}, methods=[noisy])
    db = str(folder / "eight.db")
    pursuit.run(goal, db, "inline", workdir=folder / "work")
    return db


def test_the_bootstrap_column_is_shown_only_where_it_has_values(store, eight_seeds):
    assert "bootstrap" not in cli("leaderboard", "--store", store, "--wide").stdout
    with pursuit.open(eight_seeds) as results:
        [row] = list(results.leaderboard().configs.itertuples())
    assert row.n == 8 and not math.isnan(row.boot_lo)
    text = cli("leaderboard", "--store", eight_seeds, "--wide").stdout
    assert "95% bootstrap" in text and interval_text(row.boot_lo, row.boot_hi) in text


# ------------------------------------------------------------ square brackets
def test_help_keeps_text_in_square_brackets():
    text = " ".join(cli("run", "--help", columns=200).stdout.split())
    assert "Worker processes [default: one per core]." in text
    assert "[default: $PURSUIT_STORE or ./pursuit.db]" in text
    assert "[default: the goal file's sampler, else tpe]" in text


def test_user_strings_in_square_brackets_are_printed_as_written(store):
    def flat(*args):
        return " ".join(cli(*args, "--store", store, columns=200).stdout.split())

    assert "forest — find the [best] forest" in flat("status")
    assert f"RuntimeError: {BRACKETS}" in flat("status")
    assert "Breiman 2001 [random forests]" in flat("leaderboard")
    assert f"RuntimeError: {BRACKETS}" in flat("trials", "--state", "failed")
    with pursuit.open(store) as results:
        frame = results.results()
    failed = int(frame[frame["state"] == "failed"]["trial_id"].iloc[0])
    assert f"RuntimeError: {BRACKETS}" in flat("show", failed)
    log2 = frame[frame["dial.max_features"] == "[log2]"]
    if len(log2):
        assert "max_features=[log2]" in flat("trials")


def test_the_parquet_hint_names_the_extra_in_full(store, tmp_path, monkeypatch):
    # as where pyarrow (and fastparquet) are not installed: importing them fails
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    result = cli("export", "--store", store, "-o", tmp_path / "r.parquet")
    assert result.exit_code == 1
    assert "error: Parquet needs pyarrow: pip install 'pursuit[parquet]'" in result.output


# ------------------------------------------------------------------------ export
def test_export_takes_the_format_from_the_file_name(store, tmp_path):
    with pursuit.open(store) as results:
        frame = results.results()
    for name, reader in [("r.parquet", pd.read_parquet), ("r.pq", pd.read_parquet),
                         ("r.csv", pd.read_csv), ("results", pd.read_csv)]:
        result = cli("export", "--store", store, "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        written = reader(tmp_path / name)
        assert list(written["trial_id"]) == list(frame["trial_id"]), name
    assert (tmp_path / "r.parquet").read_bytes()[:4] == b"PAR1"
    # --format wins over the name
    result = cli("export", "--store", store, "-o", tmp_path / "x.parquet", "--format", "csv")
    assert result.exit_code == 0
    assert (tmp_path / "x.parquet").read_text().startswith("trial_id,")
    # a suffix that says neither is refused, before anything is written
    result = cli("export", "--store", store, "-o", tmp_path / "r.json")
    assert result.exit_code == 2 and not (tmp_path / "r.json").exists()
    assert "cannot tell the format of" in result.output and "--format" in result.output


@pytest.mark.parametrize("name", ["curves.csv", "curves.parquet"])
def test_export_curves_gives_every_point_of_every_trial(store, tmp_path, name):
    result = cli("export", "--store", store, "--curves", "-o", tmp_path / name)
    assert result.exit_code == 0, result.output
    written = (pd.read_csv if name.endswith("csv") else pd.read_parquet)(tmp_path / name)
    assert list(written.columns) == ["trial_id", "attempt", "step", "metric", "value",
                                     "method", "stage", "seed", "config"]
    raw = open_store(store, create=False)
    try:
        goal_id = raw.goal_id("forest")
        expected = [(t.id, *point, t.method, t.stage, t.seed, t.config)
                    for t in raw.trials(goal_id) for point in raw.curve(t.id)]
    finally:
        raw.close()
    assert len(expected) > 100
    assert [tuple(row) for row in written.itertuples(index=False)] == expected
    with pursuit.open(store) as results:
        frame = results.curves()
    assert [tuple(row) for row in frame.itertuples(index=False)] == expected


# -------------------------------------------------------------- sampler and pruner
GOAL = """\
name: searched
metric: value
direction: maximize
seeds: 2
budget: {max_trials: 16}
methods: [sample_methods:curve]
"""


def run_inline(folder, goal_text, *options):
    folder.mkdir(exist_ok=True)
    (folder / "goal.yaml").write_text(goal_text)
    db = folder / "r.db"
    result = runner.invoke(app, ["run", str(folder / "goal.yaml"), "--store", str(db),
                                 "--inline", "--workdir", str(folder / "work"), *options],
                           env={"COLUMNS": "200"})
    return result, db


def searched(db):
    with pursuit.open(str(db)) as results:
        frame = results.results()
    rows = frame[frame["stage"] == "search"]
    return rows, [json.loads(c) for c in rows["config"]]


@pytest.mark.skipif(importlib.util.find_spec("cmaes") is not None,
                    reason="cmaes is installed here")
def test_a_sampler_whose_package_is_missing_is_refused_before_anything_runs(
        tmp_path, pursuit_main):
    result, db = run_inline(tmp_path / "cli", GOAL, "--sampler", "cmaes")
    assert result.exit_code == 2 and not db.exists()
    assert result.stderr.strip() == ("error: --sampler cmaes: the cmaes sampler needs the "
                                     "package cmaes, which is not installed: pip install cmaes")
    (tmp_path / "goal.yaml").write_text(GOAL + "sampler: cmaes\n")
    status, _, stderr = pursuit_main("run", tmp_path / "goal.yaml", "--store",
                                     tmp_path / "file.db", "--inline")
    assert status == 2 and not (tmp_path / "file.db").exists()
    assert stderr.startswith(f"error: {tmp_path / 'goal.yaml'}:7: field 'sampler.name'")
    assert stderr.rstrip().endswith("pip install cmaes (found 'cmaes')")
    # From Python, an Optuna object: refused before a goal or a trial is written.
    import sample_methods

    goal = pursuit.Goal(name="py", metric="value", direction="maximize",
                        methods=[sample_methods.curve])
    with pytest.raises(pursuit.PursuitError, match="pip install cmaes"):
        pursuit.run(goal, str(tmp_path / "py.db"), "inline",
                    sampler=optuna.samplers.CmaEsSampler(), workdir=tmp_path / "work")
    with pursuit.open(str(tmp_path / "py.db")) as results:
        assert results.goals() == []


def test_an_unknown_sampler_or_pruner_is_refused_naming_the_known_ones(tmp_path):
    for option, name in (("--sampler", "tpx"), ("--pruner", "medain")):
        result, db = run_inline(tmp_path / name, GOAL, option, name)
        assert result.exit_code == 2 and not db.exists()
        assert f"error: {option} {name}: unknown" in result.stderr
        assert "tpe, random, cmaes" in result.stderr or "median, percentile" in result.stderr


def test_the_goal_files_pruner_stops_search_trials_and_the_command_line_overrides_it(
        tmp_path):
    # ThresholdPruner: a curve below `lower` at a step is stopped there.
    goal = GOAL + "pruner: {name: threshold, args: {lower: 100.0}}\n"
    result, db = run_inline(tmp_path / "file", goal)
    assert result.exit_code == 0, result.output
    rows, _ = searched(db)
    assert len(rows) and set(rows["state"]) == {"pruned"}
    result, db = run_inline(tmp_path / "cli", goal, "--pruner", "none")
    assert result.exit_code == 0, result.output
    rows, _ = searched(db)
    assert len(rows) and "pruned" not in set(rows["state"])


def test_the_goal_files_sampler_and_the_command_lines_propose_alike(tmp_path):
    """The same sampler and seed, named in the file or on the command line, propose the
    same dials; another seed proposes others."""
    _, from_file = run_inline(tmp_path / "file",
                              GOAL + "sampler: {name: random, args: {seed: 7}}\n")
    _, from_cli = run_inline(tmp_path / "cli", GOAL, "--sampler", "random", "--seed", "7")
    _, reseeded = run_inline(tmp_path / "seed", GOAL + "sampler: {name: random, args: "
                                                       "{seed: 7}}\n", "--seed", "8")
    _, default = run_inline(tmp_path / "tpe", GOAL)
    proposals = [searched(db)[1] for db in (from_file, from_cli, reseeded, default)]
    assert proposals[0] and proposals[0] == proposals[1]
    assert proposals[2] != proposals[0] and proposals[3] != proposals[0]


# ---------------------------------------------------------- version, trials, show
def test_version():
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pursuit {pursuit.__version__}"
    assert pursuit.__version__ == importlib.metadata.version("pursuit")


def test_trials_lists_each_trial_and_why_it_failed(store):
    with pursuit.open(store) as results:
        frame = results.results()
    text = cli("trials", "--store", store, "--wide", columns=300).stdout
    lines = text.splitlines()
    for row in frame.itertuples():
        line = next(line for line in lines if line.split()[:1] == [str(row.trial_id)])
        assert row.method in line and row.stage in line and row.state in line
        assert config_text(row.config) in line and fmt(row.accuracy) in line.split()
        if row.state == "failed":
            assert line.rstrip().endswith(f"RuntimeError: {BRACKETS}")
    failed = cli("trials", "--store", store, "--state", "failed", "--json")
    records = json.loads(failed.stdout)
    assert [r["trial_id"] for r in records] == \
        list(frame[frame["state"] == "failed"]["trial_id"])
    assert all(r["error"].rstrip().endswith(BRACKETS) and r["value"] is None
               for r in records)
    everything = json.loads(cli("trials", "--store", store, "--json").stdout)
    assert [r["trial_id"] for r in everything] == list(frame["trial_id"])
    assert everything[0]["dials"] == json.loads(frame["config"].iloc[0])
    bad = cli("trials", "--store", store, "--state", "finished")
    assert bad.exit_code == 2 and "--state must be one of" in bad.output


def test_show_gives_one_trial_with_its_curve_and_costs(store):
    raw = open_store(store, create=False)
    try:
        trial = next(t for t in raw.trials(raw.goal_id("forest"))
                     if t.method == "random_forest_classifier" and t.stage == "search")
        curve = raw.curve(trial.id)
    finally:
        raw.close()
    report = json.loads(cli("show", trial.id, "--store", store, "--json").stdout)
    assert report["dials"] == trial.dials and report["seed"] == trial.seed
    assert report["stage"] == "search" and report["state"] == trial.state.value
    accuracy = [(s, v) for a, s, m, v in curve if m == "accuracy"]
    [summary] = [c for c in report["curve"] if c["metric"] == "accuracy"]
    assert summary["points"] == len(accuracy) == 6
    assert (summary["first"]["step"], summary["first"]["value"]) == accuracy[0]
    assert (summary["last"]["step"], summary["last"]["value"]) == accuracy[-1]
    assert summary["best"]["value"] == max(v for _, v in accuracy)
    assert report["costs"]["flops"] == trial.costs["flops"]
    assert report["costs"]["wall_seconds"] == trial.wall_seconds
    text = " ".join(cli("show", trial.id, "--store", store).stdout.split())
    assert f"trial {trial.id}: random_forest_classifier (baseline)" in text
    assert f"seed {trial.seed}" in text and config_text(trial.dials) in text
    assert (f"curve of accuracy (attempt 1): 6 points; first step 0: {fmt(accuracy[0][1])}; "
            f"last step 5: {fmt(accuracy[-1][1])}; best step 5") in text
    assert f"flops {fmt(trial.costs['flops'])}" in text


def test_show_prints_an_error_as_the_method_raised_it(store):
    raw = open_store(store, create=False)
    try:
        trial = next(t for t in raw.trials(raw.goal_id("forest")) if t.state == "failed")
    finally:
        raw.close()
    text = cli("show", trial.id, "--store", store, columns=60).stdout
    quoted = text.split("  error:\n", 1)[1]
    assert quoted == textwrap.indent(trial.error.rstrip(), "    ") + "\n"


def test_an_unknown_trial_is_a_clear_error(store):
    result = cli("show", 99999, "--store", store)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no trial 99999 in this store; `pursuit trials` " \
                                    "lists them"
    assert cli("show", "first", "--store", store).exit_code == 2


# ---------------------------------------------------------------------- status
def test_status_writes_configurations_as_the_leaderboard_does(store):
    text = cli("status", "--store", store, columns=200).stdout
    with pursuit.open(store) as results:
        best = results.leaderboard().progress
    assert f"best: {best['best_method']} {config_text(best['best_config'])}: " in text
    assert "{" not in text


def test_status_where_there_is_no_store_says_so_and_makes_none(tmp_path, monkeypatch,
                                                               pursuit_main):
    monkeypatch.chdir(tmp_path)
    for command in (["status"], ["trials"], ["show", "1"], ["export", "--curves", "-o",
                                                               "c.csv"]):
        status, _, stderr = pursuit_main(*command)
        assert status == 2, command
        assert stderr.startswith("error: there is no store at pursuit.db: no such file")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------- a script without the guard
SCRIPT = """\
import pursuit
from pursuit import Int


@pursuit.method(source="x", baseline=True)
def knn(trial, *, k=Int(1, 30, default=5)):
    return 1.0 / k


goal = pursuit.Goal(name="digits", metric="accuracy", direction="maximize",
                    budget={"max_trials": 6}, methods=[knn])
"""


@pytest.mark.parametrize("tail, status, words", [
    ('pursuit.run(goal, store="s.db", workers=1)\n', 1,
     ["line 12, starts worker processes outside `if __name__ == '__main__':`",
      "each worker starts by running script.py again"]),
    # A guard that does not keep a worker out: the worker stops as it starts, silently.
    ('if __name__ != "__fake__":\n    pursuit.run(goal, store="s.db", workers=1)\n', 1,
     ["each worker process ran the main script again as it started and reached "
      "pursuit.run: put the call under `if __name__ == '__main__':`"]),
    ('if __name__ == "__main__":\n    pursuit.run(goal, store="s.db", workers=1)\n', 0, []),
], ids=["no guard", "a wrong guard", "guarded"])
def test_a_script_without_the_main_guard_gets_one_clear_error(tmp_path, tail, status, words):
    (tmp_path / "script.py").write_text(SCRIPT + tail)
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(HERE)})
    assert done.returncode == status, done.stderr
    if status:
        assert done.stderr.count("Traceback") == 1 and "spawn_main" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("pursuit.exceptions.WorkerError: ")
        for word in words:
            assert word in last
    else:
        assert done.stderr == ""
        with pursuit.open(str(tmp_path / "s.db")) as results:
            assert len(results.results()) == 6


def test_a_bad_executor_option_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "goal.yaml").write_text(GOAL)
    for options, said in ((["--executor", "slurm"], "--executor: Input should be"),
                          (["--num-gpus", "1"], "are Ray's: give them with name: ray"),
                          (["--executor", "ray", "--num-cpus", "0"],
                           "--num-cpus: Input should be greater than 0")):
        db = tmp_path / "r.db"
        result = runner.invoke(app, ["run", str(tmp_path / "goal.yaml"), "--store", str(db),
                                     *options])
        assert result.exit_code == 2 and not db.exists(), (options, result.output)
        assert said in result.stderr, result.stderr
