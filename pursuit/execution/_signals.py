"""SIGTERM stops a run the way Ctrl-C does.

kill, systemd, Slurm and Kubernetes stop a process with SIGTERM. Left to its default it
ends the engine at once: the workers run on (re-parented to init) and write into
directories a resumed engine hands to the trials' next attempts, the running trials stay
*running*, and no reason is written. While an executor runs trials it holds a
``SigtermGuard``: SIGTERM then raises ``Terminated`` in the main thread, wherever it is,
as Ctrl-C raises KeyboardInterrupt, and the engine stops as it does for Ctrl-C: workers
ended, running trials given back as *preempted*, the reason written.

``Terminated`` is a SystemExit with status 143 (128 + SIGTERM): a script that calls
``pursuit.run`` and does not catch it ends, after that clean-up, as a process stopped by
SIGTERM does, without a traceback.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class Terminated(SystemExit):
    """SIGTERM arrived while trials ran, and the run was stopped cleanly. Not an Exception,
    so that no ``except Exception`` on its way swallows it (as with KeyboardInterrupt)."""

    def __str__(self) -> str:
        return "the engine was stopped by SIGTERM"


class SigtermGuard:
    """While held, SIGTERM raises ``Terminated`` in the main thread; ``release`` puts back
    the handler found. Python runs handlers in the main thread only, so a run in another
    thread is not guarded; nor is one whose process ignores SIGTERM, or whose handler was
    set outside Python (it could not be put back)."""

    def __init__(self) -> None:
        self._previous: Any = None  # the handler found by hold(); None: not held

    def hold(self) -> None:
        if self._previous is not None or threading.current_thread() is not \
                threading.main_thread():
            return
        found = signal.getsignal(signal.SIGTERM)
        if found is None or found == signal.SIG_IGN:
            return
        signal.signal(signal.SIGTERM, _terminate)
        self._previous = found

    def release(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)  # the exit status of a process SIGTERM ended: 143
