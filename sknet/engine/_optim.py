"""Optimizers over stacked parameters, each model with its own hyperparameters.

Every parameter tensor holds a span of the K models along its first axis
(models of different widths are in different tensors), and every
hyperparameter that differs between models is a ``(K, 1, 1)`` tensor whose
slice for that span broadcasts over it, so one update moves all its models
at once. The formulas are torch's own (defaults of
``torch.optim``: Adam betas (0.9, 0.999), eps 1e-8; RMSprop alpha 0.99; ...),
written out term by term in torch's order so that a model trained here follows
its sequential twin up to float rounding. Scalars that torch computes in
Python (bias corrections, step sizes) are computed in float64 on the host too.

A model that is not ``active`` at a step is left exactly as it was,
optimizer state included: its fold may have run out of batches.
"""

import numpy as np
import torch


class BatchedOptimizer:
    """Base class: state per parameter, masked commits, per-model step counts.

    Parameters
    ----------
    params : list of torch.Tensor
        Stacked leaf tensors of shape ``(K_i, ...)``.
    decays : list of bool
        Whether each tensor takes weight decay (weights do, biases do not,
        as ``sknet._options.NO_DECAY_PATTERNS`` says).
    weight_decay, momentum : ndarray of shape (K,)
        Per-model hyperparameters.
    spans : list of slice, default=None
        The models each tensor stacks (``slice(start, start + K_i)``); all K when None.
    """

    state_names: tuple[str, ...] = ()
    counts_steps = False  # whether torch keeps a "step" count in each parameter's state
    momentum_states: tuple[str, ...] = ()  # state torch keeps only for a momentum other than 0

    def __init__(self, params, decays, weight_decay, momentum, spans=None):
        self.params = params
        self.decays = decays
        self.spans = spans or [slice(0, len(weight_decay))] * len(params)
        self.weight_decay = self.column(weight_decay, cache=False)
        self.weight_decay_host = np.asarray(weight_decay, dtype=np.float64)
        self.momentum = self.column(momentum, cache=False)
        self.momentum_host = np.asarray(momentum, dtype=np.float64)
        self.steps = np.zeros(len(weight_decay))
        self.state = [{name: torch.zeros_like(p) for name in self.state_names} for p in params]
        self._columns = {}

    def step(self, grads, lr, active):
        """Update every active model.

        Parameters
        ----------
        grads : list of torch.Tensor
            Gradient of each parameter (same shapes); they may be modified.
        lr : ndarray of shape (K,)
            Current learning rate of each model (schedules change it).
        active : ndarray of bool of shape (K,)
            Models that had a batch at this step.
        """
        self.steps += active
        mask = None if active.all() else torch.as_tensor(active, device=self.params[0].device).view(-1, 1, 1)
        with torch.no_grad():
            for param, grad, decays, state, span in zip(self.params, grads, self.decays, self.state,
                                                        self.spans, strict=True):
                every = mask is None or bool(active[span].all())  # all of this tensor's models step
                if every and self.update_in_place(param, grad, decays, state, lr, span):
                    continue
                new = self.update(param, grad, decays, state, lr, span)
                for tensor, value in zip([param, *state.values()], new, strict=True):
                    tensor.copy_(value if every else torch.where(mask[span], value, tensor))

    def column(self, values, cache=True):
        """``_column(values)`` in the parameters' dtype and on their device, uploaded only when
        the values change (``cache=True``).

        Learning rates change at most once per epoch (or per batch under a batch schedule):
        a copy from host memory at every step would also make a GPU's queue drain every step.
        """
        if not cache:
            return _column(values, self.params[0])
        values = np.asarray(values, dtype=np.float64)
        key = values.tobytes()
        if key not in self._columns:
            if len(self._columns) > 64:  # a schedule moves the rates: keep the recent ones only
                self._columns.clear()
            self._columns[key] = _column(values, self.params[0])
        return self._columns[key]

    def keep_models(self, index, params, spans):
        """Keep only the models ``index`` (ascending positions, a tensor).

        ``params`` and ``spans`` are the model's tensors and spans afterwards: a tensor
        none of whose models is kept is gone.
        """
        self._columns = {}
        host = index.cpu().numpy()
        state, decays = [], []
        for tensors, decay, span in zip(self.state, self.decays, self.spans, strict=True):
            local = host[(host >= span.start) & (host < span.stop)] - span.start
            if len(local):
                local = torch.as_tensor(local, device=index.device)
                state.append({name: tensor[local] for name, tensor in tensors.items()})
                decays.append(decay)
        self.state, self.decays, self.params, self.spans = state, decays, params, spans
        self.weight_decay, self.weight_decay_host = self.weight_decay[index], self.weight_decay_host[host]
        self.momentum, self.steps = self.momentum[index], self.steps[host]
        self.momentum_host = self.momentum_host[host]

    def torch_state(self, k):
        """Model ``k``'s state as its torch optimizer would hold it after the same steps.

        Returns ``({state name: stacked tensors, one per parameter}, step count)``;
        the count is None for optimizers whose torch state has none.
        """
        names = [name for name in self.state_names
                 if name not in self.momentum_states or self.momentum_host[k] != 0]
        state = {name: [tensors[name] for tensors in self.state] for name in names}
        return state, (int(self.steps[k]) if self.counts_steps else None)

    def update(self, param, grad, decays, state, lr, span):
        """Return the new parameter followed by the new state tensors (models ``span``)."""
        raise NotImplementedError

    def update_in_place(self, param, grad, decays, state, lr, span):
        """Update parameter and state in place when every model steps; False if not implemented.

        The usual step: fewer temporaries and no copies back, the same arithmetic.
        """
        return False

    def coupled_grad(self, param, grad, decays, span):
        # torch: grad = grad.add(param, alpha=weight_decay), only in decayed param groups
        return grad + self.weight_decay[span] * param if decays else grad


class SGD(BatchedOptimizer):
    """``torch.optim.SGD`` with momentum, no dampening, no Nesterov."""

    state_names = ("momentum_buffer",)
    momentum_states = ("momentum_buffer",)

    def update(self, param, grad, decays, state, lr, span):
        grad = self.coupled_grad(param, grad, decays, span)
        # torch starts the buffer at the first gradient: momentum * 0 + grad is that exactly.
        buf = state["momentum_buffer"] * self.momentum[span] + grad
        return param + self.column(-lr)[span] * buf, buf

    def update_in_place(self, param, grad, decays, state, lr, span):
        grad = self.coupled_grad(param, grad, decays, span)
        buf = state["momentum_buffer"].mul_(self.momentum[span]).add_(grad)
        param.addcmul_(buf, self.column(-lr)[span])
        return True


class _GroupKernel(BatchedOptimizer):
    """Base of the optimizers stepped by one of torch's fused kernels, called once per group of
    models that share the kernel's scalar arguments (learning rate, weight decay, ...).

    A call updates the slices of its group's models in each stacked tensor (views,
    updated in place), so each model steps with its own values, as torch's optimizer
    with ``fused=True`` would step it. Models that do not step are left out. Which
    slices each call takes depends only on which models share values and step, so it
    is worked out again only when that changes (a schedule moving the rates, a fold
    running out of batches).
    """

    # Beyond this many calls a step (models each with its own rate, in a random search), one
    # pass over all models costs less: on the grid's 80 models with 80 rates, fused Adam's calls
    # took 1.13x the time of the scaled scratch step.
    max_calls = 8

    def __init__(self, params, decays, weight_decay, momentum, spans=None):
        super().__init__(params, decays, weight_decay, momentum, spans)
        self._plans = {}

    def keep_models(self, index, params, spans):
        super().keep_models(index, params, spans)
        self._plans = {}

    def _calls(self, grads, active, values, params=None, decay=True, limit=True):
        """The kernel calls of a step: ``(tensor lists, step counter, a model of the group,
        (weight decay, *values))`` each; None when there would be more than ``max_calls``
        (and ``limit``).

        ``values`` are per-model arrays that, with the weight decay (unless ``decay`` is
        False), split the active models into groups. The lists hold the parameters (or
        ``params``, tensors laid out as them), gradients, then the state in ``state_names``
        order. A group with weight decay makes two calls: the weights with it, the biases
        and batch-norm parameters without. The counter is a 0-d tensor of the group, for
        kernels that take step counts.
        """
        values = [self.weight_decay_host if decay else np.zeros(len(self.steps)), *values]
        key = (params is None, active.tobytes(), *(np.asarray(v).tobytes() for v in values))
        if key not in self._plans:
            # A schedule moves the rates: keep the recent plans only. (Models of several batch
            # sizes step in a few patterns that repeat every epoch: each keeps its plan.)
            if len(self._plans) > 64:
                self._plans.clear()
            groups = {}
            for k in np.flatnonzero(active):
                groups.setdefault(tuple(float(v[k]) for v in values), []).append(k)
            if limit and sum(1 + (group[0] != 0) for group in groups) > self.max_calls:
                self._plans[key] = None
                return None
            calls = []
            for group, models in groups.items():
                count = torch.zeros((), dtype=torch.float32, device=self.params[0].device)
                for decayed in [None] if group[0] == 0 else [True, False]:
                    calls.append((self._views(params or self.params, grads, models, decayed), count,
                                  models[0], (group[0] if decayed else 0.0, *group[1:])))
            self._plans[key] = calls
        return self._plans[key]

    def _views(self, params, grads, models, decayed=None):
        """Parameter, gradient and state slices of ``models`` (ascending), as lists: one view per
        run of consecutive models in each tensor (only the tensors that take weight decay, or
        only the others, unless ``decayed`` is None)."""
        lists = [[] for _ in range(2 + len(self.state_names))]
        for param, grad, state, decays, span in zip(params, grads, self.state, self.decays,
                                                    self.spans, strict=True):
            if decayed is not None and decays != decayed:
                continue
            inside = [k - span.start for k in models if span.start <= k < span.stop]
            for run in np.split(inside, np.flatnonzero(np.diff(inside) != 1) + 1) if inside else []:
                part = slice(int(run[0]), int(run[-1]) + 1)
                for views, tensor in zip(lists, [param, grad, *state.values()], strict=True):
                    views.append(tensor[part])
        return lists


class FusedSGD(_GroupKernel, SGD):
    """``SGD`` through torch's fused SGD kernel (``torch >= 2.4``).

    The momentum buffers start at zero, so ``momentum * 0 + grad`` gives the first
    step's buffer exactly as torch's start from the gradient does; a model without
    momentum keeps none, as torch's.
    """

    def step(self, grads, lr, active):
        calls = self._calls(grads, active, [lr, self.momentum_host])
        if calls is None:
            return super().step(grads, lr, active)  # the formulas (in place when all models step)
        self.steps += active
        with torch.no_grad():
            for (params, grads_, buffers), _, _, (decay, lr_k, momentum) in calls:
                torch._fused_sgd_(params, grads_, buffers if momentum else [], weight_decay=decay,
                                  momentum=momentum, lr=lr_k, dampening=0.0, nesterov=False,
                                  maximize=False, is_first_step=False)


class Adam(BatchedOptimizer):
    """``torch.optim.Adam``; with ``decoupled=True``, ``torch.optim.AdamW``."""

    state_names = ("exp_avg", "exp_avg_sq")
    counts_steps = True
    decoupled = False
    betas = (0.9, 0.999)
    eps = 1e-8

    def update(self, param, grad, decays, state, lr, span):
        beta1, beta2 = self.betas
        lr = lr[span]
        if self.decoupled:
            if decays:
                param = param * _column(1 - lr * self.weight_decay_host[span], param)
        else:
            grad = self.coupled_grad(param, grad, decays, span)
        exp_avg = state["exp_avg"].lerp(grad, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"] * beta2 + grad * grad * (1 - beta2)
        steps = np.maximum(self.steps[span], 1)  # inactive models at step 0 are discarded anyway
        step_size = lr / (1 - beta1**steps)
        bias_correction2_sqrt = (1 - beta2**steps) ** 0.5
        denom = exp_avg_sq.sqrt() / _column(bias_correction2_sqrt, param) + self.eps
        return param + _column(-step_size, param) * (exp_avg / denom), exp_avg, exp_avg_sq


    def update_in_place(self, param, grad, decays, state, lr, span):
        if self.decoupled:
            return False  # AdamW keeps the out-of-place formulas above
        grad = self.coupled_grad(param, grad, decays, span)
        beta1, beta2 = self.betas
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad * (1 - beta2))
        steps = self.steps[span]
        step_size = lr[span] / (1 - beta1**steps)
        denom = exp_avg_sq.sqrt().div_(_column((1 - beta2**steps) ** 0.5, param)).add_(self.eps)
        param.add_(exp_avg.div(denom).mul_(_column(-step_size, param)))
        return True


class FusedAdam(_GroupKernel, Adam):
    """``Adam`` (``AdamW`` with ``decoupled``) through torch's fused Adam kernel (``torch >= 2.4``)."""

    def __init__(self, params, decays, weight_decay, momentum, spans=None):
        super().__init__(params, decays, weight_decay, momentum, spans)
        self.scratch = None
        self._parts = {}

    def keep_models(self, index, params, spans):
        super().keep_models(index, params, spans)
        self.scratch = None
        self._parts = {}

    def step(self, grads, lr, active):
        self.steps += active
        # Models at different step counts have different bias corrections: different calls.
        classes = _step_classes(self.steps)
        calls = self._calls(grads, active, [lr, classes])
        if calls is None:
            return self._scaled_step(grads, lr, active, classes)
        beta1, beta2 = self.betas
        kernel = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
        with torch.no_grad():
            for (params, grads_, exp_avgs, exp_avg_sqs), count, first, (decay, lr_k, _) in calls:
                count.fill_(float(self.steps[first]))
                kernel(params, grads_, exp_avgs, exp_avg_sqs, [], [count] * len(params), lr=lr_k,
                       beta1=beta1, beta2=beta2, weight_decay=decay, eps=self.eps, amsgrad=False,
                       maximize=False)

    def _scaled_step(self, grads, lr, active, classes):
        """The step of models in many groups: the kernel (one call per step count) with
        ``lr=1`` and no decay on a zeroed scratch copy of the parameters, which leaves there
        each model's step for a unit rate, then scaled by each model's rate; decay applied
        around it with the models' own values, as torch orders it. Only the active models'
        slices are touched, each operation one call over all of them."""
        if self.scratch is None:
            self.scratch = [torch.zeros_like(p) for p in self.params]
        parts = self._active_parts(active, grads)
        with torch.no_grad():
            if self.weight_decay_host.any():
                if self.decoupled:  # AdamW: param *= 1 - lr * weight_decay
                    factors = self.column(1 - lr * self.weight_decay_host)
                    torch._foreach_mul_(parts["decayed params"], parts.slices(factors, decayed=True))
                else:
                    torch._foreach_addcmul_(parts["decayed grads"], parts["decayed params"],
                                            parts.slices(self.weight_decay, decayed=True))
            torch._foreach_zero_(parts["scratch"])
            beta1, beta2 = self.betas
            for (scratch, grads_, exp_avgs, exp_avg_sqs), count, first, _ in self._calls(
                    grads, active, [classes], params=self.scratch, decay=False, limit=False):
                count.fill_(float(self.steps[first]))
                torch._fused_adam_(scratch, grads_, exp_avgs, exp_avg_sqs, [], [count] * len(scratch),
                                   lr=1.0, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps,
                                   amsgrad=False, maximize=False)
            torch._foreach_addcmul_(parts["params"], parts["scratch"], parts.slices(self.column(lr)))

    def _active_parts(self, active, grads):
        """The :class:`_Parts` of the ``active`` models, kept per pattern of active models."""
        key = active.tobytes()
        if key not in self._parts:
            if len(self._parts) > 64:
                self._parts.clear()
            self._parts[key] = _Parts(self, active, grads)
        return self._parts[key]


class _Parts(dict):
    """Views of the slices of some models (runs of consecutive ones) in each stacked tensor of an
    optimizer: ``"params"``, ``"scratch"``, and ``"decayed params"`` and ``"decayed grads"`` (of the
    tensors that take weight decay); :meth:`slices` takes the same slices of a per-model column."""

    def __init__(self, optimizer, active, grads):
        super().__init__()
        self.where = []  # (tensor, run of its models), for each view
        for i, span in enumerate(optimizer.spans):
            inside = np.flatnonzero(active[span])
            breaks = np.flatnonzero(np.diff(inside) != 1) + 1
            self.where += [(i, slice(int(run[0]), int(run[-1]) + 1))
                           for run in np.split(inside, breaks) if len(run)]
        self.spans, self.decays = optimizer.spans, optimizer.decays
        self["params"] = [optimizer.params[i][run] for i, run in self.where]
        self["scratch"] = [optimizer.scratch[i][run] for i, run in self.where]
        self["decayed params"] = [optimizer.params[i][run] for i, run in self.where if self.decays[i]]
        self["decayed grads"] = [grads[i][run] for i, run in self.where if self.decays[i]]
        self._slices = {}

    def slices(self, column, decayed=False):
        """The views' slices of ``column`` (a ``(K, 1, 1)`` tensor), of the decayed tensors only
        with ``decayed``; kept while the column is the same tensor."""
        key = (id(column), decayed)
        if key not in self._slices or self._slices[key][0] is not column:
            if len(self._slices) > 8:
                self._slices.clear()
            self._slices[key] = (column, [column[self.spans[i]][run] for i, run in self.where
                                          if not decayed or self.decays[i]])
        return self._slices[key][1]


class AdamW(Adam):
    """``torch.optim.AdamW``: decay applied to the weights, not the gradient."""

    decoupled = True


class FusedAdamW(FusedAdam):
    """``AdamW`` through torch's fused AdamW kernel."""

    decoupled = True


class RMSprop(BatchedOptimizer):
    """``torch.optim.RMSprop``, not centered."""

    state_names = ("square_avg", "momentum_buffer")
    counts_steps = True
    momentum_states = ("momentum_buffer",)
    alpha = 0.99
    eps = 1e-8

    def update(self, param, grad, decays, state, lr, span):
        grad = self.coupled_grad(param, grad, decays, span)
        square_avg = state["square_avg"] * self.alpha + grad * grad * (1 - self.alpha)
        avg = square_avg.sqrt() + self.eps
        # Without momentum torch steps by grad / avg: the buffer formula with momentum 0.
        buf = state["momentum_buffer"] * self.momentum[span] + grad / avg
        return param + self.column(-lr)[span] * buf, square_avg, buf


class Adagrad(BatchedOptimizer):
    """``torch.optim.Adagrad`` without learning-rate decay."""

    state_names = ("sum",)
    counts_steps = True
    eps = 1e-10

    def update(self, param, grad, decays, state, lr, span):
        grad = self.coupled_grad(param, grad, decays, span)
        total = state["sum"] + grad * grad
        std = total.sqrt() + self.eps
        return param + self.column(-lr)[span] * (grad / std), total


class FusedAdagrad(_GroupKernel, Adagrad):
    """``Adagrad`` through torch's fused Adagrad kernel (``torch >= 2.4``); without learning-rate
    decay the step count does not enter the update."""

    def step(self, grads, lr, active):
        calls = self._calls(grads, active, [lr]) if self.params[0].device.type == "cpu" else None
        if calls is None:  # many groups, or not on the CPU (torch's kernel is CPU only)
            return super().step(grads, lr, active)  # the formulas
        self.steps += active
        with torch.no_grad():
            for (params, grads_, sums), count, first, (decay, lr_k) in calls:
                count.fill_(float(self.steps[first]))
                torch._fused_adagrad_(params, grads_, sums, [count] * len(params), lr=lr_k, lr_decay=0.0,
                                      weight_decay=decay, eps=self.eps, maximize=False)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
# torch's fused kernels where this torch has them (2.4 and later), the formulas otherwise.
# torch 2.2 and 2.3 have Adam's and AdamW's, but for CUDA only: not used there.
for _name, _fused, _kernel in [("sgd", FusedSGD, "_fused_sgd_"), ("adam", FusedAdam, "_fused_adam_"),
                               ("adamw", FusedAdamW, "_fused_adamw_"),
                               ("adagrad", FusedAdagrad, "_fused_adagrad_")]:
    if torch.__version__ >= "2.4" and hasattr(torch, _kernel):
        OPTIMIZERS[_name] = _fused


class OptimizerSet:
    """One batched optimizer per optimizer name, each over the stacked tensors of its models.

    Models of different optimizers sit in different tensors (blocks), so each optimizer
    steps its own tensors with every model's hyperparameters (K-long arrays) and only its
    own models active; each keeps its state as a single one would.

    Parameters
    ----------
    kinds : list of str
        The optimizer name (a key of :data:`OPTIMIZERS`) of each tensor.
    params, decays, spans
        As :class:`BatchedOptimizer` takes them, for all tensors.
    weight_decay, momentum : ndarray of shape (K,)
        Per-model hyperparameters.
    owners : list of str
        Each model's optimizer name.
    """

    def __init__(self, kinds, params, decays, weight_decay, momentum, spans, owners):
        self.owners = np.asarray(owners, dtype=object)
        self.members = {}
        for name in dict.fromkeys(kinds):
            index = [i for i, kind in enumerate(kinds) if kind == name]
            self.members[name] = (index, OPTIMIZERS[name](
                [params[i] for i in index], [decays[i] for i in index], weight_decay, momentum,
                [spans[i] for i in index]))
        self.n_tensors = len(params)
        self._masks()

    def _masks(self):
        self.masks = {name: self.owners == name for name in self.members}

    def step(self, grads, lr, active):
        """Each optimizer's step of its own active models (see :meth:`BatchedOptimizer.step`)."""
        if len(self.members) == 1:  # the usual group: one optimizer over every tensor
            [(_, optimizer)] = self.members.values()
            return optimizer.step(grads, lr, active)
        for name, (index, optimizer) in self.members.items():
            optimizer.step([grads[i] for i in index], lr, active & self.masks[name])

    def keep_models(self, index, params, spans, kinds):
        """Keep only the models ``index``; ``params``, ``spans`` and ``kinds`` are the tensors' afterwards."""
        self.owners = self.owners[index.cpu().numpy()]
        members = {}
        for name, (_, optimizer) in self.members.items():
            mine = [i for i, kind in enumerate(kinds) if kind == name]
            if mine:
                optimizer.keep_models(index, [params[i] for i in mine], [spans[i] for i in mine])
                members[name] = (mine, optimizer)
        self.members, self.n_tensors = members, len(params)
        self._masks()

    def set_hyper(self, k, weight_decay, momentum):
        """Model ``k`` steps with ``weight_decay`` and ``momentum`` from now on."""
        for _, optimizer in self.members.values():
            for column, host, value in ((optimizer.weight_decay, optimizer.weight_decay_host, weight_decay),
                                        (optimizer.momentum, optimizer.momentum_host, momentum)):
                host[k] = value
                column[k] = value  # in place: views of the column (kernel plans) see it

    def owner(self, k):
        """Model ``k``'s optimizer, and the positions of its tensors among all."""
        index, optimizer = self.members[self.owners[k]]
        return optimizer, index

    def in_order(self, index, tensors):
        """``tensors`` (one optimizer's, at positions ``index``) at their places among all (None
        elsewhere)."""
        out = [None] * self.n_tensors
        for i, tensor in zip(index, tensors, strict=True):
            out[i] = tensor
        return out


def _step_classes(steps):
    """Labels of the models' step counts that equal models share, numbered by first appearance:
    what splits them into kernel calls (a call takes one count), and the same from step to step
    while the models that step together keep doing so (as a plan of calls is kept)."""
    if (steps == steps[0]).all():  # the usual case, without np.unique's sort (0.1 ms a step)
        return np.zeros(len(steps), dtype=np.intp)
    _, first, labels = np.unique(steps, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[labels]


def _column(values, like):
    """Per-model values as a ``(K, 1, 1)`` tensor that broadcasts over a stacked parameter,
    in the dtype and on the device of the tensor ``like``."""
    values = np.asarray(values, dtype=np.float64)  # rounded once, to like's dtype
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).view(-1, 1, 1)
