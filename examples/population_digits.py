"""
Population-based training: a learning-rate schedule found in one search
=======================================================================

:class:`~sknet.model_selection.PopulationSearchCV` trains a population of nets
together, every member on every CV split, and every few epochs lets the worst
quarter copy the weights of the best quarter ("exploit") and perturb their
learning rate and weight decay ("explore"). What it finds is not one learning
rate but a *schedule* of them, for about the compute of a random search of the
same population: the whole population x folds trains as one batched model, and
an exploit is a copy of weights and optimizer state in memory.

It is compared here with :class:`~sknet.model_selection.RandomizedSearchCV` of
the same number of candidates trained for the same epochs, on the digits. Set
``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sknet import MLPClassifier
from sknet.model_selection import PopulationSearchCV, RandomizedSearchCV
from sknet.plot import plot_population

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
if fast:
    X, y = X[:600], y[:600]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
space = {"lr": (1e-3, 0.5, "log-uniform"), "weight_decay": (1e-6, 1e-2, "log-uniform"),
         "momentum": (0.5, 0.99, "uniform")}
epochs, population = (10, 8) if fast else (40, 16)
net = MLPClassifier(n_units=64, optimizer="sgd", batch_size=64, max_epochs=epochs, random_state=0)

# %%
# The population: every 5 epochs, the bottom quarter copies the top quarter and explores.
start = time.perf_counter()
pbt = PopulationSearchCV(net, space, population_size=population, perturbation_interval=5, cv=3,
                         random_state=0).fit(X_train, y_train)
pbt_time = time.perf_counter() - start
print(f"PopulationSearchCV: {pbt_time:.1f} s (exploit and explore {pbt.exploit_time_:.3f} s), best CV "
      f"{pbt.best_score_:.4f}, held out {pbt.score(X_test, y_test):.4f}")
for epoch, params in pbt.best_schedule_:
    print(f"  from epoch {epoch:2d}: " + ", ".join(f"{k}={v:.3g}" for k, v in sorted(params.items())))

# %%
# A random search of as many candidates, each trained for the same epochs.
start = time.perf_counter()
random = RandomizedSearchCV(net, space, n_iter=population, cv=3, random_state=0).fit(X_train, y_train)
random_time = time.perf_counter() - start
print(f"RandomizedSearchCV: {random_time:.1f} s, best CV {random.best_score_:.4f}, held out "
      f"{random.score(X_test, y_test):.4f}")

# %%
# Each member's score over epochs; an exploit is a dashed jump to the member it copied.
# On the right, the winner's schedule of each parameter.
plot_population(pbt)
plt.tight_layout()
plt.show()
