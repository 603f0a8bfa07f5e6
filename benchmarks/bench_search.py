"""Benchmark sknet's searches against scikit-learn's, in one run.

Part 1 -- one grid, seven ways
------------------------------
The same grid (4 lr x 4 hidden-unit counts, 5-fold CV, ``--epochs`` epochs, batch size 128,
Adam) on scikit-learn's digits (scaled to [0, 1]), searched by:

1. sknet ``GridSearchCV`` over ``sknet.MLPClassifier`` with the batched engine (the default),
   ``n_jobs=1``, and 2. with ``n_jobs=2`` (the engine's groups in two worker processes);
3. the same with ``engine="sequential"``, ``n_jobs=1``, and 4. with ``n_jobs=2``;
5. scikit-learn's ``GridSearchCV`` over skorch's plain ``NeuralNetClassifier``;
6. scikit-learn's ``GridSearchCV`` over its own ``MLPClassifier``, ``n_jobs=1``, and 7. ``n_jobs=2``.

``--case sgd`` runs the harder grid instead: SGD (momentum 0.9), batch size 64, lr in
{0.01, 0.03, 0.1, 0.3}; its steps are smaller, so fixed costs per step show more.

Each contender first runs once untimed on 300 rows for 1 epoch, so that the timed runs measure
the searches and not the process's one-time costs (every contender gets the same warm-up).

Printed: seconds, best CV accuracy, best parameters and the ratio to the batched search; then
the batched engine's achieved GFLOP/s (over the time spent in its training loops) beside a large
float32 matmul's GFLOP/s measured in the same run on the same device (its practical ceiling),
and the share of the batched search's time spent outside those loops (setup, scoring, results).

``--device cuda`` puts the torch nets (sknet's and skorch's) on a GPU; scikit-learn's MLP stays
on the CPU. ``--lrs N`` uses N log-spaced learning rates: the grid's 20 N fits then train as
one group of 20 N models (the four widths share its loop, each width a block of 5 N).
``--only NAME ...`` runs only the contenders whose names contain one of the NAMEs (besides the
batched search, which always runs): the sequential ones take about N / 4 times as long as with
the default grid.

Part 2 -- four strategies, one budget
-------------------------------------
Grid, random, Bayesian and genetic search over the same space (log-uniform lr, units,
layers, activation) with the same number of evaluations (``--budget`` candidates, 3-fold CV),
each with ``--seeds`` seeds: mean and best of the best CV accuracy found, evaluations, seconds.

How to run
----------
From the repository root::

    python benchmarks/bench_search.py                  # both parts
    python benchmarks/bench_search.py --part grid --epochs 20
    python benchmarks/bench_search.py --part grid --device cuda --lrs 64 --only skorch
        # on a GPU: 64 lr x 4 widths, 1280 models in one group, against scikit-learn + skorch there
"""

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV
from sklearn.model_selection import ParameterGrid
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from skopt.space import Categorical, Integer, Real
from skorch import NeuralNetClassifier
from torch import nn

from sknet import MLPClassifier
from sknet import model_selection as ms

UNITS = [32, 64, 128, 256]
# The grid's cases: optimizer, batch size, learning rates.
CASES = {"adam": ("adam", 128, [1e-3, 3e-3, 1e-2, 3e-2]),
         "sgd": ("sgd", 64, [0.01, 0.03, 0.1, 0.3])}
LRS = CASES["adam"][2]
SKNET_BATCHED = "sknet GridSearchCV, batched engine"
SKORCH = "sklearn GridSearchCV + skorch"
SKLEARN_1 = "sklearn GridSearchCV + sklearn MLP"
SKLEARN_2 = "sklearn GridSearchCV + sklearn MLP, n_jobs=2"


def load_data():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


class SkorchMLP(nn.Module):
    def __init__(self, n_units=32):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, n_units), nn.ReLU(), nn.Linear(n_units, 10))

    def forward(self, X):
        return self.layers(X)


def grid_lrs(n, case="adam"):
    """The case's learning rates, or ``n`` log-spaced over their range (for larger groups)."""
    lrs = CASES[case][2]
    return lrs if n == len(lrs) else [float(f"{lr:.3g}") for lr in np.geomspace(lrs[0], lrs[-1], n)]


def grid_contenders(epochs, lrs=LRS, device="cpu", case="adam"):
    """name -> search factory; the grid's two parameters mapped to each estimator's names."""
    optimizer, batch_size, _ = CASES[case]
    sknet_net = MLPClassifier(max_epochs=epochs, batch_size=batch_size, optimizer=optimizer, momentum=0.9,
                              random_state=0, device=device)
    torch_optimizer = {"adam": dict(optimizer=torch.optim.Adam),
                       "sgd": dict(optimizer=torch.optim.SGD, optimizer__momentum=0.9)}[optimizer]
    skorch_net = NeuralNetClassifier(SkorchMLP, criterion=nn.CrossEntropyLoss, **torch_optimizer,
                                     max_epochs=epochs, batch_size=batch_size, train_split=None,
                                     iterator_train__shuffle=True, device=device, verbose=0)
    sklearn_net = SklearnMLPClassifier(batch_size=batch_size, max_iter=epochs, alpha=0.0, tol=0.0,
                                       solver=optimizer, momentum=0.9, nesterovs_momentum=False,
                                       n_iter_no_change=epochs + 1, random_state=0)
    sknet_grid = {"lr": lrs, "n_units": UNITS}
    sklearn_grid = {"learning_rate_init": lrs, "hidden_layer_sizes": [(u,) for u in UNITS]}
    return {
        SKNET_BATCHED: lambda: ms.GridSearchCV(sknet_net, sknet_grid, cv=5),
        "sknet batched, n_jobs=2": lambda: ms.GridSearchCV(sknet_net, sknet_grid, cv=5, n_jobs=2),
        "sknet GridSearchCV, sequential": lambda: ms.GridSearchCV(sknet_net, sknet_grid, cv=5,
                                                                  engine="sequential"),
        "sknet sequential, n_jobs=2": lambda: ms.GridSearchCV(sknet_net, sknet_grid, cv=5, n_jobs=2,
                                                              engine="sequential"),
        SKORCH: lambda: SklearnGridSearchCV(skorch_net, {"lr": lrs, "module__n_units": UNITS}, cv=5),
        SKLEARN_1: lambda: SklearnGridSearchCV(sklearn_net, sklearn_grid, cv=5),
        SKLEARN_2: lambda: SklearnGridSearchCV(sklearn_net, sklearn_grid, cv=5, n_jobs=2),
    }


def training_flops(X, epochs, lrs=LRS, n_splits=5, refit_units=None):
    """Floating-point operations of every fit of the grid (and the refit), as the engine computes them.

    Per sample and layer of ``a x b`` weights: 2ab for the forward product and 2ab for the
    weights' gradient; another 2ab for the gradient of the layer's input, except at the first
    layer, where no gradient of the data is needed.
    """
    def per_sample(units):
        return 4 * X.shape[1] * units + 6 * units * 10

    n_train = len(X) * (n_splits - 1) / n_splits
    flops = sum(per_sample(u) for u in UNITS) * len(lrs) * n_train * epochs * n_splits
    return flops + (0 if refit_units is None else per_sample(refit_units) * len(X) * epochs)


def matmul_gflops(n=2048, repeats=10, device="cpu"):
    """The device's practical float32 ceiling: a large matmul's GFLOP/s, measured now."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    repeats *= 50 if torch.device(device).type == "cuda" else 1
    a @ b
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _synchronize(device)
    return 2.0 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _load_sknet():
    import sknet  # noqa: F401

    return os.getpid()


def warm_up_workers(n_jobs=2):
    """Start joblib's worker processes (and import torch there) before any timing: every
    ``n_jobs=2`` contender then finds them running, as in a session that has searched before."""
    from joblib import Parallel, delayed

    Parallel(n_jobs=n_jobs)(delayed(_load_sknet)() for _ in range(2 * n_jobs))


class TrainingTimer:
    """Seconds spent in the engine's training loops (``GroupTrainer.run``), in this process."""

    def __init__(self):
        from sknet.engine import _train

        self.seconds, self.cls, self.run = 0.0, _train.GroupTrainer, _train.GroupTrainer.run

    def __enter__(self):
        run, timer = self.run, self

        def timed(trainer):
            start = time.perf_counter()
            try:
                return run(trainer)
            finally:
                timer.seconds += time.perf_counter() - start

        self.cls.run = timed
        return self

    def __exit__(self, *exc):
        self.cls.run = self.run


def run_grid(X, y, epochs, lrs=LRS, device="cpu", only=None, case="adam"):
    """Part 1; ``only``: names of the contenders to run (substrings), the batched search always."""
    where = f"{device}, {os.cpu_count()} CPU cores" + (
        f", {torch.cuda.get_device_name(device)}" if torch.device(device).type == "cuda" else "")
    optimizer, batch_size, _ = CASES[case]
    print(f"Part 1: grid of {len(lrs)} lr x {len(UNITS)} units = {len(lrs) * len(UNITS)} candidates, "
          f"5-fold CV, {epochs} epochs, {optimizer}, batch {batch_size}, digits {X.shape}, {where}")
    contenders = {name: make for name, make in grid_contenders(epochs, lrs, device, case).items()
                  if name == SKNET_BATCHED or not only or any(part in name for part in only)}
    rows, searches = {}, {}
    if any("n_jobs=2" in name for name in contenders):
        warm_up_workers()
    # One small untimed run of each contender first: the timed runs then measure the search,
    # not one-time costs of the process (torch's first kernels, imports, allocations).
    for name, make in grid_contenders(1, lrs[:2], device, case).items():
        if name in contenders:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                make().fit(X[:300], y[:300])
    for name, make in contenders.items():
        time.sleep(0.5)  # let the previous contender's idle threads go quiet
        search = make()
        start = time.perf_counter()
        with warnings.catch_warnings(), TrainingTimer() as timer:
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        rows[name] = (time.perf_counter() - start, search.best_score_, search.best_params_)
        if name == SKNET_BATCHED:
            training = timer.seconds
        searches[name] = search
    base = rows[SKNET_BATCHED][0]
    print(f"{'search':<40}{'seconds':>9}{'vs batched':>12}{'best CV acc':>13}  best params")
    for name, (seconds, score, params) in rows.items():
        print(f"{name:<40}{seconds:>9.2f}{seconds / base:>11.1f}x{score:>13.4f}  {params}")
    batched = searches[SKNET_BATCHED]
    achieved = training_flops(X, epochs, lrs, refit_units=batched.best_params_["n_units"]) / training / 1e9
    ceiling = matmul_gflops(device=device)
    print(f"batched engine: {batched.n_batched_fits_} fits and the refit in {training:.2f} s of training "
          f"loops, {achieved:.1f} GFLOP/s; a 2048x2048 float32 matmul on {device}: {ceiling:.1f} GFLOP/s "
          f"({achieved / ceiling:.1%} of it, target >= 35%); {len(lrs) * 20} models in one group, "
          f"{len(lrs) * 5} per width")
    outside = rows[SKNET_BATCHED][0] - training
    print(f"outside the training loops (setup, scoring, results): {outside:.2f} s, "
          f"{outside / rows[SKNET_BATCHED][0]:.1%} of the batched search (target <= 15%)")
    ratios = [f"{rows[name][0] / base:.1f}x over {label} (target >= {target}x)"
              for name, label, target in [(SKORCH, "scikit-learn + skorch", 50 if device != "cpu" else 20),
                                          (SKLEARN_2, "scikit-learn's MLP with n_jobs=2", 3)]
              if name in rows]
    if ratios:
        print("speed-up of the batched search: " + ", ".join(ratios))
    print()


SPACE = {"lr": Real(1e-4, 3e-2, prior="log-uniform"), "n_units": Integer(16, 128),
         "n_layers": Integer(1, 3), "activation": Categorical(["relu", "tanh", "elu"])}
GRID = {"lr": [1e-4, 1e-3, 1e-2], "n_units": [16, 128], "n_layers": [1, 3], "activation": ["relu", "tanh"]}


def strategies(net, budget, seed):
    population = max(4, budget // 4)
    return {
        "grid (fixed 24 points)": lambda: ms.GridSearchCV(net, GRID, cv=3),
        "random": lambda: ms.RandomizedSearchCV(net, SPACE, n_iter=budget, cv=3, random_state=seed),
        "bayes": lambda: ms.BayesSearchCV(net, SPACE, n_iter=budget, n_points=4, cv=3, random_state=seed),
        "genetic": lambda: ms.GeneticSearchCV(net, SPACE, population_size=population,
                                              generations=budget // population, cv=3, random_state=seed),
    }


def run_strategies(X, y, epochs, budget, seeds):
    net = MLPClassifier(max_epochs=epochs, random_state=0, device="cpu")
    print(f"Part 2: strategies on one space, budget {budget} candidates x 3-fold CV, {epochs} epochs, "
          f"{seeds} seeds (grid: {len(ParameterGrid(GRID))} points, one run)")
    print(f"{'strategy':<24}{'mean best':>11}{'max best':>10}{'evals':>7}{'seconds':>9}")
    for name in strategies(net, budget, 0):
        n_seeds = 1 if name.startswith("grid") else seeds
        best, evals, secs = [], [], []
        for seed in range(n_seeds):
            search = strategies(net, budget, seed)[name]()
            start = time.perf_counter()
            search.fit(X, y)
            secs.append(time.perf_counter() - start)
            best.append(search.best_score_)
            evals.append(len(search.cv_results_["params"]))
        print(f"{name:<24}{statistics.mean(best):>11.4f}{max(best):>10.4f}{statistics.mean(evals):>7.1f}"
              f"{statistics.mean(secs):>9.1f}")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=["grid", "strategies", "all"], default="all")
    parser.add_argument("--case", choices=sorted(CASES), default="adam",
                        help="the grid's optimizer, batch size and learning rates (part 1)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="device of the torch nets, e.g. cuda (part 1)")
    parser.add_argument("--lrs", type=int, default=4,
                        help="learning rates in the grid: 20 x this many models in its group (part 1)")
    parser.add_argument("--only", nargs="*", metavar="NAME",
                        help="run only the contenders whose names contain one of these (part 1), "
                             "e.g. --only skorch 'n_jobs=2'; the batched search always runs")
    parser.add_argument("--budget", type=int, default=24, help="candidates per strategy (part 2)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per strategy (part 2)")
    args = parser.parse_args()
    X, y = load_data()
    if args.part in ("grid", "all"):
        run_grid(X, y, args.epochs, grid_lrs(args.lrs, args.case), args.device, args.only, args.case)
    if args.part in ("strategies", "all"):
        run_strategies(X, y, args.epochs, args.budget, args.seeds)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
