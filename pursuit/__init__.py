"""Pursuit: a goal-driven research engine.

Declare a goal, run the known methods first, search their dials, and get an honest
answer to "which method is best, by how much, and are we at the target yet?"
"""

from importlib import import_module
from typing import Any

from pursuit.dials import Choice, Float, Int
from pursuit.exceptions import (
    DialError,
    GoalError,
    MethodError,
    Pruned,
    PursuitError,
    StoreError,
    UnusableStoreError,
    WorkerError,
)
from pursuit.methods import Method, method
from pursuit.trial import Trial, TrialState

# Worker processes import pursuit to unpickle methods; the engine's parts (Optuna,
# SQLAlchemy, pandas) load on first use so that a worker starts in a fraction of a second.
_LAZY = {"Budget": "pursuit.goal", "Goal": "pursuit.goal", "load_goal": "pursuit.goal",
         "Policy": "pursuit.loop", "Progress": "pursuit.loop", "Summary": "pursuit.loop",
         "run": "pursuit.loop", "Results": "pursuit.results", "open": "pursuit.results"}

__all__ = [
    "Budget", "Choice", "DialError", "Float", "Goal", "GoalError", "Int", "Method",
    "MethodError", "Policy", "Progress", "Pruned", "PursuitError", "Results", "StoreError",
    "Summary", "Trial", "TrialState", "UnusableStoreError", "WorkerError", "load_goal",
    "method", "open", "run",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pursuit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
