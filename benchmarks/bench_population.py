"""Benchmark: population-based training, sknet's PopulationSearchCV against the alternatives, one run.

The same net (sknet ``MLPClassifier``, SGD) and space on two tasks: scikit-learn's digits (scaled to
[0, 1]) and ``make_classification(20000, 40, n_informative=20, n_classes=5)``, each split into 75 %
searched and 25 % held out. The space mixes what PBT changes during training (``lr``,
``weight_decay``, ``momentum``: mutable) with what it fixes per member (depth, width, batch size).
For each task and seed, in one run, interleaved:

1. ``PopulationSearchCV``: 16 members, 3-fold CV, an exploit-and-explore step every 5 epochs,
   ``max_epochs`` in all (30 on digits, 20 on the synthetic task);
2. ``RandomizedSearchCV``: 16 candidates of the same space, each trained ``max_epochs`` epochs
   (the same total epochs);
3. ``HalvingRandomSearchCV`` on epochs: 48 candidates, factor 3, survivors continuing, up to
   ``max_epochs`` (rungs at 3, 9, 27 epochs on digits; 2, 6, 18 on the synthetic task);
4. PopulationSearchCV on one validation split (a third of the searched rows), and Ray Tune's
   ``PopulationBasedTraining`` over the same net, population, intervals and epochs on that split
   (``pip install -e ".[bench]"``; skipped with a message without Ray).

Reported: wall time, epochs trained (models x epochs, refit excluded), best CV score, held-out
score of the refitted best, PopulationSearchCV's share of wall time in exploit-and-explore, and
the share of its member-intervals at batch size 32 (exploits copy the best members' fixed
parameters, so the population drifts towards them; 50 % at the start). Ray's time is compared
with sknet's one-split search without its refit (Ray's has none), and with it.

Targets: exploit-and-explore <= 2 % of PopulationSearchCV's wall time; its best CV >= the random
search's at equal epochs (mean of 3 seeds, both tasks); >= 10x faster than Ray's PBT.

How to run, from the repository root::

    python benchmarks/bench_population.py                    # both tasks, 3 seeds, with Ray
    python benchmarks/bench_population.py --task digits --seeds 1 --no-ray
    python benchmarks/bench_population.py --overhead --task synthetic --seeds 1
"""

import argparse
import contextlib
import functools
import time
from unittest import mock

import numpy as np
import torch
from _ray_pbt import ray_available, run_ray_pbt
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import ShuffleSplit, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier
from sknet.model_selection import HalvingRandomSearchCV, PopulationSearchCV, RandomizedSearchCV, _evaluate

MUTABLE = {"lr": (1e-3, 0.3, "log-uniform"), "weight_decay": (1e-6, 1e-2, "log-uniform"),
           "momentum": (0.5, 0.99, "uniform")}
FIXED = {"n_layers": [1, 2], "batch_size": [32, 128]}
POPULATION, INTERVAL = 16, 5
TASKS = {"digits": dict(epochs=30, units=[32, 128], halving_min=3),
         "synthetic": dict(epochs=20, units=[32, 64], halving_min=2)}


def load(task):
    if task == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        X, y = make_classification(n_samples=20000, n_features=40, n_informative=20, n_classes=5,
                                   random_state=0)
        X = StandardScaler().fit_transform(X)
    return train_test_split(X.astype(np.float32), y, test_size=0.25, random_state=0, stratify=y)


def make_net(params):
    """The net of every contender (Ray's trials build theirs with it)."""
    return MLPClassifier(optimizer="sgd", random_state=0, **params)


def _row(name, seconds, epochs, cv, held_out, note=""):
    held = "   n/a" if held_out is None else f"{held_out:.4f}"
    print(f"  {name:<34} {seconds:8.2f} s {epochs:9d} {cv:8.4f} {held:>8}  {note}", flush=True)
    return {"name": name, "seconds": seconds, "epochs": epochs, "cv": cv, "held_out": held_out}


def run(task, seed, with_ray):
    X, X_test, y, y_test = load(task)
    setting = TASKS[task]
    epochs, space, net, cv = _setting(task, seed)
    print(f"{task}, seed {seed}: {len(X)} rows searched, {len(X_test)} held out; {epochs} epochs")
    print(f"  {'contender':<34} {'wall':>10} {'epochs':>9} {'best CV':>8} {'held out':>8}")
    rows = []

    start = time.perf_counter()
    pbt = PopulationSearchCV(net, space, population_size=POPULATION, perturbation_interval=INTERVAL, cv=cv,
                             random_state=seed).fit(X, y)
    seconds = time.perf_counter() - start
    rows.append(_row("PopulationSearchCV", seconds, POPULATION * 3 * epochs, pbt.best_score_,
                     pbt.score(X_test, y_test),
                     f"exploit+explore {pbt.exploit_time_:.3f} s = {pbt.exploit_time_ / seconds:.2%}; "
                     f"engine {pbt.engine_time_:.2f} s, refit {pbt.refit_time_:.2f} s; copies in the "
                     f"group {pbt.exploits_in_group_}, re-stacked {pbt.exploits_restacked_}; "
                     f"batch size 32 in {_small_batches(pbt):.0%} of member-intervals"))

    start = time.perf_counter()
    random = RandomizedSearchCV(net, space, n_iter=POPULATION, cv=cv, random_state=seed).fit(X, y)
    rows.append(_row("RandomizedSearchCV", time.perf_counter() - start, POPULATION * 3 * epochs,
                     random.best_score_, random.score(X_test, y_test)))

    start = time.perf_counter()
    halving = HalvingRandomSearchCV(net, space, n_candidates=3 * POPULATION, factor=3, resource="max_epochs",
                                    min_resources=setting["halving_min"], max_resources=epochs, cv=cv,
                                    random_state=seed).fit(X, y)
    rows.append(_row("HalvingRandomSearchCV (epochs)", time.perf_counter() - start, _halving_epochs(halving),
                     halving.best_score_, halving.score(X_test, y_test)))

    one = ShuffleSplit(1, test_size=1 / 3, random_state=seed)
    start = time.perf_counter()
    single = PopulationSearchCV(net, space, population_size=POPULATION, perturbation_interval=INTERVAL,
                                cv=one, random_state=seed).fit(X, y)
    single_time = time.perf_counter() - start
    searched = single_time - single.refit_time_  # Ray's figure has no refit
    rows.append(_row("PopulationSearchCV, one split", single_time, POPULATION * epochs, single.best_score_,
                     single.score(X_test, y_test), f"{searched:.2f} s without its refit"))
    if with_ray:
        train, valid = next(one.split(X, y))
        fixed = {**FIXED, "n_units": setting["units"]}
        ray = run_ray_pbt(make_net, X[train], y[train], X[valid], y[valid],
                          space={**MUTABLE, **fixed}, mutable=list(MUTABLE),
                          population_size=POPULATION, perturbation_interval=INTERVAL, max_epochs=epochs,
                          seed=seed)
        rows.append(_row("Ray Tune PopulationBasedTraining", ray["wall_time"], ray["total_epochs"],
                         ray["best_score"], None,
                         f"{ray['wall_time'] / searched:.1f}x sknet's one-split search (refit excluded), "
                         f"{ray['wall_time'] / single_time:.1f}x with it; ray.init "
                         f"{ray['startup_time']:.1f} s more; {ray['n_exploits']} exploits; "
                         f"Ray {ray['ray_version']}"))
    return rows


def overhead(task, seed):
    """What pausing costs: the population's mechanics against a random search of the same fits.

    One run, ``refit=False``: a random search of 16 candidates; the population in one interval
    (no pause: the same fits); paused every 5 epochs without exploits (``quantile_fraction=0``)
    and with them, each trained as one batched model throughout (now) and as a round of the
    evaluator per interval, every state written back and stacked again (before: the path
    ``engine="sequential"`` and fits the engine cannot take together still use). The last two
    pairs compute the same results; only the mechanics differ.
    """
    X, _, y, _ = load(task)
    epochs, space, net, cv = _setting(task, seed)
    print(f"{task}, seed {seed}: what pausing costs ({epochs} epochs, refit=False)")

    def population(**kwargs):
        return PopulationSearchCV(net, space, population_size=POPULATION, cv=cv, random_state=seed,
                                  refit=False, **{"perturbation_interval": INTERVAL, **kwargs})

    contenders = [("RandomizedSearchCV", lambda: RandomizedSearchCV(net, space, n_iter=POPULATION, cv=cv,
                                                                    random_state=seed, refit=False), False),
                  ("population, one interval", lambda: population(perturbation_interval=epochs), False)]
    for name, kwargs in [("no exploits", {"quantile_fraction": 0.0}), ("exploits", {})]:
        for rounds in (False, True):
            label = f"population, {name}, {'rounds' if rounds else 'one model'}"
            contenders.append((label, functools.partial(population, **kwargs), rounds))
    scores = {}
    for name, make, rounds in contenders:
        search = make()
        start = time.perf_counter()
        with mock.patch.object(_evaluate.RoundEvaluator, "train_stages", lambda *args: None) if rounds else (
                contextlib.nullcontext()):
            search.fit(X, y)
        seconds = time.perf_counter() - start
        copies = (f"; copies in the group {search.exploits_in_group_}, "
                  f"re-stacked {search.exploits_restacked_}" if hasattr(search, "exploits_in_group_") else "")
        scores[name] = search.cv_results_["mean_test_score"]
        print(f"  {name:<44} {seconds:7.2f} s  best CV {np.max(scores[name]):.4f}{copies}", flush=True)
    for name in ("no exploits", "exploits"):
        same = np.array_equal(scores[f"population, {name}, one model"], scores[f"population, {name}, rounds"])
        print(f"  {name}: one model and rounds give {'equal' if same else 'DIFFERENT'} cv_results_")


def _setting(task, seed):
    """A task's epochs, space, net and CV splitter for a seed."""
    setting = TASKS[task]
    epochs = setting["epochs"]
    space = {**MUTABLE, **FIXED, "n_units": setting["units"]}
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    return epochs, space, make_net({"max_epochs": epochs}), cv


def _small_batches(search):
    """The share of member-intervals a population search trained at batch size 32: exploits copy
    the fixed parameters of the best, so the population drifts towards them (and their cost)."""
    sizes = [params["batch_size"] for record in search.population_history_ for params in record["params"]]
    return float(np.mean(np.asarray(sizes) == 32))


def _halving_epochs(search):
    """Epochs the halving search trained: each candidate to its last rung (survivors continue)."""
    results = search.cv_results_
    last = {}
    for params, epochs in zip(results["params"], results["n_resources"], strict=True):
        key = repr(sorted((k, v) for k, v in params.items() if k != "max_epochs"))
        last[key] = max(last.get(key, 0), int(epochs))
    return 3 * sum(last.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=[*TASKS, "all"], default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--overhead", action="store_true",
                        help="only what pausing costs, one model throughout against rounds (see overhead)")
    args = parser.parse_args()
    if args.overhead:
        for task in TASKS if args.task == "all" else [args.task]:
            for seed in range(args.seeds):
                overhead(task, seed)
        return
    why = None if not args.no_ray else "--no-ray"
    if why is None:
        why = ray_available()
    if why:
        print(f"Ray Tune's PBT skipped: {why}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    X, _, y, _ = load("digits")  # torch's one-time costs, untimed
    PopulationSearchCV(make_net({"max_epochs": 2}), MUTABLE, population_size=2, perturbation_interval=1,
                       cv=2, random_state=0).fit(X[:200], y[:200])
    summary = {}
    for task in TASKS if args.task == "all" else [args.task]:
        for seed in range(args.seeds):
            for row in run(task, seed, why is None):
                summary.setdefault((task, row["name"]), []).append(row)
    print("\nmeans over seeds")
    for (task, name), rows in summary.items():
        held = [r["held_out"] for r in rows if r["held_out"] is not None]
        print(f"  {task:<10} {name:<34} {np.mean([r['seconds'] for r in rows]):8.2f} s "
              f"{np.mean([r['epochs'] for r in rows]):9.0f} {np.mean([r['cv'] for r in rows]):8.4f} "
              f"{np.mean(held) if held else float('nan'):8.4f}")


if __name__ == "__main__":
    main()
