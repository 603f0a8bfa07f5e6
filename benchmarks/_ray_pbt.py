"""Ray Tune's PopulationBasedTraining over an sknet estimator: the baseline of bench_population.py.

:func:`run_ray_pbt` trains a population of sknet estimators with Ray Tune's
``PopulationBasedTraining`` (synchronous), on one fixed validation split: each
trial trains ``perturbation_interval`` epochs per Ray iteration with the
estimator's own ``fit`` (``warm_start=True`` continues a fitted net), reports
the validation score and a checkpoint (the pickled estimator), and PBT exploits
by restoring a better trial's checkpoint and exploring its hyperparameters.

Needs ``ray[tune]`` (``pip install -e ".[bench]"``); :func:`ray_available` says
why it is not usable. Run this file for a small self-check on digits::

    python benchmarks/_ray_pbt.py

Hyperparameters changed on a fitted estimator (after an exploit) must reach its
skorch net: ``set_params(lr=...)`` on the estimator only records the value, and a
``warm_start`` fit goes on with the optimizer built at the first fit. So
:func:`apply_params` also sets them on the fitted net's optimizer, keeping its
state (Adam's moments), as Ray's own PBT examples do with torch optimizers.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_DOMAINS = {"log-uniform": "loguniform", "loguniform": "loguniform", "uniform": "uniform"}


def ray_available() -> str | None:
    """None when ``ray[tune]`` imports, else a message saying why not (a skip message)."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
        from ray.tune.schedulers import PopulationBasedTraining  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return (f"Ray Tune is not available ({type(exc).__name__}: {exc}); "
                "install it with: pip install 'ray[tune]' (or pip install -e '.[bench]')")
    return None


# -- hyperparameters ----------------------------------------------------------
def _domain(value):
    """A Ray sampling domain for ``value``: a domain as is; ``(low, high, "log-uniform")``; a list."""
    from ray import tune
    from ray.tune.search.sample import Domain

    if isinstance(value, Domain):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3):
        kind = value[2] if len(value) == 3 else "uniform"
        if kind not in _DOMAINS:
            raise ValueError(f"Unknown prior {kind!r} in {value!r}; expected one of {sorted(_DOMAINS)}.")
        return getattr(tune, _DOMAINS[kind])(float(value[0]), float(value[1]))
    if isinstance(value, list):
        return tune.choice(value)
    raise TypeError(f"Cannot turn {value!r} into a Ray search space: give a ray.tune domain, "
                    "a (low, high[, 'uniform' | 'log-uniform']) tuple or a list of choices.")


def _set_weight_decay(skorch_net, value):
    """Set the weight decay of the parameters sknet decays (not biases and norms), keeping optimizer state.

    sknet makes a decay-free group of biases and norms only when its first
    fit had ``weight_decay > 0``; a single mixed group is split here.
    """
    from sknet._options import takes_weight_decay

    optimizer = skorch_net.optimizer_
    decayed = {id(p) for name, p in skorch_net.module_.named_parameters() if takes_weight_decay(name)}
    for group in list(optimizer.param_groups):
        if "weight_decay" not in group:
            return  # the optimizer takes none (sknet gives it none either)
        with_decay = [p for p in group["params"] if id(p) in decayed]
        without = [p for p in group["params"] if id(p) not in decayed]
        if with_decay and without:  # split: the state is keyed by parameter, so it stays
            group["params"] = with_decay
            optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"},
                                       "params": without, "weight_decay": 0.0})
        if with_decay:
            group["weight_decay"] = float(value)


def apply_params(net, params):
    """Set hyperparameters on an sknet estimator, and on its fitted skorch net's optimizer if fitted.

    Handles ``lr``, ``weight_decay``, ``momentum``, ``l1`` and ``batch_size``
    on a fitted net; others would need a new module or optimizer.
    """
    net.set_params(**params)  # the estimator's record: get_params, a refit, pickles
    skorch_net = getattr(net, "net_", None)
    if skorch_net is None:
        return net
    for name, value in params.items():
        if name == "lr":
            skorch_net.set_params(lr=value)  # skorch's virtual parameter: every group's lr, state kept
        elif name == "weight_decay":
            _set_weight_decay(skorch_net, value)
        elif name == "momentum":
            momentum = net._momentum()
            for group in skorch_net.optimizer_.param_groups:
                if "momentum" in group:
                    group["momentum"] = momentum
        elif name == "l1":
            skorch_net.l1 = float(value)
        elif name == "batch_size":
            skorch_net.batch_size = int(value)
        else:
            raise ValueError(f"Cannot change {name!r} on a fitted net in place; PBT may only mutate "
                             "lr, weight_decay, momentum, l1 and batch_size here.")
    return net


def _bounds(space):
    """``{name: (low, high)}`` of the ranges given as tuples in ``space``."""
    return {name: (float(value[0]), float(value[1])) for name, value in space.items()
            if isinstance(value, tuple) and len(value) in (2, 3)}


# -- the trial ---------------------------------------------------------------
def _log(path, **event):
    with open(path, "a") as f:  # O_APPEND: short lines from several processes do not interleave
        f.write(json.dumps({**event, "pid": os.getpid(), "time": time.time()}) + "\n")


def _trial(config, *, make_net, data, names, mutable, bounds, interval, n_iter, log_path):
    """One PBT member: train ``interval`` epochs, report the validation score and a checkpoint; repeat."""
    import torch
    from ray import tune

    torch.set_num_threads(1)
    X_train, y_train, X_valid, y_valid = data
    # Ray perturbs a float without clipping it to its range (momentum 0.95 x 1.2 > 1); like sknet's
    # PBT, the trial clips a perturbed value to the range its space gave.
    params = {name: config[name] for name in names}
    params.update({name: min(max(params[name], low), high) for name, (low, high) in bounds.items()})
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        net = make_net(params)
        iteration = 0
        _log(log_path, event="start", trial=tune.get_context().get_trial_id(), params=params)
    else:  # resumed after a pause, or exploited: another trial's net, with this trial's (explored) config
        with checkpoint.as_directory() as folder:
            with open(os.path.join(folder, "net.pkl"), "rb") as f:
                state = pickle.load(f)
        net, iteration = state["net"], state["iteration"]
    # A restored net keeps what it was built with; the mutable values may have been explored.
    apply_params(net, params if checkpoint is None else {name: params[name] for name in mutable})
    if checkpoint is not None:
        _log(log_path, event="restore", trial=tune.get_context().get_trial_id(), iteration=iteration,
             params=params, from_trial=state["trial"],
             optimizer_lr=[g["lr"] for g in net.net_.optimizer_.param_groups],
             optimizer_weight_decay=[g.get("weight_decay") for g in net.net_.optimizer_.param_groups])
    net.set_params(max_epochs=interval, warm_start=True)  # unfitted: a fresh fit; fitted: `interval` more
    while iteration < n_iter:
        before = len(net.net_.history) if hasattr(net, "net_") else 0
        t0 = time.perf_counter()
        net.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        _log(log_path, event="epochs", trial=tune.get_context().get_trial_id(), iteration=iteration + 1,
             n=len(net.net_.history) - before, seconds=seconds)
        iteration += 1
        score = float(net.score(X_valid, y_valid))
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "net.pkl"), "wb") as f:
                pickle.dump({"net": net, "iteration": iteration,
                             "trial": tune.get_context().get_trial_id()}, f)
            tune.report({"score": score, "iteration": iteration},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def run_ray_pbt(make_net, X_train, y_train, X_valid, y_valid, *, space, mutable, population_size,
                perturbation_interval, max_epochs, quantile_fraction=0.25, resample_probability=0.25,
                perturbation_factors=(1.2, 0.8), seed=0, reuse_actors=True, num_cpus=2) -> dict:
    """Population-based training of ``make_net(params)`` estimators with Ray Tune.

    Parameters
    ----------
    make_net : callable
        ``make_net(params) -> unfitted sknet estimator``; pickled to Ray's
        workers (a module-level function or a ``functools.partial``).
    X_train, y_train, X_valid, y_valid : array-like
        The training rows, and the validation rows every interval is scored on.
    space : dict
        Hyperparameter -> ``ray.tune`` domain, ``(low, high[, "log-uniform"])``
        tuple, or list of choices: the initial population's sampling.
    mutable : sequence of str
        The names PBT perturbs (``hyperparam_mutations``, from ``space``).
    population_size : int
    perturbation_interval : int
        Epochs per Ray iteration; PBT perturbs every iteration.
    max_epochs : int
        Epochs of each member: ``max_epochs // perturbation_interval`` iterations.
    reuse_actors : bool, default=True
        Ray's ``TuneConfig(reuse_actors=...)``: synchronous PBT pauses every
        trial at every interval, and without reuse each resume starts a new
        worker process (importing torch and sknet anew).

    Returns
    -------
    dict
        ``wall_time`` (``Tuner.fit``), ``startup_time`` (``ray.init``),
        ``best_score``, ``best_params``, ``total_epochs`` (every epoch trained,
        as counted by the trials), ``train_time`` (the trials' ``fit`` calls,
        summed), ``n_exploits`` (PBT's perturbations),
        ``n_restores`` (trials restarted from a checkpoint: every resume and
        exploit), ``n_clones`` (restores from another trial's checkpoint),
        ``final_scores`` (of each member), ``n_iterations``, ``ray_version``,
        ``events`` (what the trials logged: starts, restores, epochs trained).
    """
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    n_iter = max_epochs // perturbation_interval
    if n_iter < 1:
        raise ValueError(f"max_epochs={max_epochs} < perturbation_interval={perturbation_interval}.")
    names = list(space)
    param_space = {name: _domain(value) for name, value in space.items()}
    missing = [name for name in mutable if name not in param_space]
    if missing:
        raise ValueError(f"Mutable hyperparameters {missing} are not in space {names}.")
    if __name__ != "__main__":
        # Ray's workers import by name what is pickled by reference, and they see this file's folder
        # only when the driver script is in it (or it is the working directory): send the code itself.
        # make_net is pickled by reference when it is a module-level function of an imported module:
        # that module must be importable in the workers (installed, next to the script, or in the cwd).
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    random.seed(seed)  # PBT's exploit and explore draw from the random module of this process,
    np.random.seed(seed)  # noqa: NPY002  and its resampling of a ray.tune domain from numpy's global one

    workdir = Path(tempfile.mkdtemp(prefix="ray_pbt_"))
    log_path = str(workdir / "trials.log")
    started = not ray.is_initialized()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TensorBoard files
    try:
        t0 = time.perf_counter()
        if started:
            import logging
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, _temp_dir=str(workdir / "ray"))
        startup_time = time.perf_counter() - t0

        scheduler = PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=1,
            hyperparam_mutations={name: param_space[name] for name in mutable},
            quantile_fraction=quantile_fraction, resample_probability=resample_probability,
            perturbation_factors=tuple(perturbation_factors), synch=True, log_config=False)
        trainable = tune.with_resources(
            tune.with_parameters(_trial, make_net=make_net, data=(X_train, y_train, X_valid, y_valid),
                                 names=names, mutable=list(mutable), bounds=_bounds(space),
                                 interval=perturbation_interval, n_iter=n_iter, log_path=log_path),
            {"cpu": 1})
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric="score", mode="max", scheduler=scheduler, num_samples=population_size,
                search_alg=BasicVariantGenerator(random_state=seed), reuse_actors=reuse_actors),
            run_config=tune.RunConfig(
                name="pbt", storage_path=str(workdir / "storage"), verbose=0,
                stop={"training_iteration": n_iter}),
        )
        t0 = time.perf_counter()
        results = tuner.fit()
        wall_time = time.perf_counter() - t0
    finally:
        if started:
            ray.shutdown()
        events = ([json.loads(line) for line in Path(log_path).read_text().splitlines()]
                  if os.path.exists(log_path) else [])
        shutil.rmtree(workdir, ignore_errors=True)

    if results.errors:
        raise RuntimeError(f"{len(results.errors)} Ray trial(s) failed; the first: {results.errors[0]!r}")
    best = results.get_best_result(metric="score", mode="max", scope="last")
    restores = [e for e in events if e["event"] == "restore"]
    return {
        "wall_time": wall_time,
        "startup_time": startup_time,
        "best_score": float(best.metrics["score"]),
        "best_params": {name: best.config[name] for name in names},
        "total_epochs": sum(e["n"] for e in events if e["event"] == "epochs"),
        # the trials' fit calls, summed over trials (2 run side by side at most): the rest is Ray's
        "train_time": sum(e["seconds"] for e in events if e["event"] == "epochs"),
        "n_exploits": int(getattr(scheduler, "_num_perturbations", -1)),
        "n_restores": len(restores),
        # a restore from another trial's checkpoint: what PBT's exploit does
        "n_clones": sum(e["from_trial"] != e["trial"] for e in restores),
        "final_scores": sorted(float(r.metrics["score"]) for r in results),
        "n_iterations": n_iter,
        "ray_version": ray.__version__,
        "events": events,
    }


# -- the self-check ------------------------------------------------------------
def _make_mlp(params):
    import sknet

    return sknet.MLPClassifier(hidden_layer_sizes=(32,), batch_size=64, random_state=0, **params)


def main():
    why = ray_available()
    if why:
        print(f"skipped: {why}")
        return 0
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    t0 = time.perf_counter()
    out = run_ray_pbt(_make_mlp, X_train, y_train, X_valid, y_valid,
                      space={"lr": (1e-4, 1e-1, "log-uniform"), "weight_decay": (1e-6, 1e-2, "log-uniform")},
                      mutable=["lr", "weight_decay"], population_size=4, perturbation_interval=2,
                      max_epochs=8, seed=0)
    out["total_time"] = time.perf_counter() - t0
    events = out.pop("events")
    for key, value in out.items():
        print(f"{key}: {value}")
    print("restores (trial <- checkpoint of trial, config, optimizer lr after apply_params):")
    for e in events:
        if e["event"] == "restore":
            print(f"  iter {e['iteration']}: {e['trial']} <- {e['from_trial']}  "
                  f"lr={e['params']['lr']:.3g} wd={e['params']['weight_decay']:.3g}  "
                  f"optimizer lr={e['optimizer_lr']} wd={e['optimizer_weight_decay']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
