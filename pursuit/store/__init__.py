"""Stores: where results live. ``open_store`` picks the backend from a URL."""

from __future__ import annotations

import os

from pursuit.exceptions import UnusableStoreError
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
SUPPORTED = ("Pursuit keeps results in SQLite (a file path, or sqlite:///path) or PostgreSQL "
             "(postgresql://user@host/db)")
_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
_MEMORY = ("memory", "memory:", ":memory:")
_SQLITE_MEMORY = ("sqlite://", "sqlite:///", "sqlite:///:memory:")

__all__ = ["DEFAULT_STORE", "EngineRun", "GoalRecord", "MemoryStore", "NewTrial",
           "RunningTrial", "Store", "TrialRecord", "UnusableStoreError", "WriteBatch",
           "WriteResult", "config_key", "open_store", "resolve_url"]


def resolve_url(url: str | None = None) -> str:
    """The URL of the store to use: the one given, else $PURSUIT_STORE, else ./pursuit.db.

    This is a URL to find the store again by, as the command line does after a run; a
    store in memory has none (it ends with the program that made it), so it is refused
    here. ``open_store("memory:")`` gives one to a Python program.
    """
    url = _checked(url)
    _refuse_memory(url)
    return url


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open (and, for SQL, upgrade) the store at ``url``; with ``create``, make one where
    there is none. Readers pass ``create=False``: a mistyped path is then an error, never
    a new empty store."""
    url = _checked(url)
    if not create:  # a reader never finds a store in memory: it would be a new, empty one
        _refuse_memory(url)
    if url == "memory:":
        return MemoryStore()
    from pursuit.store._sql import SQLStore  # SQLAlchemy and Alembic load only when needed

    return SQLStore(url, create=create)


def _checked(url: str | None) -> str:
    """The URL given (or the default) written out in full: a plain path means a SQLite
    file. One SQLAlchemy could not open as a Pursuit store is refused with what can."""
    url = url or os.environ.get("PURSUIT_STORE") or DEFAULT_STORE
    if url in _MEMORY:
        return "memory:"
    if "://" not in url:
        return f"sqlite:///{url}"
    scheme = url.partition("://")[0]
    if scheme not in _SCHEMES:  # the scheme alone: the rest may hold a password
        raise UnusableStoreError(f"cannot use a store at a {scheme}:// URL. {SUPPORTED}")
    return url


def _refuse_memory(url: str) -> None:
    if url == "memory:" or url.partition("?")[0] in _SQLITE_MEMORY:
        raise UnusableStoreError(f"a store in memory ({url}) ends with the program that "
                                 "makes it, so nothing can read its results afterwards: "
                                 f"give one that lasts. {SUPPORTED}")
