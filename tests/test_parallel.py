import os

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from sknet import parallel
from sknet.model_selection import GridSearchCV


class _Process:
    def __init__(self, identity):
        self._identity = identity


def test_auto_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert parallel.auto_device() == "cpu"


def test_auto_device_spreads_workers_over_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    devices = []
    for identity in [(), (1,), (2,), (3,), (4,)]:
        monkeypatch.setattr(parallel.multiprocessing, "current_process", lambda i=identity: _Process(i))
        devices.append(parallel.auto_device())
    assert devices == ["cuda", "cuda:0", "cuda:1", "cuda:0", "cuda:1"]


def test_auto_device_in_a_dask_worker_is_its_own_gpu(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(parallel.multiprocessing, "current_process", lambda: _Process((3,)))
    assert parallel.auto_device() == "cuda:2"  # outside a Dask worker: round-robin
    monkeypatch.setattr(distributed, "get_worker", lambda: object())
    assert parallel.auto_device() == "cuda"  # dask-cuda lists the worker's GPU first


class TorchThreads(ClassifierMixin, BaseEstimator):
    """Scores the number of torch threads the fitting process uses."""

    def __init__(self, dummy=0):
        self.dummy = dummy

    def fit(self, X, y):
        self.threads_ = torch.get_num_threads()
        self.classes_ = np.unique(y)
        return self

    def score(self, X, y):
        return self.threads_


def test_parallel_workers_do_not_oversubscribe_cores():
    X, y = np.random.RandomState(0).rand(20, 2), np.r_[[0] * 10, [1] * 10]
    search = GridSearchCV(TorchThreads(), {"dummy": [0, 1, 2, 3]}, cv=2, n_jobs=2, refit=False).fit(X, y)
    threads = search.cv_results_["mean_test_score"]
    assert threads.max() * 2 <= max(2, os.cpu_count())
