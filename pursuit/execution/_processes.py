"""Run trials in local worker processes, one trial per worker at a time.

Each worker is a long-lived process with a duplex pipe to the engine. The engine
waits on every pipe and every process sentinel at once, so a worker that dies is
noticed as soon as it dies, and the trial it was running is ended with the reason:
a non-zero exit or a crash signal is the method's fault (*failed*); SIGKILL or SIGTERM
comes from outside (the OOM killer, a user) and the attempt is *preempted*.

When trials are short, each worker is handed tasks in advance, about ``QUEUE_SECONDS``
of work (at most ``MAX_QUEUE`` tasks), so that it never waits for the engine between
trials and the engine writes the results of several trials in one transaction.
A task queued behind one that crashed its worker never started: it is sent to the
worker that replaces it.

A worker never outlives the engine: it ends itself when the engine's process ends, however
that ends (SIGKILL included), since one left running trains on and writes into the trial's
directory, which a resumed engine hands to the trial's next attempt. A task travels
pickled inside an envelope that names its trial, so that a method whose module fails to
import in the worker alone still fails its own trial, with the import error.

A worker started by ``spawn`` or ``forkserver`` first runs the main script again, as a
module of another name. A script that calls ``pursuit.run`` outside
``if __name__ == "__main__":`` would start the run again in every worker: that is
refused before any worker starts, with the script's line; should a worker still reach
``pursuit.run`` that way, it ends at once, silently, and the engine says why, once.

Workers share the machine's cores: each starts with the thread pools of OpenMP, BLAS
and PyTorch sized to its share (cores / workers, at least 1), since a numerical library
that spreads over every core in every worker makes trials fight for them and run
several times slower. A variable the user has set (``OMP_NUM_THREADS=8 pursuit run``)
is left as it is.
"""

from __future__ import annotations

import ast
import inspect
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from pursuit.exceptions import WorkerError
from pursuit.execution._base import Executor, Sink
from pursuit.execution._signals import SigtermGuard
from pursuit.trial import Outcome, Point, Task, TrialState, describe, run_task

QUEUE_SECONDS = 0.05  # work handed to a worker in advance, in seconds of mean trial time
MAX_QUEUE = 8
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
RAN_THE_SCRIPT_AGAIN = 79  # a starting worker's exit status: the script's rerun reached us
GUARD = "if __name__ == '__main__':"


def _worker_main(conn: Connection) -> None:
    # Ctrl-C reaches the whole process group; only the engine decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM ends a worker (its trial is preempted), whatever handler a fork inherited.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _end_with_the_engine()
    channel = _PipeChannel(conn)
    conn.send(("ready",))
    while True:
        try:
            envelope = channel.next_task()
        except EOFError:
            return
        if envelope is None:
            return
        conn.send(("done", _run(envelope, channel)))


def _run(envelope: tuple[str, int, int, bytes], channel: _PipeChannel) -> Outcome:
    _, trial_id, attempt, payload = envelope
    try:
        task = pickle.loads(payload)  # imports the method's module
    except BaseException as error:  # it may fail here alone (another path, no GPU, ...)
        return Outcome(trial_id, attempt, TrialState.FAILED, error=(
            f"the worker could not load the method: {describe(error)}"))
    # Ctrl-C is the engine's (ignored above): whatever a method raises is its own.
    return run_task(task, channel, interrupts=())


def _end_with_the_engine() -> None:
    """End this process as soon as the engine's ends (SIGKILL, a crash, a lost session)."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])  # ready once the engine's end of it is closed
        os._exit(1)

    threading.Thread(target=watch, name="pursuit-engine-watch", daemon=True).start()


class _PipeChannel:
    """The worker's end of the pipe. The engine sends tasks (ahead of time, so that short
    trials never wait) as ("task", trial id, attempt, pickled task), None to stop, and
    ("answer", bool) for each ``ask``; the tasks that arrive while a trial waits for its
    answer are kept for after it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._waiting: deque[Any] = deque()

    def next_task(self) -> Any:
        return self._waiting.popleft() if self._waiting else self._conn.recv()

    def report(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        self._conn.send(("report", trial_id, attempt, points))

    def should_stop(self, trial_id: int, attempt: int) -> bool:
        self._conn.send(("ask", trial_id, attempt))
        while True:
            message = self._conn.recv()
            if isinstance(message, tuple) and message[0] == "answer":
                return message[1]
            self._waiting.append(message)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    tasks: deque[Task] = field(default_factory=deque)  # the first one is running
    started: float = 0.0  # when the first task started
    ready: bool = False  # the process got as far as its loop


class ProcessExecutor(Executor):
    """``workers`` processes (default: one per core), started with ``start_method``."""

    def __init__(self, workers: int | None = None, *, start_method: str = "spawn") -> None:
        if getattr(mp.current_process(), "_inheriting", False):
            # A worker that is starting, running the main script again, got here: the
            # script has no guard. End quietly; the engine that started it says why, once.
            sys.exit(RAN_THE_SCRIPT_AGAIN)
        unguarded = _unguarded_call(start_method)
        if unguarded is not None:
            file, line = unguarded
            raise WorkerError(
                f"{file}, line {line}, starts worker processes outside `{GUARD}`: each "
                f"worker starts by running {Path(file).name} again (Python's "
                f"{start_method} start method), and would start the run again. Put the "
                "call under that guard, or run with executor=\"inline\"")
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._context: Any = mp.get_context(start_method)  # spawn, fork or forkserver
        self._pool: list[_Worker] = []
        self._sink: Sink | None = None
        self._mean_seconds = float("inf")  # moving mean of trial wall time
        self._guard = SigtermGuard()

    @property
    def slots(self) -> int:  # type: ignore[override]
        if self._mean_seconds >= QUEUE_SECONDS:
            return self.workers
        ahead = QUEUE_SECONDS / max(self._mean_seconds, 1e-6)
        return self.workers * min(MAX_QUEUE, 1 + int(ahead))

    def start(self, sink: Sink) -> None:
        self._guard.hold()  # until close: SIGTERM stops the run as Ctrl-C does
        self._sink = sink
        self._pool = [self._spawn() for _ in range(self.workers)]

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, args=(theirs,), daemon=True,
                                        name="pursuit-worker")
        # A new process reads these as its libraries load: set them for the start only.
        share = str(max(1, (os.cpu_count() or 1) // self.workers))
        unset = [name for name in THREAD_VARIABLES if name not in os.environ]
        os.environ.update(dict.fromkeys(unset, share))
        try:
            process.start()
        finally:
            for name in unset:
                os.environ.pop(name, None)
        theirs.close()
        return _Worker(process, ours)

    def submit(self, task: Task) -> None:
        index = min(range(len(self._pool)), key=lambda i: len(self._pool[i].tasks))
        worker = self._pool[index]
        if not worker.tasks:
            worker.started = time.monotonic()
        worker.tasks.append(task)
        self._send(index, task)

    def _send(self, index: int, task: Task) -> None:
        envelope = ("task", task.trial_id, task.attempt, pickle.dumps(task, protocol=5))
        try:
            self._pool[index].conn.send(envelope)
        except (BrokenPipeError, OSError):
            pass  # the worker is dead; its sentinel fires and its tasks are handled then

    def busy(self) -> int:
        return sum(len(w.tasks) for w in self._pool)

    def poll(self, timeout: float) -> None:
        busy = [w for w in self._pool if w.tasks]
        if not busy:
            time.sleep(min(timeout, 0.01))
            return
        deadlines = [w.started + w.tasks[0].timeout for w in busy if w.tasks[0].timeout]
        wait_for = max(0.0, min([timeout, *(d - time.monotonic() for d in deadlines)]))
        objects = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(objects, wait_for))
        for index, worker in enumerate(self._pool):
            if not worker.tasks:
                continue
            if worker.conn in ready or worker.process.sentinel in ready:
                garbled = self._drain(worker)
                if garbled:  # what it sends can no longer be trusted: end it, and its trial
                    worker.process.kill()
                    worker.process.join()
                    self._replace(index, garbled, preempt=False)
                    continue
            if worker.tasks and worker.process.sentinel in ready:
                reason, preempted = _death_reason(worker.process)
                if worker.process.exitcode == RAN_THE_SCRIPT_AGAIN and not worker.ready:
                    raise WorkerError(
                        "each worker process ran the main script again as it started and "
                        f"reached pursuit.run: put the call under `{GUARD}`")
                if not worker.ready and not preempted:
                    raise WorkerError(
                        f"a worker process died while starting ({reason}); a script that "
                        f"calls pursuit.run must guard it with `{GUARD}`, "
                        "and every method's module must import without error")
                self._replace(index, reason, preempt=preempted)
            elif worker.tasks and worker.tasks[0].timeout is not None and \
                    time.monotonic() - worker.started > worker.tasks[0].timeout:
                worker.process.kill()
                worker.process.join()
                self._replace(index, f"timed out after {worker.tasks[0].timeout:g} s",
                              preempt=False)

    def _drain(self, worker: _Worker) -> str | None:
        """Deliver what the worker sent. Say what was wrong when it sent what no worker
        does (bytes written into its pipe by a method, or by a process the method forked)."""
        assert self._sink is not None
        try:
            while worker.conn.poll():
                data = worker.conn.recv_bytes()
                try:
                    message = pickle.loads(data)
                except Exception as error:
                    return f"the worker's messages to the engine were garbled ({error!r:.200})"
                kind = message[0] if isinstance(message, tuple) and message else None
                if kind == "ready":
                    worker.ready = True
                elif kind == "report":
                    self._sink.on_report(message[1], message[2], message[3])
                elif kind == "ask":
                    stop = bool(self._sink.should_stop(message[1], message[2]))
                    worker.conn.send(("answer", stop))
                elif kind == "done" and worker.tasks and \
                        message[1].trial_id == worker.tasks[0].trial_id:
                    worker.tasks.popleft()
                    worker.started = time.monotonic()
                    outcome: Outcome = message[1]
                    self._learn(outcome.wall_seconds)
                    self._sink.on_finish(outcome)
                else:
                    return f"the worker sent the engine a message out of turn ({kind!r:.200})"
        except (EOFError, OSError):
            pass  # the worker died mid-message; its sentinel says how
        return None

    def _learn(self, seconds: float) -> None:
        if self._mean_seconds == float("inf"):
            self._mean_seconds = seconds
        else:
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds

    def _replace(self, index: int, reason: str, *, preempt: bool) -> None:
        """End the running task with ``reason``; hand the queued ones to a new worker."""
        old = self._pool[index]
        old.conn.close()
        assert self._sink is not None
        new = self._pool[index] = self._spawn()
        new.started = time.monotonic()
        if not old.tasks:  # it broke between trials: none of them ends with it
            return
        task, waiting = old.tasks.popleft(), list(old.tasks)
        for queued in waiting:
            new.tasks.append(queued)
            self._send(index, queued)
        state = TrialState.PREEMPTED if preempt else TrialState.FAILED
        self._learn(time.monotonic() - old.started)
        self._sink.on_finish(Outcome(task.trial_id, task.attempt, state, error=reason,
                                     wall_seconds=time.monotonic() - old.started))

    def close(self, *, kill: bool = False) -> None:
        self._guard.release()
        for worker in self._pool:
            if kill:
                worker.process.kill()
            else:
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        for worker in self._pool:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._pool = []


def _unguarded_call(start_method: str) -> tuple[str, int] | None:
    """The main script's file and line that called us from its top level outside the
    ``__main__`` guard, when workers start by running that script again; else None.
    Only a line outside every ``if`` that tests ``__name__`` counts: a script that is
    not known to be wrong is never refused."""
    main = sys.modules.get("__main__")
    if start_method == "fork" or main is None:
        return None
    # As multiprocessing.spawn decides: a package's __main__, and code with no file (a
    # notebook, python -c), are not run again; a script or a module run with -m is.
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    file = getattr(main, "__file__", None)
    if file is None or spec_name == "__main__" or (spec_name or "").endswith(".__main__"):
        return None
    frame = inspect.currentframe()
    while frame is not None and not (frame.f_globals is vars(main)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:  # not called while the script's top level runs
        return None
    try:
        tree = ast.parse(Path(file).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None  # (a starting worker still ends quietly: see __init__)
    return None if _guarded(tree.body, frame.f_lineno) else (file, frame.f_lineno)


def _guarded(statements: list[ast.stmt], line: int) -> bool:
    """Whether ``line`` lies inside an ``if`` (at any depth) whose test reads __name__."""
    for node in statements:
        if not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        if isinstance(node, ast.If) and any(isinstance(name, ast.Name) and name.id == "__name__"
                                            for name in ast.walk(node.test)):
            return True
        bodies = [getattr(node, part, []) for part in ("body", "orelse", "finalbody")]
        bodies += [handler.body for handler in getattr(node, "handlers", [])]
        return any(_guarded(body, line) for body in bodies if isinstance(body, list))
    return False


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
