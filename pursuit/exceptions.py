"""Every error Pursuit raises on purpose.

    PursuitError
    ├── GoalError       a goal file or Goal object is invalid (names the file, line and field)
    ├── DialError       a dial declaration or a dial value is invalid
    ├── MethodError     a method cannot be imported or is declared wrongly
    ├── StoreError      the database refused or failed (translated at the store boundary)
    │   └── UnusableStoreError  the URL names no store Pursuit can use (bad input)
    ├── WorkerError     worker processes cannot start at all
    └── Pruned          raised by a method to stop a trial early (control flow, not a failure)
"""

from __future__ import annotations


class PursuitError(Exception):
    """Base class of every error raised by Pursuit."""


class GoalError(PursuitError):
    """A goal specification is invalid.

    ``file`` and ``line`` are set when the goal came from a YAML file.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file, self.line, self.field = file, line, field
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)


class DialError(PursuitError):
    """A dial is declared wrongly, or a value lies outside a dial's range."""


class MethodError(PursuitError):
    """A method cannot be imported, or its declaration is invalid."""


class StoreError(PursuitError):
    """The store could not complete an operation."""


class UnusableStoreError(StoreError):
    """The URL names no store this Pursuit can use: no store there, an unsupported URL,
    another program's database, a schema from a newer Pursuit. Bad input, not a failure:
    the command line exits with status 2 for it."""


class WorkerError(PursuitError):
    """A worker process died before it was ready to run anything."""


class Pruned(PursuitError):
    """Raise from a method when ``trial.should_stop()`` says so; the trial ends as *pruned*."""
