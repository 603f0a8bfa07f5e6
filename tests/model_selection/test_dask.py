"""Every search runs on a dask.distributed cluster through joblib's "dask" backend.

The cluster is a LocalCluster of two worker processes on the loopback interface,
started by the tests; its results must equal a local run's.
"""

import re

import numpy as np
import pytest
import torch
from joblib import parallel_backend
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier
from sknet.model_selection import (
    BayesSearchCV,
    GeneticSearchCV,
    GridSearchCV,
    PopulationSearchCV,
    RandomizedSearchCV,
)

distributed = pytest.importorskip("distributed")

NET = dict(max_epochs=4, random_state=0, device="cpu")
SPACE = {"lr": (1e-3, 1e-1, "log-uniform"), "n_units": [8, 16]}
SEARCHES = {
    "grid": lambda net, **kw: GridSearchCV(net, {"lr": [1e-3, 1e-2], "n_units": [8, 16]}, cv=2, **kw),
    "random": lambda net, **kw: RandomizedSearchCV(net, SPACE, n_iter=4, cv=2, random_state=0, **kw),
    "bayes": lambda net, **kw: BayesSearchCV(net, SPACE, n_iter=4, n_points=2, cv=2, random_state=0, **kw),
    "genetic": lambda net, **kw: GeneticSearchCV(net, SPACE, population_size=4, generations=2, cv=2,
                                                 random_state=0, **kw),
    "population": lambda net, **kw: PopulationSearchCV(net, SPACE, population_size=4, perturbation_interval=2,
                                                       cv=2, random_state=0, **kw),
}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 6))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    return StandardScaler().fit_transform(X), y


def _run_on_cluster(client, make, X, y):
    with distributed.get_task_stream(client) as stream, parallel_backend("dask"):
        search = make().fit(X, y)
    return search, stream.data


@pytest.mark.parametrize("engine", ["auto", "sequential"])
@pytest.mark.parametrize("name", list(SEARCHES))
def test_search_on_a_dask_cluster_equals_a_local_run(client, data, name, engine):
    X, y = data
    make = lambda: SEARCHES[name](MLPClassifier(**NET), engine=engine)  # noqa: E731
    local = make().fit(X, y)
    remote, tasks = _run_on_cluster(client, make, X, y)
    assert tasks, "nothing ran on the cluster"
    assert remote.cv_results_["params"] == local.cv_results_["params"]
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"],
                               atol=1e-6)
    assert remote.best_params_ == local.best_params_
    if engine == "auto":
        assert remote.n_batched_fits_ == local.n_batched_fits_ > 0


def _calls(tasks, function):
    """How many calls of ``function`` the cluster ran (joblib names tasks batch_of_<f>_<n>_calls)."""
    found = (re.search(rf"batch_of_{function}_(\d+)_calls", str(task["key"])) for task in tasks)
    return sum(int(match.group(1)) for match in found if match)


def test_batched_groups_are_tasks_on_the_cluster(client, data):
    X, y = data
    # Two depths: two groups, each one task that trains all its (candidate, fold) jobs.
    grid = {"lr": [1e-3, 1e-2], "n_layers": [1, 2]}
    search, tasks = _run_on_cluster(client, lambda: GridSearchCV(MLPClassifier(**NET), grid, cv=2), X, y)
    assert search.n_batched_fits_ == 8
    assert _calls(tasks, "train_and_score") == 2 and _calls(tasks, "fit_and_score") == 0


def test_fits_the_engine_cannot_batch_are_tasks_on_the_cluster_too(client, data):
    X, y = data
    net = MLPClassifier(optimizer=torch.optim.NAdam, **NET)  # not one of the engine's optimizers
    grid = {"lr": [1e-3, 1e-2], "n_units": [8, 16]}
    search, tasks = _run_on_cluster(client, lambda: GridSearchCV(net, grid, cv=2), X, y)
    assert search.n_batched_fits_ == 0 and _calls(tasks, "fit_and_score") == 8
    local = GridSearchCV(net, grid, cv=2, engine="sequential").fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"],
                               atol=1e-6)
