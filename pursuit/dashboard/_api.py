"""The JSON API: goals, their standing, leaderboards and trials, and trials' curves.

Every answer is JSON with NaN and ±inf as null. Ids are integers (an unknown one is a
404 with a JSON ``detail``); parameters are checked against their ranges and
whitelists (422 otherwise); page sizes and curve lengths are bounded. A goal's
standing, leaderboard and page data come from ``GoalViews``, kept between changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from pursuit.dashboard._views import GoalViews, dumps
from pursuit.overview import config_text
from pursuit.store import GoalRecord, TrialRecord
from pursuit.trial import TrialState

MAX_ID = 2**63 - 1
MAX_SERIES = 20  # metrics in one curve answer
GoalId = Annotated[int, Path(ge=1, le=MAX_ID, description="A goal's id (see /api/goals).")]
TrialId = Annotated[int, Path(ge=1, le=MAX_ID, description="A trial's id.")]


class Detail(BaseModel):
    """Why a request was refused."""

    detail: Any


class Health(BaseModel):
    status: str


class Version(BaseModel):
    """Changes whenever the goal's view does: what live pages poll."""

    version: str


class Open(BaseModel):
    """An object whose documented fields come with others (see the description)."""

    model_config = ConfigDict(extra="allow")


class GoalSummary(BaseModel):
    id: int
    name: str
    parent_id: int | None
    statement: str
    metric: str
    direction: str
    target: float | None
    trials: dict[str, int]
    trials_total: int
    state: str
    reason: str | None


class GoalList(BaseModel):
    goals: list[GoalSummary]


class Trial(BaseModel):
    id: int
    goal_id: int
    method: str
    stage: str
    seed: int
    state: str
    attempt: int
    dials: dict[str, Any]
    config: str
    started_at: float | None
    finished_at: float | None
    wall_seconds: float | None
    cpu_seconds: float | None
    error: str | None
    values: dict[str, float | None]
    costs: dict[str, float | None]


class TrialPage(BaseModel):
    trials: list[Trial]
    total: int
    before: int | None  # pass as ``before`` for the next (older) page; null at the end


class CurveMetric(BaseModel):
    points: int  # points the curve holds
    step: list[int]  # each bucket's last step
    mean: list[float | None]
    min: list[float | None]
    max: list[float | None]


class Curve(BaseModel):
    trial_id: int
    attempt: int
    metrics: dict[str, CurveMetric]
    metrics_total: int


class TrialDetail(Trial):
    curve: dict[str, dict[str, int]]  # metric: points, first and last step (this attempt)


ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": Detail}, 401: {"model": Detail}}


def json_response(value: Any = None, *, raw: bytes | None = None) -> Response:
    return Response(raw if raw is not None else dumps(value), media_type="application/json")


def trial_json(record: TrialRecord) -> dict[str, Any]:
    return {"id": record.id, "goal_id": record.goal_id, "method": record.method,
            "stage": record.stage, "seed": record.seed, "state": record.state.value,
            "attempt": record.attempt, "dials": record.dials,
            "config": config_text(record.dials), "started_at": record.started_at,
            "finished_at": record.finished_at, "wall_seconds": record.wall_seconds,
            "cpu_seconds": record.cpu_seconds, "error": record.error,
            "values": record.values, "costs": record.costs}


def router() -> APIRouter:
    api = APIRouter(prefix="/api")

    def views(request: Request) -> GoalViews:
        found: GoalViews = request.app.state.views
        return found

    def goal_or_404(request: Request, goal_id: int) -> GoalRecord:
        goal = views(request).goal(goal_id)
        if goal is None:
            raise HTTPException(404, f"no goal with id {goal_id}")
        return goal

    def trial_or_404(request: Request, trial_id: int) -> TrialRecord:
        record = views(request).store.trial(trial_id)
        if record is None:
            raise HTTPException(404, f"no trial with id {trial_id}")
        return record

    @api.get("/health", response_model=Health)
    def health() -> Response:
        """Whether the server answers; the one route that needs no token."""
        return json_response({"status": "ok"})

    @api.get("/goals", response_model=GoalList, responses=ERRORS)
    def goals(request: Request) -> Response:
        """Every goal in the store: what it asks, its trials by state, whether an
        engine works on it now."""
        shown = views(request)
        out = []
        for goal in shown.goals():
            counts = {state.value: n for state, n in shown.counts(goal).items()}
            spec = goal.spec
            out.append({"id": goal.id, "name": goal.name, "parent_id": goal.parent_id,
                        "statement": str(spec.get("statement", "")),
                        "metric": str(spec.get("metric", "")),
                        "direction": str(spec.get("direction", "")),
                        "target": spec.get("target"), "trials": counts,
                        "trials_total": sum(counts.values()), **shown.run_state(goal)})
        return json_response({"goals": out})

    @api.get("/goals/{goal_id}", response_model=Open, responses=ERRORS)
    def goal(request: Request, goal_id: GoalId) -> Response:
        """The goal's standing, as ``pursuit status --json`` gives it: the question
        (statement, metric, direction, target, seeds, budget), ``state`` and
        ``reason`` (whether an engine works on it), ``stage``, ``trials`` by state,
        ``best`` (the best claim), ``verdict`` in words, ``gap``, ``reached``,
        ``ladder``, and the ``running`` and ``failed`` trials."""
        record = goal_or_404(request, goal_id)
        shown = views(request)
        return json_response({**shown.view(record).overview, **shown.run_state(record)})

    @api.get("/goals/{goal_id}/leaderboard", response_model=Open, responses=ERRORS)
    def leaderboard(request: Request, goal_id: GoalId,
                    configs: Annotated[int, Query(ge=0, le=1000, description=(
                        "How many configurations to list, best first."))] = 20) -> Response:
        """The leaderboard, as ``pursuit leaderboard --json`` gives it: ``methods``
        (each method's best claim against the best baseline), the best ``configs``
        (``configs_total`` says how many there are) and ``progress``."""
        board = views(request).view(goal_or_404(request, goal_id)).board
        return json_response({"methods": board["methods"],
                              "configs": board["configs"][:configs],
                              "configs_total": len(board["configs"]),
                              "progress": board["progress"]})

    @api.get("/goals/{goal_id}/version", response_model=Version, responses=ERRORS)
    def version(request: Request, goal_id: GoalId) -> Response:
        """A text that changes when the goal's view does (a trial created, finished,
        preempted or restarted): cheap to ask, for pages that follow a run."""
        return json_response({"version": views(request).view(
            goal_or_404(request, goal_id)).version})

    @api.get("/goals/{goal_id}/view", response_model=Open, responses=ERRORS)
    def page(request: Request, goal_id: GoalId) -> Response:
        """Everything the goal page draws: ``overview`` (the standing, with the
        newest running and failed trials), ``run`` (whether an engine works on it),
        ``ladder_lines`` (the ladder in words), ``leaderboard`` (methods and the best
        configurations), ``figures`` (Plotly figures: leaderboard, progress over trials
        and over compute, curves, dial effects and ladder lines per method) and
        ``version``."""
        record = goal_or_404(request, goal_id)
        shown = views(request)
        kept = shown.view(record)
        run = dumps(shown.run_state(record))
        return json_response(raw=b'{"run":' + run + b"," + kept.page[1:])

    @api.get("/goals/{goal_id}/trials", response_model=TrialPage, responses=ERRORS)
    def trials(request: Request, goal_id: GoalId,
               state: Annotated[list[TrialState] | None, Query(
                   description="Only trials in these states (repeat to give several).")
               ] = None,
               before: Annotated[int | None, Query(ge=1, le=MAX_ID, description=(
                   "Only trials with smaller ids: the ``before`` of the previous page."))
               ] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
        """The goal's trials, newest first, a page at a time."""
        record = goal_or_404(request, goal_id)
        shown = views(request)
        states = set(state) if state else None
        found = shown.store.trial_page(record.id, states=states, before=before, limit=limit)
        counts = shown.counts(record)
        total = sum(n for s, n in counts.items() if states is None or s in states)
        return json_response({"trials": [trial_json(t) for t in found], "total": total,
                              "before": found[-1].id if len(found) == limit else None})

    @api.get("/trials/{trial_id}", response_model=TrialDetail, responses=ERRORS)
    def trial(request: Request, trial_id: TrialId) -> Response:
        """One trial: its dials, seed, state, values, costs, error text, and what its
        current attempt's curve holds."""
        record = trial_or_404(request, trial_id)
        summary = views(request).store.curve_metrics(record.id, record.attempt)
        curve = {name: {"points": n, "first_step": first, "last_step": last}
                 for name, (n, first, last) in summary.items()}
        return json_response({**trial_json(record), "curve": curve})

    @api.get("/trials/{trial_id}/curve", response_model=Curve, responses=ERRORS)
    def curve(request: Request, trial_id: TrialId,
              points: Annotated[int, Query(ge=2, le=5000, description=(
                  "Most points per metric: a longer curve comes back in this many "
                  "buckets of consecutive steps (each bucket's last step, and the mean, "
                  "min and max of its values)."))] = 500,
              metric: Annotated[str | None, Query(max_length=100, description=(
                  "One metric; all (at most 20) when left out."))] = None,
              attempt: Annotated[int | None, Query(ge=1, le=2**31 - 1, description=(
                  "Which attempt; the current one when left out."))] = None) -> Response:
        """A trial's learning curve, thinned in the database for display."""
        record = trial_or_404(request, trial_id)
        store = views(request).store
        at = attempt or record.attempt
        if at > record.attempt:  # an attempt that never was, as an unknown metric: 404
            raise HTTPException(404, f"trial {trial_id} has had {record.attempt} "
                                     f"attempt{'s' if record.attempt > 1 else ''}, not {at}")
        held = store.curve_metrics(record.id, at)
        if metric is not None and metric not in held:
            raise HTTPException(404, f"trial {trial_id} attempt {at} has no curve of "
                                     f"metric {metric!r}")
        names = [metric] if metric is not None else sorted(held)[:MAX_SERIES]
        out = {}
        for name in names:
            sample = store.curve_sample(record.id, at, name, points)
            out[name] = {"points": held[name][0], "step": [s for s, *_ in sample],
                         "mean": [v for _, v, _, _ in sample],
                         "min": [lo for _, _, lo, _ in sample],
                         "max": [hi for *_, hi in sample]}
        return json_response({"trial_id": record.id, "attempt": at, "metrics": out,
                              "metrics_total": len(held)})

    return api
