"""What the dashboard shows of a goal, computed once per change of the goal's trials.

A goal's standing (``pursuit.overview``), leaderboard and figures (``pursuit.report``)
come from the whole results table: at 100,000 trials that takes seconds. So each is
computed once and kept, with the store's change marker (``Store.changes``, a few index
probes) read at every request: an unchanged goal is answered from what was kept, a
changed one is computed again. A goal that takes long to compute goes on showing its
last view while the new one is computed in the background; its ``version`` changes
when the new one lands, which is what live pages watch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pursuit.analysis.stats import Leaderboard
from pursuit.overview import board_dict, goal_overview, jsonable, ladder_lines
from pursuit.results import Results, metric_column
from pursuit.store import GoalRecord, Store
from pursuit.trial import TrialState

log = logging.getLogger("pursuit.dashboard")

WAIT_UP_TO = 2.0  # seconds: a goal that computed faster than this is never served stale
LISTED = 50  # running and failed trials listed on the goal page (the newest)
DIAL_POINTS = 1000  # completed trials per method in the dial plots, evenly spread
CURVE_POINTS = 100  # points per line in the curve plots
CONFIGS = 20  # configurations in the goal page's table


@dataclass(frozen=True)
class GoalView:
    """One goal as computed from one state of its trials."""

    marker: tuple[Any, ...]
    version: str
    overview: dict[str, Any]  # goal_overview, JSON-ready
    board: dict[str, Any]  # board_dict, JSON-ready
    page: bytes  # the goal page's data as JSON (see ``GoalViews.page_json``)
    seconds: float  # how long computing it took


class GoalViews:
    """The kept views of a store's goals; safe to use from many threads at once."""

    def __init__(self, store: Store, *, wait_up_to: float = WAIT_UP_TO) -> None:
        self.store = store
        self.results = Results(store)
        self.wait_up_to = wait_up_to
        self._views: dict[int, GoalView] = {}
        self._counts: dict[int, tuple[tuple[Any, ...], dict[TrialState, int]]] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._refreshing: set[int] = set()
        self._guard = threading.Lock()

    def goals(self) -> list[GoalRecord]:
        return self.store.goals()

    def goal(self, goal_id: int) -> GoalRecord | None:
        return next((g for g in self.store.goals() if g.id == goal_id), None)

    def view(self, goal: GoalRecord) -> GoalView:
        """The goal's view: the kept one while its trials are unchanged (or while a
        slow goal's new view is being computed), else a new one."""
        marker = self.store.changes(goal.id)
        kept = self._views.get(goal.id)
        if kept is not None and kept.marker == marker:
            return kept
        if kept is not None and kept.seconds > self.wait_up_to:
            self._refresh_later(goal, marker)
            return kept
        with self._lock(goal.id):
            kept = self._views.get(goal.id)
            if kept is not None and kept.marker == marker:
                return kept
            return self._compute(goal, marker)

    def counts(self, goal: GoalRecord) -> dict[TrialState, int]:
        """How many trials of the goal are in each state, counted once per change (a
        count scans the goal's index: milliseconds at 100,000 trials)."""
        marker = self.store.changes(goal.id)
        kept = self._counts.get(goal.id)
        if kept is not None and kept[0] == marker:
            return kept[1]
        counts = self.store.trial_counts(goal.id)
        self._counts[goal.id] = (marker, counts)
        return counts

    def run_state(self, goal: GoalRecord) -> dict[str, Any]:
        """Whether an engine works on the goal now: read at every request, since an
        engine can go silent without writing anything."""
        if not self.store.runs(goal.id):  # Results.run_state would read every trial here
            state = "stopped" if self.counts(goal) else "not started"
            return {"state": state, "reason": None}
        state, reason = self.results.run_state(goal.name)
        return {"state": state, "reason": reason}

    def _lock(self, goal_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(goal_id, threading.Lock())

    def _refresh_later(self, goal: GoalRecord, marker: tuple[Any, ...]) -> None:
        with self._guard:
            if goal.id in self._refreshing:
                return
            self._refreshing.add(goal.id)

        def refresh() -> None:
            try:
                with self._lock(goal.id):
                    self._compute(goal, marker)
            except Exception:  # the kept view goes on being served; the next request retries
                log.exception("computing the view of goal %s failed", goal.id)
            finally:
                with self._guard:
                    self._refreshing.discard(goal.id)

        threading.Thread(target=refresh, name=f"pursuit-view-{goal.id}", daemon=True).start()

    def _compute(self, goal: GoalRecord, marker: tuple[Any, ...]) -> GoalView:
        started = time.perf_counter()
        goal = self.goal(goal.id) or goal  # its spec as of the marker
        frame = self.results.results(goal.name)
        once = _ReadOnce(self.store, goal, frame)
        board = once.leaderboard(goal.name)
        overview = goal_overview(once, goal.name)
        for key in ("state", "reason"):  # read fresh at every request instead
            overview.pop(key)
        plain = jsonable(board_dict(board))
        version = hashlib.sha256(repr(marker).encode()).hexdigest()[:16]
        page = page_data(goal, frame, board, plain, overview, self.store)
        page["version"] = version
        view = GoalView(marker, version, jsonable(overview), plain, dumps(page),
                        time.perf_counter() - started)
        self._views[goal.id] = view
        log.info("goal %s: view computed in %.2f s (%d trials)", goal.id, view.seconds,
                 len(frame))
        return view


class _ReadOnce(Results):
    """The store's view for one computation: the goal's table as read once, its
    leaderboard computed once, however often ``goal_overview`` asks for them."""

    def __init__(self, store: Store, goal: GoalRecord, frame: pd.DataFrame) -> None:
        super().__init__(store)
        self._goal, self._frame = goal, frame
        self._board: Leaderboard | None = None

    def results(self, goal: str | None = None) -> pd.DataFrame:
        return self._frame

    def leaderboard(self, goal: str | None = None, *,
                    frame: pd.DataFrame | None = None) -> Leaderboard:
        if self._board is None:
            self._board = super().leaderboard(self._goal.name, frame=self._frame)
        return self._board

    def run_state(self, goal: str | None = None) -> tuple[str, str | None]:
        return "", None  # not kept: read fresh at every request (GoalViews.run_state)


def dumps(value: Any) -> bytes:
    """JSON as the dashboard sends it: NaN and ±inf as null, every character that is
    not ASCII escaped (a stray surrogate in an error text cannot break the encoding)."""
    return json.dumps(jsonable(value), ensure_ascii=True, allow_nan=False,
                      separators=(",", ":")).encode()


def page_data(goal: GoalRecord, frame: pd.DataFrame, board: Leaderboard,
              plain: dict[str, Any], overview: dict[str, Any], store: Store
              ) -> dict[str, Any]:
    """Everything the goal page draws: the standing (its lists of running and failed
    trials cut to the newest ``LISTED``), the ladder in words, the leaderboard's
    methods and best ``CONFIGS`` configurations (from ``plain``, its ``board_dict``),
    and the figures as Plotly JSON."""
    short = dict(overview)
    for key in ("running", "failed"):
        short[key] = overview[key][-LISTED:][::-1]
        short[f"{key}_total"] = len(overview[key])
    return {
        "overview": short,
        "ladder_lines": ladder_lines(overview["ladder"]),
        "leaderboard": {"methods": plain["methods"], "configs": plain["configs"][:CONFIGS],
                        "configs_total": len(plain["configs"])},
        "figures": figures(goal, frame, board, overview, store),
    }


def figures(goal: GoalRecord, frame: pd.DataFrame, board: Leaderboard,
            overview: dict[str, Any], store: Store) -> dict[str, Any]:
    """The report's figures for the goal page, each as Plotly JSON, drawn from at most
    ``DIAL_POINTS`` trials per method and ``CURVE_POINTS`` points per curve."""
    from pursuit.report import figures as f
    from pursuit.report.series import best_claim_history, ladder_points

    spec = goal.spec
    metric, column = spec["metric"], metric_column(spec["metric"])
    target, direction, seeds = spec.get("target"), spec["direction"], spec.get("seeds", 3)
    methods = [str(m) for m in board.methods["method"]] if len(board.methods) else []
    colors = f.method_colors(methods)
    history = best_claim_history(frame, metric=column, direction=direction, target=target,
                                 seeds=seeds)
    out: dict[str, Any] = {
        "leaderboard": f.leaderboard_figure(board.methods, metric=metric, target=target),
        "progress": f.progress_figure(history, metric=metric, target=target),
        "progress_compute": f.progress_figure(history, metric=metric, target=target,
                                              x="compute_seconds"),
        "curves": [], "dials": [], "ladder": []}
    best_configs = dict(zip(board.methods["method"], board.methods["config"], strict=True)) \
        if len(board.methods) else {}
    ranges = {m["name"]: m.get("ranges", {}) for m in spec.get("methods", [])}
    for method in methods:
        own = frame[frame["method"] == method]
        curves = _curves(store, own, metric, best_configs.get(method), f.MAX_LINES)
        if curves:
            out["curves"].append(f.curve_figure(
                curves, own, method=method, metric=metric,
                best_config=best_configs.get(method), color=colors[method],
                max_points=CURVE_POINTS))
        done = own[own["state"] == "completed"]
        if len(done) and any(c.startswith("dial.") and done[c].notna().any()
                             for c in done.columns):
            out["dials"].append(f.dial_figure(_spread(done, DIAL_POINTS), method=method,
                                              metric=column, ranges=ranges.get(method)))
    for entry in overview["ladder"]:
        if entry.get("kind", "law") == "law" and "form" in entry:
            out["ladder"].append(f.ladder_figure(entry, ladder_points(frame, entry,
                                                                      metric=column)))
    return {key: [_plotly(v) for v in value] if isinstance(value, list) else _plotly(value)
            for key, value in out.items()}


def _plotly(figure: Any) -> Any:
    return json.loads(figure.to_json())


def _spread(rows: pd.DataFrame, most: int) -> pd.DataFrame:
    """At most ``most`` rows, evenly spread over the run (first and last kept)."""
    if len(rows) <= most:
        return rows
    return rows.iloc[np.unique(np.linspace(0, len(rows) - 1, most).round().astype(int))]


def _curves(store: Store, own: pd.DataFrame, metric: str, best_config: str | None,
            lines: int) -> dict[int, dict[int, float]]:
    """The curves a method's curve figure draws, each read thinned in the store: the
    seeds of its best configuration, and ``lines`` other trials spread over the run."""
    best = own[(own["config"] == best_config) & (own["state"] == "completed")] \
        if best_config is not None else own.iloc[:0]
    chosen = pd.concat([best, _spread(own.drop(best.index), lines)])
    out = {}
    for trial_id, attempt in zip(chosen["trial_id"], chosen["attempt"], strict=True):
        sample = store.curve_sample(int(trial_id), int(attempt), metric, CURVE_POINTS)
        if sample:
            out[int(trial_id)] = {step: mean for step, mean, _, _ in sample
                                  if not math.isnan(mean)}
    return out
