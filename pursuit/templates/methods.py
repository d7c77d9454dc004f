"""Methods for this goal: a baseline from the literature and a method of your own.

Each method takes the trial first; its dials are keyword-only parameters whose
defaults are Float / Int / Choice with the published setting as `default`.
"""

import warnings

from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import pursuit
from pursuit import Float, Int


def split(seed):
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.4, random_state=seed,
                                                      stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_val), y_train, y_val


@pursuit.method(source="Cox 1958; scikit-learn defaults", baseline=True)
def logistic_regression(trial, *, C=Float(1e-3, 1e3, log=True, default=1.0)):
    X_train, X_val, y_train, y_val = split(trial.seed)
    return LogisticRegression(C=C, max_iter=1000).fit(X_train, y_train).score(X_val, y_val)


@pursuit.method(source="ours")
def my_method(trial, *, hidden=Int(4, 128, log=True, default=16, scale="params"),
              lr=Float(1e-4, 1e-1, log=True, default=1e-3)):
    X_train, X_val, y_train, y_val = split(trial.seed)
    model = MLPClassifier((hidden,), learning_rate_init=lr, random_state=trial.seed)
    for epoch in range(1, 51):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(X_train, y_train, classes=[0, 1, 2])
        accuracy = model.score(X_val, y_val)
        trial.report(epoch, accuracy=accuracy)  # the learning curve
        if trial.should_stop():  # early stopping, decided by the engine
            raise pursuit.Pruned()
    return accuracy
