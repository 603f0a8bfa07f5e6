"""Benchmark the training speed of ``sknet.MLPClassifier`` against three references.

What is measured
----------------
The wall-clock time of ``fit`` for the same small MLP on scikit-learn's digits data
(1797 samples, 64 features scaled to [0, 1], 10 classes), trained on the CPU with:

- one hidden layer of 100 ReLU units,
- Adam with a learning rate of 1e-3,
- mini-batches of 128 shuffled samples,
- ``--epochs`` epochs (default 20), no validation split and no early stopping,

by four implementations:

1. ``sknet.MLPClassifier``;
2. skorch's plain ``NeuralNetClassifier`` with an equivalent torch module;
3. scikit-learn's ``sklearn.neural_network.MLPClassifier`` (numpy, not torch);
4. a hand-written, idiomatic PyTorch training loop, which records ``loss.item()`` per batch
   as the libraries do. It is the floor the libraries' overhead is measured against.

Each implementation is warmed up once with a 1-epoch fit (imports, first-call costs), then
timed ``--repeats`` times. The repeats are interleaved (round 1: all four, round 2: all four,
...) so that machine noise hits them alike, with a short pause before each timed fit so that
one implementation's idle threads do not slow the next. The table reports the median and minimum
seconds, the ratio of each median to the hand-written loop's median, and the training
accuracy of the last fit (a sanity check that all four learn the same problem).

How to run
----------
From the repository root::

    python benchmarks/bench_fit.py                 # defaults: 20 epochs, 5 repeats
    python benchmarks/bench_fit.py --epochs 50 --repeats 9 --threads 1
"""

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from sknet import MLPClassifier

N_UNITS = 100
LR = 1e-3
BATCH_SIZE = 128
SEED = 0
HAND_LOOP = "hand-written loop"
SETTLE_SECONDS = 0.5


def load_data():
    """Digits, X scaled to [0, 1] as float32, y as int64."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


def make_module(n_features, n_classes):
    """Linear -> ReLU -> Linear, returning logits."""
    return nn.Sequential(nn.Linear(n_features, N_UNITS), nn.ReLU(), nn.Linear(N_UNITS, n_classes))


def fit_sknet(X, y, epochs):
    net = MLPClassifier(n_layers=1, n_units=N_UNITS, lr=LR, batch_size=BATCH_SIZE, max_epochs=epochs,
                        random_state=SEED, device="cpu")
    return net.fit(X, y).predict


def fit_skorch(X, y, epochs):
    torch.manual_seed(SEED)
    net = NeuralNetClassifier(
        make_module(X.shape[1], len(np.unique(y))), criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=LR, batch_size=BATCH_SIZE, max_epochs=epochs, train_split=None,
        iterator_train__shuffle=True, device="cpu", verbose=0,
    )
    return net.fit(X, y).predict


def fit_sklearn(X, y, epochs):
    net = SklearnMLPClassifier(
        hidden_layer_sizes=(N_UNITS,), solver="adam", learning_rate_init=LR, batch_size=BATCH_SIZE,
        max_iter=epochs, alpha=0.0, tol=0.0, n_iter_no_change=epochs + 1, shuffle=True, random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net.fit(X, y)
    return net.predict


def fit_hand_loop(X, y, epochs):
    torch.manual_seed(SEED)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model = make_module(Xt.shape[1], int(yt.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    n = len(Xt)
    losses = []
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for start in range(0, n, BATCH_SIZE):
            idx = perm[start:start + BATCH_SIZE]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return lambda X_: predict_hand_loop(model, X_)


def predict_hand_loop(model, X):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(X)).argmax(dim=1).numpy()


IMPLEMENTATIONS = {
    "sknet MLPClassifier": fit_sknet,
    "skorch plain": fit_skorch,
    "sklearn MLPClassifier": fit_sklearn,
    HAND_LOOP: fit_hand_loop,
}


def timed_fit(fit, X, y, epochs):
    """Return (seconds spent in ``fit``, training accuracy of the fitted model)."""
    start = time.perf_counter()
    predict = fit(X, y, epochs)
    seconds = time.perf_counter() - start
    return seconds, float(np.mean(predict(X) == y))


def run_benchmark(X, y, epochs, repeats):
    """Warm up, then time every implementation ``repeats`` times, interleaved."""
    for fit in IMPLEMENTATIONS.values():
        fit(X, y, 1)
    times = {name: [] for name in IMPLEMENTATIONS}
    accuracy = {}
    for _ in range(repeats):
        for name, fit in IMPLEMENTATIONS.items():
            # numpy's BLAS threads keep spinning for a while after scikit-learn's fit and
            # would slow whichever torch fit comes next (seen: the hand loop 0.21 s instead
            # of 0.12 s with 2 threads); let them go idle before each timed fit.
            time.sleep(SETTLE_SECONDS)
            seconds, accuracy[name] = timed_fit(fit, X, y, epochs)
            times[name].append(seconds)
    return times, accuracy


def print_report(times, accuracy, epochs, repeats):
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base = medians[HAND_LOOP]
    print(f"digits MLP fit, {epochs} epochs, {repeats} timed repeats (interleaved), CPU")
    print(f"{'implementation':<24}{'median s':>10}{'min s':>10}{'vs loop':>10}{'train acc':>11}")
    for name, ts in times.items():
        print(f"{name:<24}{medians[name]:>10.3f}{min(ts):>10.3f}{medians[name] / base:>9.2f}x"
              f"{accuracy[name]:>11.4f}")
    sknet = medians["sknet MLPClassifier"]
    print()
    print(f"sknet / hand-written loop: {sknet / base:.2f}x (target <= 1.3x)")
    print(f"sknet / skorch plain: {sknet / medians['skorch plain']:.2f}x (target < 1.0x)")
    print()
    print(f"torch {torch.__version__}, torch threads: {torch.get_num_threads()}, CPU cores: {os.cpu_count()}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per fit (default: 20)")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per implementation (default: 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads value (default: torch's own default)")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    X, y = load_data()
    times, accuracy = run_benchmark(X, y, args.epochs, args.repeats)
    print_report(times, accuracy, args.epochs, args.repeats)


if __name__ == "__main__":
    main()
