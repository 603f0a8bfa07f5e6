"""Devices and threads for fits and search workers.

joblib's default ``loky`` backend already caps each worker's OpenMP threads at
``cpu_count // n_jobs`` through ``OMP_NUM_THREADS``, which torch reads when it
starts in the worker, so parallel fits do not oversubscribe the cores. What
joblib cannot know is which GPU a worker should use: ``auto_device`` spreads
workers over the visible GPUs round-robin by their process number, except in
a Dask worker, whose GPU is the first visible one (dask-cuda's convention).

Within a process, :func:`fit_threads` sets torch's thread count for one fit (or
one engine group) from the work of its training steps and the load of the
machine, and restores it after: a small net trains on one thread, which on a
busy machine is 3 to 40 times faster than torch's default of all cores (its
OpenMP threads wait for each other at every small operation), and a large one
on as many cores as are free (docs/threads.md has the measurements).
:func:`flush_denormals` flushes the CPU's denormal numbers to zero for a block (the
engine's groups), where they would slow long float32 trainings down many times.
"""

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch


def resolve_device(device: str) -> str:
    """Turn the ``device`` argument into a concrete torch device string."""
    if device == "auto":
        return auto_device()
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"The 'device' parameter must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Got {device!r} instead."
        )
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'.")
    return str(parsed)


def auto_device() -> str:
    """The device ``device="auto"`` means in the current process.

    The CPU without CUDA; ``"cuda"`` (the current GPU) in the main process and
    in a Dask worker (dask-cuda lists each worker's own GPU first in its
    ``CUDA_VISIBLE_DEVICES``); ``"cuda:k"`` in the k-th child process of a
    joblib pool, modulo the number of GPUs, so that the workers of a search
    share the GPUs evenly (several may share one).
    """
    if not torch.cuda.is_available():
        return "cpu"
    if _in_dask_worker():
        return "cuda"
    identity = multiprocessing.current_process()._identity  # (k,) in the k-th worker
    if not identity:
        return "cuda"
    return f"cuda:{(identity[-1] - 1) % torch.cuda.device_count()}"


def _in_dask_worker():
    distributed = sys.modules.get("distributed")  # never imported here: only loaded if in use
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


# Forward multiply-adds per training step that each thread must have before more than one
# pays. Single small nets gained nothing from a second thread on a quiet 2-core machine and lost
# 3 to 40 times on a busy one; a batched group of 4.5e7 (the SGD benchmark grid) trained 25 %
# faster on two threads of a quiet machine (docs/threads.md). The README's nets (about 2e6) and
# the (1.1e7) stay on one thread whatever the load.
WORK_PER_THREAD = 2**23
# Set to "0" to leave torch's thread count alone in every fit (inherited by worker processes).
AUTO_THREADS_ENV = "SKNET_AUTO_THREADS"
_SAMPLES, _SAMPLE_GAP = 3, 1e-3  # snapshots of the run queue (seconds apart)


def step_work(n_features: int, hidden_sizes: Sequence[int], n_outputs: int, batch_rows: int) -> int:
    """Multiply-adds of the forward pass of one training step of one MLP.

    Parameters
    ----------
    n_features : int
        Input width.
    hidden_sizes : sequence of int
        Widths of the hidden layers.
    n_outputs : int
        Output width (the number of classes of a classifier).
    batch_rows : int
        Rows of a training batch: ``min(batch_size, n_train_rows)``.

    Returns
    -------
    work : int
        ``batch_rows`` times the number of weights; the backward pass is about twice as much.

    Examples
    --------
    >>> step_work(64, (100,), 10, 128)
    947200
    """
    widths = [n_features, *hidden_sizes, n_outputs]
    return batch_rows * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=False))


def forward_work(module: torch.nn.Module, rows: torch.Tensor | Mapping[str, torch.Tensor]) -> float:
    """Multiply-adds of a forward pass of any ``module``, per row of ``rows``.

    Counted by torch's ``FlopCounterMode`` (matrix products and convolutions, which
    dominate), in evaluation mode and without gradients, so that nothing is drawn
    at random and no statistic moves. Where the count fails, one multiply-add per
    parameter stands in (exact for linear layers; a convolution reuses its weights
    at every position, which only counting sees).

    Parameters
    ----------
    module : torch.nn.Module
        An initialised module.
    rows : torch.Tensor of shape (n, ...) or dict of them
        A few input rows, as the module takes them; a dict is passed to
        ``forward`` as keyword arguments (a module of several inputs).

    Returns
    -------
    work : float

    Examples
    --------
    >>> import torch
    >>> forward_work(torch.nn.Linear(64, 10), torch.zeros(2, 64))
    640.0
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    try:
        n_rows = _run_under(counter, module, rows)
    except Exception:  # a module that cannot run on these rows alone: its fit will say why
        return float(sum(p.numel() for p in module.parameters()))
    return counter.get_total_flops() / 2 / n_rows


def _run_under(mode, module, rows):
    """Run ``module`` on ``rows`` under the dispatch ``mode`` (a counter), in evaluation mode and
    without gradients (nothing drawn at random, no statistic moved); the number of rows."""
    training = module.training
    module.eval()
    try:
        with torch.no_grad(), mode:
            module(**rows) if isinstance(rows, dict) else module(rows)
    finally:
        module.train(training)
    return len(next(iter(rows.values()))) if isinstance(rows, dict) else len(rows)


def fit_thread_count(work: float) -> int:
    """The torch thread count :func:`fit_threads` would set for training of ``work``.

    One thread per ``WORK_PER_THREAD`` (2**23) of ``work``, and never more than

    - torch's current count (``torch.get_num_threads()``: the user's
      ``torch.set_num_threads``, ``OMP_NUM_THREADS``, or a joblib worker's cap),
    - the CPUs this process may run on (``os.sched_getaffinity``),
    - the CPUs not busy with other processes at this moment (Linux's run queue),
    - one, outside the main thread (see :func:`fit_threads`).

    With ``SKNET_AUTO_THREADS=0`` in the environment: torch's current count.

    Parameters
    ----------
    work : int
        Forward multiply-adds of one training step, all models of an engine
        group together (:func:`step_work`).

    Returns
    -------
    n : int
        At least 1, at most ``torch.get_num_threads()``.

    Examples
    --------
    >>> fit_thread_count(step_work(64, (100,), 10, 128))  # the README's net: one thread
    1
    """
    current = torch.get_num_threads()
    if os.environ.get(AUTO_THREADS_ENV) == "0":
        return current
    wanted = min(current, int(work // WORK_PER_THREAD))
    if wanted <= 1 or threading.current_thread() is not threading.main_thread():
        return 1
    free = _usable_cores() - _busy_elsewhere()
    return max(1, min(wanted, free))


@contextmanager
def fit_threads(work: float, device: str | torch.device = "cpu") -> Iterator[int]:
    """Train within the block on the thread count chosen for ``work``; restore the count after.

    The count is :func:`fit_thread_count`'s: it only ever lowers torch's
    current count, and only on the CPU (``device`` of another type leaves it).

    torch's count belongs to each OS thread (its OpenMP and MKL settings), plus
    a process-wide default that threads take at their first torch operation. A
    fit in the main thread changes the main thread's count. Outside the main
    thread (fits side by side in joblib's threading backend or in Dask's
    threads) a fit runs on one thread: such fits cannot share out the cores
    among themselves, and each one on all of them would make them wait for each
    other. A thread started while another is in its block takes the lowered
    default for life: never more threads than before, at worst fewer.

    Parameters
    ----------
    work : int
        Forward multiply-adds of one training step (:func:`step_work`, summed
        over the models of an engine group).
    device : str or torch.device, default="cpu"
        The device the fit trains on.

    Yields
    ------
    n : int
        The thread count within the block.

    Examples
    --------
    >>> with fit_threads(step_work(64, (100,), 10, 128)) as n:
    ...     n
    1
    """
    if torch.device(device).type != "cpu":
        yield torch.get_num_threads()
        return
    with torch_threads(fit_thread_count(work)) as n:
        yield n


@contextmanager
def flush_denormals(device: str | torch.device = "cpu") -> Iterator[bool]:
    """Run a block with the CPU's denormal numbers flushed to zero, restored after it.

    Adam's moments of a weight whose gradient stays zero (a dead ReLU unit) shrink
    by 0.9 and 0.999 a step and reach float32's denormal range (below 1.2e-38)
    after about 800 steps; x86 CPUs compute with denormals tens of times slower.
    A search on 20000 rows in float32 took 2.4 s an epoch for three epochs, then
    6.2 s and 17.6 s; with denormals flushed, 2.4 s each. Flushing changes no value
    above 1.2e-38 (1e-308 in float64). Where the CPU cannot flush (torch says so),
    the block runs as it is. On other devices nothing changes.

    torch has no way to read the setting: whether it was on is seen from a
    denormal multiplied by one, and that state is restored after the block.

    Parameters
    ----------
    device : str or torch.device, default="cpu"
        The device the block computes on.

    Yields
    ------
    flushing : bool
        Whether denormals are flushed within the block.

    Examples
    --------
    >>> with flush_denormals() as flushing:
    ...     tiny = torch.tensor([1e-39]) * 1.0
    >>> bool(tiny.item() == 0.0) == flushing
    True
    """
    if torch.device(device).type != "cpu":
        yield False
        return
    before = _flushing_denormals()
    flushing = before or torch.set_flush_denormal(True)
    try:
        yield flushing
    finally:
        if not before:
            torch.set_flush_denormal(False)


def _flushing_denormals() -> bool:
    """Whether the CPU flushes denormals now: a denormal times one comes out zero."""
    return bool((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0)


@contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Run a block with torch's intra-op thread count set to ``n``, restored after it.

    The count changes at once (the next operation runs on ``n`` threads) and
    costs well under a microsecond to set; torch's OpenMP threads stay, idle.

    Parameters
    ----------
    n : int or None
        Threads for the block; None leaves the count as it is.

    Yields
    ------
    n : int
        The thread count within the block.

    Examples
    --------
    >>> with torch_threads(1) as n:
    ...     n, torch.get_num_threads()
    (1, 1)
    """
    before = torch.get_num_threads()
    if n is None or n == before:
        yield before
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _busy_elsewhere():
    """Threads of other processes running or waiting for a CPU: the median of a few snapshots.

    Linux's run queue (``/proc/loadavg``) less this process's own running
    threads; 0 where it cannot be read. Snapshots, not the load average, which
    lags by a minute and counts this process's own recent training; their
    median passes over a kernel thread's blip and catches a busy process.
    """
    counts = []
    for i in range(_SAMPLES):
        if i:
            time.sleep(_SAMPLE_GAP)
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(max(running - _own_running(), 0))
    return sorted(counts)[len(counts) // 2]


def _own_running():
    """Threads of this process running or ready to run (the caller among them)."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                count += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
    return max(count, 1)
