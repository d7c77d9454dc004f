"""Executors: where trials run. ``ProcessExecutor`` is the default."""

from pursuit.execution._base import Executor, Sink
from pursuit.execution._inline import InlineExecutor
from pursuit.execution._processes import ProcessExecutor
from pursuit.execution._signals import SigtermGuard, Terminated

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "SigtermGuard", "Sink", "Terminated"]
