"""Benchmark: successive halving on epochs, sknet against scikit-learn, in one run.

64 candidates (4 lr x 4 widths x 4 weight decays) of a one-hidden-layer MLP on scikit-learn's
digits (scaled to [0, 1]), 5-fold CV, factor 3, epochs from 3 to 81 (rungs of 64, 22, 8 and 3
candidates at 3, 9, 27 and 81 epochs), Adam, batch size 128. Searched by:

1. sknet ``HalvingGridSearchCV`` over ``sknet.MLPClassifier``, ``resource="max_epochs"``, with
   the batched engine (each rung one batched round);
2. scikit-learn's ``HalvingGridSearchCV`` over its ``MLPClassifier``, ``resource="max_iter"``,
   ``n_jobs=2``;
3. scikit-learn's ``HalvingGridSearchCV`` over skorch's ``NeuralNetClassifier``,
   ``resource="max_epochs"`` (``--skorch``; about two minutes).

Beside them, sknet's own search with its survivors restarted at each rung (continuation off),
to show what continuing saves.

Targets: 1 at least 5x faster than 2 and 30x faster than 3, with a best score
within 0.005 of theirs. Each contender first runs once untimed on 300 rows.

``--part curves``: epoch curves for free. sknet's ``GridSearchCV`` over 16 settings (4 lr x 4
widths) with ``max_epochs`` in {10, 20, 40, 80}, against the same grid with only
``max_epochs=80``, and against the four counts each trained on its own (sharing off). Target:
the four counts cost at most 1.1x the largest alone.

How to run, from the repository root::

    python benchmarks/bench_halving.py                 # sknet and scikit-learn's MLP
    python benchmarks/bench_halving.py --skorch        # and scikit-learn + skorch
    python benchmarks/bench_halving.py --part curves   # epoch curves
"""

import argparse
import contextlib
import os
import time
import warnings

import numpy as np
import torch
from bench_search import SkorchMLP  # the same module as the grid benchmark
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection._search_successive_halving import HalvingGridSearchCV as SklearnHalving
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from sknet import MLPClassifier
from sknet.engine import _train
from sknet.model_selection import GridSearchCV, HalvingGridSearchCV

LRS = [1e-3, 3e-3, 1e-2, 3e-2]
UNITS = [32, 64, 128, 256]
DECAYS = [0.0, 1e-4, 1e-3, 1e-2]
HALVING = dict(factor=3, min_resources=3, max_resources=81, cv=5, random_state=0)
SKNET = "sknet HalvingGridSearchCV, batched"
RESTART = "sknet HalvingGridSearchCV, batched, survivors restart"
SKLEARN = "sklearn HalvingGridSearchCV + sklearn MLP, n_jobs=2"
SKORCH = "sklearn HalvingGridSearchCV + skorch"


def contenders(with_skorch):
    sknet_grid = {"lr": LRS, "n_units": UNITS, "weight_decay": DECAYS}
    sklearn_grid = {"learning_rate_init": LRS, "hidden_layer_sizes": [(u,) for u in UNITS], "alpha": DECAYS}
    skorch_grid = {"lr": LRS, "module__n_units": UNITS, "optimizer__weight_decay": DECAYS}
    sklearn_net = SklearnMLPClassifier(batch_size=128, tol=0.0, n_iter_no_change=1000, random_state=0)
    skorch_net = NeuralNetClassifier(SkorchMLP, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
                                     batch_size=128, train_split=None, iterator_train__shuffle=True,
                                     device="cpu", verbose=0)
    found = {
        SKNET: lambda: HalvingGridSearchCV(MLPClassifier(random_state=0, device="cpu"), sknet_grid,
                                           resource="max_epochs", **HALVING),
        RESTART: lambda: RestartingHalving(MLPClassifier(random_state=0, device="cpu"), sknet_grid,
                                           resource="max_epochs", **HALVING),
        SKLEARN: lambda: SklearnHalving(sklearn_net, sklearn_grid, resource="max_iter", n_jobs=2, **HALVING),
    }
    if with_skorch:
        found[SKORCH] = lambda: SklearnHalving(skorch_net, skorch_grid, resource="max_epochs", **HALVING)
    return found


class RestartingHalving(HalvingGridSearchCV):
    """sknet's halving search with continuation off: each rung trains its survivors from scratch."""

    def _continued_param(self):
        return None


@contextlib.contextmanager
def sharing_off():
    """The engine without epoch sharing: every max_epochs value trains on its own (for comparison)."""
    followers = _train._followers
    _train._followers = lambda *args: {}
    try:
        yield
    finally:
        _train._followers = followers


def curves(X, y):
    """Part "curves": a grid over max_epochs against its largest value alone, one run."""
    grid = {"lr": LRS, "n_units": UNITS}
    epochs = [10, 20, 40, 80]
    runs = {"max_epochs in {10, 20, 40, 80}": (epochs, contextlib.nullcontext),
            "max_epochs = 80 alone": ([80], contextlib.nullcontext),
            "max_epochs in {10, 20, 40, 80}, sharing off": (epochs, sharing_off)}
    print(f"epoch curves: sknet GridSearchCV, {len(LRS) * len(UNITS)} settings (lr x widths), 5-fold CV, "
          f"digits {X.shape}, {os.cpu_count()} CPU cores, torch {torch.__version__}")

    def make(values):
        return GridSearchCV(MLPClassifier(random_state=0, device="cpu", batch_size=128),
                            {**grid, "max_epochs": values}, cv=5, refit=False)

    make([2]).fit(X[:300], y[:300])  # untimed: the process's one-time costs
    rows = {}
    for name, (values, context) in runs.items():
        time.sleep(0.5)
        search = make(values)
        with context():
            start = time.perf_counter()
            search.fit(X, y)
            rows[name] = (time.perf_counter() - start, len(search.cv_results_["params"]),
                          float(np.max(search.cv_results_["mean_test_score"])))
    base = rows["max_epochs = 80 alone"][0]
    print(f"{'grid':<48}{'candidates':>11}{'seconds':>9}{'vs 80 alone':>13}{'best CV acc':>13}")
    for name, (seconds, n, score) in rows.items():
        print(f"{name:<48}{n:>11}{seconds:>9.2f}{seconds / base:>12.2f}x{score:>13.4f}")
    print("target: the four counts at most 1.1x the largest alone")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skorch", action="store_true", help="also run scikit-learn + skorch")
    parser.add_argument("--part", choices=["halving", "curves"], default="halving")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X, y = (X / 16.0).astype(np.float32), y.astype(np.int64)
    if args.part == "curves":
        return curves(X, y)
    print(f"halving: {len(LRS) * len(UNITS) * len(DECAYS)} candidates, 5-fold CV, factor 3, epochs 3 to 81, "
          f"digits {X.shape}, {os.cpu_count()} CPU cores, torch {torch.__version__}")
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for make in contenders(args.skorch).values():  # untimed: the process's one-time costs
            small = make().set_params(max_resources=9)
            small.fit(X[:300], y[:300])
        for name, make in contenders(args.skorch).items():
            time.sleep(0.5)
            search = make()
            start = time.perf_counter()
            search.fit(X, y)
            rows[name] = (time.perf_counter() - start, search.best_score_, search.best_params_,
                          search.n_candidates_, search.n_resources_)
    base = rows[SKNET][0]
    print(f"{'search':<52}{'seconds':>9}{'vs sknet':>10}{'best CV acc':>13}  rungs  best params")
    for name, (seconds, score, params, candidates, resources) in rows.items():
        rungs = " ".join(f"{c}@{r}" for c, r in zip(candidates, resources, strict=True))
        print(f"{name:<52}{seconds:>9.2f}{seconds / base:>9.1f}x{score:>13.4f}  {rungs}  {params}")
    print("targets: >= 5x over scikit-learn's MLP (n_jobs=2), >= 30x over skorch; best score within 0.005")


if __name__ == "__main__":
    main()
