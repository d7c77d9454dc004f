"""Stores: where results live. ``open_store`` picks the backend from a URL."""

from __future__ import annotations

import os

from pursuit.store._base import (
    EngineRun,
    GoalRecord,
    NewTrial,
    RunningTrial,
    Store,
    TrialRecord,
    WriteBatch,
    WriteResult,
    config_key,
)
from pursuit.store._memory import MemoryStore

DEFAULT_STORE = "sqlite:///pursuit.db"

__all__ = ["DEFAULT_STORE", "EngineRun", "GoalRecord", "MemoryStore", "NewTrial",
           "RunningTrial", "Store", "TrialRecord", "WriteBatch", "WriteResult", "config_key",
           "open_store", "resolve_url"]


def resolve_url(url: str | None = None) -> str:
    """The store URL to use: the one given, else $PURSUIT_STORE, else ./pursuit.db."""
    url = url or os.environ.get("PURSUIT_STORE") or DEFAULT_STORE
    if url in ("memory", "memory:", ":memory:"):
        return "memory:"
    if "://" not in url:  # a plain path means a SQLite file
        return f"sqlite:///{url}"
    return url


def open_store(url: str | None = None) -> Store:
    """Open (and, for SQL, create or upgrade) the store at ``url``."""
    url = resolve_url(url)
    if url == "memory:":
        return MemoryStore()
    from pursuit.store._sql import SQLStore  # SQLAlchemy and Alembic load only when needed

    return SQLStore(url)
