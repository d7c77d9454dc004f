"""A picture of a fit: points, the law, its extrapolation band and the target."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pursuit.scaling._summary import PREDICTION_LEVEL, Study


def plot(study: Study, path: str | Path, *, x_label: str = "x", y_label: str = "y") -> None:
    """Write a PNG (or any format matplotlib knows by the suffix) of a one-variable fit.

    A ValueError says why when the file cannot be written (no such folder, say)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("plots need matplotlib: pip install 'pursuit[plot]'") from error
    fit = study.fit
    if fit.form.variables != 1:
        raise ValueError("--plot draws one-variable fits; L(N, D) has no single x axis")
    xs = [study.x_seen, study.x_held]
    x_max = max(float(np.max(v)) for v in xs if len(v))
    if study.forecast is not None and study.forecast.reachable:
        x_max = max(x_max, study.forecast.upper if np.isfinite(study.forecast.upper)
                    else study.forecast.x)
    grid = np.geomspace(float(np.min(fit.x)), min(x_max * 1.5, 1e300), 300)
    lower, upper = fit.band(grid, PREDICTION_LEVEL)
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    axes.fill_between(grid, lower, upper, color="tab:blue", alpha=0.2,
                      label=f"{PREDICTION_LEVEL:.0%} prediction band")
    members = getattr(fit.form, "members", None)
    law = f"blend of {len(members)} candidate laws" if members else \
        f"{fit.form.name}: {fit.form.formula}"
    axes.plot(grid, fit.predict(grid), color="tab:blue", lw=2, label=law)
    axes.axvline(float(np.max(fit.x)), color="grey", lw=1, ls=":", label="end of fitted data")
    axes.scatter(study.x_seen, study.y_seen, s=14, color="black", zorder=3,
                 label="fitted points")
    if len(study.y_held):
        axes.scatter(study.x_held, study.y_held, s=18, color="tab:orange", zorder=3,
                     label="held-out points")
    if study.forecast is not None:
        f = study.forecast
        axes.axhline(f.target, color="tab:red", lw=1.2, ls="--", label=f"target {f.target:g}")
        if f.reachable:  # far past the data: the line says so
            where = f"≈ {f.x:.3g}: an extrapolation" if f.extrapolation else f"= {f.x:.3g}"
            axes.axvline(f.x, color="tab:red", lw=1, label=f"reaches target at x {where}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(path)
    except OSError as error:
        raise ValueError(f"cannot write the plot to {path}: "
                         f"{error.strerror or error}") from None
    finally:
        plt.close(figure)
