import io
import os
import subprocess
import sys
import threading

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


@pytest.fixture
def threads_restored():
    """Torch's thread count as the test found it, whatever the test sets."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def quiet(monkeypatch):
    """A machine of 4 usable cores with nothing else running."""
    monkeypatch.delenv(parallel.AUTO_THREADS_ENV, raising=False)
    monkeypatch.setattr(parallel, "_usable_cores", lambda: 4)
    monkeypatch.setattr(parallel, "_busy_elsewhere", lambda: 0)
    return monkeypatch


def test_torch_threads_sets_the_count_and_restores_it(threads_restored):
    torch.set_num_threads(2)
    with parallel.torch_threads(1) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with parallel.torch_threads(None) as n:
        assert n == torch.get_num_threads() == 2


def test_torch_threads_restores_the_count_after_an_exception(threads_restored):
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="inside"), parallel.torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_step_work_counts_weights_times_rows():
    assert parallel.step_work(30, (196, 196, 196), 2, 128) == 128 * (30 * 196 + 2 * 196 * 196 + 196 * 2)
    assert parallel.step_work(4, (), 3, 10) == 120  # no hidden layer


def test_small_work_trains_on_one_thread(quiet, threads_restored):
    torch.set_num_threads(4)
    assert parallel.fit_thread_count(0) == 1
    assert parallel.fit_thread_count(parallel.step_work(64, (100,), 10, 128)) == 1  # the README's nets
    assert parallel.fit_thread_count(2 * parallel.WORK_PER_THREAD - 1) == 1


def test_large_work_takes_a_thread_per_share_of_the_free_cores(quiet, threads_restored):
    torch.set_num_threads(4)
    work = parallel.WORK_PER_THREAD
    assert parallel.fit_thread_count(2 * work) == 2
    assert parallel.fit_thread_count(100 * work) == 4
    quiet.setattr(parallel, "_busy_elsewhere", lambda: 1)  # another process busy on one core
    assert parallel.fit_thread_count(100 * work) == 3
    quiet.setattr(parallel, "_busy_elsewhere", lambda: 9)
    assert parallel.fit_thread_count(100 * work) == 1
    quiet.setattr(parallel, "_usable_cores", lambda: 2)  # taskset, or a container's cpuset
    quiet.setattr(parallel, "_busy_elsewhere", lambda: 0)
    assert parallel.fit_thread_count(100 * work) == 2


def test_never_more_threads_than_the_user_set(quiet, threads_restored):
    torch.set_num_threads(1)  # the user's torch.set_num_threads, or a joblib worker's cap
    assert parallel.fit_thread_count(100 * parallel.WORK_PER_THREAD) == 1
    with parallel.fit_threads(100 * parallel.WORK_PER_THREAD) as n:
        assert n == torch.get_num_threads() == 1
    torch.set_num_threads(3)
    assert parallel.fit_thread_count(100 * parallel.WORK_PER_THREAD) == 3


def test_omp_num_threads_is_never_raised():
    code = "from sknet import parallel; print(parallel.fit_thread_count(10 ** 12))"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_the_environment_switches_the_choice_off(quiet, threads_restored):
    torch.set_num_threads(2)
    quiet.setenv(parallel.AUTO_THREADS_ENV, "0")
    assert parallel.fit_thread_count(0) == 2
    with parallel.fit_threads(0) as n:
        assert n == torch.get_num_threads() == 2


def test_fit_threads_restores_the_count_after_the_fit_and_its_failure(quiet, threads_restored):
    torch.set_num_threads(2)
    with parallel.fit_threads(0) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(FloatingPointError), parallel.fit_threads(0):
        raise FloatingPointError("diverged")
    assert torch.get_num_threads() == 2


def test_fit_threads_leaves_other_devices_alone(quiet, threads_restored):
    torch.set_num_threads(2)
    with parallel.fit_threads(0, device="cuda:0") as n:
        assert n == torch.get_num_threads() == 2


def test_fits_outside_the_main_thread_take_one_thread_and_leave_the_main_one(quiet, threads_restored):
    torch.set_num_threads(2)
    inside, seen = threading.Event(), {}

    def fit():
        seen["before"] = torch.get_num_threads()
        with parallel.fit_threads(100 * parallel.WORK_PER_THREAD) as n:
            seen["block"] = (n, torch.get_num_threads())
            inside.set()
            seen["main read"] = main_read.wait(5)
        seen["after"] = torch.get_num_threads()

    main_read = threading.Event()
    worker = threading.Thread(target=fit)
    worker.start()
    assert inside.wait(5)
    main_during = torch.get_num_threads()  # torch's count is the calling thread's
    main_read.set()
    worker.join()
    assert seen["block"] == (1, 1)
    assert seen["after"] == seen["before"]
    assert main_during == 2


def test_busy_elsewhere_reads_the_run_queue_less_this_process(monkeypatch):
    monkeypatch.setattr(parallel, "_own_running", lambda: 1)
    loadavg = "1.50 1.20 0.90 3/120 4567"  # 3 running now
    monkeypatch.setattr(parallel, "open", lambda path: io.StringIO(loadavg), raising=False)
    assert parallel._busy_elsewhere() == 2
    monkeypatch.setattr(parallel, "open", lambda path: io.StringIO(""), raising=False)
    assert parallel._busy_elsewhere() == 0  # unreadable: nothing known to be busy


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux only")
def test_own_running_counts_the_caller():
    assert parallel._own_running() >= 1
    assert parallel._busy_elsewhere() >= 0


@pytest.mark.parametrize("on_before", [False, True])
def test_flush_denormals_flushes_within_its_block_and_restores_the_setting_after(on_before):
    from sknet.parallel import _flushing_denormals, flush_denormals

    torch.set_flush_denormal(on_before)
    try:
        with flush_denormals() as flushing:
            if flushing:  # x86 with SSE3, or AArch64: a denormal comes out zero
                assert (torch.tensor([1e-39]) * 1.0).item() == 0.0
        assert _flushing_denormals() == on_before
        with flush_denormals("meta") as flushing:  # other devices: nothing changes
            assert not flushing and _flushing_denormals() == on_before
    finally:
        torch.set_flush_denormal(False)


def test_the_engine_trains_with_denormals_flushed(monkeypatch):
    from sknet import MLPClassifier
    from sknet.engine import _group, train_batched
    from sknet.parallel import _flushing_denormals

    supported = torch.set_flush_denormal(True)  # whether this CPU can flush
    torch.set_flush_denormal(False)
    seen = []
    run = _group.GroupTrainer.run
    monkeypatch.setattr(_group.GroupTrainer, "run",
                        lambda self: seen.append(_flushing_denormals()) or run(self))
    X, y = np.random.RandomState(0).rand(40, 3), np.arange(40) % 2
    train_batched(MLPClassifier(max_epochs=1, device="cpu"), [({}, np.arange(40))], X, y)
    assert seen == [supported] and not _flushing_denormals()
