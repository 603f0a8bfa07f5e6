"""
Bayesian search for an MLP on handwritten digits
================================================

``sknet.model_selection.BayesSearchCV`` fits a surrogate model (a Gaussian
process) to the cross-validated accuracy of the candidates tried so far and
proposes the next ones where it expects the most, so it needs fewer candidates
than a random search. Here it tunes the learning rate (log-uniform), width,
depth and dropout of an ``sknet.MLPClassifier`` in a pipeline on the digits,
two candidates per round, then scores the refitted best model on held-out data.
Set ``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skopt.space import Integer

from sknet import MLPClassifier
from sknet.model_selection import BayesSearchCV

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)

space = {
    "mlpclassifier__lr": (1e-4, 1e-1, "log-uniform"),
    "mlpclassifier__n_units": Integer(16, 256, prior="log-uniform"),
    "mlpclassifier__n_layers": (1, 3),
    "mlpclassifier__dropout": (0.0, 0.5),
}
pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=5 if fast else 30, random_state=0))
search = BayesSearchCV(
    pipe, space, n_iter=4 if fast else 24, n_points=2, cv=3, random_state=0,
    optimizer_kwargs={"n_initial_points": 2 if fast else 8},
)

start = time.perf_counter()
search.fit(X_train, y_train)
seconds = time.perf_counter() - start

scores = search.cv_results_["mean_test_score"]
print(f"searched {len(scores)} candidates x 3 folds in {seconds:.1f} s")
print("best CV accuracy after each candidate:", " ".join(f"{s:.3f}" for s in np.maximum.accumulate(scores)))
best = {name.split("__")[1]: round(value, 5) if isinstance(value, float) else value
        for name, value in search.best_params_.items()}
print(f"best parameters: {best}")
print(f"best CV accuracy: {search.best_score_:.4f}")
print(f"held-out accuracy of the refitted best model: {search.score(X_test, y_test):.4f}")
