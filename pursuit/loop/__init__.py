"""The research loop: decides what runs next, within the budget, until the goal is met.

A goal's run moves through **baselines** (every method at its published defaults, over
seeds), **search** (the dials, through Optuna's samplers, with early stopping), **confirm**
(the best searched configurations over fresh seeds), **verify** (a leader past the target,
over fresh seeds again) and **ladder** (the leader's scale dials stepped, for scaling
laws), and stops when the target is reached, the budget is spent, or nothing is left.

The parts, each readable and testable alone:

* ``planner``: what runs next (no I/O); the order and the rules are in its docstring;
* ``pursuit.analysis.claims``: what the seeds let us say, and when the target is reached;
* ``budget``: what the goal may spend and has spent;
* ``record``: the in-memory record of trials, one per (method, configuration, seed);
* ``journal``: the writes to the store, heartbeats, and what a resumed engine reads back;
* ``engine``: the conductor, and ``run``.
"""

from pursuit.analysis.claims import Stage
from pursuit.loop.engine import Engine, Progress, StopReason, Summary, run
from pursuit.loop.journal import engine_gone
from pursuit.loop.planner import Policy, ladder_rungs

__all__ = ["Engine", "Policy", "Progress", "Stage", "StopReason", "Summary", "engine_gone",
           "ladder_rungs", "run"]
