"""Run trials in local worker processes, one trial per worker at a time.

Each worker is a long-lived process with a duplex pipe to the engine. The engine
waits on every pipe and every process sentinel at once, so a worker that dies is
noticed as soon as it dies, and the trial it was running is ended with the reason:
a non-zero exit or a crash signal is the method's fault (*failed*); SIGKILL comes
from outside (the OOM killer, a user) and the attempt is *preempted*.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from pursuit.execution._base import Executor, Sink
from pursuit.trial import Outcome, Point, Task, TrialState, run_task


def _worker_main(conn: Connection) -> None:
    # Ctrl-C reaches the whole process group; only the engine decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = _PipeChannel(conn)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(("done", run_task(task, channel)))


class _PipeChannel:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def report(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        self._conn.send(("report", trial_id, attempt, points))

    def should_stop(self, trial_id: int, attempt: int) -> bool:
        self._conn.send(("ask", trial_id, attempt))
        return bool(self._conn.recv())


@dataclass
class _Slot:
    process: Any
    conn: Connection
    task: Task | None = None
    started: float = 0.0


class ProcessExecutor(Executor):
    """``workers`` processes (default: one per core), started with ``start_method``."""

    def __init__(self, workers: int | None = None, *, start_method: str = "spawn") -> None:
        self.slots = max(1, workers or os.cpu_count() or 1)
        self._context = mp.get_context(start_method)
        self._workers: list[_Slot] = []
        self._sink: Sink | None = None

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._workers = [self._spawn() for _ in range(self.slots)]

    def _spawn(self) -> _Slot:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, args=(theirs,), daemon=True,
                                        name="pursuit-worker")
        process.start()
        theirs.close()
        return _Slot(process, ours)

    def submit(self, task: Task) -> None:
        index = next(i for i, w in enumerate(self._workers) if w.task is None)
        slot = self._workers[index]
        if not slot.process.is_alive():
            slot = self._workers[index] = self._spawn()
        slot.task, slot.started = task, time.monotonic()
        try:
            slot.conn.send(task)
        except (BrokenPipeError, OSError):
            self._end(index, "the worker was gone before the trial started", preempt=True)

    def busy(self) -> int:
        return sum(w.task is not None for w in self._workers)

    def poll(self, timeout: float) -> None:
        busy = [w for w in self._workers if w.task is not None]
        if not busy:
            time.sleep(min(timeout, 0.01))
            return
        deadline = min((w.started + w.task.timeout for w in busy if w.task.timeout),
                       default=None)
        wait_for = timeout if deadline is None else max(0.0, min(timeout,
                                                                 deadline - time.monotonic()))
        objects = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(objects, wait_for))
        for index, slot in enumerate(self._workers):
            if slot.task is None:
                continue
            if slot.conn in ready or slot.process.sentinel in ready:
                self._drain(index)
            if slot.task is not None and slot.process.sentinel in ready:
                reason, preempted = _death_reason(slot.process)
                self._end(index, reason, preempt=preempted)
            elif slot.task is not None and slot.task.timeout is not None and \
                    time.monotonic() - slot.started > slot.task.timeout:
                slot.process.kill()
                slot.process.join()
                self._end(index, f"timed out after {slot.task.timeout:g} s", preempt=False)

    def _drain(self, index: int) -> None:
        slot = self._workers[index]
        assert self._sink is not None
        try:
            while slot.conn.poll():
                message = slot.conn.recv()
                if message[0] == "report":
                    self._sink.on_report(message[1], message[2], message[3])
                elif message[0] == "ask":
                    slot.conn.send(self._sink.should_stop(message[1], message[2]))
                else:
                    slot.task = None
                    self._sink.on_finish(message[1])
        except (EOFError, OSError):
            pass  # the worker died mid-message; its sentinel says how

    def _end(self, index: int, reason: str, *, preempt: bool) -> None:
        slot = self._workers[index]
        task, slot.task = slot.task, None
        assert task is not None and self._sink is not None
        state = TrialState.PREEMPTED if preempt else TrialState.FAILED
        self._sink.on_finish(Outcome(task.trial_id, task.attempt, state, error=reason,
                                     wall_seconds=time.monotonic() - slot.started))
        if not slot.process.is_alive():
            slot.conn.close()

    def close(self, *, kill: bool = False) -> None:
        for slot in self._workers:
            if kill:
                slot.process.kill()
            else:
                try:
                    slot.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        for slot in self._workers:
            slot.process.join(timeout=5)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
        self._workers = []


def _death_reason(process: Any) -> tuple[str, bool]:
    """Why a worker died, and whether that was done to it (preempted) or by it (failed)."""
    process.join()
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        if -code in (signal.SIGKILL, signal.SIGTERM):
            return f"the worker was killed by {name} (out of memory, or stopped by hand)", True
        return f"the worker crashed with {name}", False
    return f"the worker process exited with status {code} during the trial", False
