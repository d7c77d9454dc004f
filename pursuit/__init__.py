"""Pursuit: a goal-driven research engine.

Declare a goal, run the known methods first, search their dials, and get an honest
answer to "which method is best, by how much, and are we at the target yet?"
"""

from pursuit.dials import Choice, Float, Int
from pursuit.exceptions import DialError, GoalError, MethodError, Pruned, PursuitError, StoreError
from pursuit.goal import Budget, Goal, load_goal
from pursuit.loop import Policy, Progress, Summary, run
from pursuit.methods import Method, method
from pursuit.results import Results, open
from pursuit.trial import Trial, TrialState

__all__ = [
    "Budget", "Choice", "DialError", "Float", "Goal", "GoalError", "Int",
    "Method", "MethodError", "Policy", "Progress", "Pruned", "PursuitError", "Results",
    "StoreError", "Summary", "Trial", "TrialState", "load_goal", "method", "open", "run",
]
__version__ = "0.1.0"
