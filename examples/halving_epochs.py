"""
How many epochs? A full grid, halving on epochs, and epoch curves
=================================================================

Two ways to spend less time on epochs than a full grid trained to the end:

* **Epoch curves for free.** A grid over ``max_epochs`` costs about what its
  largest value costs alone: sknet's engine trains each setting of the other
  hyperparameters once, to the most epochs asked for, and scores it at each
  count on the way. :func:`~sknet.plot.plot_epoch_curves` draws the result: one
  cross-validated learning curve per setting.
* **Successive halving on epochs.** :class:`~sknet.model_selection.HalvingGridSearchCV`
  with ``resource="max_epochs"`` trains every candidate for a few epochs, keeps the
  best third, and lets the survivors *go on training* where they stopped (the
  result is the same as training them again from scratch, as scikit-learn does,
  only cheaper).

Both are compared here with the full grid at the largest epoch count, on the
digits. Set ``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from sknet import MLPClassifier
from sknet.model_selection import GridSearchCV, HalvingGridSearchCV
from sknet.plot import plot_epoch_curves

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
X, y = (X / 16.0).astype(np.float32), y
if fast:
    X, y = X[:600], y[:600]
grid = {"lr": [1e-3, 1e-2] if fast else [1e-3, 3e-3, 1e-2, 3e-2], "n_units": [32, 128],
        "weight_decay": [0.0] if fast else [0.0, 1e-4, 1e-3, 1e-2]}  # 32 candidates: 4 rungs
epochs = [3, 9] if fast else [3, 9, 27, 81]
net = MLPClassifier(batch_size=128, random_state=0)

# %%
# The full grid at the largest epoch count, then the same grid over every epoch count. A tiny
# search first, untimed, so that torch's one-time costs do not land on the first timing.
GridSearchCV(net, {"max_epochs": [1]}, cv=2).fit(X[:200], y[:200])
start = time.perf_counter()
full = GridSearchCV(net, {**grid, "max_epochs": epochs[-1:]}, cv=3).fit(X, y)
full_time = time.perf_counter() - start
start = time.perf_counter()
curves = GridSearchCV(net, {**grid, "max_epochs": epochs}, cv=3).fit(X, y)
curves_time = time.perf_counter() - start
print(f"full grid, {epochs[-1]} epochs: {full_time:.1f} s, best CV accuracy {full.best_score_:.4f}")
print(f"grid over max_epochs {epochs}: {curves_time:.1f} s ({curves_time / full_time:.2f}x), "
      f"best {curves.best_score_:.4f} with {curves.best_params_}")
plot_epoch_curves(curves)
plt.title("CV accuracy against epochs, one curve per setting")

# %%
# Successive halving on epochs: the survivors of each rung continue training.
start = time.perf_counter()
halving = HalvingGridSearchCV(net, grid, resource="max_epochs", min_resources=epochs[0],
                              max_resources=epochs[-1], factor=3, cv=3).fit(X, y)
halving_time = time.perf_counter() - start
rungs = ", ".join(f"{n} at {r} epochs" for n, r in zip(halving.n_candidates_, halving.n_resources_,
                                                      strict=True))
print(f"halving ({rungs}): {halving_time:.1f} s ({halving_time / full_time:.2f}x), "
      f"best {halving.best_score_:.4f} with {halving.best_params_}")
plot_epoch_curves(halving)
plt.title("Halving: the survivors' curves, rung after rung")
plt.show()
