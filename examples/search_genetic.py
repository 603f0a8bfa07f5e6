"""
Genetic search for an MLP on handwritten digits
===============================================

``GeneticSearchCV`` evolves a population of candidate settings: the fittest of
each generation breed (crossover), their children mutate, and the best survive
unchanged. Here it tunes the learning rate (log-uniform), width, depth,
activation and dropout of an ``sknet.MLPClassifier`` in a pipeline on the
digits data, then prints the best setting and how each generation did
(``history_``). A setting met twice is never trained twice. Set
``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skopt.space import Categorical, Integer

from sknet import MLPClassifier
from sknet.model_selection import GeneticSearchCV

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)

space = {
    "mlpclassifier__lr": (1e-4, 1e-1, "log-uniform"),
    "mlpclassifier__n_units": Integer(16, 256, prior="log-uniform"),
    "mlpclassifier__n_layers": Integer(1, 3),
    "mlpclassifier__activation": Categorical(["relu", "tanh", "gelu"]),
    "mlpclassifier__dropout": (0.0, 0.5),
}
pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=3 if fast else 20, random_state=0))
search = GeneticSearchCV(
    pipe, space, population_size=6 if fast else 12, generations=3 if fast else 6, patience=2,
    cv=2 if fast else 3, random_state=0,
)

start = time.perf_counter()
search.fit(X_train, y_train)
seconds = time.perf_counter() - start

n_candidates = len(search.cv_results_["params"])
print(f"{n_candidates} candidates trained in {search.n_generations_} generations, {seconds:.1f} s")
print("generation  trained    best  best so far    mean  seconds")
for h in search.history_:
    print(f"{h['generation']:>10}  {h['n_evaluated']:>7}  {h['best_score']:.4f}  "
          f"{h['best_score_so_far']:>11.4f}  {h['mean_score']:.4f}  {h['wall_time']:>7.1f}")
best = {name.split("__")[1]: round(value, 5) if isinstance(value, float) else value
        for name, value in search.best_params_.items()}
print(f"best parameters: {best}")
print(f"best CV accuracy: {search.best_score_:.4f}")
print(f"held-out accuracy of the refitted best model: {search.score(X_test, y_test):.4f}")
