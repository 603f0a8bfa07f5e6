"""GPU check: sknet's batched engine on a CUDA GPU against the alternatives, in one run.

What ``benchmarks/gpu_check.sh`` runs on the device machine. Parts:

1. **ceiling**: the GPU's float32 matmul rate (8192 x 8192, timed with CUDA events), the
   practical ceiling the engine's rate is compared with.
2. **small grid**: 16 candidates (4 lr x 4 widths) x 5 folds on scikit-learn's digits,
   ``--epochs`` epochs, Adam, batch size 128: sknet's ``GridSearchCV`` (batched) on the GPU,
   against scikit-learn's ``GridSearchCV`` over skorch on the same GPU. skorch's fits are
   timed on a subset (``--skorch-fits``) and extrapolated per fit to the 80: labelled so.
3. **large grid**: one group of at least 1000 models (200 lr x 5 folds, 128 units) on 20 000
   rows of ``make_classification`` (64 features, 10 classes), 5 epochs: sknet batched on the
   GPU (whole), against scikit-learn's ``MLPClassifier`` grid with ``n_jobs`` = the host's
   cores, and sknet batched on the host's cores (``device="cpu"``), both timed on a subset of
   candidates and extrapolated per fit (labelled so). The engine's GFLOP/s over its training
   loops against the ceiling of part 1.
4. **profile of one group**: one epoch of part 3's group under ``torch.profiler``: kernels per
   step, host syncs per step (``torch.cuda.set_sync_debug_mode``), time per step; and the
   engine's memory estimate for the group (what it sizes groups by before they start) against
   the peak CUDA memory the epoch allocated.

``--dry`` runs every part on the CPU with tiny sizes (CI runs it, so the script cannot rot); its
figures mean nothing. Writes ``bench_gpu.json`` into ``--out``.

How to run, from the repository root::

    python benchmarks/bench_gpu.py --out /tmp/gpu       # on a machine with a CUDA GPU
    python benchmarks/bench_gpu.py --dry                 # anywhere, tiny
"""

import argparse
import json
import os
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from sknet import MLPClassifier
from sknet.engine import _train
from sknet.model_selection import GridSearchCV

UNITS = [32, 64, 128, 256]
LRS = [1e-3, 3e-3, 1e-2, 3e-2]


class SkorchMLP(nn.Module):
    """One hidden layer of ReLUs: what sknet's MLPClassifier(n_units=...) builds."""

    def __init__(self, n_features=64, n_units=32, n_classes=10):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, n_units), nn.ReLU(), nn.Linear(n_units, n_classes))

    def forward(self, X):
        return self.layers(X)


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """``(result, seconds)`` of ``fn()``, the device's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start


def matmul_gflops(device, n):
    """The device's float32 matmul GFLOP/s on random ``n x n`` operands (median of 10)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    times = [timed(lambda: a @ b, device)[1] for _ in range(10)]
    return 2.0 * n**3 / float(np.median(times)) / 1e9


class LoopTimer:
    """Seconds spent in the engine's training loops (``GroupTrainer.run``), queue drained."""

    def __init__(self, device):
        self.device, self.seconds, self.run = device, 0.0, _train.GroupTrainer.run

    def __enter__(self):
        run, timer = self.run, self

        def timed_run(trainer):
            result, seconds = timed(lambda: run(trainer), timer.device)
            timer.seconds += seconds
            return result

        _train.GroupTrainer.run = timed_run
        return self

    def __exit__(self, *exc):
        _train.GroupTrainer.run = self.run


def flops_per_fit(n_rows, n_features, units, n_classes, epochs):
    """A one-hidden-layer fit's training arithmetic: per row and layer of a x b weights, 2ab
    forward, 2ab for the weights' gradient, 2ab for the input's gradient (not at the first layer)."""
    return (4 * n_features * units + 6 * units * n_classes) * n_rows * epochs


def fit_search(search, X, y, device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return timed(lambda: search.fit(X, y), device)


def small_grid(args, device, record):
    X, y = load_digits(return_X_y=True)
    X, y = (X / 16.0).astype(np.float32), y.astype(np.int64)
    if args.dry:
        X, y = X[:300], y[:300]
    units = UNITS[:2] if args.dry else UNITS
    net = MLPClassifier(max_epochs=args.epochs, batch_size=128, random_state=0, device=device)
    grid = {"lr": LRS, "n_units": units}
    GridSearchCV(net.set_params(max_epochs=1), grid, cv=5).fit(X, y)  # untimed: first kernels, caches
    net.set_params(max_epochs=args.epochs)
    search, sknet_s = fit_search(GridSearchCV(net, grid, cv=5), X, y, device)
    n_fits = len(LRS) * len(units) * 5
    skorch = NeuralNetClassifier(SkorchMLP, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
                                 max_epochs=args.epochs, batch_size=128, train_split=None,
                                 iterator_train__shuffle=True, device=device, verbose=0)
    subset = {"lr": LRS[:1], "module__n_units": units[-1:]}  # the widest: no flattery
    SklearnGridSearchCV(skorch.set_params(max_epochs=1), subset, cv=2, refit=False).fit(X, y)
    skorch.set_params(max_epochs=args.epochs)
    n_subset = max(2, args.skorch_fits)
    _, skorch_s = fit_search(SklearnGridSearchCV(skorch, subset, cv=n_subset, refit=False), X, y, device)
    per_fit = skorch_s / n_subset
    record["small"] = {"rows": len(X), "fits": n_fits, "epochs": args.epochs, "sknet_s": sknet_s,
                       "skorch_fits_timed": n_subset, "skorch_per_fit_s": per_fit,
                       "skorch_extrapolated_s": per_fit * n_fits, "best_score": search.best_score_}
    print(f"small grid: {len(LRS)} lr x {len(units)} widths x 5 folds on digits {X.shape}, {args.epochs} "
          f"epochs, on {device}")
    print(f"  sknet GridSearchCV, batched:                 {sknet_s:8.2f} s (refit included)")
    print(f"  sklearn GridSearchCV + skorch, extrapolated: {per_fit * n_fits:8.2f} s ({n_subset} widest fits "
          f"timed, {per_fit:.3f} s each, x {n_fits}): {per_fit * n_fits / sknet_s:.1f}x (target >= 50x)")


def large_data(args):
    n = 600 if args.dry else 20_000
    X, y = make_classification(n_samples=n, n_features=64, n_informative=32, n_classes=10,
                               n_clusters_per_class=1, random_state=0)
    return X.astype(np.float32), y


def large_grid(args, device, record, ceiling):
    X, y = large_data(args)
    n_lrs = 4 if args.dry else 200
    lrs = [float(f"{lr:.4g}") for lr in np.geomspace(1e-4, 1e-1, n_lrs)]
    epochs, units = (1 if args.dry else 5), 128
    net = MLPClassifier(n_units=units, max_epochs=epochs, batch_size=128, random_state=0)
    n_models = n_lrs * 5
    GridSearchCV(net.set_params(device=device, max_epochs=1), {"lr": lrs[:2]}, cv=5, refit=False).fit(X, y)
    net.set_params(max_epochs=epochs)
    with LoopTimer(device) as loops:
        search, gpu_s = fit_search(GridSearchCV(net.set_params(device=device), {"lr": lrs}, cv=5,
                                                refit=False), X, y, device)
    flops = flops_per_fit(len(X) * 4 / 5, X.shape[1], units, 10, epochs) * n_models
    rate = flops / loops.seconds / 1e9
    cores = os.cpu_count()
    subset = lrs[:: max(1, n_lrs // (2 * cores))][:2 * cores]  # two fits per core and fold
    host_net = SklearnMLPClassifier(hidden_layer_sizes=(units,), batch_size=128, max_iter=epochs, tol=0.0,
                                    n_iter_no_change=epochs + 1, alpha=0.0, random_state=0)
    _, sklearn_s = fit_search(SklearnGridSearchCV(host_net, {"learning_rate_init": subset}, cv=5, refit=False,
                                                  n_jobs=cores), X, y, "cpu")
    cpu_subset = subset[:max(2, len(subset) // 4)]
    _, cpu_s = fit_search(GridSearchCV(net.set_params(device="cpu"), {"lr": cpu_subset}, cv=5, refit=False),
                          X, y, "cpu")
    sklearn_x = sklearn_s / len(subset) * n_lrs
    cpu_x = cpu_s / len(cpu_subset) * n_lrs
    record["large"] = {
        "rows": len(X), "models_in_group": n_models, "epochs": epochs, "units": units, "sknet_gpu_s": gpu_s,
        "sknet_gpu_training_loops_s": loops.seconds, "engine_gflops": rate, "ceiling_gflops": ceiling,
        "share_of_ceiling": rate / ceiling, "sklearn_cores": cores, "sklearn_candidates_timed": len(subset),
        "sklearn_s": sklearn_s, "sklearn_extrapolated_s": sklearn_x,
        "sknet_cpu_candidates_timed": len(cpu_subset), "sknet_cpu_s": cpu_s,
        "sknet_cpu_extrapolated_s": cpu_x,
        "best_score": float(np.max(search.cv_results_["mean_test_score"]))}
    print(f"large grid: {n_lrs} lr x 5 folds = {n_models} models in one group, {len(X)} rows x 64 "
          f"features, {units} units, {epochs} epochs")
    print(f"  sknet GridSearchCV, batched, {device}: {gpu_s:8.2f} s ({loops.seconds:.2f} s in training "
          f"loops: {rate:.0f} GFLOP/s, {rate / ceiling:.1%} of the matmul ceiling; target >= 30%)")
    print(f"  sklearn MLP grid, n_jobs={cores}, extrapolated: {sklearn_x:8.2f} s ({len(subset)} of {n_lrs} "
          f"candidates timed): {sklearn_x / gpu_s:.1f}x (target >= 20x)")
    print(f"  sknet batched on {cores} host cores, extrapolated: {cpu_x:8.2f} s ({len(cpu_subset)} of "
          f"{n_lrs} candidates timed): {cpu_x / gpu_s:.1f}x")
    return X, y, lrs, net.set_params(device=device)


def profile_group(args, device, record, X, y, lrs, net):
    """One epoch of the large grid's group: kernels, host syncs and time per step."""
    from torch.profiler import ProfilerActivity, profile

    # The grid's jobs: each lr on each of 5 folds' training rows (identical jobs would train once).
    folds = [np.setdiff1d(np.arange(len(X)), part) for part in np.array_split(np.arange(len(X)), 5)]
    jobs = [({"lr": lr, "max_epochs": 1}, rows) for lr in lrs for rows in folds]
    _train.train_batched(net, jobs[:10], X, y)  # warm
    steps = int(np.ceil(len(folds[0]) / net.batch_size))
    on_gpu = torch.device(device).type == "cuda"
    one = _train._estimated_bytes(_train.prepare(net, *jobs[0], X, y), X.shape[1])
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        _train.train_batched(net, jobs, X, y)
        peak = torch.cuda.max_memory_allocated(device) - before
    syncs = []
    if on_gpu:
        torch.cuda.set_sync_debug_mode("warn")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    try:
        with warnings.catch_warnings(record=True) as caught, profile(activities=activities) as prof:
            warnings.simplefilter("always")
            _, seconds = timed(lambda: _train.train_batched(net, jobs, X, y), device)
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
    finally:
        if on_gpu:
            torch.cuda.set_sync_debug_mode(0)
    events = prof.key_averages()
    kernels = sum(e.count for e in events if on_gpu and getattr(e, "device_type", None) is not None
                  and str(e.device_type).endswith("CUDA"))
    ops = sum(e.count for e in events if e.key.startswith("aten::"))
    record["profile"] = {"models": len(jobs), "steps": steps, "seconds": seconds,
                         "kernels_per_step": kernels / steps if on_gpu else None,
                         "aten_ops_per_step": ops / steps, "host_syncs": len(syncs) if on_gpu else None,
                         "host_syncs_per_step": len(syncs) / steps if on_gpu else None,
                         "memory_estimate_bytes": one * len(jobs),
                         "peak_memory_bytes": peak if on_gpu else None}
    gpu_part = (f", {kernels / steps:.0f} CUDA kernels per step, {len(syncs)} host syncs in the epoch "
                f"({len(syncs) / steps:.2f} per step; target <= 1 per epoch)" if on_gpu
                else " (no GPU: no kernels, no syncs)")
    print(f"profile of one epoch of that group ({len(jobs)} models, {steps} steps, setup and finish "
          f"included): {seconds / steps * 1e3:.2f} ms per step, {ops / steps:.0f} aten ops per step"
          + gpu_part)
    if on_gpu:
        print(f"memory: the engine's estimate for the group {one * len(jobs) / 2**20:.0f} MiB, the peak it "
              f"allocated {peak / 2**20:.0f} MiB ({peak / (one * len(jobs)):.2f} of the estimate)")
        try:
            print(events.table(sort_by="device_time_total", row_limit=12))
        except Exception:  # older torch names it cuda_time_total
            print(events.table(sort_by="cuda_time_total", row_limit=12))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dry", action="store_true", help="tiny sizes on the CPU (CI)")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --dry)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the small grid")
    parser.add_argument("--skorch-fits", type=int, default=8, help="skorch fits timed (small grid)")
    parser.add_argument("--out", default=None, help="folder for bench_gpu.json")
    parser.add_argument("--parts", nargs="*", default=["small", "large", "profile"])
    args = parser.parse_args()
    if args.dry:
        args.epochs, args.skorch_fits = 1, 2
    device = args.device or ("cpu" if args.dry else "cuda")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --dry, or on the device machine")
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "CPU"
    record = {"device": name, "torch": torch.__version__, "cpu_cores": os.cpu_count(), "dry": args.dry}
    print(f"bench_gpu on {device} ({name}), torch {torch.__version__}, {os.cpu_count()} host cores"
          + (" -- DRY RUN: tiny sizes, the figures mean nothing" if args.dry else ""))
    ceiling = matmul_gflops(device, 256 if args.dry else 8192)
    record["ceiling_gflops"] = ceiling
    print(f"float32 matmul ceiling on {device}: {ceiling:.0f} GFLOP/s")
    if "small" in args.parts:
        small_grid(args, device, record)
    if "large" in args.parts or "profile" in args.parts:
        X, y, lrs, net = large_grid(args, device, record, ceiling)
        if "profile" in args.parts:
            profile_group(args, device, record, X, y, lrs, net)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench_gpu.json"), "w") as f:
            json.dump(record, f, indent=1, default=float)


if __name__ == "__main__":
    main()
