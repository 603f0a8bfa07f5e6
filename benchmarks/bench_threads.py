"""One torch thread against all of them, for small fits and engine groups, idle and under load.

What is measured
----------------
The wall-clock seconds of each case below, trained on the CPU with torch's
intra-op thread count set, for the case only and restored after it, to

- ``1``: ``torch.set_num_threads(1)``;
- ``all``: the count torch started with (``torch.get_num_threads()``, the cores by default);
- ``tpc1``: threadpoolctl's limit of OpenMP to one thread instead of torch's own setter;
- ``sknet``: the count ``sknet.parallel.fit_threads`` chooses for the case's work,

each both on the machine as it is ("idle") and with one competing busy process
("load": a Python ``while True: pass``, or ``--load matmul``, a one-thread numpy
matmul loop) started before the variants' block and stopped after it. The
variants alternate (their order rotates each repeat), idle and load blocks
alternate, and each number is the median over ``--repeats``. A measurement that
runs past ``--limit`` seconds is stopped there and counts as the limit (shown
``>``), so that the slow variant cannot hold the benchmark for minutes.

The cases (``work``: multiply-adds of one training step's forward pass, all
models of a group together, the number ``fit_threads`` is given):

- ``bc``: the reported slow fit, breast cancer (569 rows), 3 hidden layers x 196, 15 epochs;
- ``digits``: digits (1797 rows), 1 x 100, 20 epochs;
- ``readme``: the README's ten lines: scikit-learn's GridSearchCV, 4 candidates x 3 folds
  and the refit, 30 epochs each (13 fits, one after the other);
- ``tune``: ``examples/tune_digits.py``: sknet's GridSearchCV (the engine), 8 candidates x 3 folds;
- ``grid``: sknet's GridSearchCV, lr {1e-3, 3e-3, 1e-2, 3e-2} x units {32, 64, 128, 256}, 5 folds,
  20 epochs, on digits: 80 models in one engine group;
- ``engine32`` / ``engine256``: ``sknet.engine.train_batched``, 20 models (4 lrs x 5 folds) of one
  width, 20 epochs;
- ``wide256`` ... ``wide2048``: one fit of 2 hidden layers x w on random data (1280 x 64,
  10 classes, batch 128, 3 epochs: 30 steps), the sizes where threads may pay.

The "bg" column is the CPU the rest of the machine used during the measurements
(cores, median): other users' work, besides this benchmark and its load process.

A probe first answers three questions about switching: how long
``torch.set_num_threads`` takes, whether the first operation after a switch
already runs at the new count, and what threadpoolctl's limit does to torch.

How to run
----------
From the repository root::

    python benchmarks/bench_threads.py                       # all cases, 3 repeats
    python benchmarks/bench_threads.py --cases bc,digits --repeats 5 --limit 60
    python benchmarks/bench_threads.py --load matmul --json threads.json
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController, threadpool_limits

from sknet import MLPClassifier, parallel
from sknet.engine import train_batched
from sknet.model_selection import GridSearchCV

LOADS = {
    "spin": "while True: pass",
    "matmul": "import numpy as np\na = np.random.rand(512, 512)\nwhile True: a @ a",
}
SETTLE_SECONDS = 0.3  # let the previous variant's OpenMP threads stop spinning
CONTROLLER = ThreadpoolController()  # built once: building one scans the loaded libraries


class _TimeLimit(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` (error_score) eats it."""


def _alarm(signum, frame):
    raise _TimeLimit


# ---------------------------------------------------------------- the cases


def _forward_work(widths, rows, n_models=1):
    """Multiply-adds of one step's forward pass (what fit_threads is given)."""
    return n_models * rows * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=False))


def _clf(**params):
    return MLPClassifier(random_state=0, device="cpu", **params)


def _fit_case(X, y, **params):
    est = _clf(**params)
    rows = min(est.batch_size, len(X))
    widths = [X.shape[1], *est.set_params()._hidden_sizes(), len(np.unique(y))]
    return (lambda: _clf(**params).fit(X, y)), _forward_work(widths, rows)


def _readme_case(X, y):
    pipe = make_pipeline(StandardScaler(), _clf(max_epochs=30))
    grid = {"mlpclassifier__lr": [1e-3, 1e-2], "mlpclassifier__n_layers": [1, 2]}
    return (lambda: SklearnGridSearchCV(pipe, grid, cv=3).fit(X, y)), _forward_work([64, 100, 100, 10], 128)


def _tune_case(X, y):
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    pipe = make_pipeline(StandardScaler(), _clf(max_epochs=30))
    grid = {"mlpclassifier__lr": [1e-3, 1e-2], "mlpclassifier__n_units": [32, 128],
            "mlpclassifier__n_layers": [1, 2]}
    work = _forward_work([64, 128, 128, 10], 128, 6) + _forward_work([64, 32, 32, 10], 128, 6)
    return (lambda: GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X_train, y_train)), work


def _grid_case(X, y):
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "n_units": [32, 64, 128, 256]}
    work = sum(_forward_work([64, w, 10], 128, 20) for w in grid["n_units"])
    return (lambda: GridSearchCV(_clf(max_epochs=20), grid, cv=5).fit(X, y)), work


def _engine_case(X, y, width):
    folds = [train for train, _ in StratifiedKFold(5).split(X, y)]
    jobs = [({"lr": lr}, train) for lr in (1e-3, 3e-3, 1e-2, 3e-2) for train in folds]
    base = _clf(max_epochs=20, n_units=width)
    return (lambda: train_batched(base, jobs, X, y)), _forward_work([64, width, 10], 128, len(jobs))


def cases():
    """``{name: (function to time, forward multiply-adds per step)}``."""
    X_bc, y_bc = load_breast_cancer(return_X_y=True)
    X_bc = StandardScaler().fit_transform(X_bc)
    X, y = load_digits(return_X_y=True)
    X_scaled = StandardScaler().fit_transform(X)
    rng = np.random.RandomState(0)
    X_wide, y_wide = rng.randn(1280, 64).astype(np.float32), rng.randint(0, 10, 1280)
    found = {
        "bc": _fit_case(X_bc, y_bc, n_layers=3, n_units=196, max_epochs=15),
        "digits": _fit_case(X_scaled, y, n_layers=1, n_units=100, max_epochs=20),
        "readme": _readme_case(X, y),
        "tune": _tune_case(X, y),
        "grid": _grid_case(X_scaled, y),
        "engine32": _engine_case(X_scaled, y, 32),
        "engine256": _engine_case(X_scaled, y, 256),
    }
    for width in (256, 512, 1024, 2048):
        found[f"wide{width}"] = _fit_case(X_wide, y_wide, n_layers=2, n_units=width, max_epochs=3)
    return found


# ---------------------------------------------------------------- the variants


def variants(all_threads, names=None):
    """``{name: function(work) returning a context manager}``, those of ``names`` (default: all)."""
    found = {
        "1": lambda work: parallel.torch_threads(1),
        "all": lambda work: parallel.torch_threads(all_threads),
        "tpc1": lambda work: CONTROLLER.limit(limits=1, user_api="openmp"),
    }
    if hasattr(parallel, "fit_threads"):
        found["sknet"] = parallel.fit_threads
    return {name: way for name, way in found.items() if names is None or name in names}


# ---------------------------------------------------------------- load and CPU accounting


@contextmanager
def competing_load(kind):
    """One busy process (one thread) for the duration of the block; yields its pid, or None."""
    if kind is None:
        yield None
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", LOADS[kind]], env=env)
    time.sleep(0.5)  # running before the first measurement
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _busy_ticks():
    with open("/proc/stat") as f:
        user, nice, system, _, _, irq, softirq, steal = map(int, f.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal


def _process_ticks(pid):
    if pid is None:
        return 0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def measure(function, context, pid, limit):
    """Seconds ``function`` takes inside ``context`` (``limit`` if stopped), whether it was stopped,
    the cores the rest of the machine used meanwhile, and torch's thread count within ``context``."""
    time.sleep(SETTLE_SECONDS)
    tick = os.sysconf("SC_CLK_TCK")
    busy, load, own = _busy_ticks(), _process_ticks(pid), sum(os.times()[:2])
    start = time.perf_counter()
    stopped = False
    signal.setitimer(signal.ITIMER_REAL, limit)
    threads = None
    try:
        with context:
            threads = torch.get_num_threads()
            function()
    except _TimeLimit:
        stopped = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    others = (_busy_ticks() - busy - (_process_ticks(pid) - load)) / tick - (sum(os.times()[:2]) - own)
    return (limit if stopped else seconds), stopped, max(others, 0.0) / seconds, threads


# ---------------------------------------------------------------- the switching probe


def _matmul_ms(a, times=1):
    start = time.perf_counter()
    for _ in range(times):
        a @ a
    return 1e3 * (time.perf_counter() - start) / times


def probe(all_threads):
    """What switching costs and when it takes effect; returns printable lines."""
    lines = []
    start = time.perf_counter()
    for _ in range(1000):
        torch.set_num_threads(1)
        torch.set_num_threads(all_threads)
    pair_us = (time.perf_counter() - start) * 1e3  # 1000 pairs: ms in all, µs each
    lines.append(f"torch.set_num_threads(1) then ({all_threads}): {pair_us:.2f} µs a pair")
    a = torch.randn(1024, 1024)
    _matmul_ms(a, 10)
    steady_all = _matmul_ms(a, 10)
    tasks_before = len(os.listdir("/proc/self/task"))
    with parallel.torch_threads(1):
        first_one, steady_one = _matmul_ms(a), _matmul_ms(a, 10)
        tasks_one = len(os.listdir("/proc/self/task"))
    first_back = _matmul_ms(a)
    lines.append(f"1024² matmul, ms: {all_threads} threads {steady_all:.2f}; "
                 f"first after set(1) {first_one:.2f}, then {steady_one:.2f}; "
                 f"first after set({all_threads}) {first_back:.2f}")
    lines.append(f"OS threads of this process: {tasks_before} at {all_threads}, {tasks_one} at 1 "
                 "(the OpenMP pool stays, idle)")
    start = time.perf_counter()
    with CONTROLLER.limit(limits=1, user_api="openmp"):
        enter = time.perf_counter() - start
        inside, ms = torch.get_num_threads(), _matmul_ms(a, 10)
    lines.append(f"threadpoolctl limit(1, openmp): {enter * 1e3:.2f} ms to enter (prebuilt controller); "
                 f"torch.get_num_threads() inside {inside}; matmul {ms:.2f} ms")
    start = time.perf_counter()
    with threadpool_limits(1, user_api="openmp"):
        pass
    enter = time.perf_counter() - start
    lines.append(f"threadpool_limits(1) with a new controller each time: {enter * 1e3:.1f} ms")
    return lines


# ---------------------------------------------------------------- the run


def run(names, ways, repeats, limit, load_kind):
    found = cases()
    results = {}
    for name in names:
        function, work = found[name]
        with parallel.torch_threads(1):
            function()  # warm-up: imports, first calls
        rows = {(load, v): [] for load in ("idle", "load") for v in ways}
        for r in range(repeats):
            order = list(ways)[r % len(ways):] + list(ways)[:r % len(ways)]
            for load in (("idle", "load") if r % 2 == 0 else ("load", "idle")):
                with competing_load(load_kind if load == "load" else None) as pid:
                    for v in order:
                        rows[load, v].append(measure(function, ways[v](work), pid, limit))
        results[name] = {"work": work, "rows": {f"{load}/{v}": m for (load, v), m in rows.items()}}
        print(_lines(name, work, rows, ways), flush=True)
    return results


def _cell(measurements, chosen):
    """Median seconds (">" when most runs hit the limit); for a chosen count, the counts in brackets."""
    seconds = statistics.median(m[0] for m in measurements)
    cell = (">" if sum(m[1] for m in measurements) * 2 > len(measurements) else "") + f"{seconds:.3g}"
    return cell + (f" ({'/'.join(str(n) for n in sorted({m[3] for m in measurements}))})" if chosen else "")


def _lines(name, work, rows, ways):
    out = []
    for load in ("idle", "load"):
        one = statistics.median(m[0] for m in rows[load, "1"])
        cells = [_cell(rows[load, v], v == "sknet") for v in ways]
        ratios = [f"{statistics.median(m[0] for m in rows[load, v]) / one:.2f}" for v in ways if v != "1"]
        bg = statistics.median(m[2] for v in ways for m in rows[load, v])
        out.append(f"| {name} | {work:.3g} | {load} | " + " | ".join(cells + ratios) + f" | {bg:.2f} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=float, default=30.0, help="seconds after which a measurement stops")
    parser.add_argument("--variants", default=None, help="of 1, all, tpc1, sknet (default: all)")
    parser.add_argument("--load", choices=sorted(LOADS), default="spin")
    parser.add_argument("--no-probe", action="store_true")
    parser.add_argument("--json", default=None, help="write the raw measurements here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    signal.signal(signal.SIGALRM, _alarm)
    all_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {all_threads}, CPU cores {os.cpu_count()}, "
          f"affinity {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.2f}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    if not args.no_probe:
        print("\n".join(probe(all_threads)))
    names = args.cases.split(",") if args.cases else list(cases())
    ways = variants(all_threads, args.variants.split(",") if args.variants else None)
    print(f"\nmedian seconds of {args.repeats}, load: {args.load}, limit {args.limit:g} s\n")
    print("| case | work | machine | " + " | ".join(f"{v} s" for v in ways)
          + " | " + " | ".join(f"{v} / 1" for v in ways if v != "1") + " | bg cores |")
    print("| --- " * (3 + 2 * len(ways)) + "|")
    results = run(names, ways, args.repeats, args.limit, args.load)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
