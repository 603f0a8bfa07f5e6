"""Benchmark: what a round of Bayesian proposals costs, against a random search of as many candidates.

The same space (log-uniform ``lr`` and ``weight_decay``, 16 to 256 units, 1 to 3 layers; Adam,
batch size 64), 32 candidates, 3-fold CV, ``--epochs`` epochs (10), on scikit-learn's digits
(scaled to [0, 1]) and on ``make_classification(6000, 40, n_informative=20, n_classes=5)``;
for each task and seed, in one run, interleaved:

1. ``RandomizedSearchCV``, 32 candidates;
2. ``BayesSearchCV(n_points=8)``: each round's 8 points from the one surrogate fit its ``tell``
   makes (sknet's kriging believer, see ``sknet.model_selection._proposals``);
3. the same with scikit-optimize's own ``Optimizer.ask(n_points=8)`` (the constant liar: a fit of
   the surrogate per point), patched in for the comparison: what sknet did before;
4. ``BayesSearchCV(n_points="auto")``: rounds that fill the engine (11 candidates at 3 folds);
5. ``BayesSearchCV(n_points=1)``, scikit-optimize's default: 32 rounds of 3 fits.

Printed: wall time, its ratio to the random search's, the share of it spent proposing (``ask``
and ``tell``: ``proposal_time_``), best CV accuracy. Targets: proposals <= 5 % of the
wall time at ``n_points >= 8``; ``BayesSearchCV(n_points=8)`` <= 1.1x the random search's time.

How to run, from the repository root::

    python benchmarks/bench_bayes_rounds.py                  # both tasks, 2 seeds
    python benchmarks/bench_bayes_rounds.py --task digits --seeds 1
"""

import argparse
import contextlib
import time
from unittest import mock

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler
from skopt.space import Integer, Real

from sknet import MLPClassifier
from sknet.model_selection import BayesSearchCV, RandomizedSearchCV, _bayes

SPACE = {"lr": Real(1e-4, 1e-1, prior="log-uniform"), "weight_decay": Real(1e-6, 1e-2, prior="log-uniform"),
         "n_units": Integer(16, 256), "n_layers": Integer(1, 3)}
N_CANDIDATES = 32


def load(task):
    if task == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y
    X, y = make_classification(6000, 40, n_informative=20, n_classes=5, random_state=0)
    return StandardScaler().fit_transform(X), y


def contenders(net, seed):
    """(name, search, whether skopt's own ask proposes)."""
    def bayes(n_points):
        return BayesSearchCV(net, SPACE, n_iter=N_CANDIDATES, n_points=n_points, cv=3, random_state=seed)

    random = RandomizedSearchCV(net, SPACE, n_iter=N_CANDIDATES, cv=3, random_state=seed)
    return [("RandomizedSearchCV", random, False),
            ("BayesSearchCV(n_points=8)", bayes(8), False),
            ("  with skopt's ask(n_points=8)", bayes(8), True),
            ("BayesSearchCV(n_points='auto')", bayes("auto"), False),
            ("BayesSearchCV(n_points=1)", bayes(1), False)]


def run(task, seed, epochs):
    X, y = load(task)
    net = MLPClassifier(max_epochs=epochs, batch_size=64, random_state=seed)
    print(f"{task}, seed {seed}: {len(X)} rows, {N_CANDIDATES} candidates x 3 folds, {epochs} epochs")
    rows, baseline = {}, None
    for name, search, skopts_ask in contenders(net, seed):
        patch = (mock.patch.object(_bayes, "propose", lambda optimizer, n: optimizer.ask(n_points=n))
                 if skopts_ask else contextlib.nullcontext())
        start = time.perf_counter()
        with patch:
            search.fit(X, y)
        seconds = time.perf_counter() - start
        baseline = baseline or seconds
        proposing = getattr(search, "proposal_time_", 0.0)
        rows[name] = seconds
        print(f"  {name:<32} {seconds:7.2f} s  {seconds / baseline:5.2f}x random  proposing "
              f"{proposing:6.2f} s = {proposing / seconds:6.1%}  best CV {search.best_score_:.4f}",
              flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["digits", "synthetic", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    X, y = load("digits")  # the process's one-time costs, untimed
    BayesSearchCV(MLPClassifier(max_epochs=1), SPACE, n_iter=4, n_points=2, cv=2).fit(X[:200], y[:200])
    summary = {}
    for task in ["digits", "synthetic"] if args.task == "all" else [args.task]:
        for seed in range(args.seeds):
            for name, seconds in run(task, seed, args.epochs).items():
                summary.setdefault((task, name), []).append(seconds)
    print("\nmeans over seeds")
    for (task, name), seconds in summary.items():
        print(f"  {task:<10} {name:<32} {np.mean(seconds):7.2f} s")


if __name__ == "__main__":
    main()
