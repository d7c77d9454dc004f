"""Methods for the digits goal: three baselines from the literature and a small MLP of our own.

Every trial scores its model by 5-fold cross-validation on scikit-learn's bundled 8x8
digits; the seed shuffles the folds (and seeds the model), so the spread over seeds
is the spread a reader would see on other shuffles of the same data.
"""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier

import pursuit
from pursuit import Choice, Float, Int

FOLDS = 5


def folds(seed):
    """(X_train, X_val, y_train, y_val) for each fold; pixel values scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    splitter = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    return [(X[a], X[b], y[a], y[b]) for a, b in splitter.split(X, y)]


def cross_validated(model, seed):
    """Mean validation accuracy of ``model`` over the folds."""
    scores = []
    for X_train, X_val, y_train, y_val in folds(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores.append(clone(model).fit(X_train, y_train).score(X_val, y_val))
    return float(np.mean(scores))


@pursuit.method(source="Cox 1958; scikit-learn defaults (Pedregosa et al. 2011)", baseline=True)
def logistic_regression(trial, *, C=Float(1e-3, 1e3, log=True, default=1.0)):
    return cross_validated(LogisticRegression(C=C, max_iter=500), trial.seed)


@pursuit.method(source="Cover & Hart 1967; scikit-learn defaults", baseline=True)
def nearest_neighbours(trial, *, k=Int(1, 30, default=5),
                       weights=Choice(["uniform", "distance"], default="uniform")):
    return cross_validated(KNeighborsClassifier(n_neighbors=k, weights=weights), trial.seed)


@pursuit.method(source="Breiman 2001; scikit-learn defaults", baseline=True)
def random_forest(trial, *, trees=Int(10, 200, log=True, default=100, scale="params"),
                  max_features=Choice(["sqrt", "log2"], default="sqrt")):
    model = RandomForestClassifier(n_estimators=trees, max_features=max_features,
                                   random_state=trial.seed, n_jobs=1)
    return cross_validated(model, trial.seed)


@pursuit.method(source="ours")
def mlp(trial, *, hidden=Int(16, 512, log=True, default=100, scale="params"),
        lr=Float(1e-4, 1e-1, log=True, default=1e-3),
        alpha=Float(1e-6, 1e-1, log=True, default=1e-4),
        epochs=Int(5, 40, default=20, scale="epochs")):
    """One hidden layer trained with Adam; the fold models train in step, one epoch at a
    time, so the engine sees the learning curve and can stop a poor run early."""
    data = folds(trial.seed)
    models = [MLPClassifier((hidden,), learning_rate_init=lr, alpha=alpha, batch_size=64,
                            random_state=trial.seed) for _ in data]
    classes = np.arange(10)
    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        scores = []
        for model, (X_train, X_val, y_train, y_val) in zip(models, data, strict=True):
            model.partial_fit(X_train, y_train, classes=classes)
            scores.append(model.score(X_val, y_val))
        accuracy = float(np.mean(scores))
        trial.report(epoch, accuracy=accuracy)
        if trial.should_stop():
            raise pursuit.Pruned()
    return accuracy
