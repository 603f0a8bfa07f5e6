"""Results trained ahead of time, handed to ``fit`` by a search's batched engine.

A search trains many (candidate, fold) jobs of an sknet net together, then lets
scikit-learn's own cross-validation code run unchanged: when it calls ``fit``
on a job the engine already trained, ``fit`` adopts that result instead of
training again. Jobs are recognised by the estimator's class and parameters
and a fingerprint of the training data, so a miss (anything the engine could
not take) simply trains as usual. The store is empty outside a search's
``serving`` block, and looking up an empty store costs nothing.

A stored entry may also be a :class:`Slice`: jobs trained together the first
time ``fit`` asks for one of them. A search with a checkpoint serves a round
in slices, so that the results of the first slices are scored and journaled
while the later ones still wait to be trained.
"""

import hashlib
import threading
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

_STORE = {}
_LOCK = threading.Lock()


def fingerprint(*arrays):
    """A digest of numeric arrays, dense or scipy sparse (shape, dtype, bytes); None for anything else."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if sp.issparse(array):  # its CSR parts: the same matrix in another format is another key
            digest.update(f"sparse {array.format} {array.shape}".encode())
            parts = [array.data, array.indices, array.indptr] if array.format == "csr" else None
            if parts is None:
                return None
        else:
            parts = [array]
        for part in parts:
            if not isinstance(part, np.ndarray) or part.dtype == object:
                return None
            part = np.ascontiguousarray(part)
            digest.update(f"{part.shape}{part.dtype.str}".encode())
            digest.update(part.data)
    return digest.hexdigest()


def job_key(estimator, X, y):
    """Key of fitting ``estimator`` (as parameterised now) on ``(X, y)``; None if unkeyable."""
    data = fingerprint(X, y)
    if data is None:
        return None
    params = sorted((name, repr(value)) for name, value in estimator.get_params(deep=False).items())
    return type(estimator).__name__, tuple(params), data


@contextmanager
def serving(results):
    """Make ``{job_key: fitted estimator or exception}`` available to ``fit`` within the block."""
    with _LOCK:
        _STORE.update(results)
    try:
        yield
    finally:
        with _LOCK:
            for key in results:
                _STORE.pop(key, None)


def take(estimator, X, y):
    """The fitted estimator trained ahead for this job, or None; re-raises a stored failure."""
    if not _STORE:
        return None
    key = job_key(estimator, X, y)
    with _LOCK:
        result = _STORE.get(key) if key is not None else None
    if isinstance(result, Slice):
        result = result.get(key)
    if isinstance(result, BaseException):
        raise result
    return result


# One slice trains at a time, whichever thread asks: two batched models at once would
# double the memory, and the torch generators they seed are global.
_TRAINING = threading.Lock()


class Slice:
    """Jobs trained together on first demand: ``train()`` returns ``{job key: result}``.

    Thread-safe: the first ``fit`` that asks trains the slice, the others
    asking for it meanwhile wait for it, and those asking for a slice already
    trained do not wait for one in training.
    """

    def __init__(self, train):
        self._train, self._results, self._lock = train, None, threading.Lock()

    @property
    def trained(self):
        return self._results is not None

    def get(self, key):
        if self._results is None:
            with self._lock:
                if self._results is None:
                    with _TRAINING:
                        self._results = self._train()
        return self._results.get(key)
