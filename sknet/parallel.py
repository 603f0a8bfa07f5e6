"""Devices and threads for search workers.

joblib's default ``loky`` backend already caps each worker's OpenMP threads at
``cpu_count // n_jobs`` through ``OMP_NUM_THREADS``, which torch reads when it
starts in the worker, so parallel fits do not oversubscribe the cores. What
joblib cannot know is which GPU a worker should use: ``auto_device`` spreads
workers over the visible GPUs round-robin by their process number, except in
a Dask worker, whose GPU is the first visible one (dask-cuda's convention).
"""

import multiprocessing
import sys

import torch


def auto_device():
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
