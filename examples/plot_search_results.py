"""
Plotting a search
=================

:mod:`sknet.plot` draws what a fitted search and a fitted net remember: how
each hyperparameter relates to the cross-validated score
(:func:`~sknet.plot.plot_param_scores`), how fast a search found its best
setting (:func:`~sknet.plot.plot_best_so_far`, here a genetic search against
a random one with the same budget), how the generations of a genetic search
improved (:func:`~sknet.plot.plot_generations`), and the loss of the refitted
best net, epoch by epoch (:func:`~sknet.plot.plot_loss_curve`). Each function
draws on the matplotlib ``Axes`` it is given and returns it. matplotlib is an
optional dependency: ``pip install "sknet[plot]"``. Set
``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os

import matplotlib.pyplot as plt
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skopt.space import Categorical, Integer, Real

from sknet import MLPClassifier
from sknet.model_selection import GeneticSearchCV, RandomizedSearchCV
from sknet.plot import plot_best_so_far, plot_generations, plot_loss_curve, plot_param_scores

fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
if fast:
    X, y = X[:600], y[:600]

# %%
# Two searches over the same space
# --------------------------------
# The random search gets as many candidates as the genetic search evaluated.
space = {
    "mlpclassifier__lr": Real(1e-4, 1e-1, prior="log-uniform"),
    "mlpclassifier__n_units": Integer(16, 256, prior="log-uniform"),
    "mlpclassifier__activation": Categorical(["relu", "tanh", "gelu"]),
    "mlpclassifier__dropout": Real(0.0, 0.5),
}
pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=4 if fast else 30, random_state=0))
genetic = GeneticSearchCV(
    pipe, space, population_size=4 if fast else 10, generations=3 if fast else 6, cv=2 if fast else 3,
    random_state=0,
).fit(X, y)
n_candidates = len(genetic.cv_results_["params"])
random = RandomizedSearchCV(pipe, space, n_iter=n_candidates, cv=genetic.n_splits_, random_state=0).fit(X, y)

print(f"{n_candidates} candidates each, {genetic.n_splits_}-fold cross-validation")
print(f"best CV accuracy: genetic {genetic.best_score_:.4f}, random {random.best_score_:.4f}")
best = {name.split("__")[1]: round(value, 5) if isinstance(value, float) else value
        for name, value in genetic.best_params_.items()}
print(f"best genetic setting: {best}")

# %%
# Score against each hyperparameter
# ---------------------------------
# One point per candidate, with an error bar of one standard deviation over the
# folds; the star is the best candidate. The learning rate spans three decades,
# so its axis is logarithmic; the activation is categorical.
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
for ax, param in zip(axes, ["lr", "n_units", "activation"], strict=True):
    plot_param_scores(genetic, param, ax=ax)
fig.tight_layout()

# %%
# Which search found a good setting sooner?
# -----------------------------------------
# Candidates in the order each search evaluated them: the faint points are
# their scores, the steps the best score so far.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
plot_best_so_far(genetic, label="genetic", ax=left)
plot_best_so_far(random, label="random", ax=left)
plot_generations(genetic, ax=right)
fig.tight_layout()
for record in genetic.history_:
    print(f"generation {record['generation']}: best {record['best_score']:.4f}, "
          f"mean {record['mean_score']:.4f}, best so far {record['best_score_so_far']:.4f}")

# %%
# The loss of the best setting, epoch by epoch
# --------------------------------------------
# ``best_estimator_`` is a pipeline; its last step is the net, refitted on all
# the data, with only a training loss. Fitted again with early stopping, it
# holds out a tenth of the data and also records the validation loss, and keeps
# the weights of its best epoch.
best = clone(genetic.best_estimator_).set_params(
    mlpclassifier__early_stopping=True, mlpclassifier__max_epochs=8 if fast else 100,
).fit(X, y)
plot_loss_curve(best)
net = best[-1]
print(f"with early stopping the best setting kept epoch {net.best_epoch_} of {net.n_iter_}")

if not fast:
    plt.show()
