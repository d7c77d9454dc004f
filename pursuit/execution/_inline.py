"""Run trials one at a time in the engine's own process: for debugging and tests.

A method's crash here is the engine's crash, and a trial timeout cannot be enforced;
use ``ProcessExecutor`` for anything you did not write yourself. Ctrl-C and SIGTERM stop
the engine even in the middle of a method: they pass through ``run_task``.
"""

from __future__ import annotations

from collections import deque

from pursuit.execution._base import Executor, Sink
from pursuit.execution._signals import SigtermGuard, Terminated
from pursuit.trial import Point, Task, run_task


class InlineExecutor(Executor):
    slots = 1

    def __init__(self) -> None:
        self._queue: deque[Task] = deque()
        self._sink: Sink | None = None
        self._guard = SigtermGuard()

    def start(self, sink: Sink) -> None:
        self._guard.hold()  # until close: SIGTERM stops the run as Ctrl-C does
        self._sink = sink

    def submit(self, task: Task) -> None:
        self._queue.append(task)

    def poll(self, timeout: float) -> None:
        if self._queue and self._sink is not None:
            self._sink.on_finish(run_task(self._queue.popleft(), _DirectChannel(self._sink),
                                          interrupts=(KeyboardInterrupt, Terminated)))

    def busy(self) -> int:
        return len(self._queue)

    def close(self, *, kill: bool = False) -> None:
        self._guard.release()
        self._queue.clear()


class _DirectChannel:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def report(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        self._sink.on_report(trial_id, attempt, points)

    def should_stop(self, trial_id: int, attempt: int) -> bool:
        return self._sink.should_stop(trial_id, attempt)
