"""What sknet's safety checks cost a search, measured in one run.

Two checks run in every search of an sknet net:

- the output check of each fit (``BaseTorchNet._check_outputs``): one forward pass of the
  module on two training rows before training, so that a module returning outputs of the
  wrong shape is refused instead of trained on a broadcast loss;
- with ``checkpoint=``, the search's identity (``SearchMixin._identity``), which for a search
  over a ``module`` parameter includes a digest of the module class's code.

Each is timed inside the search (its calls summed), beside the search's own wall time, on
bench_search's grid (4 lr x 4 widths, 5-fold CV, digits, batched engine), as
``sknet.MLPClassifier`` (whose own module is checked by its output layer's width, without a
forward pass) and as ``TorchClassifier`` over bench_search's ``SkorchMLP``, a module of the
user's kind (checked by a forward pass; with a checkpoint, its code is digested). The share is
the checks' time over the search's.

How to run, from the repository root::

    python benchmarks/bench_checks.py --epochs 20
"""

import argparse
import os
import tempfile
import time

from bench_search import LRS, UNITS, SkorchMLP, load_data

from sknet import MLPClassifier, TorchClassifier
from sknet import model_selection as ms
from sknet.model_selection import _search
from sknet.model_selection._search import SearchMixin
from sknet.nets._base import BaseTorchNet


class Timed:
    """Within the block, every call of ``cls.name`` is timed: ``seconds`` summed, ``calls`` counted."""

    def __init__(self, cls, name):
        self.cls, self.name, self.seconds, self.calls = cls, name, 0.0, 0

    def __enter__(self):
        original = self.original = getattr(self.cls, self.name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        setattr(self.cls, self.name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.cls, self.name, self.original)


def searches(epochs, folder):
    mlp = MLPClassifier(max_epochs=epochs, random_state=0, device="cpu")
    module = TorchClassifier(SkorchMLP, max_epochs=epochs, random_state=0, device="cpu")
    mlp_grid = {"lr": LRS, "n_units": UNITS}
    module_grid = {"lr": LRS, "module__n_units": UNITS}
    return {
        "MLPClassifier": lambda: ms.GridSearchCV(mlp, mlp_grid, cv=5),
        "MLPClassifier, checkpoint": lambda: ms.GridSearchCV(
            mlp, mlp_grid, cv=5, checkpoint=os.path.join(folder, "mlp.db")),
        "TorchClassifier(SkorchMLP)": lambda: ms.GridSearchCV(module, module_grid, cv=5),
        "TorchClassifier(SkorchMLP), checkpoint": lambda: ms.GridSearchCV(
            module, module_grid, cv=5, checkpoint=os.path.join(folder, "module.db")),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    X, y = load_data()
    print(f"bench_search's grid: {len(LRS)} lr x {len(UNITS)} widths, 5-fold CV, {args.epochs} epochs, "
          f"digits {X.shape}, batched engine, {os.cpu_count()} CPU cores")
    print(f"{'search':<40}{'seconds':>9}{'output checks':>22}{'share':>8}{'identity':>10}{'share':>8}"
          f"{'code digest':>13}{'share':>8}")
    with tempfile.TemporaryDirectory() as folder:
        os.mkdir(os.path.join(folder, "warm-up"))
        for make in searches(1, os.path.join(folder, "warm-up")).values():  # untimed: one-time costs
            make().fit(X[:300], y[:300])
        for name, make in searches(args.epochs, folder).items():
            search = make()
            checks, identity = Timed(BaseTorchNet, "_check_outputs"), Timed(SearchMixin, "_identity")
            code = Timed(_search, "code_digest")  # within the identity
            with checks, identity, code:
                start = time.perf_counter()
                search.fit(X, y)
                seconds = time.perf_counter() - start
            shares = [timer.seconds / seconds for timer in (checks, identity, code)]
            print(f"{name:<40}{seconds:>9.2f}{checks.seconds:>11.4f} s ({checks.calls:>3} fits)"
                  f"{shares[0]:>8.2%}{identity.seconds:>9.4f}s{shares[1]:>8.2%}"
                  f"{code.seconds:>12.4f}s{shares[2]:>8.2%}")


if __name__ == "__main__":
    main()
