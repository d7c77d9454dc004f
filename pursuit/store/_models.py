"""The tables. Changes here need a migration in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Boolean,
                        Column,
                        Float,
                        ForeignKey,
                        Index,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
)

metadata = MetaData()

goals = Table(
    "goals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("parent_id", Integer, ForeignKey("goals.id"), nullable=True),
    Column("spec", Text, nullable=False),  # JSON: metric, direction, target, budget, ...
    Column("created_at", Float, nullable=False),
)

methods = Table(
    "methods", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("goal_id", Integer, ForeignKey("goals.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("entry", String(500), nullable=False),
    Column("source", Text, nullable=True),
    Column("baseline", Boolean, nullable=False),
    Column("defaults", Text, nullable=False),  # JSON of the published dial settings
    UniqueConstraint("goal_id", "name"),
)

trials = Table(
    "trials", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("goal_id", Integer, ForeignKey("goals.id"), nullable=False),
    Column("method_id", Integer, ForeignKey("methods.id"), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("dials", Text, nullable=False),  # JSON, canonical (sorted keys)
    Column("seed", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("engine", String(200), nullable=True),
    Column("heartbeat_at", Float, nullable=True),  # database clock
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("wall_seconds", Float, nullable=True),
    Column("cpu_seconds", Float, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_trials_goal_state", "goal_id", "state"),
    Index("ix_trials_identity", "goal_id", "dials", "seed", "method_id"),
    Index("ix_trials_goal_id", "goal_id", "id"),  # readers page through a goal's trials
    Index("ix_trials_goal_started", "goal_id", "started_at"),  # ...and ask what changed
    Index("ix_trials_goal_finished", "goal_id", "finished_at"),
)

curve_points = Table(
    "curve_points", metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("metric", String(100), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("value", Float, nullable=True),  # NULL stands for NaN (SQLite cannot hold NaN)
)

engine_runs = Table(
    "engine_runs", metadata,
    Column("engine", String(200), primary_key=True),
    Column("goal_id", Integer, ForeignKey("goals.id"), primary_key=True),
    Column("started_at", Float, nullable=False),  # database clock
    Column("last_seen", Float, nullable=False),  # database clock, moved on by heartbeats
    Column("reason", String(500), nullable=True),  # why the run ended; NULL: it has not
)

results = Table(
    "results", metadata,
    Column("trial_id", Integer, ForeignKey("trials.id"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "metric" or "cost"
    Column("name", String(100), primary_key=True),
    Column("value", Float, nullable=True),  # NULL stands for NaN
)
