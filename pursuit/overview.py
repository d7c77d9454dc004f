"""One goal's standing, read once and shown alike by ``pursuit status``, the HTML
report and the dashboard: the stage, the budget spent, the best claim and a verdict
in plain words, all from the same claim record as the leaderboard."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from pursuit.analysis.stats import Leaderboard
from pursuit.results import Results, metric_column


def fmt(value: Any, digits: int = 4) -> str:
    """A number as people read it: 4 significant digits, ``—`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def config_dict(config: str | None) -> dict[str, Any] | None:
    """A configuration as stored (JSON text) as an object; None for no claim."""
    if not isinstance(config, str) or not config:  # None, or NaN from pandas
        return None
    loaded: dict[str, Any] = json.loads(config)
    return loaded


def config_text(config: str | dict[str, Any] | None) -> str:
    """``C=1 kernel=rbf``, as the leaderboard writes a configuration."""
    dials = config if isinstance(config, dict) else config_dict(config)
    if dials is None:
        return "—"
    return " ".join(f"{k}={fmt(v, 3)}" for k, v in dials.items()) or "(no dials)"


def interval_text(lo: float, hi: float) -> str:
    return "—" if lo is None or math.isnan(lo) else f"[{fmt(lo)}, {fmt(hi)}]"


def claim_basis(best: dict[str, Any]) -> str:
    """What the best claim rests on, in words (see ``pursuit.analysis.claims``)."""
    seeds = f"over {best['best_n']} seeds"
    if best["best_verified"]:
        return f"over {best['best_n']} fresh seeds (verified after it led)"
    if best["best_among"] > 1:
        widened = " (its interval widened for being chosen)" if best["best_n"] > 1 else ""
        return f"{seeds}, the best of {best['best_among']} claims{widened}"
    return seeds


def verdict(board: Leaderboard, metric: str) -> str:
    """The leaderboard's answer in one paragraph: the best claim, how it compares with
    the best baseline (interval, seeds, corrected p, or that it cannot be told apart),
    and where it stands against the target."""
    p = board.progress
    target = p["target"]
    if p["best_method"] is None:
        if not len(board.methods) or board.methods["n"].max() == 0:
            return "No trial has completed yet: nothing can be claimed."
        return (f"No configuration has its {p['seeds']} seeds completed yet: nothing can "
                "be claimed.")
    best = board.methods[board.methods["method"] == p["best_method"]]
    row = best.iloc[0] if len(best) else None
    interval = "no interval from one seed" if math.isnan(p["best_lo"]) else \
        f"95% interval {fmt(p['best_lo'])} to {fmt(p['best_hi'])}"
    claim = (f"{p['best_method']} ({config_text(p['best_config'])}) scores {metric} "
             f"{fmt(p['best_mean'])} ({interval}, {claim_basis(p)})")
    if row is None or row["verdict"] in ("best baseline", "no baseline to compare with"):
        compared = "; it is the best baseline" if row is not None and \
            row["verdict"] == "best baseline" else ""
    elif row["verdict"] in ("better", "worse"):
        size, lo, hi = (float(row[k]) for k in ("diff", "diff_lo", "diff_hi"))
        if size < 0:  # a margin reads as a positive amount, its interval with it
            size, lo, hi = -size, -hi, -lo
        compared = (f"; it {'beats' if row['verdict'] == 'better' else 'trails'} the best "
                    f"baseline by {fmt(size, 3)} (95% interval {fmt(lo, 3)} to "
                    f"{fmt(hi, 3)}, {int(row['n'])} seeds, Holm-corrected "
                    f"p = {fmt(float(row['p_holm']), 2)})")
    elif row["verdict"] == "not significant":
        compared = (f"; it cannot be told apart from the best baseline (difference "
                    f"{float(row['diff']):+.3g}, 95% interval {fmt(row['diff_lo'], 3)} to "
                    f"{fmt(row['diff_hi'], 3)} before correcting for having chosen both "
                    f"sides' best; corrected, p = {fmt(float(row['p_holm']), 2)}, "
                    f"{int(row['n'])} seeds)")
    else:
        compared = f"; against the best baseline: {row['verdict']}"
    if target is None:
        standing = "."
    elif p["reached"]:
        standing = f"; target {fmt(target)} reached."
    elif p["gap"] <= 0:  # a leader past the target must still hold on fresh seeds
        standing = (f"; its mean is past target {fmt(target)}, but the target is not "
                    "reached until the claim holds on fresh seeds (verification).")
    else:
        standing = f"; target {fmt(target)} not reached (gap {fmt(p['gap'], 3)})."
    return claim + compared + standing


def ladder_report(results: Results, name: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The ladder's laws, one per line climbed, then what its trials say together."""
    from pursuit.scaling import ladder_studies

    record = results.goal(name)
    spec = record.spec
    laws = results.ladder(name, frame=frame)
    if not laws:
        return laws
    scales = {m["name"]: m.get("scales", {}) for m in spec.get("methods", [])}
    # The studies read the ladder's curves only: a goal may hold millions of points.
    ladder = frame.loc[frame["stage"] == "ladder", "trial_id"] if len(frame) else []
    curves = {int(t): _last_attempt(results.store.curve(int(t)), spec["metric"])
              for t in ladder}
    return laws + ladder_studies(frame, curves, metric=metric_column(spec["metric"]),
                                 direction=spec["direction"], target=spec.get("target"),
                                 scales=scales)


def _last_attempt(points: list[tuple[int, int, str, float]], metric: str
                  ) -> dict[int, float]:
    """One metric of a trial's curve, ``{step: value}``, from its latest attempt."""
    last = max((a for a, _, m, _ in points if m == metric), default=None)
    return {step: value for a, step, m, value in points if a == last and m == metric}


def goal_overview(results: Results, name: str, frame: pd.DataFrame | None = None
                  ) -> dict[str, Any]:
    """A goal's standing as plain data (``jsonable`` makes it JSON), from ``frame`` when
    the caller has read the goal's results table already."""
    record = results.goal(name)
    frame = results.results(name) if frame is None else frame
    board = results.leaderboard(name, frame=frame)
    spec = record.spec
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    stage = frame["stage"].iloc[-1] if len(frame) else None
    run_state, reason = results.run_state(name)
    failed = frame[frame["state"] == "failed"] if len(frame) else frame
    running = frame[frame["state"] == "running"] if len(frame) else frame
    best = {k: board.progress[k] for k in ("best_method", "best_config", "best_n",
                                           "best_mean", "best_lo", "best_hi",
                                           "best_verified", "best_among")}
    best["best_config"] = config_dict(best["best_config"])
    return {
        "goal": record.name, "id": record.id, "statement": spec.get("statement", ""),
        "metric": spec["metric"], "direction": spec["direction"],
        "target": spec.get("target"), "seeds": spec.get("seeds", 3), "state": run_state,
        "reason": reason, "stage": stage, "budget": spec.get("budget", {}),
        "trials": {state: int(counts.get(state, 0)) for state in
                   ("completed", "pruned", "failed", "running", "preempted")},
        "trials_total": int(len(frame)),
        "compute_seconds": board.progress["compute_seconds"],
        "best": best, "verdict": verdict(board, spec["metric"]),
        "verifications": board.progress["verifications"],
        "gap": board.progress["gap"], "reached": board.progress["reached"],
        "ladder": ladder_report(results, name, frame),
        "running": [{"trial_id": int(r.trial_id), "method": r.method, "stage": r.stage}
                    for r in running.itertuples()],
        "failed": [{"trial_id": int(r.trial_id), "method": r.method,
                    "error": (r.error or "").strip().splitlines()[-1:] or [""]}
                   for r in failed.itertuples()],
    }


def members_lines(members: list[dict[str, Any]], scored: str) -> list[str]:
    """A blend in words: what it is made of, and why those weights."""
    if len(members) < 2:
        return []
    return [f"  a weighted geometric mean of {len(members)} candidate laws, each weighted "
            f"by 1 / its RMSLE {scored}:",
            *(f"    {m['form']}: weight {m['weight']:.2f}, RMSLE "
              f"{fmt(m['holdout_rmsle'], 3)}: {m['formula']}" for m in members)]


def ladder_lines(ladder: list[dict[str, Any]]) -> list[str]:
    """Per line the ladder climbed: its law written out (a blend's members, their weights
    and why), its parameters, and what the target takes, in words when far out; then
    what the ladder says taken together (``pursuit.scaling.ladder_studies``)."""
    lines = []
    for entry in ladder:
        kind = entry.get("kind", "law")
        if kind != "law":
            lines += _study_lines(entry)
            continue
        at = " ".join(f"{k}={fmt(v, 3)}" for k, v in entry.get("at", {}).items())
        rungs = ", ".join(fmt(float(r), 3) for r in entry["rungs"])
        head = f"ladder {entry['method']}.{entry['dial']} over [{rungs}]" + \
            (f" (at {at})" if at else "")
        if "form" not in entry:
            lines.append(f"{head}: {entry.get('note', 'no fit')}")
            continue
        against = entry.get("x", entry["dial"])
        if against != entry["dial"]:
            head += f", against the {against} the trials reported"
        lines.append(f"{head}: {entry['law']}")
        lines += members_lines(entry["members"], "predicting the largest rung from the others")
        lines.append("  parameters, 95% intervals: " + ", ".join(
            f"{k} {fmt(v['value'], 3)} {interval_text(v['lower'], v['upper'])}"
            for k, v in entry["params"].items()))
        f = entry.get("forecast")
        if f and f["reachable"]:
            lines += _needs(f"{against}", f, entry.get("compute_seconds"))
        elif f:
            reason = str(f["reason"])
            lines.append(f"  target, by this dial: {reason}" if
                         reason.startswith("not reachable") else
                         f"  target not reachable by this dial: {reason}")
    return lines


def _needs(what: str, f: dict[str, Any], cost: dict[str, Any] | None = None) -> list[str]:
    """What a reachable forecast says: the value, its interval, and whether it is an
    extrapolation (never a plain number when far past the measurements)."""
    far = f.get("extrapolation")
    line = (f"  target needs {what} {'≈' if far else '='} {f['x']:.3g} "
            f"({f['level']:.0%} interval {interval_text(f['lower'], f['upper'])})")
    if cost:
        line += f", about {cost['value']:.3g} s per trial"
    line += f" — {far}: an extrapolation, not a measurement" if far else ""
    return [line, *([f"  but {f['caveat']}"] if f.get("caveat") else [])]


def _study_lines(entry: dict[str, Any]) -> list[str]:
    method, kind = entry["method"], entry["kind"]
    title = {"overfit": "overfitting", "repeats": "new against repeated data",
             "compute": "compute to reach the target"}[kind]
    head = f"{title}, {method}"
    if kind == "overfit":
        if not entry.get("curves"):
            return [f"{head}: {entry.get('note', 'no curves')}"]
        lines = [f"{head}: {entry['turned']} of {entry['curves']} ladder curves turned "
                 "(validation got worse after its best step)"]
        dial = entry.get("data_dial") or "data"
        for group in entry.get("by_data", []):
            where = f"at {dial}={fmt(group['data'], 3)}" if group["data"] is not None \
                else "with no data dial"
            if group["median_step"] is None:
                lines.append(f"  {where}: still improving at step {group['last_step']} "
                             f"({group['trials']} runs)")
            else:
                lines.append(f"  {where}: best at step {fmt(group['median_step'], 3)} "
                             f"(median of the {group['turned']} of {group['trials']} runs "
                             "that turned)")
        trend = entry.get("trend")
        if trend:
            lines.append(f"  the turn moves as {dial}^{trend['exponent']:.2f} "
                         f"({trend['level']:.0%} interval {trend['lower']:.2f} to "
                         f"{trend['upper']:.2f}, {trend['points']} runs): "
                         + ("more data delays overfitting" if trend["lower"] > 0 else
                            "not clearly moving with data" if trend["upper"] >= 0 else
                            "more data brings it earlier"))
        elif entry.get("note"):
            lines.append(f"  {entry['note']}")
        return lines
    if "law" not in entry:
        return [f"{head}: {entry.get('note', 'no fit')}"]
    lines = [f"{head}: {entry['law']} ({entry['points']} trials)"]
    if kind == "repeats":
        at, worth, r = entry["at"], entry["worth"], entry["R_star"]
        lines.append(f"  R* = {fmt(r['value'], 3)} {interval_text(r['lower'], r['upper'])}: "
                     f"at N = {fmt(at['params'], 3)} with {fmt(at['tokens'], 3)} tokens seen "
                     f"from {fmt(at['unique'], 3)} unique ({at['passes']:.2g} passes), a "
                     f"token seen is worth {fmt(worth['value'], 3)} of a fresh one (95% "
                     f"interval {interval_text(worth['lower'], worth['upper'])}); the law "
                     f"gives {fmt(entry['loss_repeated'], 4)} as trained against "
                     f"{fmt(entry['loss_fresh'], 4)} had every token been new")
        return lines
    lines.append("  parameters, 95% intervals: " + ", ".join(
        f"{k} {fmt(v['value'], 3)} {interval_text(v['lower'], v['upper'])}"
        for k, v in entry["params"].items()))
    f = entry.get("forecast")
    if f and f["reachable"]:
        needs = _needs("C = 6 N D FLOP", f)
        needs[0] += f", largest measured {fmt(entry['largest_compute'], 3)}"
        lines += needs
        fresh = "fresh tokens, by the data-constrained law" if entry.get("fresh_data_from") \
            else "tokens seen, repeats included"
        lines.append(f"  at the compute-optimal split: N ≈ {fmt(f['params_opt'], 3)} "
                     f"parameters, D ≈ {fmt(f['tokens_opt'], 3)} tokens ({fresh})")
    elif f:
        share = f.get("reachable_fraction")
        refits = f" ({share:.0%} of bootstrap refits reach it)" if share else ""
        lines.append(f"  target not reachable under L(N, D): {f['reason']}{refits}")
    return lines


def board_dict(board: Leaderboard) -> dict[str, Any]:
    """A leaderboard as plain data, configurations as objects."""
    def rows(table: Any) -> list[dict[str, Any]]:
        records = table.to_dict(orient="records")
        for record in records:
            record["config"] = config_dict(record["config"])
        return list(records)

    progress = dict(board.progress)
    progress["best_config"] = config_dict(progress["best_config"])
    return {"methods": rows(board.methods), "configs": rows(board.configs),
            "progress": progress}


def jsonable(value: Any) -> Any:
    """NaN and ±inf become null: JSON has no such numbers, and scripts must not guess."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
