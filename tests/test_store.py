import pytest
import sqlalchemy as sa

from pursuit.store import open_store, resolve_url
from pursuit.testing import STORE_CHECKS


@pytest.mark.parametrize("check", STORE_CHECKS, ids=lambda c: c.__name__)
def test_store_conformance(store, check):
    check(store)


def test_plain_path_means_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("PURSUIT_STORE", raising=False)
    assert resolve_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_url(None) == "sqlite:///pursuit.db"
    monkeypatch.setenv("PURSUIT_STORE", "postgresql://u@h/db")
    assert resolve_url(None) == "postgresql://u@h/db"


def test_sqlite_uses_wal_and_migrates_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    open_store(url).close()
    open_store(url).close()  # the second open finds the schema at head and leaves it
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0006"
        tables = {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='table'")}
    engine.dispose()
    assert {"goals", "methods", "trials", "curve_points", "results"} <= tables


def test_database_errors_are_translated(tmp_path):
    from pursuit.exceptions import StoreError

    (tmp_path / "not-a-db").write_text("this is not a SQLite file" * 100)
    with pytest.raises(StoreError, match="opening the store"):
        open_store(f"sqlite:///{tmp_path / 'not-a-db'}")


def test_store_pickles_without_its_connections(tmp_path):
    import pickle

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    store.ensure_goal("g", {"metric": "m", "direction": "minimize"})
    copy = pickle.loads(pickle.dumps(store))
    assert [g.name for g in copy.goals()] == ["g"]


def old_store(tmp_path, revision, *rows):
    """A SQLite store left at an earlier schema ``revision``, holding goal 'old' and
    ``rows`` (SQL inserts written as that release wrote them)."""
    from alembic import command
    from alembic.config import Config

    from pursuit.store._sql import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.exec_driver_sql("INSERT INTO goals (name, spec, created_at) VALUES "
                             "('old', '{\"metric\": \"m\", \"direction\": \"minimize\"}', 0)")
        for row in rows:
            conn.exec_driver_sql(row)
    engine.dispose()
    return url


def test_a_database_at_the_first_schema_is_upgraded(tmp_path):
    """A store written by the first release opens, upgrades and keeps its goals."""
    store = open_store(old_store(tmp_path, "0001"))
    assert [g.name for g in store.goals()] == ["old"]
    assert store.start_run(store.goal_id("old"), "e") == 0.0
    store.close()


def test_runs_recorded_before_reasons_existed_read_as_unexplained(tmp_path):
    """A store at the second schema upgrades; its runs read back with no reason."""
    store = open_store(old_store(tmp_path, "0002",
                                 "INSERT INTO engine_runs VALUES ('e0', 1, 10.0, 25.0)"))
    goal_id = store.goal_id("old")
    [run] = store.runs(goal_id)
    assert (run.engine, run.started_at, run.last_seen, run.reason) == ("e0", 10.0, 25.0, None)
    assert store.start_run(goal_id, "e1") == 15.0
    store.end_run(goal_id, "e1", "budget spent")
    assert [r.reason for r in store.runs(goal_id)] == [None, "budget spent"]
    store.close()
