"""The training loop of one group of jobs, and ``train_batched`` over all groups.

Each job keeps its own skorch net (built and initialised exactly as its
sequential ``fit`` would build it). The batched model does the arithmetic;
the nets keep the bookkeeping: their history is written batch by batch and
their own callbacks run at each epoch's begin and end (the epoch timer,
``train_loss``, the divergence check, the learning-rate schedule), so the
schedules step exactly as in ``fit`` and each net's optimizer holds the
model's current learning rate.
"""

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_array

from ..nets._data import DeviceBatches
from . import _optim
from ._jobs import group_key, optimizer_name, prepare, refusal
from ._loss import LOSSES
from ._model import BatchedMLP


def train_batched(estimator, jobs, X, y):
    """Train many jobs of one sknet MLP as a few batched models.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        The unfitted base estimator.
    jobs : list of (dict, array-like)
        ``(params, train_idx)``: the estimator ``clone(estimator).set_params(**params)``
        fitted on ``X[train_idx], y[train_idx]``. Every job must pass :func:`can_batch`.
    X : array-like of shape (n_samples, n_features)
        Dense training data of all jobs.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets of all jobs.

    Returns
    -------
    fitted : list
        One entry per job, in order: the fitted estimator, or the
        ``FloatingPointError`` its ``fit`` would have raised when its loss diverged.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.engine import train_batched
    >>> X, y = load_iris(return_X_y=True)
    >>> jobs = [({"lr": lr}, range(0, 150, 2)) for lr in (1e-3, 1e-2)]
    >>> fitted = train_batched(MLPClassifier(max_epochs=5, random_state=0), jobs, X, y)
    >>> [clf.n_iter_ for clf in fitted]
    [5, 5]
    """
    for i, (params, _) in enumerate(jobs):
        reason = refusal(estimator, params, X)
        if reason is not None:
            raise ValueError(f"Job {i} cannot be trained by the batched engine: {reason}.")
    prepared = [prepare(estimator, params, train_idx, X, y) for params, train_idx in jobs]
    X_all = check_array(X, dtype=np.float32)
    groups = {}
    for i, job in enumerate(prepared):
        key = (group_key(job.estimator), job.n_outputs, job.estimator.device_)
        groups.setdefault(key, []).append(i)
    fitted = [None] * len(jobs)
    tensors = {}  # X moved to each device once
    for members in groups.values():
        device = prepared[members[0]].estimator.device_
        if device not in tensors:
            tensors[device] = torch.as_tensor(X_all, device=device)
        results = _train_group(members, prepared, tensors[device],
                               lambda i: prepare(estimator, *jobs[i], X, y))
        for i, result in zip(members, results, strict=True):
            fitted[i] = result
    return fitted


def _train_group(members, prepared, X, prepare_again):
    """Train one group; when it does not fit in memory, train its halves one after the other.

    Nothing is lost: the jobs of a failed attempt are prepared afresh (new nets,
    empty histories) before their halves run.
    """
    try:
        return GroupTrainer([prepared[i] for i in members], X).run()
    except torch.OutOfMemoryError:
        if len(members) == 1:
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    for i in members:
        prepared[i] = prepare_again(i)
    half = len(members) // 2
    return (_train_group(members[:half], prepared, X, prepare_again)
            + _train_group(members[half:], prepared, X, prepare_again))


def group_jobs(estimator, jobs):
    """Group jobs that can train as one batched model.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        The unfitted base estimator.
    jobs : list of (dict, array-like)
        ``(params, train_idx)`` pairs, each passing :func:`can_batch`.

    Returns
    -------
    groups : list of list of int
        Indices into ``jobs``, groups in order of first appearance. Jobs
        differing in the network's shape, activation, dropout (on or off),
        optimizer, batch size, loss, early stopping, schedule or device fall
        in different groups; ``train_batched`` may split a group further when
        folds see different numbers of classes.
    """
    groups = {}
    for i, (params, _) in enumerate(jobs):
        reason = refusal(estimator, params)
        if reason is not None:
            raise ValueError(f"Job {i} cannot be trained by the batched engine: {reason}.")
        groups.setdefault(group_key(clone(estimator).set_params(**params)), []).append(i)
    return list(groups.values())


def can_batch(estimator, params, X=None):
    """Whether the batched engine can train ``clone(estimator).set_params(**params)``.

    It cannot (and the caller should fit sequentially) for: estimators other
    than sknet's MLPs, parameters ``fit`` would reject, sparse ``X``, skorch
    or scikit-learn callbacks, ``warm_start``, an optimizer class other than
    the named ones, ``batch_norm``, ``early_stopping`` and ``verbose``.

    Parameters
    ----------
    estimator : estimator
        The unfitted base estimator.
    params : dict
        The job's parameters.
    X : array-like or sparse matrix, default=None
        The training data, when known.

    Returns
    -------
    bool
    """
    return refusal(estimator, params, X) is None


class _RowIndices:
    """Stands in for an ``InMemoryDataset`` so that ``DeviceBatches`` yields row indices.

    ``DeviceBatches`` is what shuffles and cuts a sequential fit's batches;
    reusing it gives each model the very batches of its sequential twin.
    """

    sparse = False
    device = torch.device("cpu")

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def batch(self, index):
        return index


class GroupTrainer:
    """Train the jobs of one group (same shapes and loop) together.

    Parameters
    ----------
    jobs : list of Job
        Prepared jobs sharing ``group_key``, ``n_outputs`` and device.
    X : torch.Tensor of shape (n_samples, n_features)
        All rows, on the jobs' device; each job reads its own.
    """

    def __init__(self, jobs, X):
        self.jobs = jobs
        self.nets = [job.estimator.net_ for job in jobs]
        self.X = X
        device = X.device
        base = jobs[0].estimator
        self.model = BatchedMLP([net.module_ for net in self.nets], base.activation,
                                self._hyper("dropout"), _dropout_generator(jobs, device))
        params, decays = self.model.parameters()
        optimizer = _optim.OPTIMIZERS[optimizer_name(base.optimizer)]
        self.optimizer = optimizer(params, decays, self._hyper("weight_decay"), self._hyper("momentum"))
        self.loss = LOSSES[base._criterion()]
        self.l1 = self._hyper("l1")
        self.l1_column = torch.as_tensor(self.l1, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.lr = self._hyper("lr")
        self.max_epochs = np.array([job.estimator.max_epochs for job in jobs])
        self.errors = [None] * len(jobs)
        self.batch_schedule = base.lr_schedule is not None and _steps_every_batch(self.nets[0])
        self.rows, self.y, self.weight = _pad_rows(jobs, device)
        self.model_index = torch.arange(len(jobs), device=device)[:, None]
        self.batches = [DeviceBatches(_RowIndices(len(job.rows)), base.batch_size, shuffle=True,
                                      seed=job.seed) for job in jobs]

    def _hyper(self, name):
        return np.array([getattr(job.estimator, name) for job in self.jobs], dtype=np.float64)

    def run(self):
        """Train all epochs; return the fitted estimators (or their errors)."""
        for k, net in enumerate(self.nets):
            _allow_schedule_steps(net)
            net.notify("on_train_begin", X=None, y=None)
            self.lr[k] = net.optimizer_.param_groups[0]["lr"]  # a schedule may start elsewhere (onecycle)
        for epoch in range(int(self.max_epochs.max())):
            running = np.array([epoch < m and e is None for m, e in zip(self.max_epochs, self.errors,
                                                                         strict=True)])
            if not running.any():
                break
            self._epoch(running)
        return [self._finish(k) for k in range(len(self.jobs))]

    def _epoch(self, running):
        for k in np.flatnonzero(running):
            self.nets[k].notify("on_epoch_begin", dataset_train=None, dataset_valid=None)
        orders = [list(self.batches[k]) if running[k] else [] for k in range(len(self.jobs))]
        n_batches = np.array([len(order) for order in orders])
        rows, y, coef = self._epoch_data(orders)
        losses = []
        for step in range(rows.shape[1]):
            active = step < n_batches
            losses.append(self._step(rows[:, step], y[:, step], coef[:, step], active))
            if self.batch_schedule:
                for k in np.flatnonzero(active):
                    self.nets[k].history.new_batch()
                    self.nets[k].notify("on_batch_end", batch=None, training=True)
                    self.lr[k] = self.nets[k].optimizer_.param_groups[0]["lr"]
        losses = torch.stack(losses, dim=1).cpu().numpy() if losses else np.zeros((len(self.jobs), 0))
        for k in np.flatnonzero(running):
            self._end_epoch(k, losses[k, :n_batches[k]], [len(index) for index in orders[k]])

    def _epoch_data(self, orders):
        """Rows, targets and loss coefficients of every model's batches: ``(K, steps, width, ...)``.

        A model's coefficients are its rows' weights over their sum in the batch
        (0 on padding), so that its loss is the weighted mean of its batch.
        """
        local, mask = _stack_batches(orders, self.X.device)
        n_models, steps, width = local.shape
        flat = local.view(n_models, -1)
        rows = self.rows[self.model_index, flat].view(n_models, steps, width)
        y = self.y[self.model_index, flat]
        y = y.view(n_models, steps, width, *y.shape[2:])
        weight = self.weight[self.model_index, flat].view(n_models, steps, width) * mask
        coef = weight / weight.sum(dim=2, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny)
        return rows, y, coef

    def _step(self, rows, y, coef, active):
        """One optimizer step of every active model on its own batch; return each model's loss.

        A model without a batch (``active`` False) has coefficients 0 and is not updated.
        """
        out = self.model.forward(self.X[rows], training=True)
        loss, grad_out = self.loss(out, y, coef)
        grads = self.model.backward(grad_out)
        if self.l1.any():
            loss = loss + self.l1_column.view(-1) * self.model.l1_norms()
            self.model.add_l1_grads(grads, self.l1_column)
        self.optimizer.step(grads, self.lr, active)
        return loss

    def _end_epoch(self, k, losses, sizes):
        net = self.nets[k]
        batches = list.__getitem__(net.history, -1)["batches"]
        if not self.batch_schedule:  # a batch schedule's records were opened step by step
            batches.extend({} for _ in sizes)
        for record, loss, size in zip(batches, losses, sizes, strict=True):
            record.update(train_loss=float(loss), train_batch_size=size)
        net.history.record("train_batch_count", len(sizes))
        try:
            # The net's own callbacks: the timer, train_loss, the divergence check, the schedule.
            net.notify("on_epoch_end", dataset_train=None, dataset_valid=None)
        except FloatingPointError as exc:
            self.errors[k] = exc
        self.lr[k] = net.optimizer_.param_groups[0]["lr"]

    def _finish(self, k):
        if self.errors[k] is not None:
            return self.errors[k]
        estimator = self.jobs[k].estimator
        net = estimator.net_
        net.notify("on_train_end", X=None, y=None)
        net.module_.load_state_dict(self.model.state_dict(k))
        estimator._store_fitted_attributes()
        return estimator


def _pad_rows(jobs, device):
    """Each job's row indices, targets and weights, padded to the longest job: ``(K, n_max, ...)``."""
    n_max = max(len(job.rows) for job in jobs)
    rows = np.zeros((len(jobs), n_max), dtype=np.int64)
    y = np.zeros((len(jobs), n_max) + jobs[0].y.shape[1:], dtype=jobs[0].y.dtype)
    weight = np.ones((len(jobs), n_max), dtype=np.float32)
    for k, job in enumerate(jobs):
        n = len(job.rows)
        rows[k, :n], y[k, :n] = job.rows, job.y
        if job.weight is not None:
            weight[k, :n] = job.weight
    return (torch.as_tensor(rows, device=device), torch.as_tensor(y, device=device),
            torch.as_tensor(weight, device=device))


def _stack_batches(orders, device):
    """Per-model lists of batch indices as ``(K, steps, width)`` indices and a mask of real rows."""
    n_steps = max(len(order) for order in orders)
    width = max((len(index) for order in orders for index in order), default=0)
    local = np.zeros((len(orders), n_steps * width), dtype=np.int64)
    mask = np.zeros((len(orders), n_steps * width), dtype=np.float32)
    for k, order in enumerate(orders):
        if not order:
            continue
        sizes = np.array([len(index) for index in order])
        starts = np.cumsum(sizes) - sizes
        # Row j of batch s sits at s * width + j.
        position = np.arange(sizes.sum()) + np.repeat(np.arange(len(order)) * width - starts, sizes)
        local[k, position] = torch.cat(order).cpu().numpy()
        mask[k, position] = 1
    shape = (len(orders), n_steps, width)
    return (torch.as_tensor(local, device=device).view(shape),
            torch.as_tensor(mask, device=device).view(shape))


def _steps_every_batch(net):
    return any(getattr(cb, "step_every", None) == "batch" for _, cb in net.callbacks_)


def _allow_schedule_steps(net):
    # Each net's own optimizer carries its schedule's learning rate but never steps;
    # tell torch so, or every scheduler warns that it stepped before its optimizer.
    net.optimizer_._opt_called = True


def _dropout_generator(jobs, device):
    """Dropout masks cannot replay a sequential fit's draws; seed them from the jobs for reproducibility."""
    generator = torch.Generator(device=device)
    generator.manual_seed(jobs[0].seed)
    return generator
