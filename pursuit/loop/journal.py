"""The engine's writes to the store: batched, with heartbeats, and read back on resume.

Everything one engine step writes goes into one ``WriteBatch``, applied in one
transaction: new trials at once (their ids are needed before they run), curve points
at most every ``flush_every`` seconds, outcomes and preemptions with the next write.
Heartbeats go from a thread of their own.
What the store refuses (a late outcome, another engine's trial) is counted and logged,
never forced.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from pursuit.store import NewTrial, Store, TrialRecord, WriteBatch
from pursuit.trial import Outcome, Point, TrialState

MAX_HELD_POINTS = 50_000  # curve points held before a write, however recent the last


class Journal:
    def __init__(self, store: Store, goal_id: int, engine_id: str, *, flush_every: float,
                 heartbeat_every: float, log: Callable[[str], None]) -> None:
        self.store, self.goal_id, self.engine_id = store, goal_id, engine_id
        self.flush_every, self.heartbeat_every, self.log = flush_every, heartbeat_every, log
        self.batch = WriteBatch(engine=engine_id)
        self.refused = 0
        self._last_flush = 0.0
        self._stop_beating = threading.Event()
        self._beating: threading.Thread | None = None

    # ------------------------------------------------------------------ writing
    def create(self, trials: list[NewTrial]) -> list[int | None]:
        """Write new trials (with whatever else is pending); None: another engine's."""
        self.batch.new.extend(trials)
        return self.flush(force=True)

    def claim(self, trial_id: int, attempt: int) -> bool:
        """Restart a preempted trial as this engine's, at once (what is pending first, its
        preemption among it); False when another engine on the goal restarted it first."""
        self.flush(force=True)
        result = self.store.write(WriteBatch(engine=self.engine_id,
                                             restarts=[(trial_id, attempt)]))
        return not result.refused

    def points(self, trial_id: int, attempt: int, points: list[Point]) -> None:
        self.batch.add_points(trial_id, attempt, points)

    def outcome(self, outcome: Outcome) -> None:
        self.batch.outcomes.append(outcome)

    def preempt(self, trial_id: int, attempt: int, why: str) -> None:
        self.batch.preempted.append((trial_id, attempt, why))

    def preempting(self) -> set[int]:
        return {trial_id for trial_id, _, _ in self.batch.preempted}

    def flush(self, *, force: bool = False) -> list[int | None]:
        batch = self.batch
        if not batch:
            return []
        only_points = not (batch.new or batch.restarts or batch.outcomes or batch.preempted)
        if only_points and not force and len(batch.points) < MAX_HELD_POINTS and \
                time.monotonic() - self._last_flush < self.flush_every:
            return []
        self.batch = WriteBatch(engine=self.engine_id)
        result = self.store.write(batch)
        self._last_flush = time.monotonic()
        for line in result.refused:
            self.refused += 1
            self.log(f"refused write: {line}")
        return result.new_ids

    def start_beating(self) -> None:
        """Beat the engine's heartbeat from a thread of its own, every ``heartbeat_every``
        seconds: a trial that keeps the engine busy (a curve of 300,000 points) must not
        make the engine look dead to the others on the goal."""
        self._stop_beating.clear()
        self._beating = threading.Thread(target=self._beat, name="pursuit-heartbeat",
                                         daemon=True)
        self._beating.start()

    def stop_beating(self) -> None:
        self._stop_beating.set()
        if self._beating is not None:
            self._beating.join()
            self._beating = None

    def _beat(self) -> None:
        while not self._stop_beating.wait(self.heartbeat_every):
            try:
                self.store.heartbeat(self.engine_id)
            except Exception as error:  # the main thread meets the same store and says so
                self.log(f"heartbeat failed: {error}")

    # ------------------------------------------------------------------ runs
    def start(self) -> float:
        """Record this engine's run; return the wall seconds earlier engines spent."""
        return self.store.start_run(self.goal_id, self.engine_id)

    def end(self, reason: str) -> None:
        self.store.end_run(self.goal_id, self.engine_id, reason)

    def give_back_orphans(self, reap_after: float) -> None:
        """Preempt the trials whose engine is gone (its process ended, or it has been
        silent for ``reap_after`` seconds), so that they run again."""
        clock = self.store.now()
        for running in self.store.running(self.goal_id):
            if engine_gone(running.engine, self.engine_id) or running.heartbeat_at is None or \
                    clock - running.heartbeat_at > reap_after:
                self.preempt(running.id, running.attempt, "its engine stopped while it ran")
        self.flush(force=True)

    def give_back_own(self, why: str) -> None:
        """Preempt what this engine left running: trials written a moment before an
        interrupt, not yet handed to a worker, must not stay *running*."""
        held = self.preempting()
        for running in self.store.running(self.goal_id):
            if running.engine == self.engine_id and running.id not in held:
                self.preempt(running.id, running.attempt, why)

    def finished_since(self, since: float) -> list[TrialRecord]:
        return self.store.finished_since(self.goal_id, since, other_than=self.engine_id)

    def preempted(self) -> list[TrialRecord]:
        """The goal's trials waiting to run again, whichever engine ran them."""
        return self.store.trial_page(self.goal_id, states={TrialState.PREEMPTED},
                                     limit=10_000)

    def counts(self) -> dict[TrialState, int]:
        """The goal's trials in the store by state, whichever engine made them."""
        return self.store.trial_counts(self.goal_id)

    def past(self, metric: str, with_curves: bool
             ) -> tuple[list[TrialRecord], dict[int, dict[int, float]]]:
        """Every trial of the goal, and each one's curve of ``metric`` when asked."""
        curves = self.store.curves(self.goal_id, metric) if with_curves else {}
        return self.store.trials(self.goal_id), curves


def new_engine_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def engine_gone(engine: str | None, current: str | None = None) -> bool:
    """Whether ``engine`` (host:pid:token) was a process of this machine that has ended.

    An engine of another machine is never judged gone here, only by its heartbeats.
    ``current`` is the asking engine's id: another id with its pid is an earlier engine
    of the same process."""
    if not engine:
        return True
    host, _, rest = engine.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return engine != current
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
