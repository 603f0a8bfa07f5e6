"""On a CUDA GPU: the engine, the devices, out of memory and checkpoints (skipped without one).

``benchmarks/gpu_check.sh`` runs these on the device machine (``pytest -m gpu``).
"""

import sqlite3

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed
from sklearn.base import clone

from sknet import MLPClassifier
from sknet.engine import _train, train_batched
from sknet.model_selection import GridSearchCV
from sknet.parallel import auto_device

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

# float64 on the GPU too: batched and sequential fits agree far below a flipped prediction.
NET = dict(n_units=16, max_epochs=5, random_state=0, device="cuda", dtype="float64")
GRID = {"lr": [1e-3, 1e-2, 3e-2], "weight_decay": [0.0, 1e-3]}


def _search(engine, **kwargs):
    return GridSearchCV(MLPClassifier(**NET), GRID, cv=3, engine=engine, **kwargs)


def test_batched_equals_sequential_on_cuda(clf_data):
    X, y = clf_data
    runs = {engine: _search(engine).fit(X, y) for engine in ("sequential", "batched")}
    assert runs["batched"].n_batched_fits_ == 18
    for key in ("mean_test_score", "split0_test_score", "split2_test_score"):
        assert list(runs["batched"].cv_results_[key]) == list(runs["sequential"].cv_results_[key]), key
    assert runs["batched"].best_estimator_.device_ == "cuda"
    np.testing.assert_allclose(runs["batched"].predict_proba(X), runs["sequential"].predict_proba(X),
                               rtol=0, atol=1e-9)


def test_auto_device_spreads_worker_processes_over_the_gpus():
    devices = Parallel(n_jobs=2)(delayed(auto_device)() for _ in range(8))
    n_gpus = torch.cuda.device_count()
    # Each worker its own GPU, round-robin (which worker takes which task is joblib's choice).
    assert devices and set(devices) <= {f"cuda:{k}" for k in range(min(n_gpus, 2))}


def test_a_search_with_auto_devices_and_workers_trains_on_the_gpus(clf_data):
    X, y = clf_data
    search = GridSearchCV(MLPClassifier(**{**NET, "device": "auto"}), GRID, cv=3, n_jobs=2).fit(X, y)
    alone = _search("sequential").fit(X, y)
    assert search.n_batched_fits_ == 18 and search.best_estimator_.device_.startswith("cuda")
    assert list(search.cv_results_["mean_test_score"]) == list(alone.cv_results_["mean_test_score"])


def test_a_group_halves_on_a_real_out_of_memory(clf_data, monkeypatch):
    X, y = clf_data
    X = np.repeat(X, 50, axis=0)  # 10 000 rows
    y = np.repeat(y, 50)
    base = MLPClassifier(hidden_layer_sizes=(1024, 1024), max_epochs=1, batch_size=2048, random_state=0,
                         device="cuda", dtype="float32")
    jobs = [({"lr": 1e-3 * (1 + i)}, np.arange(len(X))) for i in range(16)]
    expected = [clf.predict_proba(X[:100]) for clf in train_batched(base, jobs, X, y)]
    one = _train._estimated_bytes(_train.prepare(base, *jobs[0], X, y), X.shape[1])
    monkeypatch.setattr(_train, "_free_memory", lambda device: float("inf"))  # no split planned
    sizes, init = [], _train.GroupTrainer.__init__
    monkeypatch.setattr(_train.GroupTrainer, "__init__",
                        lambda self, jobs, *rest: sizes.append(len(jobs)) or init(self, jobs, *rest))
    torch.cuda.empty_cache()
    free = torch.cuda.mem_get_info()[0]
    hog = torch.empty(int(free - 6 * one), dtype=torch.uint8, device="cuda")  # room for about 4 models
    try:
        fitted = train_batched(base, jobs, X, y)
    finally:
        del hog
        torch.cuda.empty_cache()
    assert sizes[0] == 16 and len(sizes) > 1 and max(sizes[1:]) < 16  # it ran out, then halved
    for clf, proba in zip(fitted, expected, strict=True):
        np.testing.assert_allclose(clf.predict_proba(X[:100]), proba, rtol=0, atol=1e-4)


def test_a_checkpointed_search_resumes_on_the_gpu(clf_data, tmp_path):
    X, y = clf_data
    path = tmp_path / "search.db"
    whole = _search("batched", checkpoint=path).fit(X, y)
    with sqlite3.connect(path) as conn:  # as if killed after half the fits
        conn.execute("DELETE FROM results WHERE candidate >= 3")
        conn.execute("DELETE FROM state WHERE key = 'finished'")
    resumed = _search("batched", checkpoint=path).fit(X, y)
    assert resumed.n_batched_fits_ == 9
    assert list(resumed.cv_results_["mean_test_score"]) == list(whole.cv_results_["mean_test_score"])


def test_the_dask_recipe_on_a_local_cuda_cluster(clf_data):
    dask_cuda = pytest.importorskip("dask_cuda")
    from dask.distributed import Client
    from joblib import parallel_backend

    X, y = clf_data
    with dask_cuda.LocalCUDACluster() as cluster, Client(cluster), parallel_backend("dask"):
        search = GridSearchCV(MLPClassifier(**{**NET, "device": "auto"}), GRID, cv=3, n_jobs=-1).fit(X, y)
    alone = _search("sequential").fit(X, y)
    assert list(search.cv_results_["mean_test_score"]) == list(alone.cv_results_["mean_test_score"])


def test_continuing_on_the_gpu_equals_restarting(clf_data):
    X, y = clf_data
    base = clone(MLPClassifier(**NET))
    rows = np.arange(150)
    _, states = train_batched(base, [({"max_epochs": 2}, rows)], X, y, keep_states=True)
    [continued] = train_batched(base, [({"max_epochs": 5}, rows)], X, y, starts=states)
    [fresh] = train_batched(base, [({"max_epochs": 5}, rows)], X, y)
    np.testing.assert_allclose(continued.predict_proba(X), fresh.predict_proba(X), rtol=0, atol=1e-9)


def test_a_net_trained_on_the_gpu_exports_to_onnx(clf_data):
    # The module is copied to the CPU to be traced; onnxruntime's CPU provider runs the graph.
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    from sknet.export import onnx_inputs, to_onnx

    X, y = clf_data
    model = MLPClassifier(**NET).fit(X, y)
    session = ort.InferenceSession(to_onnx(model, X[:2]).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    label, proba = session.run(None, onnx_inputs(session, X))
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-9)
    assert model.device_ == "cuda" and next(model.net_.module_.parameters()).is_cuda  # left on the GPU
