"""The executor contract: run tasks somewhere, tell the engine what happens.

An executor is driven by one thread of the engine. ``submit`` hands it a task;
``poll`` waits up to ``timeout`` seconds and delivers what happened to the sink
given in ``start``, in order: curve points (``on_report``), early-stopping questions
(``should_stop``, answered at once by the engine) and endings (``on_finish``).

An executor never decides a trial's fate beyond saying how its attempt ended:
*completed*, *pruned*, *failed* (the method's fault: it raised, returned a
non-number, crashed its process or ran past its timeout) or *preempted* (killed
from outside, e.g. SIGKILL by the OOM killer or a user). The engine decides
whether a preempted trial runs again.

From ``start`` to ``close`` an executor holds a ``SigtermGuard`` (see ``_signals``), so
that SIGTERM stops the engine as Ctrl-C does, and ``close(kill=True)`` leaves no process
of its running.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from pursuit.trial import Outcome, Point, Task


class Sink(Protocol):
    def on_report(self, trial_id: int, attempt: int, points: list[Point]) -> None: ...

    def should_stop(self, trial_id: int, attempt: int) -> bool: ...

    def on_finish(self, outcome: Outcome) -> None: ...


class Executor(ABC):
    """Runs tasks. ``slots`` is how many it takes at once (it may change as it learns)."""

    slots: int

    @abstractmethod
    def start(self, sink: Sink) -> None:
        """Get ready to run tasks; events go to ``sink``."""

    @abstractmethod
    def submit(self, task: Task) -> None:
        """Run ``task`` when a slot is free; call only while ``busy() < slots``."""

    @abstractmethod
    def poll(self, timeout: float) -> None:
        """Deliver pending events to the sink, waiting at most ``timeout`` seconds for one."""

    @abstractmethod
    def busy(self) -> int:
        """How many submitted tasks have not finished yet."""

    @abstractmethod
    def close(self, *, kill: bool = False) -> None:
        """Stop the workers; ``kill`` ends running tasks at once (their trials stay unfinished)."""
