"""T16, hostile inputs: each is a clear error (or is handled), never a traceback, a hang
or a side effect. Goal files, method modules, store URLs and databases, output paths and
folder names, through the library and the command line (the same ``main`` users run)."""

import contextlib
import signal
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import raw_engine

import pursuit
from pursuit import GoalError, load_goal
from pursuit import cli as cli_module
from pursuit.store import MemoryStore, UnusableStoreError, open_store

GOAL = """\
name: hostile
metric: value
direction: maximize
budget: {max_trials: 4}
methods: [sample_methods:quadratic]
"""

# 414 bytes that stand for 9**9 'lol's: 9 levels, each 9 aliases of the one before.
BILLION_LAUGHS = ('a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
                  + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
                            for p, c in zip("abcdefgh", "bcdefghi", strict=True)))


@contextlib.contextmanager
def within(seconds):
    """Fail instead of hanging when the block runs past ``seconds``."""
    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def pursuit_cli(monkeypatch, capsys, tmp_path):
    """Run the ``pursuit`` command in this process: (exit status, what it wrote to stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PURSUIT_STORE", raising=False)

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["pursuit", *map(str, args)])
        with within(60), pytest.raises(SystemExit) as exited:
            cli_module.main()
        return exited.value.code, capsys.readouterr().err

    return invoke


def one_line(stderr, *words):
    assert "Traceback" not in stderr
    assert stderr.strip().count("\n") == 0, stderr
    for word in words:
        assert word in stderr, stderr
    return True


def make_store(path):
    """A SQLite store holding goal 'g' (no trials)."""
    store = open_store(str(path))
    store.ensure_goal("g", {"metric": "m", "direction": "minimize"})
    store.close()
    return path


def tables(url):
    engine = raw_engine(url)
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    return names


# ------------------------------------------------------------------------ goal files
def test_a_billion_laughs_goal_file_is_refused_in_well_under_a_second(tmp_path):
    path = tmp_path / "goal.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.perf_counter()
    with within(10), pytest.raises(GoalError) as caught:
        load_goal(path)
    assert time.perf_counter() - started < 1.0
    assert str(caught.value).startswith(f"{path}:5: alias *d takes the goal past 10,000 "
                                        "values repeated by aliases")


def test_an_alias_that_nests_a_goal_too_deep_is_refused():
    deep = "[" * 60 + "]" * 60
    text = f"a: &a {deep}\nb: {'[' * 60}*a{']' * 60}\n"
    with within(10), pytest.raises(GoalError, match="<goal>:2: alias \\*a nests the goal more "
                                                    "than 100 levels deep"):
        pursuit.goal.parse_goal(text)


@pytest.mark.parametrize("body, words", [
    ("import sys\nsys.exit(5)\n", ["'exiting'", "it called sys.exit(5)"]),
    ("raise SystemExit('no GPU here')\n", ["'exiting'", "sys.exit('no GPU here')"]),
    ("raise KeyboardInterrupt\n", ["'exiting'", "KeyboardInterrupt"]),
], ids=["sys.exit", "SystemExit", "KeyboardInterrupt"])
def test_a_method_module_that_exits_while_importing_is_a_clear_error(
        tmp_path, pursuit_cli, body, words):
    (tmp_path / "exiting.py").write_text(body)
    (tmp_path / "goal.yaml").write_text(GOAL.replace("sample_methods:quadratic",
                                                     "exiting:method"))
    try:
        with pytest.raises(GoalError) as caught:
            load_goal(tmp_path / "goal.yaml")
    except KeyboardInterrupt:  # escaping, it would stop the whole test session
        pytest.fail("the module's KeyboardInterrupt escaped load_goal")
    assert "goal.yaml:5: cannot import module 'exiting'" in str(caught.value)
    status, stderr = pursuit_cli("run", "goal.yaml", "--inline")
    assert status == 2 and one_line(stderr, "goal.yaml:5: cannot import module", *words)


@pytest.mark.parametrize("name", ["[/x]", "[bold]x", "x[/]"])
def test_an_error_quoting_markup_is_printed_as_text(tmp_path, pursuit_cli, name):
    (tmp_path / "goal.yaml").write_text(GOAL.replace("name: hostile", f"name: '{name}'"))
    status, stderr = pursuit_cli("run", "goal.yaml", "--inline")
    assert status == 2 and one_line(stderr, "goal.yaml:1: field 'name'", name)


def test_the_cli_refuses_a_billion_laughs_and_deep_nesting_with_status_2(
        tmp_path, pursuit_cli):
    (tmp_path / "laughs.yaml").write_text(BILLION_LAUGHS)
    (tmp_path / "deep.yaml").write_text(GOAL + "statement: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "latin1.yaml").write_bytes(GOAL.replace("hostile", "café").encode("latin-1"))
    for file, words in [("laughs.yaml", ["laughs.yaml:5: alias *d"]),
                        ("deep.yaml", ["deep.yaml:6: nested more than 100 levels deep"]),
                        ("latin1.yaml", ["latin1.yaml:1: not UTF-8 text: byte 0xe9"])]:
        status, stderr = pursuit_cli("run", file, "--inline")
        assert status == 2 and one_line(stderr, *words)
    assert not (tmp_path / "pursuit.db").exists()


# ------------------------------------------------------------------------ store URLs
@pytest.mark.parametrize("url", ["foo://bar/baz", "mysql://u:s3cret@h/db",
                                 "postgres://u:s3cret@h/db", "postgresql://u:s3cret@h:port/db"])
def test_an_unsupported_or_malformed_store_url_says_what_is_supported(
        tmp_path, pursuit_cli, url):
    with pytest.raises(UnusableStoreError) as caught:
        open_store(url)
    assert "s3cret" not in str(caught.value)
    (tmp_path / "goal.yaml").write_text(GOAL)
    for command in (["status"], ["leaderboard"], ["export", "-o", "x.csv"],
                    ["run", "goal.yaml", "--inline"]):
        status, stderr = pursuit_cli(*command, "--store", url)
        assert status == 2 and one_line(stderr)
        assert "s3cret" not in stderr
        if "port" not in url:
            assert "sqlite:///path" in stderr and "postgresql://" in stderr


@pytest.mark.parametrize("url", ["memory", "memory:", "sqlite://", "sqlite:///:memory:"])
def test_a_store_in_memory_is_refused_by_the_command_line(tmp_path, pursuit_cli,
                                                          monkeypatch, url):
    """A store in memory ends with the command, so the CLI refuses it before running;
    a Python program still gets one (it can read it while it lasts)."""
    (tmp_path / "goal.yaml").write_text(GOAL)
    for command in (["run", "goal.yaml", "--inline"], ["status"], ["leaderboard"],
                    ["export", "-o", "x.csv"]):
        status, stderr = pursuit_cli(*command, "--store", url)
        assert status == 2 and one_line(stderr, "ends with the program that makes it")
    monkeypatch.setenv("PURSUIT_STORE", url)
    status, stderr = pursuit_cli("run", "goal.yaml", "--inline")
    assert status == 2 and one_line(stderr, "store in memory")
    assert not list(tmp_path.glob("*.db"))
    if url.startswith("memory"):
        assert isinstance(open_store(url), MemoryStore)


# ------------------------------------------------------------------ what is at the URL
def test_readers_never_make_a_store(tmp_path, pursuit_cli):
    typo = tmp_path / "typo.db"
    for command in (["status"], ["leaderboard"], ["leaderboard", "--json"],
                    ["export", "-o", "x.csv"]):
        status, stderr = pursuit_cli(*command, "--store", typo)
        assert status == 2 and one_line(stderr, f"there is no store at {typo}")
    with pytest.raises(UnusableStoreError, match="no store at"):
        pursuit.open(str(typo))
    status, stderr = pursuit_cli("status")  # the default, ./pursuit.db
    assert status == 2 and one_line(stderr, "there is no store at pursuit.db")
    assert not list(tmp_path.iterdir())


def test_readers_never_make_a_store_in_an_empty_database(sql_url):
    """An empty file (or PostgreSQL schema) stays empty when read."""
    if sql_url.startswith("sqlite"):
        Path(sql_url.removeprefix("sqlite:///")).touch()
    with pytest.raises(UnusableStoreError, match="no store at .*holds no Pursuit tables"):
        pursuit.open(sql_url)
    assert tables(sql_url) == set()
    open_store(sql_url).close()  # a writer makes one there
    assert "goals" in tables(sql_url)
    with pursuit.open(sql_url) as results:
        assert results.goals() == []


def test_another_programs_database_is_refused_naming_its_tables(tmp_path, pursuit_cli,
                                                                 sql_url):
    engine = raw_engine(sql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    engine.dispose()
    for create in (True, False):
        with pytest.raises(UnusableStoreError, match=r"not a Pursuit store: it holds tables "
                                                     r"that are not Pursuit's \(customers, "
                                                     r"invoices\)"):
            open_store(sql_url, create=create)
    (tmp_path / "goal.yaml").write_text(GOAL)
    status, stderr = pursuit_cli("run", "goal.yaml", "--inline", "--store", sql_url)
    assert status == 2 and one_line(stderr, "customers, invoices")
    assert tables(sql_url) == {"customers", "invoices"}  # nothing of Pursuit's added


def test_a_store_written_by_a_newer_pursuit_says_upgrade(tmp_path, pursuit_cli, sql_url):
    open_store(sql_url).close()
    engine = raw_engine(sql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(UnusableStoreError, match="written by a newer Pursuit"):
        open_store(sql_url)
    (tmp_path / "goal.yaml").write_text(GOAL)
    for command in (["status"], ["leaderboard"], ["export", "-o", "x.csv"],
                    ["run", "goal.yaml", "--inline"]):
        status, stderr = pursuit_cli(*command, "--store", sql_url)
        assert status == 2 and one_line(stderr, "written by a newer Pursuit", "upgrade Pursuit")


def test_a_store_path_that_is_a_folder_or_in_no_folder_is_a_clear_error(tmp_path,
                                                                         pursuit_cli):
    (tmp_path / "goal.yaml").write_text(GOAL)
    status, stderr = pursuit_cli("run", "goal.yaml", "--inline", "--store", tmp_path)
    assert status == 2 and one_line(stderr, f"{tmp_path} is a folder, not a store")
    missing = tmp_path / "no" / "such" / "r.db"
    status, stderr = pursuit_cli("run", "goal.yaml", "--inline", "--store", missing)
    assert status == 2 and one_line(stderr, f"there is no folder {missing.parent}")


# ------------------------------------------------------------------ export, init
def test_export_to_a_missing_folder_or_to_a_folder_is_a_clear_error(tmp_path, pursuit_cli):
    db = make_store(tmp_path / "r.db")
    for output, why in [("/no/such/dir/x.csv", "there is no folder /no/such/dir"),
                        (tmp_path, "it is a folder")]:
        for fmt in ("csv", "parquet"):
            status, stderr = pursuit_cli("export", "--store", db, "-o", output,
                                         "--format", fmt)
            assert status == 2 and one_line(stderr, f"cannot write {output}: {why}")


@pytest.mark.parametrize("folder, name", [
    ("café", "cafe"), ("my goal", "my-goal"), ("yes", "yes"), ("2024", "2024"),
    ("1.5", "1.5"), (".hidden", "hidden"), ("日本", "goal"), ("x" * 120, "x" * 100),
])
def test_init_writes_a_goal_name_that_runs(tmp_path, pursuit_cli, folder, name):
    status, _ = pursuit_cli("init", folder)
    assert status == 0
    goal = load_goal(tmp_path / folder / "goal.yaml")
    assert goal.name == name
