"""The SQL store: SQLite by default (a file, WAL), PostgreSQL for a team.

Database errors are translated to StoreError here and nowhere else.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from pursuit.exceptions import StoreError, UnusableStoreError
from pursuit.store import _models as m
from pursuit.store._base import (
    EngineRun,
    GoalRecord,
    RunningTrial,
    Store,
    TrialRecord,
    WriteBatch,
    WriteResult,
    config_key,
)
from pursuit.store._memory import check_same_question
from pursuit.trial import TrialState

MIGRATIONS = Path(__file__).parent / "migrations"
# Curve points keep the first write of duplicates (idempotent re-reports).
_INSERT_POINTS = {
    "sqlite": "INSERT OR IGNORE INTO curve_points (trial_id, attempt, metric, step, value) "
              "VALUES (?, ?, ?, ?, ?)",
    "postgresql": "INSERT INTO curve_points (trial_id, attempt, metric, step, value) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
}
# Arbitrary advisory-lock keys that belong to Pursuit: PostgreSQL's stand-in for the one
# write lock that a SQLite writer takes as it begins.
_PG_MIGRATION_LOCK = 7_210_331
_PG_GOALS_LOCK = 7_210_332
_PG_PLAN_LOCK = 7_210_333
# A trial's columns in the order ``_record`` unpacks them (tuples: a large goal reads fast).
_TRIALS = sa.select(
    m.trials.c.id, m.trials.c.goal_id, m.methods.c.name, m.trials.c.stage, m.trials.c.dials,
    m.trials.c.seed, m.trials.c.state, m.trials.c.attempt, m.trials.c.started_at,
    m.trials.c.finished_at, m.trials.c.wall_seconds, m.trials.c.cpu_seconds, m.trials.c.error,
).join(m.methods, m.methods.c.id == m.trials.c.method_id)
_RESULTS = sa.select(m.results.c.trial_id, m.results.c.kind, m.results.c.name,
                     m.results.c.value)
_STATES = {state.value: state for state in TrialState}
_CURVE_SAMPLE = sa.text(
    "SELECT max(step), avg(value), min(value), max(value) FROM ("
    " SELECT step, value, (row_number() OVER (ORDER BY step) - 1) * :points"
    " / count(*) OVER () AS bucket FROM curve_points"
    " WHERE trial_id = :trial AND attempt = :attempt AND metric = :metric"
    ") AS ranked GROUP BY bucket ORDER BY bucket")


def _to_db(value: float) -> float | None:
    return None if math.isnan(value) else value


def _from_db(value: float | None) -> float:
    return math.nan if value is None else value


class SQLStore(Store):
    """A store in a SQL database reached through SQLAlchemy."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """Open the store at ``url``, bringing its schema up to date; with ``create``,
        make one where there is none. Raises UnusableStoreError for what is no store of
        this Pursuit's: none there (when not creating), another program's database, a
        schema from a newer Pursuit."""
        self.url = url
        self._engine = _connect(url, create)
        self._writer = self._engine.execution_options(writes=True)
        self._method_ids: dict[tuple[int, str], int] = {}
        try:
            with self._translated("opening the store"):
                _migrate(self._writer, create)
        except BaseException:
            self._engine.dispose()  # a store refused leaves no connection open
            raise

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}  # connections never cross a process boundary

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as error:
            reason = getattr(error, "orig", None) or error
            hint = ""
            if any(words in str(reason) for words in ("disk is full", "disk I/O error",
                                                       "No space left")):
                hint = ("; is the disk full? What was written before this is kept: free "
                        "space and run the same command again to resume")
            raise StoreError(f"{doing} failed on {self._safe_url()}: {reason}{hint}") \
                from error

    def _safe_url(self) -> str:
        return sa.engine.make_url(self._engine.url).render_as_string(hide_password=True)

    def ensure_goal(self, name: str, spec: dict[str, Any], parent_id: int | None = None) -> int:
        with self._translated(f"recording goal {name!r}"), self._writer.begin() as conn:
            if conn.dialect.name == "postgresql":  # engines starting one goal at once
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_GOALS_LOCK})")
            row = conn.execute(sa.select(m.goals.c.id, m.goals.c.spec)
                               .where(m.goals.c.name == name)).first()
            if row is None:
                inserted = conn.execute(m.goals.insert().values(
                    name=name, parent_id=parent_id, spec=json.dumps(spec),
                    created_at=time.time())).inserted_primary_key
                assert inserted is not None
                goal_id = inserted[0]
            else:
                goal_id = row.id
                check_same_question(json.loads(row.spec), spec, name)
                conn.execute(m.goals.update().where(m.goals.c.id == goal_id)
                             .values(spec=json.dumps(spec)))
            known = {r.name for r in conn.execute(
                sa.select(m.methods.c.name).where(m.methods.c.goal_id == goal_id))}
            for method in spec.get("methods", []):
                if method["name"] not in known:
                    conn.execute(m.methods.insert().values(
                        goal_id=goal_id, name=method["name"], entry=method["entry"],
                        source=method.get("source"), baseline=bool(method.get("baseline")),
                        defaults=json.dumps(method.get("defaults", {}), sort_keys=True)))
            return int(goal_id)

    def goals(self) -> list[GoalRecord]:
        with self._translated("listing goals"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(m.goals).order_by(m.goals.c.id)).all()
        return [GoalRecord(r.id, r.name, r.parent_id, json.loads(r.spec)) for r in rows]

    def _method_id(self, conn: Connection, goal_id: int, name: str) -> int:
        key = (goal_id, name)
        if key not in self._method_ids:
            found = conn.execute(sa.select(m.methods.c.id).where(
                m.methods.c.goal_id == goal_id, m.methods.c.name == name)).scalar()
            if found is None:
                raise StoreError(f"goal {goal_id} has no method {name!r}")
            self._method_ids[key] = found
        return self._method_ids[key]

    def write(self, batch: WriteBatch) -> WriteResult:
        with self._translated("writing results"), self._writer.begin() as conn:
            return self._write(conn, batch)

    def _write(self, conn: Connection, batch: WriteBatch) -> WriteResult:
        now, refused, new_ids = time.time(), [], []
        # The database's clock for what other engines compare: heartbeats, starts, and
        # finishes (an engine reads what others finished since a time on this clock).
        clock = self._now(conn) if batch.new or batch.restarts or batch.outcomes else now
        if batch.new:
            rows = [{"goal_id": t.goal_id, "method_id": self._method_id(conn, t.goal_id, t.method),
                     "stage": t.stage, "dials": config_key(t.dials), "seed": t.seed,
                     "state": TrialState.RUNNING.value, "attempt": 1, "engine": batch.engine,
                     "heartbeat_at": clock, "started_at": now} for t in batch.new]
            exists = self._exist_already(conn, rows)
            fresh = [row for row, taken in zip(rows, exists, strict=True) if not taken]
            ids: Iterator[int] = iter(())
            if fresh:
                insert = m.trials.insert().returning(m.trials.c.id,
                                                     sort_by_parameter_order=True)
                ids = iter([r.id for r in conn.execute(insert, fresh)])
            new_ids = [None if taken else next(ids) for taken in exists]
        if batch.points:
            keys = {(p[0], p[1]) for p in batch.points}
            live = self._running_attempts(conn, keys)
            refused += [f"curve points for trial {tr} attempt {a}: not running"
                        for tr, a in sorted(keys - live)]
            points = [(tr, a, mt, s, _to_db(v)) for tr, a, s, mt, v in batch.points
                      if (tr, a) in live]
            if points:
                self._raw(conn, _INSERT_POINTS[conn.dialect.name], points, many=True)
        results = []
        for out in batch.outcomes:
            if not self._raw(conn, "UPDATE trials SET state = ?, finished_at = ?, "
                             "wall_seconds = ?, cpu_seconds = ?, error = ? WHERE id = ? AND "
                             "attempt = ? AND state = 'running'",
                             (out.state.value, clock, out.wall_seconds, out.cpu_seconds,
                              out.error, out.trial_id, out.attempt)):
                refused.append(f"outcome of trial {out.trial_id} attempt {out.attempt}: "
                               "not running")
                continue
            results += [(out.trial_id, "metric", k, _to_db(v)) for k, v in out.values.items()]
            results += [(out.trial_id, "cost", k, _to_db(v)) for k, v in out.costs.items()]
        if results:
            self._raw(conn, "INSERT INTO results (trial_id, kind, name, value) "
                      "VALUES (?, ?, ?, ?)", results, many=True)
        for trial_id, attempt, why in batch.preempted:
            if not self._raw(conn, "UPDATE trials SET state = 'preempted', error = ? "
                             "WHERE id = ? AND attempt = ? AND state = 'running'",
                             (why, trial_id, attempt)):
                refused.append(f"preemption of trial {trial_id}: not running")
        for trial_id, attempt in batch.restarts:
            if not self._raw(conn, "UPDATE trials SET state = 'running', attempt = ?, "
                             "engine = ?, heartbeat_at = ?, started_at = ?, error = NULL "
                             "WHERE id = ? AND state = 'preempted'",
                             (attempt, batch.engine, clock, now, trial_id)):
                refused.append(f"restart of trial {trial_id}: not preempted")
        return WriteResult(new_ids, refused)

    def _exist_already(self, conn: Connection, rows: list[dict[str, Any]]) -> list[bool]:
        """Which new trials exist already as (goal, method, dials, seed), or come twice."""
        t = m.trials.c
        goals = sorted({row["goal_id"] for row in rows})
        if conn.dialect.name == "postgresql":  # engines planning one goal take turns
            for goal_id in goals:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_PLAN_LOCK}, "
                                     f"{int(goal_id)})")
        existing = {tuple(r) for r in conn.execute(
            sa.select(t.goal_id, t.method_id, t.dials, t.seed).where(
                t.goal_id.in_(goals), t.dials.in_({row["dials"] for row in rows})))}
        out = []
        for row in rows:
            key = (row["goal_id"], row["method_id"], row["dials"], row["seed"])
            out.append(key in existing)
            existing.add(key)
        return out

    @staticmethod
    def _raw(conn: Connection, sql: str, params: Any, *, many: bool = False) -> int:
        """Run SQL written with ``?`` placeholders straight on the driver: the hot path.

        Returns the number of rows changed (for a single statement).
        """
        if conn.dialect.paramstyle != "qmark":
            sql = sql.replace("?", "%s")
        result = conn.exec_driver_sql(sql, params if many else tuple(params))
        return result.rowcount

    def _running_attempts(self, conn: Connection, keys: set[tuple[int, int]]
                          ) -> set[tuple[int, int]]:
        ids = ", ".join(str(int(i)) for i in sorted({k[0] for k in keys}))
        rows = conn.exec_driver_sql(
            f"SELECT id, attempt FROM trials WHERE state = 'running' AND id IN ({ids})").all()
        return {(r[0], r[1]) for r in rows} & keys

    def trials(self, goal_id: int) -> list[TrialRecord]:
        t, r = m.trials.c, m.results.c
        with self._translated("reading trials"), self._engine.connect() as conn:
            rows = conn.execute(_TRIALS.where(t.goal_id == goal_id).order_by(t.id)).all()
            values = _values(conn, _RESULTS.join(m.trials, t.id == r.trial_id)
                             .where(t.goal_id == goal_id))
        return [_record(row, values) for row in rows]

    def trial(self, trial_id: int) -> TrialRecord | None:
        with self._translated("reading a trial"), self._engine.connect() as conn:
            row = conn.execute(_TRIALS.where(m.trials.c.id == trial_id)).first()
            if row is None:
                return None
            values = _values(conn, _RESULTS.where(m.results.c.trial_id == trial_id))
        return _record(row, values)

    def trial_page(self, goal_id: int, *, states: Collection[TrialState] | None = None,
                   before: int | None = None, limit: int = 100) -> list[TrialRecord]:
        t = m.trials.c
        query = _TRIALS.where(t.goal_id == goal_id)
        if states is not None:
            query = query.where(t.state.in_([state.value for state in states]))
        if before is not None:
            query = query.where(t.id < before)
        with self._translated("reading trials"), self._engine.connect() as conn:
            rows = conn.execute(query.order_by(t.id.desc()).limit(limit)).all()
            values = _values(conn, _RESULTS.where(
                m.results.c.trial_id.in_([row[0] for row in rows]))) if rows else {}
        return [_record(row, values) for row in rows]

    def finished_since(self, goal_id: int, since: float, *, other_than: str | None = None
                       ) -> list[TrialRecord]:
        t = m.trials.c
        query = _TRIALS.where(t.goal_id == goal_id, t.finished_at >= since).order_by(t.id)
        if other_than is not None:
            query = query.where(sa.or_(t.engine.is_(None), t.engine != other_than))
        with self._translated("reading finished trials"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
            values = _values(conn, _RESULTS.where(
                m.results.c.trial_id.in_([row[0] for row in rows]))) if rows else {}
        return [_record(row, values) for row in rows]

    def trial_counts(self, goal_id: int) -> dict[TrialState, int]:
        t = m.trials.c
        with self._translated("counting trials"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.state, sa.func.count()).where(t.goal_id == goal_id)
                                .group_by(t.state)).all()
        return {TrialState(state): int(n) for state, n in rows}

    def changes(self, goal_id: int) -> tuple[Any, ...]:
        # Each part is one probe of an index (see migration 0006), whatever the
        # goal's size: the newest trial, start (new trials, restarts) and finish, and
        # the few trials running or preempted (a preemption changes no time).
        t = m.trials.c
        mine = t.goal_id == goal_id

        def probe(column: Any, *where: Any) -> Any:
            return sa.select(column).where(mine, *where).scalar_subquery()

        query = sa.select(
            probe(sa.func.max(t.id)), probe(sa.func.max(t.started_at)),
            probe(sa.func.max(t.finished_at)),
            probe(sa.func.count(), t.state == TrialState.RUNNING.value),
            probe(sa.func.count(), t.state == TrialState.PREEMPTED.value),
            sa.select(m.goals.c.spec).where(m.goals.c.id == goal_id).scalar_subquery())
        with self._translated("reading what changed"), self._engine.connect() as conn:
            return tuple(conn.execute(query).one())

    def curve(self, trial_id: int) -> list[tuple[int, int, str, float]]:
        c = m.curve_points.c
        with self._translated("reading a curve"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(c.attempt, c.step, c.metric, c.value)
                                .where(c.trial_id == trial_id)
                                .order_by(c.attempt, c.step, c.metric)).all()
        return [(a, s, mt, _from_db(v)) for a, s, mt, v in rows]

    def curve_metrics(self, trial_id: int, attempt: int) -> dict[str, tuple[int, int, int]]:
        c = m.curve_points.c
        with self._translated("reading a curve"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(c.metric, sa.func.count(), sa.func.min(c.step),
                                          sa.func.max(c.step))
                                .where(c.trial_id == trial_id, c.attempt == attempt)
                                .group_by(c.metric).order_by(c.metric)).all()
        return {metric: (int(n), int(first), int(last)) for metric, n, first, last in rows}

    def curve_sample(self, trial_id: int, attempt: int, metric: str, points: int
                     ) -> list[tuple[int, float, float, float]]:
        # One range of the primary key, bucketed by rank in the database: a curve of a
        # million points crosses the wire as ``points`` rows.
        with self._translated("reading a curve"), self._engine.connect() as conn:
            rows = conn.execute(_CURVE_SAMPLE, {"trial": trial_id, "attempt": attempt,
                                                "metric": metric, "points": points}).all()
        return [(int(step), _from_db(mean), _from_db(lo), _from_db(hi))
                for step, mean, lo, hi in rows]

    def running(self, goal_id: int) -> list[RunningTrial]:
        t = m.trials.c
        with self._translated("reading running trials"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.id, t.attempt, t.engine, t.heartbeat_at).where(
                t.goal_id == goal_id, t.state == TrialState.RUNNING.value)).all()
        return [RunningTrial(*row) for row in rows]

    def curves(self, goal_id: int, metric: str) -> dict[int, dict[int, float]]:
        t, c = m.trials.c, m.curve_points.c
        with self._translated("reading curves"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(c.trial_id, c.step, c.value)
                                .join(m.trials, (t.id == c.trial_id) & (t.attempt == c.attempt))
                                .where(t.goal_id == goal_id, c.metric == metric)).all()
        out: dict[int, dict[int, float]] = {}
        for trial_id, step, value in rows:
            out.setdefault(trial_id, {})[step] = _from_db(value)
        return out

    def start_run(self, goal_id: int, engine: str) -> float:
        r = m.engine_runs.c
        with self._translated("recording the engine"), self._writer.begin() as conn:
            spent = conn.execute(sa.select(sa.func.coalesce(
                sa.func.sum(r.last_seen - r.started_at), 0.0)).where(r.goal_id == goal_id)
            ).scalar_one()
            now = self._now(conn)
            conn.execute(m.engine_runs.insert().values(engine=engine, goal_id=goal_id,
                                                       started_at=now, last_seen=now))
        return float(spent)

    def end_run(self, goal_id: int, engine: str, reason: str) -> None:
        r = m.engine_runs.c
        with self._translated("recording the end of the run"), self._writer.begin() as conn:
            conn.execute(m.engine_runs.update().where(r.engine == engine, r.goal_id == goal_id)
                         .values(last_seen=self._now(conn), reason=reason[:500]))

    def runs(self, goal_id: int) -> list[EngineRun]:
        r = m.engine_runs.c
        with self._translated("reading engine runs"), self._engine.connect() as conn:
            rows = conn.execute(sa.select(r.engine, r.started_at, r.last_seen, r.reason)
                                .where(r.goal_id == goal_id).order_by(r.started_at)).all()
        return [EngineRun(*row) for row in rows]

    def heartbeat(self, engine: str) -> None:
        t = m.trials.c
        with self._translated("heartbeat"), self._writer.begin() as conn:
            now = self._now(conn)
            conn.execute(m.trials.update().where(
                t.engine == engine, t.state == TrialState.RUNNING.value
            ).values(heartbeat_at=now))
            conn.execute(m.engine_runs.update().where(m.engine_runs.c.engine == engine)
                         .values(last_seen=now))

    def now(self) -> float:
        with self._translated("reading the clock"), self._engine.connect() as conn:
            return self._now(conn)

    def _now(self, conn: Connection) -> float:
        if conn.dialect.name == "postgresql":
            return float(conn.exec_driver_sql("SELECT extract(epoch from clock_timestamp())")
                         .scalar_one())
        return float(conn.exec_driver_sql(
            "SELECT (julianday('now') - 2440587.5) * 86400.0").scalar_one())


def _values(conn: Connection, query: Any) -> dict[int, dict[str, dict[str, float]]]:
    """The rows of ``results`` that ``query`` selects: {trial: {kind: {name: value}}}."""
    values: dict[int, dict[str, dict[str, float]]] = {}
    for trial_id, kind, name, value in conn.execute(query):
        values.setdefault(trial_id, {}).setdefault(kind, {})[name] = _from_db(value)
    return values


def _record(row: Any, values: dict[int, dict[str, dict[str, float]]]) -> TrialRecord:
    """A row of ``_TRIALS`` with its results."""
    (trial_id, goal_id, method, stage, dials, seed, state, attempt, started_at, finished_at,
     wall_seconds, cpu_seconds, error) = row
    own = values.get(trial_id, {})
    return TrialRecord(trial_id, goal_id, method, stage, json.loads(dials), seed,
                       _STATES[state], attempt, started_at, finished_at, wall_seconds,
                       cpu_seconds, error, own.get("metric", {}), own.get("cost", {}))


def _wal(cursor: Any, wait: float = 30.0) -> None:
    """Put the file in WAL mode. Turning it on takes the file's exclusive lock and, as
    seen once with two engines opening one new store, can answer "database is locked" at
    once instead of waiting for the other's migration: so wait here, as for any lock."""
    deadline = time.monotonic() + wait
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _connect(url: str, create: bool) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # (its message may hold the password)
        raise UnusableStoreError("the store URL is not well formed (a port is a number; "
                                 "%-escape special characters in a password)") from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed.database, create)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("postgresql"):
        try:
            return sa.create_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'pursuit[postgres]'") from None
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions begin where _begin says, below
        # WAL lets readers (status, dashboard) work while the engine writes.
        cursor = dbapi_conn.cursor()
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock as it begins, so that several engines (or
        # several opening one new file) wait their turn for it instead of failing when a
        # read turns into a write; a reader sees one snapshot across its statements.
        writes = conn.get_execution_options().get("writes", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def _check_sqlite_path(database: str | None, create: bool) -> None:
    """SQLite makes a new, empty database wherever it is pointed: a mistyped path would
    silently become one. Say what is wrong with the path instead."""
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.is_dir():
        raise UnusableStoreError(f"{path} is a folder, not a store; name a file in it, such "
                                 f"as {path / 'pursuit.db'}")
    if path.exists():
        return
    if not create:
        raise UnusableStoreError(f"there is no store at {path}: no such file (a store is "
                                 "made by `pursuit run`; is the path right?)")
    if not path.parent.is_dir():
        raise UnusableStoreError(f"cannot make a store at {path}: there is no folder "
                                 f"{path.parent}")


def _migrate(engine: Engine, create: bool) -> None:
    """Bring the schema to the newest revision, once, under a lock. ``engine`` is the
    store's writer: on SQLite its transactions begin by taking the write lock. Refuses a
    database that is not a store of this Pursuit's (see ``_refuse_unknown``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    head = scripts.get_current_head()
    with engine.begin() as conn:  # SQLite: a writer's transaction holds the write lock
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        known = {script.revision for script in scripts.walk_revisions()}
        if current not in known:
            _refuse_unknown(conn, current, create)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _refuse_unknown(conn: Connection, revision: str | None, create: bool) -> None:
    """Before Pursuit makes its tables in a database that holds no store of a revision it
    knows, make sure it may: the database holds no one else's tables, and a reader
    (not ``create``) never makes a store."""
    tables = set(sa.inspect(conn).get_table_names())
    where = _where(conn)
    if revision is not None and {"goals", "trials"} <= tables:
        raise UnusableStoreError(f"the store at {where} was written by a newer Pursuit "
                                 f"(schema revision {revision}); upgrade Pursuit")
    foreign = sorted(tables - set(m.metadata.tables) - {"alembic_version"})
    if foreign:
        named = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more"
                                           if len(foreign) > 10 else "")
        raise UnusableStoreError(f"{where} is not a Pursuit store: it holds tables that are "
                                 f"not Pursuit's ({named}); give Pursuit a database of its "
                                 "own")
    if revision is not None:  # another program's Alembic revision, in no tables yet
        raise UnusableStoreError(f"{where} is not a Pursuit store: its schema revision "
                                 f"{revision!r} is not Pursuit's")
    if not create:
        raise UnusableStoreError(f"there is no store at {where}: the database holds no "
                                 "Pursuit tables (a store is made by `pursuit run`)")


def _where(conn: Connection) -> str:
    """The database in words for a message: a SQLite file's path, else the URL with no
    password."""
    url = conn.engine.url
    return str(url.database) if url.get_backend_name() == "sqlite" else \
        url.render_as_string(hide_password=True)
