"""Where each model's rows sit in an epoch's padded steps: :class:`_Layout`, and its arithmetic.

A group's models each draw their own shuffles and batches (as their sequential fits do); the
layout places them side by side in ``(K, steps, width)`` tensors, cuts a batch larger than the
group's tick into several steps, and gives each row its loss coefficient over its whole batch.
It depends only on the models' batch sizes, the same at every epoch.
"""

import functools

import numpy as np
import torch


@functools.lru_cache(maxsize=64)
def _sizes_of(ends):
    sizes = np.diff(ends, prepend=0)
    sizes.flags.writeable = False  # shared between models and epochs
    return sizes


def _batch_sizes(ends):
    """The sizes of the batches that end at ``ends`` (the same for every epoch of a model)."""
    return _sizes_of(tuple(ends))


class _Layout:
    """Where each model's rows sit in an epoch's ``(K, steps, width)`` padded steps.

    It depends only on the models' batch sizes, the same at every epoch: the
    padding mask, the rows per step (and without weights, the loss coefficients)
    are computed once. Each step holds ``width`` rows (the ``tick``): a model's batch
    of up to that many rows is one step, a larger one several consecutive steps
    (its first ``tick`` rows, the next...), the last of which ``active`` marks.
    The rest pads shorter steps.

    Parameters
    ----------
    sizes : list of ndarray
        Each model's batch sizes.
    like : torch.Tensor
        The device of the tensors, and the dtype of the mask and coefficients.
    weighted : bool
        Whether rows have weights of their own (else each weighs 1).
    batch_sizes : ndarray, default=None
        Each model's ``batch_size``. The tick is the largest batch of the models of
        the smallest ``batch_size`` (a batch of one row folds into the one before):
        theirs are one step each. When None, every batch is one step.
    """

    def __init__(self, sizes, like, weighted, batch_sizes=None):
        self.sizes = sizes
        self.size_lists = [size.tolist() for size in sizes]
        self.n_batches = np.array([len(size) for size in sizes])
        smallest = None if batch_sizes is None else batch_sizes == batch_sizes.min()
        self.width = max(int(size.max()) for k, size in enumerate(sizes) if smallest is None or smallest[k])
        parts = [-(-size // self.width) for size in sizes]  # steps of each batch
        self.chunked = any((part > 1).any() for part in parts)
        n_steps = max(int(part.sum()) for part in parts)
        counts = np.zeros((len(sizes), n_steps), dtype=np.int64)  # real rows per model and step
        batch_rows = np.zeros((len(sizes), n_steps), dtype=np.int64)  # rows of the step's batch
        batch_index = np.zeros((len(sizes), n_steps), dtype=np.int64)  # which batch it is
        ends = np.zeros((len(sizes), n_steps), dtype=bool)
        same = {}  # models with the same batch sizes share where their rows go
        self.starts = []  # each model's first step of each batch
        for k, (size, part) in enumerate(zip(sizes, parts, strict=True)):
            steps = np.minimum(size.repeat(part) - self.width * _within(part), self.width)
            counts[k, :len(steps)] = steps
            batch_rows[k, :len(steps)] = size.repeat(part)
            batch_index[k, :len(steps)] = np.arange(len(size)).repeat(part)
            ends[k, np.cumsum(part) - 1] = True
            self.starts.append(np.cumsum(part) - part)
            same.setdefault(size.tobytes(), _positions(steps, self.width))
        self.positions = [same[size.tobytes()] for size in sizes]
        self.counts = counts.T.tolist()
        self.active = list(ends.T)  # models whose batch ends at each step: they step
        self.device = like.device
        self.mask = (torch.as_tensor(counts, device=like.device)[:, :, None]
                     > torch.arange(self.width, device=like.device)).to(like.dtype)
        self.batch_index = torch.as_tensor(batch_index, device=like.device) if self.chunked else None
        ends_t = torch.as_tensor(ends.T, dtype=like.dtype, device=like.device)
        self.l1_scales = list(ends_t[:, :, None, None]) if self.chunked else [None] * n_steps
        offsets = np.zeros((len(sizes), n_steps), dtype=np.int64)
        for k, part in enumerate(parts):
            offsets[k, :int(part.sum())] = self.width * _within(part)
        self.batches = (list(zip(offsets.T.tolist(), batch_rows.T.tolist(), strict=True)) if self.chunked
                        else [None] * n_steps)
        if weighted:
            self.coef = None
        elif self.chunked:  # each row weighs 1 / its whole batch's rows
            self.coef = self.mask / torch.as_tensor(np.maximum(batch_rows, 1), dtype=like.dtype,
                                                    device=like.device)[:, :, None]
        else:
            self.coef = _coefficients(self.mask)

    def batch_losses(self, losses):
        """Each model's loss per batch ``(K, batches)`` of its loss per step ``(K, steps)``: the
        sum of its batch's steps (each weighted by the whole batch)."""
        if not self.chunked:
            return losses
        out = np.zeros((len(losses), self.n_batches.max()))
        for k, starts in enumerate(self.starts):
            out[k, :len(starts)] = np.add.reduceat(losses[k], starts)
        return out

    def local(self, orders):
        """The models' shuffled ``orders`` (positions in their rows) laid out in their batches."""
        n_steps = len(self.counts)
        local = np.zeros((len(orders), n_steps * self.width), dtype=np.int64)
        for k, (order, position) in enumerate(zip(orders, self.positions, strict=True)):
            local[k, slice(len(order)) if position is None else position] = order.numpy()
        return torch.as_tensor(local, device=self.device).view(len(orders), n_steps, self.width)


def _within(part):
    """Each step's position within its batch, for batches of ``part`` steps each."""
    return np.arange(int(part.sum())) - (np.cumsum(part) - part).repeat(part)


def _positions(size, width):
    """Where the rows of batches of ``size`` go among ``width`` slots per batch; None when in order
    (every batch but the last is full: the padding is all at the end)."""
    if (size[:-1] == width).all():
        return None
    starts = np.cumsum(size) - size
    return np.arange(size.sum()) + np.repeat(np.arange(len(size)) * width - starts, size)


def _coefficients(weight, batch_index=None):
    """Each row's weight over its batch's total weight (``(K, steps, width)``; 0 on padding).

    With ``batch_index`` (``(K, steps)``: the batch each step belongs to), a batch spans
    several steps: its total is over all of them.
    """
    total = weight.sum(dim=2)
    if batch_index is not None:
        total = torch.zeros_like(total).scatter_add_(1, batch_index, total).gather(1, batch_index)
    return weight / total.unsqueeze(2).clamp_min(torch.finfo(weight.dtype).tiny)
