"""A short smoke run of sknet on whatever versions of its dependencies are installed.

CI runs it on the lowest versions pyproject.toml declares (``.ci/lower-bounds.txt``):
import, fit, predict, a save/load round trip and one small run of each kind of search.
It prints the versions it ran with and how many of its checks passed, and exits
non-zero if any failed. Its last line is worded unlike a test runner's summary, so
that the main suite's pytest summary stays the one CI reports.
"""

import os
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

CHECKS = []


def check(function):
    """Register ``function`` as a check."""
    CHECKS.append(function)
    return function


def versions():
    """The versions of Python, sknet and its dependencies, and where sknet was imported from."""
    import joblib
    import pandas
    import scipy
    import sklearn
    import skopt
    import skorch
    import torch

    import sknet

    found = {"python": sys.version.split()[0], "sknet": sknet.__version__, "numpy": np.__version__,
             "scipy": scipy.__version__, "scikit-learn": sklearn.__version__, "skorch": skorch.__version__,
             "torch": torch.__version__, "scikit-optimize": skopt.__version__, "joblib": joblib.__version__,
             "pandas": pandas.__version__}
    for name in ("onnx", "onnxruntime", "skl2onnx"):  # the onnx extra, where installed
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = "absent"
    listed = ", ".join(f"{name} {version}" for name, version in found.items())
    return f"{listed}\nsknet from {os.path.dirname(sknet.__file__)}"


def classification():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def regression():
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=120, n_features=5, noise=0.1, random_state=0)
    return X, y / y.std()


@check
def callback_api_where_scikit_learn_has_it():
    import sklearn

    from sknet import MLPClassifier

    has_api = tuple(int(part) for part in sklearn.__version__.split(".")[:2]) >= (1, 9)
    assert hasattr(MLPClassifier(), "set_callbacks") == has_api


@check
def classifier_fit_predict_save_load():
    import sknet

    X, y = classification()
    clf = sknet.MLPClassifier(max_epochs=30, lr=0.01, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.8, clf.score(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    _round_trip(clf, X)


@check
def regressor_fit_predict_save_load():
    import sknet

    X, y = regression()
    reg = sknet.MLPRegressor(max_epochs=50, lr=0.01, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.5, reg.score(X, y)
    _round_trip(reg, X)


@check
def fit_on_a_data_frame():
    import pandas as pd

    import sknet

    X, y = classification()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = sknet.MLPClassifier(max_epochs=5, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))


def _round_trip(estimator, X):
    import sknet

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pt")
        estimator.save(path)
        loaded = sknet.load(path)
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))


@check
def grid_search_batched():
    from sknet import MLPClassifier
    from sknet.model_selection import GridSearchCV

    X, y = classification()
    search = GridSearchCV(MLPClassifier(max_epochs=10, random_state=0),
                          {"lr": [0.003, 0.03], "n_units": [8, 16]}, cv=3).fit(X, y)
    assert search.n_batched_fits_ == 12, search.n_batched_fits_
    assert len(search.cv_results_["params"]) == 4 and search.best_score_ > 0.5
    search.predict(X)


@check
def torch_module_search_batched():
    import torch

    from sknet import TorchClassifier
    from sknet.model_selection import GridSearchCV

    class Conv(torch.nn.Module):  # images (n, 1, 4, 4): a convolution, then a linear layer
        def __init__(self, n_outputs, channels=2):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, channels, 3, padding=1)
            self.head = torch.nn.Linear(channels * 16, n_outputs)

        def forward(self, X):
            return self.head(torch.relu(self.conv(X)).flatten(1))

    X, y = classification()
    images = np.resize(X, (len(X), 16)).reshape(-1, 1, 4, 4).astype(np.float32)
    search = GridSearchCV(TorchClassifier(Conv, max_epochs=5, random_state=0),
                          {"lr": [0.003, 0.03], "module__channels": [2, 3]}, cv=3).fit(images, y)
    assert search.n_batched_fits_ == 12, search.n_batched_fits_
    assert search.predict(images).shape == (len(y),)


@check
def halving_search_batched():
    from sknet import MLPClassifier
    from sknet.model_selection import HalvingGridSearchCV

    X, y = classification()
    search = HalvingGridSearchCV(MLPClassifier(random_state=0), {"lr": [0.003, 0.01, 0.03]},
                                 resource="max_epochs", min_resources=5, max_resources=15, cv=3).fit(X, y)
    assert search.n_candidates_ == [3, 1] and search.n_batched_fits_ == 12, search.n_batched_fits_
    # A deadline passed at once stops it after its first rung (scikit-learn's loop, older or newer).
    timed = HalvingGridSearchCV(MLPClassifier(random_state=0), {"lr": [0.003, 0.01, 0.03]},
                                resource="max_epochs", min_resources=5, max_resources=15, cv=3,
                                max_time=1e-9).fit(X, y)
    assert timed.timed_out_ and timed.n_candidates_ == [3], timed.n_candidates_


@check
def epoch_curves_and_pruning():
    from sknet import MLPClassifier
    from sknet.model_selection import GeneticSearchCV, GridSearchCV

    X, y = classification()
    curves = GridSearchCV(MLPClassifier(random_state=0), {"max_epochs": [2, 4], "lr": [0.003, 0.03]},
                          cv=2, refit=False).fit(X, y)
    assert curves.n_batched_fits_ == 8, curves.n_batched_fits_  # 4 candidates x 2 folds, all batched
    pruned = GeneticSearchCV(MLPClassifier(max_epochs=4, random_state=0), {"lr": (1e-4, 1e-1, "log-uniform")},
                             population_size=4, generations=1, cv=2, random_state=0, prune=[2]).fit(X, y)
    assert set(pruned.cv_results_["epochs_trained"]) <= {2, 4}, pruned.cv_results_["epochs_trained"]


@check
def population_search_batched_and_sequential():
    from sknet import MLPClassifier
    from sknet.model_selection import PopulationSearchCV

    X, y = classification()
    space = {"lr": (1e-2, 1e-1, "log-uniform"), "weight_decay": (1e-5, 1e-2, "log-uniform"),
             "n_units": [8, 16]}
    searches = [PopulationSearchCV(MLPClassifier(max_epochs=6, random_state=0, dtype="float64"), space,
                                   population_size=4, perturbation_interval=2, cv=2, random_state=0,
                                   engine=engine).fit(X, y) for engine in ("batched", "sequential")]
    batched, sequential = searches
    assert len(batched.population_history_) == 3 and batched.best_score_ > 0.5, batched.best_score_
    assert batched.schedules_ == sequential.schedules_
    assert np.array_equal(batched.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"])


@check
def grid_search_sequential():
    from sknet import MLPRegressor
    from sknet.model_selection import GridSearchCV

    X, y = regression()
    search = GridSearchCV(MLPRegressor(max_epochs=10, random_state=0), {"lr": [0.003, 0.03]}, cv=2,
                          engine="sequential").fit(X, y)
    assert not hasattr(search, "n_batched_fits_")
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@check
def randomized_search_with_checkpoint():
    from sknet import MLPClassifier
    from sknet.model_selection import RandomizedSearchCV

    X, y = classification()
    space = {"lr": (1e-3, 1e-1, "log-uniform"), "activation": ["relu", "tanh"]}

    def search():
        return RandomizedSearchCV(MLPClassifier(max_epochs=10, random_state=0), space, n_iter=3, cv=2,
                                  random_state=0, checkpoint=path)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "search.sqlite")
        first, again = search().fit(X, y), search().fit(X, y)
    assert first.n_batched_fits_ == 6, first.n_batched_fits_
    assert again.n_batched_fits_ == 0, again.n_batched_fits_  # every fit came from the checkpoint
    for key in ("params", "mean_test_score", "mean_fit_time"):
        assert list(first.cv_results_[key]) == list(again.cv_results_[key]), key


@check
def bayes_search():
    from sknet import MLPClassifier
    from sknet.model_selection import BayesSearchCV

    X, y = classification()
    search = BayesSearchCV(MLPClassifier(max_epochs=10, random_state=0), {"lr": (1e-3, 1e-1, "log-uniform")},
                           n_iter=4, cv=2, optimizer_kwargs={"n_initial_points": 2}, random_state=0).fit(X, y)
    assert len(search.cv_results_["params"]) == 4 and search.total_iterations == 4
    # rounds of several points: acquisition over samples, a warm-started kernel (skopt's GP internals)
    batched = BayesSearchCV(MLPClassifier(max_epochs=5, random_state=0), {"lr": (1e-3, 1e-1, "log-uniform")},
                            n_iter=6, n_points=2, cv=2, optimizer_kwargs={"n_initial_points": 2},
                            random_state=0).fit(X, y)
    assert len(batched.cv_results_["params"]) == 6 and batched.proposal_time_ > 0


@check
def hyperband_search():
    from sknet import MLPClassifier
    from sknet.model_selection import HyperbandSearchCV

    X, y = classification()
    search = HyperbandSearchCV(MLPClassifier(max_epochs=9, random_state=0),
                               {"lr": (1e-3, 1e-1, "log-uniform")}, cv=2, random_state=0).fit(X, y)
    assert search.bracket_resources_ == [[1, 3, 9], [3, 9], [9]], search.bracket_resources_
    assert search.n_proposed_ > 0 and search.best_params_["max_epochs"] == 9


@check
def onnx_export_of_a_pipeline():
    import onnxruntime as ort
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sknet import MLPClassifier, MLPRegressor
    from sknet.export import onnx_inputs, to_onnx

    def run(model, X):
        session = ort.InferenceSession(to_onnx(model, X[:2]).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return session.run(None, onnx_inputs(session, X))

    X, y = classification()
    for dtype, tolerance in (("float32", 1e-5), ("float64", 1e-9)):
        clf = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=5, dtype=dtype, random_state=0))
        label, proba = run(clf.fit(X, y), X.astype(dtype))
        np.testing.assert_allclose(proba, clf.predict_proba(X.astype(dtype)), rtol=0, atol=tolerance)
        # float32 labels may differ only at ties within rounding: none here, on 150 rows
        np.testing.assert_array_equal(label, clf.predict(X.astype(dtype)))
    X, y = regression()
    reg = TransformedTargetRegressor(MLPRegressor(max_epochs=5, dtype="float64", random_state=0),
                                     transformer=StandardScaler()).fit(X, y * 100)
    (predicted,) = run(reg, X)
    np.testing.assert_allclose(predicted[:, 0], reg.predict(X), rtol=1e-9)


def main():
    """Run every check; exit 1 if any failed."""
    start = time.perf_counter()
    print(versions(), flush=True)
    failed = 0
    for function in CHECKS:
        began = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # warnings are the main suite's business, not this run's
                # but an engine that fails here, and falls back to fitting one by one, is a failure:
                warnings.filterwarnings("error", message="The batched engine failed")
                function()
        except Exception:
            failed += 1
            print(f"FAILED {function.__name__}\n{traceback.format_exc()}", flush=True)
        else:
            print(f"passed {function.__name__} ({time.perf_counter() - began:.1f} s)", flush=True)
    verdict = f"{failed} of {len(CHECKS)} checks FAILED" if failed else f"all {len(CHECKS)} checks passed"
    print(f"smoke run: {verdict} in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
