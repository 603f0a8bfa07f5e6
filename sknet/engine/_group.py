"""The training loop of one group of jobs: :class:`GroupTrainer`, and the tensors it reads.

The jobs of a group share a training loop (see :func:`~._jobs.group_key`); their models are
stacked as one :class:`~._model.BatchedMLP` (sknet's MLPs, hand-written backward pass) or
:class:`~._functional.BatchedModule` (any other module, ``vmap`` and autograd). Each epoch
draws every model's own shuffle and batches (from ``DeviceBatches``, as its sequential fit
does), lays them out side by side in padded ``(K, steps, width)`` tensors, and runs one
optimizer step per batch for all the models at once. Each job keeps its own skorch net, built
and initialised as its own ``fit`` would build it: the batched model does the arithmetic, and
:mod:`._bookkeeping` writes each net's history and runs its callbacks as skorch's loop would.
A model that diverges, stops early or reaches its ``max_epochs`` leaves the stacked tensors.
"""

import dataclasses
import time

import numpy as np
import torch

from ..nets import finish_fit, training_spec
from ..nets._data import DeviceBatches, predict_batch_size
from . import _functional, _optim
from ._bookkeeping import (
    _close_epoch,
    _mean_losses,
    _plain_callbacks,
    _steps_every_batch,
    _write_plain_epoch,
    begin_epoch,
    begin_training,
    end_batch,
    end_training,
    record_validation,
)
from ._conv import stack_modules
from ._exploit import copy_model, same_slot
from ._jobs import TrainingState, continuation_refusal, optimizer_name
from ._layout import _batch_sizes, _coefficients, _Layout
from ._loss import LOSSES
from ._model import BatchedMLP
from ._shadows import _Shadow


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
        All rows, on the jobs' device and in their modules' dtype (float32 or float64);
        each job reads its own. Everything the group computes takes that dtype.
    shadows : list of list of Job or Follower, default=None
        For each job, the jobs that differ from it only in a smaller ``max_epochs``
        (see :func:`~sknet.engine.continuation_refusal`): they are the start of its
        training, so they are not trained, but follow it (see :mod:`._shadows`). At
        their last epoch they get its weights and optimizer state, and its epoch
        records and callbacks' states: a prepared :class:`Job`'s net gets them epoch by
        epoch, a :class:`~._shadows.Follower` is built then and given its model's.
    keep_states : bool, default=False
        Keep each continuable job's :class:`~sknet.engine.TrainingState` in ``states``.
    widths : list of tuple of int, default=None
        The hidden widths each MLP is padded to in the batched model (see
        :func:`~._costs.padded_widths`); its own when None. Models of equal padded
        widths (and depth) should be adjacent.

    Models with batches of different sizes step together in steps of the smallest
    size (the tick): a larger batch is cut into several steps whose gradients add
    up, and the model's optimizer steps at its batch's last one, so that it
    computes what its fit computes on the whole batch.

    Attributes
    ----------
    shadow_results : list of list
        Each shadow's fitted estimator or error, in the order of ``shadows``.
    states : dict
        ``{(job, shadow or None): TrainingState}`` with ``keep_states``.

    A job may resume (``Job.shuffle_state`` set): its net holds the weights, optimizer
    state and history of the epochs it trained, and training goes on from there.
    """

    def __init__(self, jobs, X, shadows=None, keep_states=False, widths=None):
        self.jobs = jobs
        self.widths = widths
        self.nets = [job.estimator.net_ for job in jobs]
        self.X = X
        device = X.device
        base = jobs[0].spec  # what the group's jobs share: their loop (see group_key)
        self.model = self._batched_model()
        params, decays = self.model.parameters()
        # The dtype of losses, weights and masks: the parameters' (X may hold integer token ids).
        like = X if X.is_floating_point() else params[0]
        self.optimizer = _optim.OptimizerSet(self._tensor_optimizers(), params, decays,
                                             self._hyper("weight_decay"), self._hyper("momentum"),
                                             self.model.spans(),
                                             [optimizer_name(job.spec.optimizer) for job in jobs])
        self.loss = LOSSES[base.loss]
        self.l1 = self._hyper("l1")
        self.l1_column = torch.as_tensor(self.l1, dtype=like.dtype, device=device).view(-1, 1, 1)
        self.lr = self._hyper("lr")
        self.max_epochs = np.array([job.spec.max_epochs for job in jobs])
        self.errors = [None] * len(jobs)
        self.stopped = np.zeros(len(jobs), dtype=bool)  # by early stopping
        # The models whose schedule steps every batch (the others' step at the epoch's end).
        self.batch_schedule = np.array([job.spec.lr_schedule is not None and _steps_every_batch(net)
                                        for job, net in zip(jobs, self.nets, strict=True)])
        self.like = like
        self.rows, self.y, self.weight = _pad_rows([(job.rows, job.y, job.weight) for job in jobs], like)
        self.weighted = any(job.weight is not None for job in jobs)  # else every row weighs 1
        self._layouts = (None, None)  # the last batch sizes' key and layout
        # The models that stop early, validated every epoch (the others have no validation rows).
        self.validates = np.array([job.valid is not None for job in jobs])
        self.early_stopping = bool(self.validates.any())
        if self.early_stopping:
            self.n_valid = np.array([0 if job.valid is None else len(job.valid[0]) for job in jobs])
            # Those that validate share their batch size (group_key): their validation batches' size.
            size = next(job.spec.batch_size for job in jobs if job.valid is not None)
            self.valid_batch_size = predict_batch_size(_RowIndices(0), size)
            self.valid = _pad_rows([(job.rows[:0], job.y[:0], None) if job.valid is None else job.valid
                                    for job in jobs], like)
        self.batches = [DeviceBatches(_RowIndices(len(job.rows)), job.spec.batch_size, shuffle=True,
                                      seed=job.seed) for job in jobs]
        self.batch_sizes = np.array([job.spec.batch_size for job in jobs])
        self.resumed = np.array([job.shuffle_state is not None for job in jobs])
        for k in np.flatnonzero(self.resumed):
            self.batches[k].generator.set_state(jobs[k].shuffle_state)
            self._read_optimizer_state(k, self.nets[k])
        self.epochs = np.array([len(net.history) for net in self.nets])  # trained so far
        self.inputs = X.new_empty(0)  # each step's input rows, written into the same memory
        self.callbacks = [_plain_callbacks(net) for net in self.nets]
        shadows = shadows or [[] for _ in jobs]
        self.shadows = [[_Shadow(i, follower) for i, follower in enumerate(group)] for group in shadows]
        self.shadow_results = [[None] * len(group) for group in shadows]
        self.keep_states, self.states = keep_states, {}
        self.results = None  # each job's fitted estimator or error, once :meth:`run` has begun
        self.plain = all(callbacks is not None for callbacks in self.callbacks) and all(
            shadow.callbacks is not None for shadow in self._built_shadows())

    def _batched_model(self):
        """sknet's MLPs as a :class:`BatchedMLP` (hand-written backward pass), other modules as a
        :class:`BatchedModule` (vmap and autograd)."""
        modules = [net.module_ for net in self.nets]
        if not _functional.has_hand_written_backward(self.jobs[0].estimator):
            return stack_modules(modules, seed=self.jobs[0].seed)
        dropout = self._hyper("dropout")
        return BatchedMLP(modules, [job.spec.activation for job in self.jobs], dropout,
                          [_generator_after_init(job) for job in self.jobs] if dropout.any() else None,
                          self.widths, [optimizer_name(job.spec.optimizer) for job in self.jobs])

    def _tensor_optimizers(self):
        """The optimizer name of each tensor of the model's parameters (each block's models')."""
        if isinstance(self.model, BatchedMLP):
            return [block.label for block in self.model.blocks for _ in block.grads]
        return [optimizer_name(self.jobs[0].spec.optimizer)] * len(self.model.parameters()[0])

    def _hyper(self, name):
        """Each job's ``name`` (a float of its :class:`~sknet.nets.TrainingSpec`), as a column."""
        return np.array([getattr(job.spec, name) for job in self.jobs], dtype=np.float64)

    def run(self, until=None):
        """Train all epochs; return the fitted estimators (or their errors), in the jobs' order.

        With ``until``, pause instead once every model still training has trained
        ``until`` epochs (return None): :meth:`run` goes on from there, and between the
        two a model may take over another's training (:meth:`take_over`).
        """
        if self.results is None:  # the first call: training begins
            for k, net in enumerate(self.nets):
                # A resumed net's callbacks go on as they were: a fit begins its training once.
                shadows = [shadow.net for shadow in self._built_shadows(k)]
                for other in [net] * (not self.resumed[k]) + shadows:
                    begin_training(other)
                self.lr[k] = net.optimizer_.param_groups[0]["lr"]  # a schedule may start elsewhere (onecycle)
            self.results = [None] * len(self.jobs)
            self.index = np.arange(len(self.jobs))  # each model's position in ``jobs``
        results = self.results
        while True:
            failed = np.array([error is not None for error in self.errors])
            done = (self.epochs >= self.max_epochs) | self.stopped | failed
            due = [k for k, group in enumerate(self.shadows)
                   if done[k] or any(shadow.max_epochs <= self.epochs[k] for shadow in group)]
            if done.any() or due:
                finite = self.model.finite()
            for k in due:
                self._finish_shadows(k, finite[k], all_left=done[k])
            for k in np.flatnonzero(done):
                results[self.index[k]] = self._finish(k, finite[k])
                self._keep_state(k, results[self.index[k]], (self.index[k], None))
            if done.all():
                return results
            if done.any():
                self._keep(np.flatnonzero(~done))
            if until is not None and (self.epochs >= until).all():
                return None
            self._epoch()
            self.epochs += 1

    # -- between two calls of run: population training --------------------------------
    def position(self, i):
        """Where job ``i`` (its position in ``jobs``) trains now, or None once it left the group."""
        found = np.flatnonzero(self.index == i)
        return int(found[0]) if len(found) else None

    def snapshot(self, k):
        """Model ``k``'s estimator as a fit stopped here leaves it (its net's module takes the
        weights), or the error that fit raises; its training goes on unchanged."""
        estimator = self.jobs[k].estimator
        self.model.write_module(k, estimator.net_.module_)
        try:
            return finish_fit(estimator)
        except FloatingPointError as exc:
            return exc

    def state_now(self, k):
        """Model ``k``'s :class:`TrainingState` now (its net takes its weights and optimizer
        state); its training goes on, changing that state's estimator: copy it first."""
        estimator = self.jobs[k].estimator
        self.model.write_module(k, estimator.net_.module_)
        self._write_optimizer_state(k, estimator.net_)
        dropout = self.model.generator(k) if isinstance(self.model, BatchedMLP) else None
        return TrainingState(estimator, self.batches[k].generator.get_state(),
                             None if dropout is None else dropout.get_state())

    def drop(self, positions):
        """The models at ``positions`` leave the group, unfinished (not all of them)."""
        self._keep(np.flatnonzero(~np.isin(np.arange(len(self.jobs)), positions)))

    def can_take_over(self, dst, src, dropout):
        """Whether model ``dst`` can go on from where model ``src`` is, in its place, with the
        dropout rate ``dropout`` (and src's parameters but those the engine changes between epochs)."""
        return (isinstance(self.model, BatchedMLP) and same_slot(self.model, dst, src)
                and self.epochs[dst] == self.epochs[src] and not self.validates[[dst, src]].any()
                and (dropout == 0 or self.model.generator(dst) is not None))

    def take_over(self, dst, src, estimator):
        """Model ``dst`` goes on from where model ``src`` is, as ``estimator`` (see
        :meth:`can_take_over`): index copies of its tensors and generators, in the group."""
        source = self.jobs[src]
        job = self.jobs[dst] = dataclasses.replace(source, estimator=estimator, spec=training_spec(estimator))
        net = self.nets[dst] = estimator.net_
        copy_model(self.model, self.optimizer, dst, src)
        batches = self.batches[dst] = DeviceBatches(_RowIndices(len(job.rows)), job.spec.batch_size,
                                                    shuffle=True)
        batches.generator.set_state(self.batches[src].generator.get_state())
        with torch.no_grad():
            for tensor in (self.rows, self.y, self.weight):
                tensor[dst] = tensor[src]
        self.callbacks[dst] = _plain_callbacks(net)
        self.plain = self.plain and self.callbacks[dst] is not None
        self.errors[dst], self.stopped[dst] = None, False
        for name in ("max_epochs", "batch_sizes", "batch_schedule"):
            getattr(self, name)[dst] = getattr(self, name)[src]
        self.lr[dst] = net.optimizer_.param_groups[0]["lr"]
        self.l1[dst] = job.spec.l1
        self.l1_column[dst] = job.spec.l1
        self.optimizer.set_hyper(dst, job.spec.weight_decay, job.spec.momentum)
        self.model.set_dropout(dst, job.spec.dropout)

    def _finish_shadows(self, k, finite, all_left):
        """Finish model ``k``'s shadows whose epochs are done (``all_left``: all of them, as it stops)."""
        left = []
        for shadow in self.shadows[k]:
            if shadow.max_epochs <= self.epochs[k] or all_left:
                result = self._finish(k, finite, shadow.finished(self.epochs[k], self.errors[k], self.nets[k],
                                                                 self.callbacks[k]))
                self.shadow_results[self.index[k]][shadow.position] = result
                self._keep_state(k, result, (self.index[k], shadow.position))
            else:
                left.append(shadow)
        self.shadows[k] = left

    def _built_shadows(self, k=None):
        """The shadows (of model ``k``, else of all) that have nets: written every epoch."""
        groups = self.shadows if k is None else [self.shadows[k]]
        return [shadow for group in groups for shadow in group if shadow.net is not None]

    def _keep(self, keep):
        """Drop the finished models from the group, so that they stop costing compute."""
        rows = torch.as_tensor(keep, device=self.X.device)
        self.model.keep_models(rows)
        self.optimizer.keep_models(rows, self.model.parameters()[0], self.model.spans(),
                                   self._tensor_optimizers())
        self.jobs, self.nets, self.batches, self.errors, self.callbacks, self.shadows = (
            [items[k] for k in keep] for items in (self.jobs, self.nets, self.batches, self.errors,
                                                   self.callbacks, self.shadows))
        for name in ("l1", "lr", "max_epochs", "stopped", "index", "epochs", "resumed", "batch_sizes",
                     "batch_schedule", "validates") + (
                ("n_valid",) * self.early_stopping):
            setattr(self, name, getattr(self, name)[keep])
        self.l1_column = self.l1_column[rows]
        self.rows, self.y, self.weight = self.rows[rows], self.y[rows], self.weight[rows]
        if self.early_stopping:
            self.valid = tuple(tensor[rows] for tensor in self.valid)

    def _epoch(self):
        """One epoch of every model in the group."""
        started = time.time()
        if not self.plain:
            for k, net in enumerate(self.nets):
                for other in [net, *(shadow.net for shadow in self._built_shadows(k))]:
                    begin_epoch(other)
        # Each model's shuffled rows and batch sizes: the very batches of its sequential fit.
        orders, stops = zip(*(batches.shuffled_order() for batches in self.batches), strict=True)
        layout = self._layout([_batch_sizes(ends) for ends in stops])
        sizes, n_batches = layout.sizes, layout.n_batches
        # Each step's slices, taken at once (a slice per step and tensor costs a call each).
        steps = zip(*(tensor.unbind(1) for tensor in self._epoch_data(orders, layout)), layout.active,
                    layout.counts, layout.l1_scales, layout.batches, strict=True)
        losses = []
        for rows, y, coef, real, active, counts, l1_scale, batches in steps:
            losses.append(self._step(rows, y, coef, real, active, counts, l1_scale, batches))
            if self.batch_schedule.any():
                for k in np.flatnonzero(active & self.batch_schedule):
                    end_batch(self.nets[k])
                    self.lr[k] = self.nets[k].optimizer_.param_groups[0]["lr"]
        losses = torch.stack(losses, dim=1).cpu().numpy() if losses else np.zeros((len(self.jobs), 0))
        losses = layout.batch_losses(losses)
        if self.plain:
            self._end_plain_epoch(losses, layout, started)
            return
        validation = self._validate() if self.early_stopping else None
        for k in range(len(self.jobs)):
            self._end_epoch(k, losses[k, :n_batches[k]], sizes[k].tolist(), validation)
            for shadow in self._built_shadows(k):  # no early stopping, no batch schedule: no validation
                shadow.error = shadow.error or _close_epoch(shadow.net, losses[k, :n_batches[k]],
                                                            sizes[k].tolist(), {})

    def _validate(self):
        """Every model's validation loss per batch and its outputs, as its net's validation pass.

        The validation rows are cut into consecutive batches of the size the
        net predicts with (unshuffled, as skorch iterates them) and run without dropout.
        """
        rows, y, weight = self.valid
        losses, outputs = [], []
        for start in range(0, rows.shape[1], self.valid_batch_size):
            part = slice(start, start + self.valid_batch_size)
            out = self.model.forward(_gather(self.X, rows[:, part]))
            real = torch.as_tensor(np.arange(start, start + out.shape[1]) < self.n_valid[:, None],
                                   device=out.device)
            batch_weight = weight[:, part] * real
            coef = batch_weight / batch_weight.sum(dim=1, keepdim=True).clamp_min(
                torch.finfo(batch_weight.dtype).tiny)
            losses.append(self.loss(out, y[:, part], coef)[0])
            outputs.append(out)
        return torch.stack(losses, dim=1).cpu().numpy(), torch.cat(outputs, dim=1)

    def _record_validation(self, k, validation):
        """Write model ``k``'s validation batches and score into its history, as skorch would."""
        net, n = self.nets[k], self.n_valid[k]
        losses, outputs = validation
        sizes = [min(self.valid_batch_size, n - start) for start in range(0, n, self.valid_batch_size)]
        score = self.jobs[k].spec.validation_score(self.valid[1][k, :n], outputs[k, :n])
        record_validation(net, losses[k], sizes, score)
        # EarlyStopping copies the module's weights when the epoch is the best so far.
        self.model.write_module(k, net.module_)
        return losses[k, :len(sizes)], sizes

    def _layout(self, sizes):
        """The :class:`_Layout` of the models' batch ``sizes``: the same at every epoch, so kept."""
        key = tuple(size.tobytes() for size in sizes)
        if self._layouts[0] != key:
            self._layouts = (key, _Layout(sizes, self.like, weighted=self.weighted,
                                                  batch_sizes=self.batch_sizes))
        return self._layouts[1]

    def _epoch_data(self, orders, layout):
        """Rows, targets, loss coefficients and real-row masks of every model's batches.

        Each is ``(K, steps, width, ...)``. A model's coefficients are its rows'
        weights over their sum in the batch (0 on padding), so that its loss is
        the weighted mean of its batch.
        """
        local = layout.local(orders)
        n_models, steps, width = local.shape
        flat = local.view(n_models, -1)
        rows = _take_rows(self.rows, flat).view(n_models, steps, width)
        y = _take_rows(self.y, flat)
        y = y.view(n_models, steps, width, *y.shape[2:])
        if not self.weighted:
            return rows, y, layout.coef, layout.mask
        weight = _take_rows(self.weight, flat).view(n_models, steps, width) * layout.mask
        return rows, y, _coefficients(weight, layout.batch_index), layout.mask

    def _step(self, rows, y, coef, real, active, counts, l1_scale, batches=None):
        """One step of every model on its own batch (or part of it); return each model's loss there.

        The models ``active`` end a batch at this step: the optimizer updates them. A
        model without rows here has coefficients 0 and is not updated. ``counts`` holds
        each model's number of rows in this step. In a group whose batches take several
        steps, gradients add up until their batch's last step, which alone adds the l1
        penalty (``l1_scale`` is 1 there, 0 elsewhere; None when every batch is one step), and
        ``batches`` holds each model's offset of the step's rows in its batch and the batch's rows.
        """
        out = self.model.forward(_gather(self.X, rows, self.inputs), training=True, rows=real, counts=counts,
                                 batches=batches)
        loss, grad_out = self.loss(out, y, coef)
        chunked = l1_scale is not None
        grads = self.model.backward(grad_out, accumulate=chunked)
        if self.l1.any():
            l1 = self.l1_column if not chunked else self.l1_column * l1_scale
            loss = loss + l1.view(-1) * self.model.l1_norms()
            self.model.add_l1_grads(l1)
        self.optimizer.step(grads, self.lr, active)
        if chunked:
            self.model.zero_grads(active)
        return loss

    def _end_epoch(self, k, losses, sizes, validation):
        net = self.nets[k]
        extra = {} if validation is None or not self.validates[k] else {"valid_loss": (k, validation)}
        try:
            self.errors[k] = _close_epoch(net, losses, sizes, extra, self._record_validation,
                                          opened=self.batch_schedule[k])
        except KeyboardInterrupt:  # skorch's EarlyStopping ends training this way
            if not net.early_stopped():
                raise
            self.stopped[k] = True
        self.lr[k] = net.optimizer_.param_groups[0]["lr"]

    def _end_plain_epoch(self, losses, layout, started):
        """Every model's epoch record and callback states, as the plain callbacks leave them.

        What ``net.notify`` would do for each net at the epoch's begin and end, in
        the same order, with ``started`` as the epoch's start for every model's timer.
        Only a divergence check with a non-finite loss runs: it raises then, and only then.
        """
        scores = _mean_losses(losses, layout.sizes)
        ended = time.time()
        for k, (net, batch_losses, size) in enumerate(zip(self.nets, losses.tolist(), layout.size_lists,
                                                          strict=True)):
            epoch = (batch_losses, size, scores[k], started, ended)
            self.errors[k] = _write_plain_epoch(net, self.callbacks[k], *epoch)
            for shadow in self._built_shadows(k):
                shadow.error = shadow.error or _write_plain_epoch(shadow.net, shadow.callbacks, *epoch)

    def _finish(self, k, finite, shadow=None):
        """Model ``k``'s fitted estimator, or its error; ``finite``: whether its weights are all finite.

        With ``shadow`` (the ``(estimator, error)`` of one of its shadows), that one's, from
        model ``k``'s weights and optimizer state now.
        """
        estimator, error = (self.jobs[k].estimator, self.errors[k]) if shadow is None else shadow
        if error is not None:
            return error
        net = estimator.net_
        self.model.write_module(k, net.module_)
        self._write_optimizer_state(k, net)
        end_training(net)  # early stopping restores the best weights here
        try:
            # The plain callbacks leave the module as written: its check would find what ``finite`` says.
            return finish_fit(estimator, weights_checked=finite and self.plain)
        except FloatingPointError as exc:
            return exc

    def _keep_state(self, k, fitted, key):
        """With ``keep_states``, the :class:`TrainingState` of ``fitted`` (model ``k``'s, or one of
        its shadows', or an error) under ``key``: its generators as they are now."""
        if (not self.keep_states or isinstance(fitted, BaseException)
                or continuation_refusal(fitted) is not None):
            return
        dropout = self.model.generator(k) if isinstance(self.model, BatchedMLP) else None
        self.states[key] = TrainingState(fitted, self.batches[k].generator.get_state(),
                                         None if dropout is None else dropout.get_state())

    def _read_optimizer_state(self, k, net):
        """Model ``k``'s optimizer state from its net's torch optimizer: a resumed job's."""
        params = dict(net.module_.named_parameters())
        state = net.optimizer_.state
        optimizer, index = self.optimizer.owner(k)
        for name in optimizer.state_names:
            values = {param_name: state[param][name] for param_name, param in params.items()
                      if state.get(param, {}).get(name) is not None}
            if values:
                self.model.restack(k, values, self.optimizer.in_order(
                    index, [tensors[name] for tensors in optimizer.state]))
        steps = [state[param]["step"] for param in params.values() if "step" in state.get(param, {})]
        if steps:
            optimizer.steps[k] = float(steps[0])

    def _write_optimizer_state(self, k, net):
        """Model ``k``'s optimizer state into its net's optimizer, where torch keeps it, so that
        training on (``warm_start``, ``partial_fit``) goes on as after a sequential fit."""
        optimizer, index = self.optimizer.owner(k)
        state, steps = optimizer.torch_state(k)
        params = dict(net.module_.named_parameters())
        for name, tensors in state.items():
            for param_name, value in self.model.unstack(k, self.optimizer.in_order(index, tensors)).items():
                net.optimizer_.state[params[param_name]][name] = value
        if steps is not None:
            for param in params.values():
                net.optimizer_.state[param]["step"] = torch.tensor(float(steps))


def _gather(X, rows, out=None):
    """Rows of ``X`` for each model: ``(K, n, ...)`` for indices ``(K, n)``, into ``out``.

    Rows keep their shape (features, images, token ids) and ``X``'s dtype.
    ``index_select`` on the flat indices: advanced indexing is several times slower on CPU.
    """
    shape = (rows.numel(), *X.shape[1:])
    if out is not None and out.shape != shape:
        out.resize_(shape)
    return torch.index_select(X, 0, rows.reshape(-1), out=out).view(*rows.shape, *X.shape[1:])


def _take_rows(tensor, index):
    """``tensor[k, index[k]]`` for every model k: ``(K, m, ...)`` of ``(K, n, ...)`` and ``(K, m)``.

    ``torch.gather`` along the rows: a third of ``index_select``'s time on flat offsets on the CPU.
    """
    rest = tensor.shape[2:]
    index = index.view(*index.shape, *(1,) * len(rest)).expand(*index.shape, *rest)
    return torch.gather(tensor, 1, index)


def _pad_rows(parts, like):
    """Each job's ``(rows, y, weight)``, padded to the longest job: tensors ``(K, n_max, ...)``
    on the device of the tensor ``like``, the weights and real-valued targets in its dtype."""
    n_max = max(len(part[0]) for part in parts)
    targets = parts[0][1]
    real_valued = np.issubdtype(targets.dtype, np.floating)
    rows = np.zeros((len(parts), n_max), dtype=np.int64)
    y = np.zeros((len(parts), n_max) + targets.shape[1:], dtype=np.float64 if real_valued else targets.dtype)
    weight = np.ones((len(parts), n_max))
    for k, (part_rows, part_y, part_weight) in enumerate(parts):
        n = len(part_rows)
        rows[k, :n], y[k, :n] = part_rows, part_y
        if part_weight is not None:
            weight[k, :n] = part_weight
    return (torch.as_tensor(rows, device=like.device),
            torch.as_tensor(y, dtype=like.dtype if real_valued else None, device=like.device),
            torch.as_tensor(weight, dtype=like.dtype, device=like.device))


def _generator_after_init(job):
    """A generator in the state torch's global one has when the job's sequential fit starts
    training (seeded with its seed, then drawn from by its net's initialisation): where that
    fit draws its dropout masks from. ``_prepare_fit`` captured that state.

    On a GPU each model's generator is seeded with its seed; a block draws its masks from
    its first model's (a draw per model would cost a kernel launch each there).
    """
    device = torch.device(job.estimator.device_)
    if device.type != "cpu":
        return torch.Generator(device=device).manual_seed(job.seed)
    if job.rng_state is None:  # a model without dropout: it never draws
        return torch.Generator()
    return torch.Generator().set_state(job.rng_state)
