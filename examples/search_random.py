"""
Random search over a mixed space
================================

``sknet.model_selection.RandomizedSearchCV`` is scikit-learn's random search,
and it also understands the space notation of the Bayesian and genetic searches:
skopt dimensions and ``(low, high, prior)`` ranges. Here it tunes the learning
rate (log-uniform), width, depth, activation and dropout of an MLP on the
breast-cancer data. Set ``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os

from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skopt.space import Categorical, Integer

from sknet import MLPClassifier
from sknet.model_selection import RandomizedSearchCV

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_breast_cancer(return_X_y=True)

space = {
    "mlpclassifier__lr": (1e-4, 1e-1, "log-uniform"),
    "mlpclassifier__n_units": Integer(8, 128),
    "mlpclassifier__n_layers": Integer(1, 3),
    "mlpclassifier__activation": Categorical(["relu", "tanh", "gelu"]),
    "mlpclassifier__dropout": (0.0, 0.5, "uniform"),
}
pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=5 if fast else 40, random_state=0))
search = RandomizedSearchCV(pipe, space, n_iter=3 if fast else 20, cv=3, random_state=0)
search.fit(X, y)

ranked = sorted(zip(search.cv_results_["rank_test_score"], search.cv_results_["mean_test_score"],
                    search.cv_results_["params"], strict=True), key=lambda row: row[0])
for rank, score, params in ranked[:5]:
    short = {name.split("__")[1]: round(value, 5) if isinstance(value, float) else value
             for name, value in params.items()}
    print(f"#{rank}  CV accuracy {score:.4f}  {short}")
print(f"best CV accuracy: {search.best_score_:.4f}")
