"""In-memory batching on the device, for dense arrays, sparse matrices and dicts of arrays.

skorch's default ``DataLoader`` collates every batch from single samples in
Python. For data that fits in memory it is much faster to move the arrays to
the device once and slice batches there. Sparse matrices stay sparse on the
host; each batch is densified on its own, so a large ``TfidfVectorizer``
output never becomes dense all at once. A dict of arrays (a module of several
inputs) is held as a dict of tensors, and its batches are dicts: skorch passes
them to the module's ``forward`` as keyword arguments.
"""

import math
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch

# Rows per batch at prediction time for dense data: larger batches only cost
# activation memory and are much faster than the training batch size.
PREDICT_BATCH_ROWS = 4096


class InMemoryDataset(torch.utils.data.Dataset):
    """Features, targets and sample weights held whole on one device.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...), scipy sparse matrix of shape (n_samples, n_features) \
or dict of ndarrays
        Features; dense arrays are copied to ``device`` once, as ``dtype``
        (integer arrays but uint8 keep their type: token ids). A dict holds
        one array of ``n_samples`` rows per input of the module.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs), default=None
        Targets; ``None`` at prediction time.
    sample_weight : ndarray of shape (n_samples,), default=None
        Per-sample loss weights.
    device : str or torch.device, default="cpu"
        Where batches are delivered.
    dtype : numpy dtype, default=np.float32
        Floating-point type of the features and weights (the network's).
    """

    def __init__(self, X, y=None, sample_weight=None, device="cpu", dtype=np.float32):
        self.device = torch.device(device)
        self.sparse = sp.issparse(X)
        if self.sparse:
            self.X = sp.csr_matrix(X, dtype=dtype)
        elif is_dict_of_arrays(X):
            self.X = {key: _dense_tensor(value, dtype, self.device) for key, value in X.items()}
        else:
            self.X = _dense_tensor(X, dtype, self.device)
        self.y = None if y is None else torch.as_tensor(_writable(np.asarray(y)), device=self.device)
        self.sample_weight = (
            None if sample_weight is None
            else torch.as_tensor(np.asarray(sample_weight, dtype=dtype), device=self.device)
        )

    def __len__(self):
        return len(next(iter(self.X.values()))) if isinstance(self.X, dict) else self.X.shape[0]

    def __getitem__(self, index):
        return self.batch(np.atleast_1d(index))

    def batch(self, index):
        """Return ``(X, y)`` for the rows ``index``; ``y`` is ``(y, w)`` when weighted.

        ``index`` is a slice, a host integer array, or a device tensor (dense only).
        """
        if self.sparse:
            host_index = index.cpu().numpy() if torch.is_tensor(index) else index
            Xb = torch.as_tensor(self.X[host_index].toarray(), device=self.device)
        elif isinstance(self.X, dict):
            Xb = {key: value[index] for key, value in self.X.items()}
        else:
            Xb = self.X[index]
        if self.y is None:
            return Xb, None
        yb = self.y[index]
        if self.sample_weight is not None:
            yb = (yb, self.sample_weight[index])
        return Xb, yb


def is_dict_of_arrays(X):
    """Whether X is a dict of arrays (a SliceDict too): not scipy's DOK matrix, a dict of entries."""
    return isinstance(X, Mapping) and not sp.issparse(X)


def _dense_tensor(X, dtype, device):
    """A dense array on ``device``: integers (token ids) stay integer, the rest becomes ``dtype``."""
    X = np.asarray(X)
    X = X if X.dtype.kind in "iu" and X.dtype != np.uint8 else X.astype(dtype, copy=False)
    return torch.as_tensor(_writable(X), device=device)


def _writable(array):
    """``array``, copied if read-only (a DataFrame's values under pandas' copy-on-write).

    torch shares a numpy array's memory and warns when it is read-only.
    """
    return array if array.flags.writeable else array.copy()


class DeviceBatches:
    """Iterate over an :class:`InMemoryDataset` in mini-batches.

    Parameters
    ----------
    dataset : InMemoryDataset
    batch_size : int
        Rows per batch; the last batch may be smaller.
    shuffle : bool
        Draw a new permutation of the rows at each pass (training).
    seed : int, default=None
        Seed of the permutations, for reproducible training.
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(int(seed))

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        n, size = len(self.dataset), self.batch_size
        if not self.shuffle:
            for start in range(0, n, size):
                yield self.dataset.batch(slice(start, start + size))
            return
        order, stops = self.shuffled_order()
        if not self.dataset.sparse:
            order = order.to(self.dataset.device)
        start = 0
        for stop in stops:
            yield self.dataset.batch(order[start:stop])
            start = stop

    def shuffled_order(self):
        """One shuffled pass: the permutation of the rows (on the CPU) and where each batch ends in it.

        Each call draws the next permutation, as iterating does.
        """
        n, size = len(self.dataset), self.batch_size
        order = torch.randperm(n, generator=self.generator)
        stops = list(range(size, n, size)) + [n]
        # A training batch of one row breaks batch normalisation and gives a
        # one-sample gradient step; fold it into the previous batch instead.
        if len(stops) > 1 and stops[-1] - stops[-2] == 1:
            stops.pop(-2)
        return order, stops


def predict_batch_size(dataset, batch_size):
    """Rows per batch at prediction time."""
    return batch_size if dataset.sparse else max(batch_size, PREDICT_BATCH_ROWS)
