"""Executors: where trials run. ``ProcessExecutor`` is the default.

``RayExecutor`` imports Ray only when one is made: importing this package never does.
"""

from pursuit.execution._base import Executor, Sink
from pursuit.execution._inline import InlineExecutor
from pursuit.execution._processes import ProcessExecutor
from pursuit.execution._ray import RayExecutor
from pursuit.execution._signals import SigtermGuard, Terminated

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "RayExecutor", "SigtermGuard",
           "Sink", "Terminated"]
