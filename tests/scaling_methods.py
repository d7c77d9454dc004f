"""A language model whose loss follows known laws, so that the ladder's studies can be
checked against the truth: L(N, D') = E + A / N^alpha + B / D'^beta, with repeated
tokens worth less (D', Muennighoff et al. 2023, R* = 5), and validation that turns
worse once training passes over its data more than ``TURN`` times. Like a run that
keeps its best checkpoint, it returns the best validation loss along its curve."""

import math

import numpy as np

import pursuit
from pursuit import Float, Int

E, A, ALPHA, B, BETA, R_STAR = 1.5, 40.0, 0.34, 40.0, 0.28, 5.0
TURN = 1.5  # passes over the data after which validation worsens
CORPUS = 1_000_000  # tokens at data = 1


def effective(tokens: float, unique: float) -> float:
    repeats = max(tokens / unique - 1.0, 0.0)
    return unique + unique * R_STAR * (1.0 - math.exp(-repeats / R_STAR))


def loss(params: float, tokens: float, unique: float, lr: float) -> float:
    law = E + A / params ** ALPHA + B / effective(tokens, unique) ** BETA
    return law * (1.0 + 0.02 * math.log10(lr / 1e-2) ** 2)  # best at lr = 0.01


@pursuit.method(source="ours")
def toy_lm(trial, *, width=Int(8, 256, log=True, default=32, scale="params"),
           data=Float(0.02, 1.0, log=True, default=0.1, scale="data"),
           epochs=Float(0.5, 16.0, log=True, default=2.0, scale="epochs"),
           lr=Float(1e-3, 1e-1, log=True, default=3e-3)):
    params = 48.0 * width ** 2
    unique = data * CORPUS
    tokens = epochs * unique
    noise = np.random.default_rng(trial.seed).normal(0.0, 0.003, 16)
    best = math.inf
    for k in range(1, 17):  # 16 evaluations along training, at the tokens seen so far
        seen = tokens * k / 16
        passes = seen / unique
        value = loss(params, seen, min(seen, unique), lr) * (1.0 + noise[k - 1]) \
            + 0.05 * max(0.0, passes - TURN) ** 2
        best = min(best, value)
        trial.report(int(seen), loss=value)
        trial.report_cost(params=params, tokens_seen=seen,
                          unique_tokens_seen=min(seen, unique))
    return best


@pursuit.method(source="Test et al. 2020", baseline=True)
def unigram(trial, *, smoothing=Float(0.1, 2.0, default=1.0)):
    """A baseline with no scale dial: the ladder never climbs it."""
    return 5.0 + 0.1 * (smoothing - 1.0) ** 2 + \
        0.01 * np.random.default_rng(trial.seed).standard_normal()


@pursuit.method(source="Test et al. 2021", baseline=True)
def oracle(trial):
    """A baseline far ahead of toy_lm: toy_lm never leads, and climbs only if studied."""
    return 1.0 + 0.01 * np.random.default_rng(trial.seed).standard_normal()
