"""Benchmark: a small CNN tuned by sknet's batched GridSearchCV against scikit-learn + skorch, in one run.

The grid: 4 lr x 3 channel counts of a small CNN (conv 3x3 -> ReLU -> 2x2 max-pool -> linear)
on scikit-learn's 8x8 digits as images ``(n, 1, 8, 8)``, scaled to [0, 1]; 5-fold CV,
``--epochs`` epochs (10), batch size 128, Adam. Searched by:

1. sknet ``GridSearchCV`` over ``sknet.TorchClassifier(module=DigitsCNN)`` with the batched
   engine (the default): the 20 (lr, fold) fits of each channel count train as one model;
2. the same with ``engine="sequential"`` (one fit at a time, sknet's own training loop);
3. scikit-learn's ``GridSearchCV`` over skorch's ``NeuralNetClassifier(DigitsCNN)``.

Each contender first runs once untimed on 300 rows for 1 epoch (the process's one-time costs).
Printed: seconds, best CV accuracy and best parameters of each, and the ratio to the batched
search (target: at least 5x over scikit-learn + skorch, with the same best parameters).

How to run, from the repository root::

    python benchmarks/bench_cnn.py            # about a minute on two cores
    python benchmarks/bench_cnn.py --epochs 3 # quicker
    python benchmarks/bench_cnn.py --only batched sequential  # some contenders only
"""

import argparse
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV
from skorch import NeuralNetClassifier
from torch import nn

from sknet import TorchClassifier
from sknet import model_selection as ms

LRS = [1e-3, 3e-3, 1e-2, 3e-2]
CHANNELS = [4, 8, 16]
BATCHED = "sknet GridSearchCV, batched engine"
SEQUENTIAL = "sknet GridSearchCV, sequential"
SKORCH = "sklearn GridSearchCV + skorch"
SHORT = {"batched": BATCHED, "sequential": SEQUENTIAL, "skorch": SKORCH}


class DigitsCNN(nn.Module):
    """conv(channels, 3x3) -> ReLU -> 2x2 max-pool -> linear, on (n, 1, 8, 8) images."""

    def __init__(self, channels=8, n_outputs=10):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Linear(channels * 4 * 4, n_outputs)

    def forward(self, X):
        return self.out(self.pool(torch.relu(self.conv(X))).flatten(1))


def load_images():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64)


def contenders(epochs):
    """name -> search factory, the grid in each estimator's parameter names."""
    net = TorchClassifier(DigitsCNN, max_epochs=epochs, batch_size=128, random_state=0, device="cpu")
    skorch_net = NeuralNetClassifier(DigitsCNN, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
                                     max_epochs=epochs, batch_size=128, train_split=None,
                                     iterator_train__shuffle=True, device="cpu", verbose=0)
    grid = {"lr": LRS, "module__channels": CHANNELS}
    return {
        BATCHED: lambda: ms.GridSearchCV(net, grid, cv=5),
        SEQUENTIAL: lambda: ms.GridSearchCV(net, grid, cv=5, engine="sequential"),
        SKORCH: lambda: SklearnGridSearchCV(skorch_net, grid, cv=5),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--only", nargs="+", choices=list(SHORT), default=list(SHORT),
                        help="the contenders to run (default: all; the ratios are to the first)")
    args = parser.parse_args()
    chosen = [SHORT[name] for name in args.only]
    X, y = load_images()
    print(f"CNN grid: {len(LRS)} lr x {len(CHANNELS)} channel counts = {len(LRS) * len(CHANNELS)} "
          f"candidates, 5-fold CV, {args.epochs} epochs, adam, batch 128, digits {X.shape}, "
          f"{os.cpu_count()} CPU cores, torch {torch.__version__}")
    for name, make in contenders(1).items():  # untimed: the process's one-time costs
        if name in chosen:
            make().fit(X[:300], y[:300])
    rows = {}
    for name, make in contenders(args.epochs).items():
        if name not in chosen:
            continue
        time.sleep(0.5)
        search = make()
        start = time.perf_counter()
        search.fit(X, y)
        rows[name] = (time.perf_counter() - start, search.best_score_, search.best_params_,
                      getattr(search, "n_batched_fits_", 0))
    base = rows[chosen[0]][0]
    header = f"{'search':<38}{'seconds':>9}{'vs ' + args.only[0]:>12}{'best CV acc':>13}{'batched fits':>14}"
    print(f"{header}  best params")
    for name, (seconds, score, params, n_batched) in rows.items():
        print(f"{name:<38}{seconds:>9.2f}{seconds / base:>11.1f}x{score:>13.4f}{n_batched:>14}  {params}")
    if BATCHED in rows and SKORCH in rows:
        same = rows[BATCHED][2] == rows[SKORCH][2]
        print(f"speed-up over scikit-learn + skorch: {rows[SKORCH][0] / rows[BATCHED][0]:.1f}x "
              f"(target >= 5x); same best parameters: {same}")


if __name__ == "__main__":
    main()
