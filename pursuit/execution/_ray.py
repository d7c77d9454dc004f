"""Run trials as tasks on a Ray cluster.

Each attempt is one Ray task with the resources asked for each trial, and no retry of
Ray's own: the engine decides what runs again, and counts the attempts. The method runs
in the task with the same ``trial`` API as in a worker process. What a trial reports, and
its ``should_stop`` questions, go through a mailbox: a small async actor on the engine's
node, which the tasks push batches of points into (one call per flush of the trial's
buffer, as a worker sends one message) and ask through. The engine collects from it in
``poll`` (a long poll: a collection waits until something arrives) and answers the
questions there. The engine stays the only writer to the store.

How an attempt ends:

- the outcome its task returns: ``run_task`` in the task makes a method that raises, or
  returns NaN or no number, *failed* with the traceback, as in a worker process;
- its worker or its node lost (``WorkerCrashedError``, ``NodeDiedError``, Ray's memory
  monitor, an object lost with its node): *preempted*, and the engine runs it again, up to
  its attempt limit. Ray does not say whether a worker that died was killed from outside
  (SIGKILL, the OOM killer) or crashed by itself (``os._exit``, a segfault), as a process
  exit status does: both count as preempted here, so a method that crashes its worker
  every time fails once the attempts run out ("preempted 3 times; last: ...");
- its ``trial_timeout`` passed since the task began on its worker: cancelled, *failed*.

No point of a trial arrives after its outcome: the mailbox numbers the mail in the order
it comes, a task returns with its outcome the number of the last report it sent (each
acknowledged before the trial goes on), and the engine delivers the outcome once it has
delivered the mail up to that number. For a task lost with its worker it collects once
more, at once, before it says so.

``close(kill=True)`` (Ctrl-C, SIGTERM) cancels the running tasks (their worker processes
are killed) and waits until they are gone; the engine gives their trials back as
preempted. An engine killed outright takes its tasks with it: Ray ends a driver's tasks
and actors when the driver dies, and the engine started again takes back, as after any
engine's death, what its dead self left running.

The method is sent by name (``module:function``) and imported on the worker. Each task
carries the engine's ``sys.path`` and working directory, so that a method beside the goal
file, or one that opens files by relative paths, runs on this machine's workers (and on
a cluster sharing its file system) as it does in worker processes. Elsewhere ship the code
with ``runtime_env={"working_dir": ...}``; Pursuit itself must be installed on the nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import math
import os
import pickle
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from pursuit.exceptions import PursuitError
from pursuit.execution._base import Executor, Sink
from pursuit.execution._processes import MAX_QUEUE, QUEUE_SECONDS
from pursuit.execution._signals import SigtermGuard, Terminated
from pursuit.trial import Outcome, Point, Task, TrialState, describe, run_task, storable

INSTALL = "pip install 'pursuit[ray]'"
COLLECT_SECONDS = 1.0  # the longest a collection waits for mail before it comes back empty
SLOTS_EVERY = 2.0  # seconds between reads of the cluster's resources
CANCEL_SECONDS = 10.0  # how long close waits for cancelled tasks' workers to end
# A task's mail, numbered by the mailbox in the order it came: (number, "report", trial,
# attempt, points), (number, "ask", trial, attempt) and (number, "began", trial, attempt).
Mail = tuple[Any, ...]


def _sigterm_kept(method: Callable[..., None]) -> Callable[..., None]:
    """Give back SIGTERM's ``Terminated`` where Ray made it SystemExit(1): Ray's waits
    turn whatever a signal handler raises in them into that."""

    @functools.wraps(method)
    def kept(self: RayExecutor, *args: Any) -> None:
        try:
            method(self, *args)
        except SystemExit:
            if self._sigterm:
                raise Terminated(128 + signal.SIGTERM) from None
            raise

    return kept


class RayExecutor(Executor):
    """Trials as tasks on a Ray cluster, connected to as the executor is made.

    ``address``: ``None`` (``$RAY_ADDRESS`` if set, else a new Ray instance on this
    machine, without a dashboard, ended with the process), ``"auto"`` (the cluster ``ray
    start`` began on this machine), a head's ``host:port`` or ``"ray://host:10001"`` (Ray
    Client). A process already connected to Ray (``ray.init`` called before) keeps its
    connection.

    Each trial asks for ``num_cpus``, ``num_gpus``, ``memory`` (bytes) and custom
    ``resources`` (e.g. ``{"big_disk": 1}``, to run trials on the nodes that have it), and
    runs in ``runtime_env`` when given. ``slots`` (trials at once) defaults to as many as
    the cluster's resources fit, read again as nodes come and go.
    """

    def __init__(self, address: str | None = None, *, num_cpus: float = 1,
                 num_gpus: float = 0, memory: int | None = None,
                 resources: Mapping[str, float] | None = None, slots: int | None = None,
                 runtime_env: Mapping[str, Any] | None = None) -> None:
        self._ray = _import_ray()
        asked = {"CPU": _amount("num_cpus", num_cpus), "GPU": _amount("num_gpus", num_gpus)}
        if memory is not None:
            if isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0:
                raise PursuitError(f"memory must be a number of bytes > 0, got {memory!r}")
            asked["memory"] = memory
        for name, amount in (resources or {}).items():
            if name in ("CPU", "GPU", "memory"):
                raise PursuitError(f"resources: give {name} as num_cpus, num_gpus or memory")
            asked[name] = _amount(f"resources[{name!r}]", amount)
        if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int)
                                  or slots < 1):
            raise PursuitError(f"slots must be a whole number >= 1, got {slots!r}")
        self.address = address
        self._asked = {name: amount for name, amount in asked.items() if amount > 0}
        self._options: dict[str, Any] = {
            "num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": 0,
            "retry_exceptions": False,
            **({"memory": memory} if memory is not None else {}),
            **({"resources": dict(resources)} if resources else {}),
            **({"runtime_env": dict(runtime_env)} if runtime_env else {})}
        self._ships_code = bool(runtime_env and "working_dir" in runtime_env)
        self._fixed_slots = slots
        self._capacity = slots or 1  # trials the cluster runs at once
        self._slots_read = -math.inf
        self._mean_seconds = math.inf  # moving mean of trial wall time
        self._running: dict[tuple[int, int], _Running] = {}
        self._sink: Sink | None = None
        self._mailbox: Any = None
        self._collecting: Any = None  # the collection in flight, if any
        self._run = 0  # the mailbox's count of the runs (start to close) it served
        self._collects = 0  # collections asked for, numbered
        self._delivered = 0  # the number of the last mail delivered
        self._remote: Any = None
        self._where: tuple[tuple[str, ...], str | None] = ((), None)
        self._guard = SigtermGuard()
        self._sigterm = False  # SIGTERM arrived while the guard was held
        # Connect now: a wrong address, or trials no node can hold, are said before the
        # engine writes anything.
        if not self._ray.is_initialized():
            self._connect()
        self._read_slots(refuse=True)

    @property
    def slots(self) -> int:  # type: ignore[override]
        # Short trials are handed to Ray ahead of time, as to worker processes, so that
        # a worker never waits for the engine between trials.
        if self._mean_seconds >= QUEUE_SECONDS:
            return self._capacity
        ahead = QUEUE_SECONDS / max(self._mean_seconds, 1e-6)
        return self._capacity * min(MAX_QUEUE, 1 + int(ahead))

    # ----------------------------------------------------------------- the contract
    def start(self, sink: Sink) -> None:
        ray = self._ray
        if not ray.is_initialized():
            self._connect()
            self._mailbox = None  # (of an earlier connection, if any)
        self._read_slots()
        if self._mailbox is None:
            self._remote = ray.remote(_attempt)
            # On the engine's node: it lives and dies with the engine, not with a node
            # of trials (Ray's soft affinity places a resourceless actor anywhere).
            here = ray.get_runtime_context().get_node_id()
            strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                here, soft=False)
            self._mailbox = ray.remote(_Mailbox).options(
                num_cpus=0, max_concurrency=10_000, scheduling_strategy=strategy).remote()
            self._run = 0
        else:
            self._run = self._ray_call(ray.get, self._mailbox.reset.remote())
        self._collecting = None
        paths = tuple(os.path.abspath(p) if p else os.getcwd() for p in sys.path)
        self._where = (paths, None if self._ships_code else os.getcwd())
        self._sink = sink
        self._guard.hold()  # until close: SIGTERM stops the run as Ctrl-C does
        self._note_sigterm()

    @_sigterm_kept
    def submit(self, task: Task) -> None:
        envelope = (task.trial_id, task.attempt, pickle.dumps(task, protocol=5),
                    *self._where, task.timeout is not None)
        ref = self._remote.options(**self._options, name=f"pursuit trial {task.trial_id}"
                                   ).remote(self._mailbox, envelope)
        self._running[task.trial_id, task.attempt] = _Running(task, ref, time.monotonic())

    def busy(self) -> int:
        return len(self._running)

    @_sigterm_kept
    def poll(self, timeout: float) -> None:
        ray = self._ray
        self._read_slots()
        if not self._running:
            time.sleep(min(timeout, 0.01))
            return
        if self._collecting is None:
            self._collects += 1
            self._collecting = self._mailbox.collect.remote(self._run, self._collects,
                                                            COLLECT_SECONDS)
        now = time.monotonic()
        deadlines = [r.began + r.task.timeout for r in self._running.values()
                     if r.began is not None and r.task.timeout is not None]
        wait_for = max(0.0, min([timeout, *(d - now for d in deadlines)]))
        refs = [self._collecting, *(r.ref for r in self._running.values() if not r.ended)]
        ready, _ = self._ray_call(ray.wait, refs, num_returns=1, timeout=wait_for)
        if ready:
            ready, _ = self._ray_call(ray.wait, refs, num_returns=len(refs), timeout=0)
        done = set(ready)
        lost: list[tuple[_Running, BaseException]] = []
        for running in self._running.values():
            if running.ref in done:
                try:
                    running.ended = ray.get(running.ref)
                except ray.exceptions.RayError as error:
                    lost.append((running, error))
        mail: list[list[Mail]] = []
        if lost:
            # Collect everything these tasks sent before they were lost: the collection
            # in flight (told to come back now) and one more, delivered in the order sent.
            self._collects += 1
            at_once = self._mailbox.collect.remote(self._run, self._collects, 0.0)
            mail += self._ray_call(ray.get, [self._collecting, at_once])
            self._collecting = None
        elif self._collecting in done:
            mail.append(self._ray_call(ray.get, self._collecting))
            self._collecting = None
        self._deliver(sorted((m for batch in mail for m in batch), key=lambda m: m[0]))
        # An outcome is delivered once the reports its task sent before it are.
        for running in list(self._running.values()):
            if running.ended is not None and running.ended[1] <= self._delivered:
                self._end(running, running.ended[0])
        for running, why in lost:
            self._lose(running, why)
        self._end_overdue()

    def close(self, *, kill: bool = False) -> None:
        """Cancel what still runs (only an interrupted run leaves any): no task outlives
        the run, since a late one would write into the directory its trial's next
        attempt is handed."""
        self._guard.release()
        refs = [running.ref for running in self._running.values()]
        self._running.clear()
        self._collecting = None
        if not refs:
            return
        with contextlib.suppress(Exception):  # the cluster may be what failed
            for ref in refs:
                self._ray.cancel(ref, force=True)
            self._ray.wait(refs, num_returns=len(refs), timeout=CANCEL_SECONDS)

    # ----------------------------------------------------------------- the cluster
    def _connect(self) -> None:
        ray = self._ray
        # ray.init sets a SIGTERM handler of its own for the rest of the process; put
        # back the one found, which the guard relies on.
        found = signal.getsignal(signal.SIGTERM)
        try:
            # No dashboard, nor its job API, on a cluster started here (CVE-2023-48022):
            # ask for them on the cluster you start yourself, behind authentication.
            # Without an address, a new instance: not one that a stale record of an old
            # `ray start` names (Ray would wait on it for ever).
            address = self.address or os.environ.get("RAY_ADDRESS") or "local"
            _answering(address)
            ray.init(address=address, include_dashboard=False, logging_level="WARNING")
        except (OSError, ValueError, RuntimeError, ray.exceptions.RayError) as error:
            doing = "start Ray on this machine" if address == "local" else \
                f"connect to the Ray cluster at {address!r}"
            raise PursuitError(f"could not {doing}: {_first_line(error)}") from None
        finally:
            if found is not None:
                signal.signal(signal.SIGTERM, found)

    def _read_slots(self, *, refuse: bool = False) -> None:
        """How many trials the cluster's resources fit at once (at least one, so that a
        trial waits for nodes to return); ``refuse``: say so if not even one fits now."""
        now = time.monotonic()
        if self._fixed_slots is not None or (not refuse and
                                             now - self._slots_read < SLOTS_EVERY):
            return
        self._slots_read = now
        total = self._ray_call(self._ray.cluster_resources)
        fits = min((int(total.get(name, 0) // amount) for name, amount in self._asked.items()),
                   default=int(total.get("CPU", 1)))
        if refuse and fits < 1:
            short = [f"{amount:g} {name}" for name, amount in self._asked.items()
                     if total.get(name, 0) < amount]
            raise PursuitError(
                f"each trial asks for {', '.join(short)}, more than the Ray cluster has "
                f"({_describe(total)}): add nodes that have it, ask for less, or give "
                "slots= to wait for the nodes an autoscaler will start")
        self._capacity = max(1, fits)

    def _note_sigterm(self) -> None:
        """Note SIGTERM's arrival as the guard's handler raises ``Terminated`` (see
        ``_sigterm_kept``). The guard puts back the handler it found as it is released."""
        held = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is not threading.main_thread() or not callable(held):
            return

        def noting(signum: int, frame: FrameType | None) -> None:
            self._sigterm = True
            held(signum, frame)

        signal.signal(signal.SIGTERM, noting)

    def _ray_call(self, call: Any, *args: Any, **options: Any) -> Any:
        """``call(*args, **options)``, with the mailbox's or the cluster's loss as one
        clear error: the engine stops, and gives back what ran."""
        try:
            return call(*args, **options)
        except self._ray.exceptions.RayError as error:
            raise PursuitError(f"lost touch with the trials on the Ray cluster: "
                               f"{_first_line(error)}") from error

    # ----------------------------------------------------------------- the mail
    def _deliver(self, mail: list[Mail]) -> None:
        assert self._sink is not None
        for number, kind, trial_id, attempt, *rest in mail:
            self._delivered = number  # (mail comes in order)
            running = self._running.get((trial_id, attempt))
            if kind == "ask":
                # A task this executor no longer runs (cancelled) is told to stop.
                stop = running is None or bool(self._sink.should_stop(trial_id, attempt))
                self._mailbox.answer.remote(number, stop)
            elif running is None:
                continue  # mail from a cancelled task
            elif kind == "report":
                self._sink.on_report(trial_id, attempt, rest[0])
            elif kind == "began":
                running.began = time.monotonic()

    def _lose(self, running: _Running, error: BaseException) -> None:
        """End a task whose worker or node was lost, or that Ray could not run."""
        state, reason = _fate(self._ray.exceptions, error)
        self._end(running, Outcome(
            running.task.trial_id, running.task.attempt, state, error=storable(reason),
            wall_seconds=time.monotonic() - (running.began or running.submitted)))

    def _end(self, running: _Running, outcome: Outcome) -> None:
        assert self._sink is not None
        del self._running[running.task.trial_id, running.task.attempt]
        self._learn(outcome.wall_seconds)
        self._sink.on_finish(outcome)

    def _end_overdue(self) -> None:
        assert self._sink is not None
        now = time.monotonic()
        for key, running in list(self._running.items()):
            timeout = running.task.timeout
            if running.began is None or timeout is None or running.ended is not None or \
                    now - running.began <= timeout:
                continue
            del self._running[key]
            with contextlib.suppress(self._ray.exceptions.RayError):
                self._ray.cancel(running.ref, force=True)
            self._learn(now - running.began)
            self._sink.on_finish(Outcome(*key, TrialState.FAILED,
                                         error=f"timed out after {timeout:g} s",
                                         wall_seconds=now - running.began))

    def _learn(self, seconds: float) -> None:
        if self._mean_seconds == math.inf:
            self._mean_seconds = seconds
        else:
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds


@dataclass
class _Running:
    task: Task
    ref: Any  # the task's ObjectRef
    submitted: float
    began: float | None = None  # when it began on its worker, if it has a timeout
    # What its task returned: the outcome, and the number of the last mail it sent.
    ended: tuple[Outcome, int] | None = None


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError as error:
        raise PursuitError(f"the Ray executor needs Ray ({error}): {INSTALL}") from None


def _answering(address: str) -> None:
    """Raise OSError at once if nothing answers at ``host:port`` (or ``ray://host:port``):
    Ray would try again and again for minutes before it says so."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if colon and port.isdigit():
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()


def _amount(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value < 0:
        raise PursuitError(f"{what} must be a number >= 0, got {value!r}")
    return float(value)


def _fate(errors: Any, error: BaseException) -> tuple[TrialState, str]:
    """How a task that raised in Ray ended: lost with its worker or node (preempted), or
    a fault of its own (failed)."""
    first = _first_line(error)
    if isinstance(error, errors.NodeDiedError | errors.LocalRayletDiedError):
        return TrialState.PREEMPTED, f"the Ray node running the trial was lost: {first}"
    if isinstance(error, errors.OutOfMemoryError):
        return TrialState.PREEMPTED, f"Ray's memory monitor ended the trial: {first}"
    if isinstance(error, errors.WorkerCrashedError):
        return TrialState.PREEMPTED, (
            "the Ray worker running the trial died (killed from outside, out of memory, "
            f"or crashed: Ray does not say which): {first}")
    if isinstance(error, errors.ObjectLostError | errors.TaskCancelledError):
        return TrialState.PREEMPTED, f"the trial's Ray task was lost: {first}"
    if isinstance(error, errors.RayTaskError):
        return TrialState.FAILED, f"the trial's Ray task raised: {_plain(error)[-4000:]}"
    return TrialState.FAILED, f"Ray could not run the trial: {type(error).__name__}: {first}"


def _first_line(error: BaseException) -> str:
    lines = _plain(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:500]


def _plain(error: BaseException) -> str:
    """An error's text without the terminal colours Ray puts in it."""
    return re.sub(r"\x1b\[[0-9;]*m", "", str(error))


def _describe(resources: Mapping[str, float]) -> str:
    shown = [f"{amount:g} {name}" for name, amount in sorted(resources.items())
             if not name.startswith("node:") and name != "object_store_memory"]
    return ", ".join(shown) or "nothing"


# ----------------------------------------------------------------- on the cluster
def _attempt(mailbox: Any, envelope: tuple[Any, ...]) -> tuple[Outcome, int]:
    """A Ray task: run one attempt of a trial, its mail going through ``mailbox``; return
    how it ended, and the number of the last mail it sent."""
    trial_id, attempt, payload, paths, cwd, timed = envelope
    sys.path.extend(p for p in paths if p not in sys.path and os.path.exists(p))
    if cwd is not None and os.path.isdir(cwd):
        os.chdir(cwd)
    if timed:
        mailbox.began.remote(trial_id, attempt)
    channel = _MailboxChannel(mailbox)
    # SIGTERM from outside ends the worker (its trial preempted), not the method with
    # the SystemExit Ray's own handler raises.
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        try:
            task = pickle.loads(payload)  # imports the method's module
        except BaseException as error:
            return Outcome(trial_id, attempt, TrialState.FAILED, error=(
                f"the worker could not load the method: {describe(error)}")), 0
        return run_task(task, channel, interrupts=()), channel.sent
    finally:
        signal.signal(signal.SIGTERM, previous)


class _MailboxChannel:
    """A trial's way to the engine from a Ray task: each call waits for the mailbox."""

    def __init__(self, mailbox: Any) -> None:
        self._mailbox = mailbox
        self.sent = 0  # the number of the last report the mailbox took

    def report(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        import ray

        self.sent = ray.get(self._mailbox.report.remote(trial_id, attempt, points))

    def should_stop(self, trial_id: int, attempt: int) -> bool:
        import ray

        return bool(ray.get(self._mailbox.ask.remote(trial_id, attempt)))


class _Mailbox:
    """An async actor between the tasks and the engine: it keeps what the tasks send,
    numbered, until the engine collects it, and holds each question until its answer."""

    def __init__(self) -> None:
        self._mail: list[Mail] = []
        self._numbered = 0
        self._questions: dict[int, asyncio.Future[bool]] = {}
        # Collections waiting for mail, each a future made before it waits (a wake-up
        # given before a waiter has begun to wait is not lost).
        self._waiting: list[asyncio.Future[None]] = []
        self._run = 0
        self._hurried = 0  # collections numbered up to this one come back at once

    def _post(self, *mail: Any) -> int:
        self._numbered += 1
        self._mail.append((self._numbered, *mail))
        self._wake()
        return self._numbered

    def _wake(self) -> None:
        for waiting in self._waiting:
            if not waiting.done():
                waiting.set_result(None)
        self._waiting.clear()

    async def report(self, trial_id: int, attempt: int, points: list[Point]) -> int:
        return self._post("report", trial_id, attempt, points)

    async def began(self, trial_id: int, attempt: int) -> None:
        self._post("began", trial_id, attempt)


    async def ask(self, trial_id: int, attempt: int) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._questions[self._post("ask", trial_id, attempt)] = answer
        return await answer

    async def answer(self, number: int, stop: bool) -> None:
        """Answer the question that came as mail ``number``."""
        answer = self._questions.pop(number, None)
        if answer is not None and not answer.done():
            answer.set_result(stop)

    async def collect(self, run: int, number: int, wait: float) -> list[Mail]:
        """The mail so far, once there is some or ``wait`` seconds have passed. A
        collection with no wait also sends back at once those numbered before it, waiting
        or yet to begin (Ray may begin an async actor's calls out of order). A collection
        for a run that has ended takes nothing: no one reads what it sends back."""
        if run == self._run and not wait:
            self._hurried = max(self._hurried, number)
            self._wake()
        elif run == self._run and not self._mail and number > self._hurried:
            waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiting)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting, wait)
        if run != self._run:
            return []
        mail, self._mail = self._mail, []
        return mail

    async def reset(self) -> int:
        """End a run: forget its mail, send back its collection at once, tell its tasks
        still asking to stop; return the number of the next run."""
        self._run += 1
        self._mail = []
        self._wake()
        for answer in self._questions.values():
            if not answer.done():
                answer.set_result(True)
        self._questions.clear()
        return self._run
