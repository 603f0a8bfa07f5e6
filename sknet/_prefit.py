"""Results trained ahead of time, handed to ``fit`` by a search's batched engine.

A search trains many (candidate, fold) jobs of an sknet net together, then lets
scikit-learn's own cross-validation code run unchanged: when it calls ``fit``
on a job the engine already trained, ``fit`` adopts that result instead of
training again. Jobs are recognised by the estimator's class and parameters
and a fingerprint of the training data, so a miss (anything the engine could
not take) simply trains as usual. The store is empty outside a search's
``serving`` block, and looking up an empty store costs nothing.

A search also trains its refit with the engine, alone: within a
:func:`training_alone` block, a fit of the block's thread that nothing was
trained ahead for goes to the block's function.

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
_LOCAL = threading.local()  # the training_alone function of each thread
# One slice trains at a time, whichever thread asks: two batched models at once would
# double the memory, and the torch generators they seed are global.
_TRAINING = threading.Lock()


def fingerprint(*arrays):
    """A digest of training data, or None when it cannot be keyed.

    Dense arrays and lists, pandas objects (with their column names) and CSR
    matrices are keyed by shape, dtype and bytes; one-dimensional object arrays
    (labels such as strings) by the repr of their values. Other data, object
    tables and other sparse formats among them, give None.
    """
    digest = hashlib.blake2b(digest_size=16)
    for data in arrays:
        parts = _parts(data)
        if parts is None:
            return None
        for part in parts:
            digest.update(part if isinstance(part, bytes) else memoryview(np.ascontiguousarray(part)))
    return digest.hexdigest()


def _parts(data):
    """What identifies ``data`` for :func:`fingerprint`: bytes and arrays, or None."""
    if sp.issparse(data):  # its CSR parts: the same matrix in another format is another key
        if data.format != "csr":
            return None
        arrays, label = [data.data, data.indices, data.indptr], f"sparse {data.shape}"
    else:
        label = ""
        if hasattr(data, "iloc"):  # pandas: the column names are part of what fit sees
            label = f"pandas {list(getattr(data, 'columns', [getattr(data, 'name', None)]))!r}"
            data = data.to_numpy()
        arrays = [np.asarray(data)]
    described = [label.encode()]
    for array in arrays:
        if array.dtype == object:
            if array.ndim != 1:
                return None
            array = np.frombuffer(repr(array.tolist()).encode(), dtype=np.uint8)
        described += [f"{array.shape}{array.dtype.str}".encode(), array]
    return described


def data_key(X, y, sample_weight=None):
    """The :func:`fingerprint` of a job's training data, its sample weights included when given."""
    return fingerprint(X, y) if sample_weight is None else fingerprint(X, y, sample_weight)


def params_key(estimator):
    """The part of a job's key that names the estimator: its class and parameters."""
    params = sorted((name, repr(value)) for name, value in estimator.get_params(deep=False).items())
    return type(estimator).__name__, tuple(params)


def job_key(params, data):
    """Key of a job from its :func:`params_key` and its data's :func:`fingerprint`; None if unkeyable."""
    return None if data is None else (*params, data)


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


def take(estimator, X, y, sample_weight=None):
    """The fitted estimator trained for this job, or None; re-raises a stored failure.

    A job nothing was trained ahead for goes to the function of an enclosing
    :func:`training_alone` block of this thread, if any.
    """
    alone = getattr(_LOCAL, "train", None)
    if not _STORE and alone is None:
        return None
    result = None
    if _STORE:
        key = job_key(params_key(estimator), data_key(X, y, sample_weight))
        with _LOCK:
            result = _STORE.get(key) if key is not None else None
        if isinstance(result, Slice):
            result = result.get(key)
    if result is None and alone is not None:
        with _TRAINING:
            result = alone(estimator, X, y, sample_weight)
    if isinstance(result, BaseException):
        raise result
    return result


@contextmanager
def training_alone(train):
    """Within the block, ``train(estimator, X, y, sample_weight)`` trains the thread's fits not trained ahead.

    A search uses it for its refit. ``train`` returns the fitted estimator, the
    exception its ``fit`` would raise, or None to let ``fit`` train as usual;
    ``train=None`` turns an outer block off.
    """
    outer, _LOCAL.train = getattr(_LOCAL, "train", None), train
    try:
        yield
    finally:
        _LOCAL.train = outer


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
