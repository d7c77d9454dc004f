import os
import time
import uuid
from pathlib import Path

import pytest

from pursuit.store import MemoryStore, open_store

POSTGRES = os.environ.get("PURSUIT_TEST_POSTGRES")
REQUIRE_POSTGRES = os.environ.get("PURSUIT_REQUIRE_POSTGRES") == "1"


def raw_engine(url):
    """A plain SQLAlchemy engine on a store's URL, for a test to look beneath the store."""
    import sqlalchemy as sa

    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def postgres_url():
    """A fresh schema in the test database, so every test starts from an empty store."""
    if not POSTGRES:
        if REQUIRE_POSTGRES:
            pytest.fail("PURSUIT_REQUIRE_POSTGRES is set but PURSUIT_TEST_POSTGRES is not")
        pytest.skip("set PURSUIT_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = raw_engine(POSTGRES)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    joiner = "&" if "?" in POSTGRES else "?"
    return f"{POSTGRES}{joiner}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "memory":
        return "memory:"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pursuit.db'}"
    return postgres_url()


@pytest.fixture
def store(store_url):
    opened = MemoryStore() if store_url == "memory:" else open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pursuit.db'}"
    return postgres_url()


def alive(pid):
    """Whether the process runs (a zombie waiting to be reaped does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def wait_gone(pids, seconds=5.0):
    """The pids still alive after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]
