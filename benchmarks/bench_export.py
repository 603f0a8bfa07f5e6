"""Benchmark serving a tuned pipeline through ONNX (onnxruntime) against its own ``predict_proba``.

What is measured
----------------
Three fitted pipelines on a 20,000-row task (``make_classification(20000, 40,
n_informative=20, n_classes=5)``), each trained for a few epochs (the weights do not
change the timings):

1. ``StandardScaler`` then ``sknet.MLPClassifier`` (two hidden layers of 128 units, float32);
2. a pandas DataFrame of 38 numeric columns (some missing) and 2 string columns through a
   ``ColumnTransformer`` (``SimpleImputer`` + ``StandardScaler``, ``OneHotEncoder``), then
   the same net;
3. the peer: ``StandardScaler`` then scikit-learn's own ``MLPClassifier`` of the same
   layers, converted by skl2onnx alone.

For each, in one run, side by side:

- the export time (``sknet.export.to_onnx``; ``skl2onnx.to_onnx`` for the peer);
- the latency of one row: the median of ``--calls`` calls of the pipeline's
  ``predict_proba`` on one row, and of ``InferenceSession.run`` on the same row (its
  inputs built beforehand, as a server holds them), in alternating blocks of 50 calls after
  20 warm-up calls of each;
- the throughput on 10,000 rows: the median of ``--repeats`` calls of each on all of them;
- the largest difference between the two's probabilities on those rows.

How to run
----------
From the repository root, with the ``onnx`` extra installed::

    python benchmarks/bench_export.py                  # defaults: 500 calls, 5 repeats
    python benchmarks/bench_export.py --calls 2000 --threads 1
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
import torch
from skl2onnx import to_onnx as skl2onnx_to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sknet import MLPClassifier
from sknet.export import onnx_inputs, to_onnx

ROWS_SCORED = 10_000


def task(seed=0):
    X, y = make_classification(n_samples=20_000, n_features=40, n_informative=20, n_classes=5,
                               random_state=seed)
    return X.astype(np.float32), y


def frame_of(X, seed=0):
    """The same rows as a DataFrame: 38 numeric columns with missing values, and 2 string columns."""
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame(X[:, :38], columns=[f"x{i}" for i in range(38)])
    frame = frame.mask(rng.rand(*frame.shape) < 0.02)
    for i in (38, 39):
        frame[f"c{i}"] = np.where(X[:, i] > 0, "high", np.where(X[:, i] > -1, "mid", "low"))
    return frame


def models(X, y, frame, epochs):
    net = dict(n_layers=2, n_units=128, max_epochs=epochs, random_state=0, device="cpu")
    numeric = [f"x{i}" for i in range(38)]
    prepare = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), ["c38", "c39"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        peer = make_pipeline(StandardScaler(), SklearnMLPClassifier((128, 128), max_iter=epochs,
                                                                    random_state=0)).fit(X, y)
    return [
        ("sknet MLP, scaled", make_pipeline(StandardScaler(), MLPClassifier(**net)).fit(X, y), X, to_onnx),
        ("sknet MLP, DataFrame + ColumnTransformer",
         make_pipeline(prepare, MLPClassifier(**net)).fit(frame, y), frame, to_onnx),
        ("scikit-learn MLP (skl2onnx)", peer, X, lambda model, sample: skl2onnx_to_onnx(
            model, sample, options={"zipmap": False})),
    ]


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(name, model, X, export, calls, repeats):
    start = time.perf_counter()
    graph = export(model, X[:5])
    export_seconds = time.perf_counter() - start
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    probabilities = [out.name for out in session.get_outputs()].index("probabilities")
    rows = [X[i:i + 1] for i in range(calls)]
    feeds = [onnx_inputs(session, row) for row in rows]
    for _ in range(20):  # first calls: onnxruntime's thread pool, torch's kernels and caches
        model.predict_proba(rows[0])
        session.run(None, feeds[0])
    python_row, onnx_row = [], []
    # Blocks of 50 calls of each in turn, so that noise hits both alike. Not call by call: a call
    # that follows 0.5 ms of other work finds onnxruntime's threads asleep, as a busy server would not.
    for block in range(0, calls, 50):
        python_row += [timed(lambda row=row: model.predict_proba(row)) for row in rows[block:block + 50]]
        onnx_row += [timed(lambda feed=feed: session.run(None, feed)) for feed in feeds[block:block + 50]]
    block, feed = X[:ROWS_SCORED], onnx_inputs(session, X[:ROWS_SCORED])
    python_block = [timed(lambda: model.predict_proba(block)) for _ in range(repeats)]
    onnx_block = [timed(lambda: session.run(None, feed)) for _ in range(repeats)]
    difference = np.abs(session.run(None, feed)[probabilities] - model.predict_proba(block)).max()
    return dict(name=name, export=export_seconds, python_row=statistics.median(python_row),
                onnx_row=statistics.median(onnx_row), python_block=statistics.median(python_block),
                onnx_block=statistics.median(onnx_block), difference=difference)


def report(results, threads):
    print(f"\nONNX (onnxruntime, CPU provider) against the pipeline's own predict_proba; torch threads "
          f"{threads}, onnxruntime's default threads")
    header = (f"{'pipeline':42s} {'export s':>8s} {'1 row: py':>10s} {'onnx':>8s} {'ratio':>6s} "
              f"{'10k rows/s: py':>15s} {'onnx':>10s} {'ratio':>6s} {'max |dp|':>9s}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['name']:42s} {r['export']:8.2f} {r['python_row'] * 1e6:8.0f}us "
              f"{r['onnx_row'] * 1e6:6.0f}us "
              f"{r['python_row'] / r['onnx_row']:5.1f}x {ROWS_SCORED / r['python_block']:15,.0f} "
              f"{ROWS_SCORED / r['onnx_block']:10,.0f} {r['python_block'] / r['onnx_block']:5.1f}x "
              f"{r['difference']:9.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="single-row calls of each (default 500)")
    parser.add_argument("--repeats", type=int, default=5, help="10,000-row calls of each (default 5)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the nets (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = task()
    frame = frame_of(X)
    results = []
    for name, model, data, export in models(X, y, frame, args.epochs):
        results.append(measure(name, model, data, export, args.calls, args.repeats))
        print(f"measured {name}", flush=True)
    report(results, torch.get_num_threads())


if __name__ == "__main__":
    main()
