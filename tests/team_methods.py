"""Methods for engines that share a goal: each trial sleeps, so that the engines'
trials overlap in time as a team's do."""

import time

import numpy as np

import pursuit
from pursuit import Float


@pursuit.method(source="Test et al. 2020", baseline=True)
def steady(trial):
    """A baseline at 0.5."""
    time.sleep(0.05)
    return 0.5 + 0.005 * np.random.default_rng(trial.seed).standard_normal()


@pursuit.method(source="ours")
def peaked(trial, *, x=Float(0.0, 1.0, default=0.1)):
    """Best at x = 0.7 (value 1); maximize."""
    time.sleep(0.05)
    noise = 0.005 * np.random.default_rng([trial.seed, int(x * 1e6)]).standard_normal()
    return 1.0 - (x - 0.7) ** 2 + noise


@pursuit.method(source="ours")
def dozes(trial, *, x=Float(0.0, 1.0, default=0.5)):
    """A second a trial: long enough to be killed mid-run."""
    time.sleep(1.0)
    return x
