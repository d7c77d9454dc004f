"""Scaling laws: fit the patterns, choose forms by extrapolation, forecast with intervals.

    from pursuit import scaling
    choice = scaling.select(x, y, holdout=0.2)      # the form that extrapolates best
    scaling.forecast(choice.fit, target=2.0)        # the x that reaches 2.0, with an interval

Like ``pursuit.analysis``, this package imports nothing else of Pursuit.
"""

from pursuit.scaling._curves import (
    Overfit,
    RepeatValue,
    Trend,
    overfit_step,
    overfit_trend,
    power_trend,
    value_of_repeats,
)
from pursuit.scaling._fit import DELTA, Fit, check_data, fit, robust_scale
from pursuit.scaling._forecast import (
    Allocation,
    Forecast,
    compute_forecast,
    compute_to_reach,
    forecast,
    optimal_allocation,
)
from pursuit.scaling._forms import (
    FORMS,
    M3,
    M4,
    BrokenPowerLaw,
    ChinchillaLaw,
    DataConstrainedLaw,
    Form,
    OffsetPowerLaw,
    PowerLaw,
)
from pursuit.scaling._ladder import ladder_forecasts
from pursuit.scaling._select import Blend, Choice, describe, rmsle, select, split_largest
from pursuit.scaling._studies import (
    compute_study,
    ladder_studies,
    overfit_study,
    repeats_study,
)

__all__ = [
    "DELTA", "FORMS", "M3", "M4", "Allocation", "Blend", "BrokenPowerLaw", "ChinchillaLaw",
    "Choice", "DataConstrainedLaw", "Fit", "Forecast", "Form", "OffsetPowerLaw", "Overfit",
    "PowerLaw", "RepeatValue", "Trend", "check_data", "compute_forecast", "compute_study",
    "compute_to_reach", "describe", "fit", "forecast", "ladder_forecasts", "ladder_studies",
    "optimal_allocation", "overfit_step", "overfit_study", "overfit_trend", "power_trend",
    "repeats_study", "rmsle", "robust_scale", "select", "split_largest", "value_of_repeats",
]
