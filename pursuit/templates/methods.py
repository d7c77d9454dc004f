"""Methods for this goal: a baseline from the literature and a method of your own.

A method is a function that takes the trial first and returns the goal's metric (a float,
or a dict holding it). Its dials are keyword-only parameters whose defaults are Float /
Int / Choice, each with the method's published setting as `default`: the baseline stage
runs every method at those, the search stage tries others. `scale="params"` marks the
dial that sets the model's size, so the ladder stage can step it (x1/4 to x4) and fit a
scaling law to the rungs.

Every trial scores its model by 5-fold cross-validation on scikit-learn's bundled 8x8
handwritten digits (1,797 images; nothing is downloaded). `trial.seed` shuffles the folds
and seeds the model, so the spread over seeds is the spread a reader would see on other
shuffles of the same data.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.kernel_approximation import RBFSampler
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import StratifiedKFold

import pursuit
from pursuit import Float, Int

FOLDS = 5


def folds(seed):
    """(X_train, X_val, y_train, y_val) for each fold; pixel values scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    splitter = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    return [(X[a], X[b], y[a], y[b]) for a, b in splitter.split(X, y)]


@pursuit.method(source="Cox 1958; scikit-learn defaults", baseline=True)
def logistic_regression(trial, *, C=Float(1e-3, 1e3, log=True, default=1.0)):
    """The baseline: a linear model on the raw pixels, at scikit-learn's default C."""
    scores = [LogisticRegression(C=C, max_iter=1000).fit(X_train, y_train).score(X_val, y_val)
              for X_train, X_val, y_train, y_val in folds(trial.seed)]
    return float(np.mean(scores))


@pursuit.method(source="ours (random Fourier features, after Rahimi & Recht 2007)")
def my_method(trial, *, features=Int(100, 2000, log=True, default=100, scale="params"),
              gamma=Float(0.005, 0.5, log=True, default=1 / 64)):
    """Random features: an RBF kernel approximated by `features` random cosines, read out
    by ridge regression. The defaults are the published ones (scikit-learn's RBFSampler
    draws 100 features; gamma = 1 / n_features, 1/64 here, is the classic kernel-width
    rule), and they are too few features for this data: search has to find more, and a
    gamma to go with them."""
    scores = []
    for fold, (X_train, X_val, y_train, y_val) in enumerate(folds(trial.seed), start=1):
        rff = RBFSampler(gamma=gamma, n_components=features, random_state=trial.seed)
        Z_train = rff.fit_transform(X_train)
        model = RidgeClassifier(alpha=0.01).fit(Z_train, y_train)  # a light penalty, fixed
        scores.append(model.score(rff.transform(X_val), y_val))
        # The curve so far (mean accuracy over the folds done), so that the engine can stop
        # a poor configuration before its last fold.
        trial.report(fold, accuracy=float(np.mean(scores)))
        if trial.should_stop():  # the engine's early-stopping rule (search trials only)
            raise pursuit.Pruned()
    return float(np.mean(scores))
