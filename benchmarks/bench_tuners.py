"""Benchmark: tuners side by side at equal wall time, on the same net and space.

One space (log-uniform ``lr`` and ``weight_decay``, 16 to 256 units, 1 to 3 layers, batch size
32, 64 or 128; Adam), 3-fold stratified CV, nets trained up to ``--epochs`` epochs (27), on
scikit-learn's digits (scaled to [0, 1]) and on ``make_classification(20000, 40,
n_informative=20, n_classes=5)``, each split 80/20 into a search set and a held-out set. For
each task and seed, in one run, one tool after the other:

1. sknet ``RandomizedSearchCV``, ``--candidates`` (32) candidates, trained in full: its wall
   time is every other tool's budget;
2. sknet ``HalvingRandomSearchCV`` on epochs (1, 3, 9, 27; survivors go on training);
3. sknet ``BayesSearchCV(n_points="auto")``;
4. sknet ``HyperbandSearchCV`` (``sampler="bayes"``: BOHB), brackets until the budget;
5. sknet ``GeneticSearchCV`` with pruning at 3 and 9 epochs;
6. scikit-optimize's own ``BayesSearchCV`` over the same sknet net (one point a round, as its
   default), stopped by its ``DeadlineStopper``;
7. Optuna's TPE sampler with its ``HyperbandPruner`` over the same sknet net, trained epoch by
   epoch (``warm_start``) on the same folds, the mean fold score reported each epoch
   (``pip install -e ".[bench]"``; skipped with a message without Optuna).

Tools 2 to 7 get the random search's wall time as ``max_time`` (Optuna's ``timeout``); each stops
at the end of the round (trial) that passes it. No refit is timed: each tool's best candidate is
refitted on the whole search set afterwards for the held-out score.

Printed per task and seed: wall time, best CV (among candidates trained the full epochs) at
the budget, seconds to come within 0.5 points of the best CV any tool found, held-out accuracy
of the best, epochs trained (per fold), candidates trained in full, and the share of the wall
time spent proposing (sknet: ``proposal_time_``; Optuna: wall time outside its objective).
Then the means over seeds.

``--part bohb`` runs only ``HyperbandSearchCV`` variants for ``--budget`` seconds (50) each: BOHB,
BOHB cost-aware (skopt's "EIps": expected improvement per second of an epoch), BOHB from 3
epochs, and Hyperband with random candidates: what the surrogate adds.

How to run, from the repository root::

    python benchmarks/bench_tuners.py                        # both tasks, 3 seeds
    python benchmarks/bench_tuners.py --task digits --seeds 1
    python benchmarks/bench_tuners.py --part bohb --task synthetic --seeds 2
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler
from skopt.space import Categorical, Integer, Real

from sknet import MLPClassifier
from sknet.model_selection import (
    BayesSearchCV,
    GeneticSearchCV,
    HalvingRandomSearchCV,
    HyperbandSearchCV,
    RandomizedSearchCV,
)

SPACE = {"lr": Real(1e-4, 1e-1, prior="log-uniform"), "weight_decay": Real(1e-6, 1e-2, prior="log-uniform"),
         "n_units": Integer(16, 256), "n_layers": Integer(1, 3), "batch_size": Categorical([32, 64, 128])}
TARGET_GAP = 0.005  # "within 0.5 points" of the best CV any tool found


def load(task):
    if task == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        X, y = make_classification(20000, 40, n_informative=20, n_classes=5, random_state=0)
        X = StandardScaler().fit_transform(X)
    X = X.astype(np.float32)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


# -- the tools: each returns (curve, best params, record) --------------------------------------
# curve: [(seconds since start, CV score)] of the candidates trained the full epochs.
def finished(search, epochs):
    """Rows of ``cv_results_`` trained the full epochs (not a lower rung, not pruned)."""
    results = search.cv_results_
    pruned = results.get("pruned", np.zeros(len(results["params"]), dtype=bool))
    scores = np.asarray(results["mean_test_score"], dtype=float)
    return [i for i, params in enumerate(results["params"])
            if params.get("max_epochs", epochs) == epochs and not pruned[i] and np.isfinite(scores[i])]


def sknet_epochs(search, epochs):
    """Epochs trained per fold: a continued rung trains only its new epochs; a pruned one stops early."""
    results = search.cv_results_
    if "epochs_trained" in results:
        return int(np.sum(results["epochs_trained"]))
    if "n_resources" in results:
        total, before = 0, {}
        for params, r in zip(results["params"], results["n_resources"], strict=True):
            key = tuple(sorted((k, v) for k, v in params.items() if k != "max_epochs"))
            total += r - before.get(key, 0) if before.get(key, 0) < r else r
            before[key] = r
        return int(total)
    return epochs * len(results["params"])


def run_sknet(search, X, y, epochs):
    start = time.perf_counter()
    search.fit(X, y)
    wall = time.perf_counter() - start
    results, rows = search.cv_results_, finished(search, epochs)
    curve = [(float(search.finish_time_[i]), float(results["mean_test_score"][i])) for i in rows]
    best = max(rows, key=lambda i: results["mean_test_score"][i])
    params = {k: v for k, v in results["params"][best].items() if k != "max_epochs"}
    return curve, params, dict(wall=wall, epochs=sknet_epochs(search, epochs), n_full=len(rows),
                               propose=getattr(search, "proposal_time_", np.nan) / wall)


def run_skopt(net, X, y, seed, n_iter, budget):
    from skopt import BayesSearchCV as SkoptBayesSearchCV
    from skopt.callbacks import DeadlineStopper

    search = SkoptBayesSearchCV(net, SPACE, n_iter=n_iter, cv=StratifiedKFold(3), random_state=seed,
                                refit=False)
    stamps = []
    start = time.perf_counter()
    search.fit(X, y, callback=[lambda result: stamps.append(time.perf_counter() - start) and False,
                               DeadlineStopper(budget)])
    wall = time.perf_counter() - start
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    curve = [(t, float(s)) for t, s in zip(stamps, scores, strict=False) if np.isfinite(s)]
    params = dict(search.cv_results_["params"][int(np.nanargmax(scores))])
    return curve, params, dict(wall=wall, epochs=net.max_epochs * len(scores), n_full=len(scores),
                               propose=np.nan)


def optuna_available():
    try:
        import optuna  # noqa: F401
    except ImportError as exc:
        return f"Optuna is not installed ({exc}); pip install -e '.[bench]'"
    return None


def run_optuna(make_net, X, y, seed, epochs, budget):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folds = list(StratifiedKFold(3).split(X, y))
    in_objective, epochs_done, curve = [0.0], [0], []
    start = time.perf_counter()

    def objective(trial):
        began = time.perf_counter()
        params = {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
                  "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
                  "n_units": trial.suggest_int("n_units", 16, 256),
                  "n_layers": trial.suggest_int("n_layers", 1, 3),
                  "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128])}
        nets = [make_net(epochs).set_params(**params, max_epochs=1, warm_start=True) for _ in folds]
        try:
            for epoch in range(1, epochs + 1):
                scores = [net.fit(X[train], y[train]).score(X[test], y[test])
                          for net, (train, test) in zip(nets, folds, strict=True)]
                epochs_done[0] += 1
                trial.report(float(np.mean(scores)), epoch)
                if epoch < epochs and trial.should_prune():
                    raise optuna.TrialPruned()
            curve.append((time.perf_counter() - start, float(np.mean(scores))))
            return float(np.mean(scores))
        finally:
            in_objective[0] += time.perf_counter() - began

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                                                      reduction_factor=3))
    study.optimize(objective, timeout=budget)
    wall = time.perf_counter() - start
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    params = max(complete, key=lambda t: t.value).params if complete else {}
    return curve, params, dict(wall=wall, epochs=epochs_done[0], n_full=len(complete),
                               propose=(wall - in_objective[0]) / wall)


# -- the comparison -----------------------------------------------------------------------------
def best_at(curve, t):
    scores = [s for when, s in curve if when <= t]
    return max(scores) if scores else np.nan


def time_to(curve, target):
    for when, score in sorted(curve):
        if score >= target:
            return when
    return np.nan


def one_seed(task, seed, args):
    X, X_test, y, y_test = load(task)
    torch.manual_seed(seed)

    def make_net(epochs):
        return MLPClassifier(max_epochs=epochs, random_state=seed)

    E, N = args.epochs, args.candidates
    net = make_net(E)
    runs = {}
    runs["sknet Random"] = run_sknet(RandomizedSearchCV(net, SPACE, n_iter=N, cv=3, refit=False,
                                                                   random_state=seed), X, y, E)
    budget = runs["sknet Random"][2]["wall"]
    kw = dict(cv=3, refit=False, random_state=seed, max_time=budget)
    runs["sknet Halving"] = run_sknet(HalvingRandomSearchCV(
        net, SPACE, resource="max_epochs", min_resources=1, max_resources=E, factor=3, **kw), X, y, E)
    runs["sknet Bayes"] = run_sknet(BayesSearchCV(net, SPACE, n_iter=10 * N, n_points="auto", **kw),
                                    X, y, E)
    runs["sknet BOHB"] = run_sknet(HyperbandSearchCV(net, SPACE, min_resources=1, factor=3, n_brackets=100,
                                                             **kw), X, y, E)
    runs["sknet Genetic+prune"] = run_sknet(GeneticSearchCV(
        net, SPACE, population_size=N // 2, generations=100, prune=[E // 9, E // 3], **kw), X, y, E)
    runs["skopt BayesSearchCV"] = run_skopt(net, X, y, seed, 10 * N, budget)
    why = optuna_available()
    if why is None:
        runs["Optuna TPE+Hyperband"] = run_optuna(make_net, X, y, seed, E, budget)
    elif seed == args.seeds[0]:
        print(f"  (Optuna skipped: {why})")
    best_any = max(max((s for _, s in curve), default=-np.inf) for curve, _, _ in runs.values())
    rows = {}
    for name, (curve, params, record) in runs.items():
        final = make_net(E).set_params(**params).fit(X, y)
        rows[name] = dict(record, best=best_at(curve, budget), best_end=best_at(curve, np.inf),
                          to_target=time_to(curve, best_any - TARGET_GAP),
                          held_out=final.score(X_test, y_test))
    return budget, best_any, rows


def bohb_ablation(task, seed, args):
    """What the surrogate adds: Hyperband's brackets with proposed or random candidates."""
    X, _, y, _ = load(task)
    cost_aware = {"optimizer_kwargs": {"acq_func": "EIps"}}
    for name, kwargs in [("BOHB", {}), ("BOHB, cost-aware (EIps)", cost_aware),
                         ("BOHB, min_resources=3", {"min_resources": 3}),
                         ("Hyperband, random", {"sampler": "random"})]:
        search = HyperbandSearchCV(MLPClassifier(max_epochs=args.epochs, random_state=seed), SPACE,
                                   **{"min_resources": 1, **kwargs}, cv=3, refit=False, random_state=seed,
                                   max_time=args.budget, n_brackets=100)
        curve, _, record = run_sknet(search, X, y, args.epochs)
        print(f"  {name:24s} wall {record['wall']:5.1f} s, best CV@{args.budget:.0f} s "
              f"{best_at(curve, args.budget):.4f}, {record['n_full']} trained in full, "
              f"{len(search.bracket_resources_)} brackets, {search.n_proposed_} proposed in "
              f"{search.proposal_time_:.1f} s", flush=True)


def print_rows(rows, budget):
    print(f"  {'tool':24s} {'wall s':>7s} {'best CV@budget':>14s} {'t to -0.5pt':>11s} {'held-out':>8s} "
          f"{'epochs':>7s} {'full':>5s} {'proposing':>9s}")
    for name, r in rows.items():
        print(f"  {name:24s} {r['wall']:7.1f} {r['best']:14.4f} {r['to_target']:11.1f} {r['held_out']:8.4f} "
              f"{r['epochs']:7.0f} {r['n_full']:5.0f} {100 * r['propose']:8.1f}%")
    print(f"  budget: {budget:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["digits", "synthetic", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds from this one on (default 0)")
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--candidates", type=int, default=32, help="the random search's candidates")
    parser.add_argument("--part", choices=["tuners", "bohb"], default="tuners")
    parser.add_argument("--budget", type=float, default=50.0, help="seconds a search, with --part bohb")
    args = parser.parse_args()
    args.seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    torch.set_num_threads(2)
    tasks = ["digits", "synthetic"] if args.task == "both" else [args.task]
    for task in tasks:
        means = defaultdict(lambda: defaultdict(list))
        if args.part == "bohb":
            for seed in args.seeds:
                print(f"\n{task}, seed {seed}", flush=True)
                bohb_ablation(task, seed, args)
            continue
        for seed in args.seeds:
            print(f"\n{task}, seed {seed}", flush=True)
            budget, best_any, rows = one_seed(task, seed, args)
            print_rows(rows, budget)
            print(f"  best CV any tool found: {best_any:.4f}")
            for name, r in rows.items():
                for key, value in r.items():
                    means[name][key].append(value)
                means[name]["budget"].append(budget)
        print(f"\n{task}, mean of {len(args.seeds)} seeds (t to -0.5pt: mean over the seeds that reached it)")
        for name, r in means.items():
            reached = int(np.isfinite(r["to_target"]).sum())
            print(f"  {name:24s} within 0.5 points of the best in {reached} of {len(args.seeds)} seeds")
        mean = {name: {k: np.nan if np.all(np.isnan(v)) else float(np.nanmean(v)) for k, v in r.items()}
                for name, r in means.items()}
        print_rows(mean, float(np.mean(next(iter(means.values()))["budget"])))


if __name__ == "__main__":
    main()
