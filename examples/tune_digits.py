"""
Tune an MLP on handwritten digits
=================================

Cross-validated grid search over the learning rate and the width of an
``sknet.MLPClassifier`` in a scikit-learn pipeline, then the held-out accuracy
of the best model. Set ``SKNET_EXAMPLES_FAST=1`` for a quick run (fewer epochs).
"""

import os
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier
from sknet.model_selection import GridSearchCV

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)

pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=5 if fast else 30, random_state=0))
grid = {"mlpclassifier__lr": [1e-3, 1e-2], "mlpclassifier__n_units": [32, 128],
        "mlpclassifier__n_layers": [1, 2]}
search = GridSearchCV(pipe, grid, cv=3, n_jobs=1)

start = time.perf_counter()
search.fit(X_train, y_train)
seconds = time.perf_counter() - start

print(f"searched {len(search.cv_results_['params'])} candidates x 3 folds in {seconds:.1f} s")
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True):
    print(f"  {params}  mean CV accuracy {score:.4f}")
print(f"best parameters: {search.best_params_}")
print(f"best CV accuracy: {search.best_score_:.4f}")
print(f"held-out accuracy of the refitted best model: {search.score(X_test, y_test):.4f}")
