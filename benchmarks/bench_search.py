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

Part 3 -- a random space, the same candidates for every contender
-----------------------------------------------------------------
``--candidates`` points (48) drawn by scikit-learn's ``ParameterSampler`` (``random_state=0``) from
a realistic space: log-uniform lr in [1e-4, 1e-1] and weight decay in [1e-6, 1e-2], 16 to 256
units, 1 to 3 layers, batch size 32, 64 or 128 (Adam, no early stopping), 3-fold CV, on digits
(``--space-epochs`` epochs, 30) and on ``make_classification`` (20000 rows, 40 features, 5
classes, standardised; ``--big-epochs`` epochs, 5); ``--datasets`` picks them. Searched by:

1. sknet ``GridSearchCV`` with the batched engine, over a list of single-point grids (exactly the
   sampled points); 2. the same search by the library at ``--baseline-rev`` (the grouping before
   mixed depths, widths and batch sizes shared a loop), extracted with ``git archive`` into a
   temporary folder and run there in a fresh process; 3. the same with ``engine="sequential"``;
4. scikit-learn's ``GridSearchCV`` over its ``MLPClassifier``, ``n_jobs=2``; 5. over skorch's
   ``NeuralNetClassifier`` (a ReLU MLP of the candidate's depth; slow). ``--only`` filters them
   as in part 1. Each runs once untimed on 300 rows, 1 epoch, 2 candidates first.

Printed: seconds, the ratio to the batched search, best CV accuracy, the engine's groups (how many
it built, models per group: mean (min-max), the refit included) and model-epochs per second
(candidates x 3 folds x epochs / seconds); the batched search's GFLOP/s in its training loops as a
share of the float32 matmul ceiling; its speed-up over scikit-learn's MLP and the previous grouping.
Then the genetic (population ``max(4, n // 4)``) and Bayesian (8 points per step) searches over the
same space with the same budget, each by the current library and by ``--baseline-rev``: seconds,
the ratio to the current library, evaluations, best CV accuracy, groups and models per group
(``--only`` filters the baseline's runs).

How to run
----------
From the repository root::

    python benchmarks/bench_search.py                  # parts 1 and 2
    python benchmarks/bench_search.py --part space     # part 3, both datasets
    python benchmarks/bench_search.py --part space --datasets digits --only sklearn previous
        # part 3 without skorch and the sequential engine (the slow ones)
    python benchmarks/bench_search.py --part grid --epochs 20
    python benchmarks/bench_search.py --part grid --device cuda --lrs 64 --only skorch
        # on a GPU: 64 lr x 4 widths, 1280 models in one group, against scikit-learn + skorch there
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from scipy import stats
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV
from sklearn.model_selection import ParameterGrid, ParameterSampler
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


# Part 3: a realistic random space, the same sampled candidates for every contender.
RANDOM_SPACE = {"lr": stats.loguniform(1e-4, 1e-1), "n_units": stats.randint(16, 257),
                "n_layers": stats.randint(1, 4), "weight_decay": stats.loguniform(1e-6, 1e-2),
                "batch_size": [32, 64, 128]}
# The same space for the genetic and Bayesian searches, which take skopt dimensions only.
RANDOM_SKOPT_SPACE = {"lr": Real(1e-4, 1e-1, prior="log-uniform"), "n_units": Integer(16, 256),
                      "n_layers": Integer(1, 3), "weight_decay": Real(1e-6, 1e-2, prior="log-uniform"),
                      "batch_size": Categorical([32, 64, 128])}
SPACE_BATCHED = "sknet batched"
SPACE_PREVIOUS = "sknet batched, previous grouping"
SPACE_SEQUENTIAL = "sknet sequential"
SPACE_SKLEARN = "sklearn MLP n_jobs=2"
SPACE_SKORCH = "skorch"
# name -> search kind (see space_search) and whether it runs by the baseline revision
SPACE_CONTENDERS = {SPACE_BATCHED: ("batched", False), SPACE_PREVIOUS: ("batched", True),
                    SPACE_SEQUENTIAL: ("sequential", False), SPACE_SKLEARN: ("sklearn", False),
                    SPACE_SKORCH: ("skorch", False)}
SPACE_STRATEGIES = {"sknet GeneticSearchCV": ("genetic", False),
                    "sknet GeneticSearchCV, previous grouping": ("genetic", True),
                    "sknet BayesSearchCV": ("bayes", False),
                    "sknet BayesSearchCV, previous grouping": ("bayes", True)}
SPACE_DATASETS = ("digits", "classification")
SPACE_FOLDS = 3


def load_space_data(name):
    if name == "digits":
        return load_data()
    X, y = make_classification(20000, 40, n_informative=20, n_classes=5, random_state=0)
    return ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32), y.astype(np.int64)


def sample_candidates(n):
    """``n`` points of the space, as plain Python numbers (they travel as JSON too)."""
    return [{name: python_value(value) for name, value in point.items()}
            for point in ParameterSampler(RANDOM_SPACE, n, random_state=0)]


def python_value(value):
    return value.item() if isinstance(value, np.generic) else value


class SkorchDeepMLP(nn.Module):
    def __init__(self, n_features=64, n_classes=10, n_units=32, n_layers=1):
        super().__init__()
        widths = [n_features] + [n_units] * n_layers
        layers = [m for a, b in zip(widths, widths[1:], strict=False) for m in (nn.Linear(a, b), nn.ReLU())]
        self.layers = nn.Sequential(*layers, nn.Linear(widths[-1], n_classes))

    def forward(self, X):
        return self.layers(X)


def space_search(kind, candidates, epochs, n_features, n_classes):
    """One search of the candidates (``batched``, ``sequential``, ``sklearn``, ``skorch``: exactly
    those points, as a list of single-point grids) or of the space with their number of evaluations
    (``genetic``, ``bayes``)."""
    n = len(candidates)
    net = MLPClassifier(max_epochs=epochs, random_state=0, device="cpu")
    if kind in ("batched", "sequential"):
        grids = [{name: [value] for name, value in point.items()} for point in candidates]
        engine = {"engine": "sequential"} if kind == "sequential" else {}
        return ms.GridSearchCV(net, grids, cv=SPACE_FOLDS, **engine)
    if kind == "sklearn":
        grids = [{"hidden_layer_sizes": [(p["n_units"],) * p["n_layers"]], "learning_rate_init": [p["lr"]],
                  "alpha": [p["weight_decay"]], "batch_size": [p["batch_size"]]} for p in candidates]
        sklearn_net = SklearnMLPClassifier(max_iter=epochs, n_iter_no_change=10**6, random_state=0)
        return SklearnGridSearchCV(sklearn_net, grids, cv=SPACE_FOLDS, n_jobs=2)
    if kind == "skorch":
        grids = [{"lr": [p["lr"]], "optimizer__weight_decay": [p["weight_decay"]],
                  "batch_size": [p["batch_size"]], "module__n_units": [p["n_units"]],
                  "module__n_layers": [p["n_layers"]]} for p in candidates]
        skorch_net = NeuralNetClassifier(SkorchDeepMLP, module__n_features=n_features,
                                         module__n_classes=n_classes, criterion=nn.CrossEntropyLoss,
                                         optimizer=torch.optim.Adam,
                                         max_epochs=epochs, train_split=None, iterator_train__shuffle=True,
                                         device="cpu", verbose=0)
        return SklearnGridSearchCV(skorch_net, grids, cv=SPACE_FOLDS)
    if kind == "genetic":
        population = max(4, n // 4)
        return ms.GeneticSearchCV(net, RANDOM_SKOPT_SPACE, population_size=population,
                                  generations=max(1, n // population), cv=SPACE_FOLDS, random_state=0)
    if kind == "bayes":
        return ms.BayesSearchCV(net, RANDOM_SKOPT_SPACE, n_iter=n, n_points=min(8, n), cv=SPACE_FOLDS,
                                random_state=0)
    raise ValueError(f"unknown search {kind!r}")


class GroupCounter:
    """Models in each group the engine builds (``GroupTrainer.__init__``), in this process."""

    def __init__(self):
        from sknet.engine import _group

        self.sizes, self.cls, self.init = [], _group.GroupTrainer, _group.GroupTrainer.__init__

    def __enter__(self):
        init, sizes = self.init, self.sizes

        def counted(trainer, jobs, *args, **kwargs):
            sizes.append(len(jobs))
            return init(trainer, jobs, *args, **kwargs)

        self.cls.__init__ = counted
        return self

    def __exit__(self, *exc):
        self.cls.__init__ = self.init


def warm_up_search(kind, X, y):
    """One small untimed run (300 rows, 1 epoch, 2 candidates): one-time costs out of the timing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        space_search(kind, sample_candidates(2), 1, X.shape[1], len(np.unique(y))).fit(X[:300], y[:300])


def timed_search(kind, X, y, candidates, epochs):
    """Run one search; its seconds, seconds in training loops, best score and params, evaluations
    and the size of each group the engine built."""
    search = space_search(kind, candidates, epochs, X.shape[1], len(np.unique(y)))
    start = time.perf_counter()
    with warnings.catch_warnings(), TrainingTimer() as timer, GroupCounter() as groups:
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    return {"seconds": time.perf_counter() - start, "training": timer.seconds,
            "best": float(search.best_score_), "params": search.best_params_,
            "evals": len(search.cv_results_["params"]), "groups": groups.sizes}


def run_spec(spec):
    """The baseline's runner calls this (with its own sknet): warm up, then time one search."""
    import sknet

    X, y = load_space_data(spec["dataset"])
    warm_up_search(spec["kind"], X, y)
    result = timed_search(spec["kind"], X, y, spec["candidates"], spec["epochs"])
    return {**result, "params": {k: python_value(v) for k, v in result["params"].items()},
            "sknet": sknet.__file__}


SPACE_RUNNER = """import json, sys
import space_bench
with open(sys.argv[1]) as f:
    spec = json.load(f)
print(json.dumps(space_bench.run_spec(spec)))
"""


class Baseline:
    """The library at ``rev``, extracted once into a temporary folder; each search runs there in a
    fresh process (``cwd`` and ``PYTHONPATH`` that folder, so its sknet is the one imported)."""

    def __init__(self, rev):
        self.rev, self.folder, self.skipped, self.tmp = rev, None, None, None

    def _extract(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if shutil.which("git") is None:
            return "git not found"
        check = subprocess.run(["git", "-C", root, "rev-parse", "--verify", "--quiet",
                                f"{self.rev}^{{commit}}"], capture_output=True, text=True)
        if check.returncode != 0:
            return f"revision {self.rev!r} not found in {root}"
        self.tmp = tempfile.TemporaryDirectory(prefix="sknet-baseline-")
        archive = subprocess.run(["git", "-C", root, "archive", self.rev], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", self.tmp.name], input=archive, check=True)
        shutil.copy(os.path.abspath(__file__), os.path.join(self.tmp.name, "space_bench.py"))
        with open(os.path.join(self.tmp.name, "run_space.py"), "w") as f:
            f.write(SPACE_RUNNER)
        self.folder = self.tmp.name
        return None

    def run(self, kind, dataset, candidates, epochs):
        """The result of ``run_spec``, or None (then ``skipped`` says why)."""
        if self.folder is None and self.skipped is None:
            self.skipped = self._extract()
        if self.skipped:
            return None
        spec = os.path.join(self.folder, "spec.json")
        with open(spec, "w") as f:
            json.dump({"kind": kind, "dataset": dataset, "candidates": candidates, "epochs": epochs}, f)
        done = subprocess.run([sys.executable, "run_space.py", spec], cwd=self.folder, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": self.folder})
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            error = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  {kind} at {self.rev} failed: {error}")
            return None
        return json.loads(lines[-1])

    def close(self):
        if self.tmp is not None:
            self.tmp.cleanup()


def mlp_flops(n_features, n_units, n_layers, n_classes):
    """Training FLOPs per row and epoch of one MLP, counted as ``training_flops`` counts them:
    6ab per layer of ``a x b`` weights (forward, weights' and input's gradients), 4ab at the first."""
    widths = [n_features] + [n_units] * n_layers + [n_classes]
    return sum((4 if i == 0 else 6) * a * b for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)))


def candidates_flops(candidates, n_rows, n_features, n_classes, epochs, n_splits=SPACE_FOLDS, refit=None):
    """Floating-point operations of every fit of the candidates (and the refit) over each fold's
    training rows."""
    def per_row(p):
        return mlp_flops(n_features, p["n_units"], p["n_layers"], n_classes)

    n_train = n_rows * (n_splits - 1) / n_splits
    flops = sum(per_row(p) for p in candidates) * n_train * epochs * n_splits
    return flops + (0 if refit is None else per_row(refit) * n_rows * epochs)


def _groups_text(sizes):
    if not sizes:
        return "-", "-"
    return str(len(sizes)), f"{statistics.mean(sizes):.1f} ({min(sizes)}-{max(sizes)})"


def _space_runs(table, dataset, X, y, candidates, epochs, baseline, only, always):
    """Run the table's contenders (``always``, and the others ``only`` lets through) in order."""
    rows = {}
    chosen = {name: spec for name, spec in table.items()
              if name in always or not only or any(part in name for part in only)}
    if "sklearn" in {kind for kind, _ in chosen.values()}:
        warm_up_workers()
    for kind in dict.fromkeys(kind for kind, previous in chosen.values() if not previous):
        warm_up_search(kind, X, y)
    for name, (kind, previous) in chosen.items():
        time.sleep(0.5)  # let the previous contender's idle threads go quiet
        if previous:
            result = baseline.run(kind, dataset, candidates, epochs)
            if result is None:
                print(f"  {name}: skipped ({baseline.skipped or 'the run failed'})")
                continue
            print(f"  {name}: sknet imported from {result['sknet']}")
        else:
            result = timed_search(kind, X, y, candidates, epochs)
        rows[name] = result
    return rows


def run_space(datasets, epochs_of, n_candidates, only, rev):
    """Part 3; ``epochs_of``: dataset name -> epochs."""
    candidates = sample_candidates(n_candidates)
    ceiling = matmul_gflops()
    baseline = Baseline(rev)
    print(f"Part 3: {n_candidates} candidates sampled from a random space (lr, units, layers, weight decay, "
          f"batch size), {SPACE_FOLDS}-fold CV, Adam; previous grouping: sknet at {rev}; "
          f"2048x2048 float32 matmul: {ceiling:.1f} GFLOP/s, {os.cpu_count()} CPU cores")
    try:
        for dataset in datasets:
            X, y = load_space_data(dataset)
            run_space_dataset(dataset, X, y, candidates, epochs_of[dataset], only, baseline, ceiling)
    finally:
        baseline.close()


def run_space_dataset(dataset, X, y, candidates, epochs, only, baseline, ceiling):
    n_classes = len(np.unique(y))
    print(f"{dataset} {X.shape}, {n_classes} classes, {epochs} epochs")
    rows = _space_runs(SPACE_CONTENDERS, dataset, X, y, candidates, epochs, baseline, only, {SPACE_BATCHED})
    base = rows[SPACE_BATCHED]["seconds"]
    model_epochs = len(candidates) * SPACE_FOLDS * epochs
    print(f"{'search':<34}{'seconds':>9}{'vs batched':>12}{'best CV acc':>13}{'groups':>8}"
          f"{'models/group':>17}{'epochs/s':>10}")
    for name, r in rows.items():
        groups, per_group = _groups_text(r["groups"])
        print(f"{name:<34}{r['seconds']:>9.2f}{r['seconds'] / base:>11.1f}x{r['best']:>13.4f}{groups:>8}"
              f"{per_group:>17}{model_epochs / r['seconds']:>10.1f}")
    batched = rows[SPACE_BATCHED]
    flops = candidates_flops(candidates, len(X), X.shape[1], n_classes, epochs, refit=batched["params"])
    achieved = flops / batched["training"] / 1e9
    print(f"sknet batched: {batched['training']:.2f} s in training loops, {achieved:.1f} GFLOP/s, "
          f"{achieved / ceiling:.1%} of the matmul ceiling")
    ratios = [f"{rows[name]['seconds'] / base:.1f}x over {label}"
              for name, label in [(SPACE_SKLEARN, "scikit-learn's MLP with n_jobs=2"),
                                  (SPACE_PREVIOUS, "the previous grouping")] if name in rows]
    if ratios:
        print("speed-up of the batched search: " + ", ".join(ratios))
    strategies_rows = _space_runs(SPACE_STRATEGIES, dataset, X, y, candidates, epochs, baseline, only,
                                  {name for name, (_, previous) in SPACE_STRATEGIES.items() if not previous})
    print(f"{'strategy':<42}{'seconds':>9}{'vs current':>12}{'evals':>7}{'best CV acc':>13}{'groups':>8}"
          f"{'models/group':>17}")
    for name, r in strategies_rows.items():
        current = strategies_rows[name.split(",")[0]]["seconds"]
        groups, per_group = _groups_text(r["groups"])
        print(f"{name:<42}{r['seconds']:>9.2f}{r['seconds'] / current:>11.1f}x{r['evals']:>7}"
              f"{r['best']:>13.4f}{groups:>8}{per_group:>17}")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=["grid", "strategies", "space", "all"], default="all",
                        help="all: parts 1 and 2; space: part 3 alone")
    parser.add_argument("--case", choices=sorted(CASES), default="adam",
                        help="the grid's optimizer, batch size and learning rates (part 1)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="device of the torch nets, e.g. cuda (part 1)")
    parser.add_argument("--lrs", type=int, default=4,
                        help="learning rates in the grid: 20 x this many models in its group (part 1)")
    parser.add_argument("--only", nargs="*", metavar="NAME",
                        help="run only the contenders whose names contain one of these (parts 1 and 3), "
                             "e.g. --only skorch 'n_jobs=2'; the batched search always runs")
    parser.add_argument("--budget", type=int, default=24, help="candidates per strategy (part 2)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per strategy (part 2)")
    parser.add_argument("--candidates", type=int, default=48,
                        help="candidates sampled from the space (part 3)")
    parser.add_argument("--datasets", nargs="+", choices=SPACE_DATASETS, default=list(SPACE_DATASETS),
                        help="datasets of part 3")
    parser.add_argument("--space-epochs", type=int, default=30, help="epochs on digits (part 3)")
    parser.add_argument("--big-epochs", type=int, default=5, help="epochs on the 20000-row dataset (part 3)")
    parser.add_argument("--baseline-rev", default="15e3ad4",
                        help="git revision whose library runs the 'previous grouping' searches (part 3)")
    args = parser.parse_args()
    X, y = load_data()
    if args.part in ("grid", "all"):
        run_grid(X, y, args.epochs, grid_lrs(args.lrs, args.case), args.device, args.only, args.case)
    if args.part in ("strategies", "all"):
        run_strategies(X, y, args.epochs, args.budget, args.seeds)
    if args.part == "space":
        run_space(args.datasets, {"digits": args.space_epochs, "classification": args.big_epochs},
                  args.candidates, args.only, args.baseline_rev)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
