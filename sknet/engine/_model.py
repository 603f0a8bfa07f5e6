"""K MLPs of one depth as one batched model, with a hand-written backward pass.

An MLP's gradients are a few batched matrix products, so the engine computes
them itself instead of recording an autograd graph at every step: with many
small models, building and walking that graph costs more than the arithmetic.
The derivatives of the activations are torch's own backward kernels (the ones
autograd would call), so the numbers are autograd's up to float rounding.
"""

import math

import numpy as np
import torch
from torch import nn

from .._options import ACTIVATIONS

_aten = torch.ops.aten

# d(activation)/dz applied to an incoming gradient, keyed by the activation's module
# class (the names live in ``_options.ACTIVATIONS``): f(grad, z, a) with a = act(z).
_ACTIVATION_GRADS = {
    # In place: ``grad`` is always a fresh tensor here (and allocating a new one costs more than
    # the pass itself for the sizes a batched step has).
    nn.ReLU: lambda grad, z, a: _aten.threshold_backward.grad_input(grad, a, 0, grad_input=grad),
    nn.LeakyReLU: lambda grad, z, a: _aten.leaky_relu_backward.default(grad, z, 0.01, False),
    nn.ELU: lambda grad, z, a: _aten.elu_backward.default(grad, 1.0, 1.0, 1.0, False, z),
    nn.SELU: lambda grad, z, a: _aten.elu_backward.default(grad, 1.6732632423543772848170429916717,
                                                   1.0507009873554804934193349852946, 1.0, False, z),
    nn.GELU: lambda grad, z, a: _aten.gelu_backward.default(grad, z),
    nn.Tanh: lambda grad, z, a: _aten.tanh_backward.default(grad, a),
    nn.Sigmoid: lambda grad, z, a: _aten.sigmoid_backward.default(grad, a),
    nn.Identity: lambda grad, z, a: grad,
}


class BatchedMLP:
    """K MLPs of one depth as one model, with a hand-written backward pass.

    Models whose layers have the same widths form a block, whose weights are
    stacked ``(K_b, in, out)`` and biases ``(K_b, 1, out)``. Each block runs its
    own matrix products, batch norm and dropout draws; the activations and their
    gradients run once over all models, on buffers holding the blocks end to end
    (as do the loss and, with the fused Adam kernel, the optimizer step outside):
    with many small models, each operation's fixed cost is what counts.

    Built from K initialised ``MLPModule`` instances (so each model starts
    from exactly the weights its sequential fit would), and written back into
    them after training.

    Parameters
    ----------
    modules : list of MLPModule
        Modules of the same depth (all with batch normalisation, or none). Those
        of equal widths should be adjacent: each run of them is one block.
    activation : str
        A key of ``sknet._options.ACTIVATIONS``.
    dropout : ndarray of shape (K,)
        Dropout rate of each model (all zero, or all positive).
    generators : list of torch.Generator, default=None
        Each model's generator of dropout masks (on its device); needed with dropout.
        On the CPU a model draws its masks from it as its ``Dropout`` layers would
        draw them from torch's global generator in its own fit: one draw per hidden
        layer and step, over its real rows only. In the state that generator has after
        the net's initialisation, a model's masks are those of its sequential fit.
        (On a GPU each block draws from its first model's generator.)
    """

    def __init__(self, modules, activation, dropout, generators=None):
        self.names = [name for name, m in modules[0].named_modules() if isinstance(m, nn.Linear)]
        self.norm_names = [name for name, m in modules[0].named_modules() if isinstance(m, nn.BatchNorm1d)]
        shapes = [[p.shape for p in module.parameters()] for module in modules]
        starts = [k for k in range(len(modules)) if k == 0 or shapes[k] != shapes[k - 1]]
        generators = generators or []
        self.blocks = [_Block(modules[start:stop], start, generators[start:stop])
                       for start, stop in zip(starts, [*starts[1:], len(modules)], strict=True)]
        self.activation = ACTIVATIONS[activation]()
        self.activation_grad = _ACTIVATION_GRADS[type(self.activation)]
        self.relu = type(self.activation) is nn.ReLU
        weight = self.blocks[0].weights[0]  # every buffer and column takes the parameters' dtype
        self.keep_host = (1 - np.asarray(dropout, dtype=np.float64)).tolist()  # as torch computes 1 - p
        self.keep = torch.as_tensor(self.keep_host, dtype=weight.dtype, device=weight.device).view(-1, 1, 1)
        self.dropout = bool((dropout > 0).any())
        self._saved = None
        self._buffers = {}

    @property
    def grads(self):
        """The gradient tensors :meth:`backward` writes, laid out as :meth:`parameters`."""
        return [grad for block in self.blocks for grad in block.grads]

    def parameters(self):
        """Stacked tensors to optimise, and whether each takes weight decay (linear weights only).

        Block by block: the weights, the biases, then the batch norms' scales and shifts.
        """
        parts = [block.parameters() for block in self.blocks]
        return [t for tensors, _ in parts for t in tensors], [d for _, decays in parts for d in decays]

    def spans(self):
        """The models (a ``slice`` of the K) that each tensor of :meth:`parameters` stacks."""
        return [block.span for block in self.blocks for _ in block.parameters()[0]]

    def forward(self, X, training=False, rows=None, counts=None):
        """Outputs ``(K, n, n_outputs)`` of inputs ``(K, n, n_features)``.

        With ``training=True`` dropout is applied, batch normalisation uses (and
        updates) the batch's statistics over the real ``rows`` (a ``(K, n)``
        mask; all rows when None), and what :meth:`backward` needs is kept.
        ``counts`` (host integers, one per model) says how many rows of each
        model are real, the first ones (as ``rows`` does; all when None).
        """
        saved = []
        inputs = self._by_block(X)
        for i in range(len(self.names) - 1):
            shapes = [(*h.shape[:2], block.weights[i].shape[2])
                      for block, h in zip(self.blocks, inputs, strict=True)]
            flat, parts = self._flat(f"z{i}", shapes, training, X)
            zs = [torch.baddbmm(block.biases[i], h, block.weights[i], out=part)
                  for block, h, part in zip(self.blocks, inputs, parts, strict=True)]
            if self.norm_names:
                block_rows = [None] * len(zs) if rows is None else self._by_block(rows)
                zs = [block.norms[i].forward(z, training, part_rows)
                      for block, z, part_rows in zip(self.blocks, zs, block_rows, strict=True)]
                if flat is not None:
                    for part, z in zip(parts, zs, strict=True):
                        part.copy_(z)
            if flat is None:  # autograd records this pass (the tests' reference)
                flat = torch.cat([z.reshape(-1) for z in zs])
                parts = _split(flat, shapes)
            # ReLU's backward needs only its output, so it may overwrite z (saving an allocation).
            a = flat.relu_() if self.relu else self.activation(flat)
            scales = [None] * len(self.blocks)
            outputs = parts if a is flat else _split(a, shapes)
            if training and self.dropout:
                scales = self._dropout_scales(i, shapes, counts)
                outputs = [part * scale for part, scale in zip(outputs, scales, strict=True)]
            saved.append((inputs, flat, a, scales, shapes))
            inputs = outputs
        self._saved = (saved, inputs) if training else None
        # Written with the outputs axis outermost in memory: the loss reduces over it, which
        # is several times faster along an outer axis than along a short inner one on CPU.
        shape = (len(X), self.blocks[0].weights[-1].shape[2], X.shape[1])
        out_t = self._flat("out", [shape], training, X)[1][0]
        outs = [None] * len(inputs) if out_t is None else self._by_block(out_t)
        parts = [torch.baddbmm(block.biases[-1].transpose(1, 2), block.weights[-1].transpose(1, 2),
                               h.transpose(1, 2), out=out)
                 for block, h, out in zip(self.blocks, inputs, outs, strict=True)]
        return (out_t if out_t is not None else torch.cat(parts)).transpose(1, 2)

    def backward(self, grad_out):
        """Gradients of the loss for every tensor of :meth:`parameters`, in its order.

        They are written into the same tensors (``grads``) at every call.

        Parameters
        ----------
        grad_out : torch.Tensor of shape (K, n, n_outputs)
            Gradient of the loss with respect to the last :meth:`forward`'s output
            (which must have run with ``training=True``).
        """
        saved, inputs = self._saved
        n_layers = len(self.names)
        grads = self._by_block(grad_out)
        for i in reversed(range(n_layers)):
            for block, h, grad in zip(self.blocks, inputs, grads, strict=True):
                torch.bmm(h.transpose(1, 2), grad, out=block.grads[i])
                torch.sum(grad, dim=1, keepdim=True, out=block.grads[n_layers + i])
            if i == 0:
                break
            inputs, z, a, scales, shapes = saved[i - 1]
            flat, parts = self._flat(f"grad{i}", shapes, True, z)
            for block, grad, part, scale in zip(self.blocks, grads, parts, scales, strict=True):
                torch.bmm(grad, block.weights[i].transpose(1, 2), out=part)
                if scale is not None:
                    part.mul_(scale)
            grad = self.activation_grad(flat, z, a)
            grads = parts if grad is flat else _split(grad, shapes)
            if self.norm_names:
                grads = [block.norms[i - 1].backward(grad, *block.grads[2 * n_layers + 2 * (i - 1):][:2])
                         for block, grad in zip(self.blocks, grads, strict=True)]
        self._saved = None
        return self.grads

    def _dropout_scales(self, layer, shapes, counts):
        """Each block's dropout scales (``shapes``) at hidden layer ``layer``: ``mask / keep``.

        Each model draws the mask of its real rows as its ``Dropout`` layers
        (``sknet.nets._module.Dropout``) do in its fit, from its own generator: uniforms
        of the parameters' dtype, kept below ``keep``, through one model-sized buffer
        compared while it is in cache. The scale ``1 / keep`` is rounded in the
        parameters' dtype, as the fit's; a model without rows draws nothing, and padding
        rows get 0.

        On a GPU a draw per model would cost a kernel launch each: there each block
        draws all its masks at once, from its first model's generator (reproducible,
        but not the sequential fits' masks).
        """
        scales = self._buffer(f"dropout{layer}", shapes)[1]
        if scales[0].device.type != "cpu":
            for block, scale in zip(self.blocks, scales, strict=True):
                draw = torch.rand(scale.shape, generator=block.generators[0], device=scale.device,
                                  dtype=scale.dtype)
                torch.div(draw < self.keep[block.span], self.keep[block.span], out=scale)
            return scales
        draws = self._buffer("draws", [(max(math.prod(shape[1:]) for shape in shapes),)])[0]
        for block, scale in zip(self.blocks, scales, strict=True):
            rows, units = scale.shape[1:]
            for j, generator in enumerate(block.generators):
                k = block.span.start + j
                n = rows if counts is None else counts[k]
                if n:
                    uniforms = draws[:n * units].uniform_(generator=generator).view(n, units)
                    torch.lt(uniforms, self.keep_host[k], out=scale[j, :n])
                if n < rows:
                    scale[j, n:].zero_()
            scale.div_(self.keep[block.span])
        return scales

    def _buffer(self, name, shapes, dtype=None):
        """A flat tensor reused from step to step, and its views in ``shapes`` (see :meth:`_flat`);
        in the parameters' dtype unless ``dtype`` is given."""
        cached = self._buffers.get(name)
        if cached is None or cached[2] != shapes:
            flat = self.blocks[0].weights[0].new_empty(sum(math.prod(shape) for shape in shapes), dtype=dtype)
            cached = self._buffers[name] = (flat, _split(flat, shapes), shapes)
        return cached[:2]

    def _flat(self, name, shapes, training, *operands):
        """A flat tensor (the parameters' dtype) holding ``shapes`` end to end, and its views in those shapes.

        In training it is reused from step to step, views included: on CPU, allocating
        several MB per operation made the allocator map and fault in fresh pages every
        step. ``(None, [None, ...])`` when autograd records ``operands``.
        """
        recorded = [*operands, self.blocks[0].weights[0]]  # parameters are all leaves, or none
        if torch.is_grad_enabled() and any(t.requires_grad for t in recorded):
            return None, [None] * len(shapes)  # the tests check the hand-written backward pass
        if not training:
            flat = self.blocks[0].weights[0].new_empty(sum(math.prod(shape) for shape in shapes))
            return flat, _split(flat, shapes)
        return self._buffer(name, shapes)

    def keep_models(self, index):
        """Keep only the models ``index`` (ascending positions, a tensor), in that order."""
        self._buffers = {}
        host = index.cpu().numpy()
        blocks, start = [], 0
        for block in self.blocks:
            local = host[(host >= block.span.start) & (host < block.span.stop)] - block.span.start
            if len(local):
                block.keep_models(torch.as_tensor(local, device=index.device), start)
                blocks.append(block)
                start += len(local)
        self.blocks = blocks
        self.keep = self.keep[index]
        self.keep_host = [self.keep_host[k] for k in host.tolist()]

    def l1_norms(self):
        """Sum of absolute weights of each model, shape ``(K,)``: what ``l1`` penalises."""
        return torch.cat([sum(w.abs().sum(dim=(1, 2)) for w in block.weights) for block in self.blocks])

    def add_l1_grads(self, l1):
        """Add the gradient of ``l1 * l1_norms()`` (``l1`` of shape ``(K, 1, 1)``) to the weights'."""
        for block in self.blocks:
            for grad, weight in zip(block.grads, block.weights, strict=False):
                grad.addcmul_(weight.sign(), l1[block.span])

    def unstack(self, k, tensors):
        """Model ``k``'s slices of ``tensors`` (laid out as :meth:`parameters`), under
        ``MLPModule``'s parameter names and in its parameters' shapes."""
        block, j = self._locate(k)
        start = sum(len(other.grads) for other in self.blocks[:self.blocks.index(block)])
        names = self._names()
        return {name: tensor[j].T.contiguous() if i < len(self.names) else tensor[j, 0].clone()
                for i, (name, tensor) in enumerate(zip(names, tensors[start:], strict=False))}

    def restack(self, k, named, tensors):
        """Write ``named`` (tensors under ``MLPModule``'s parameter names, in their shapes) into
        model ``k``'s slices of ``tensors`` (laid out as :meth:`parameters`): :meth:`unstack` undone."""
        block, j = self._locate(k)
        start = sum(len(other.grads) for other in self.blocks[:self.blocks.index(block)])
        with torch.no_grad():
            for i, (name, tensor) in enumerate(zip(self._names(), tensors[start:], strict=False)):
                if name in named:
                    (tensor[j] if i < len(self.names) else tensor[j, 0]).copy_(
                        named[name].T if i < len(self.names) else named[name])

    def generator(self, k):
        """Model ``k``'s dropout generator, or None without dropout."""
        block, j = self._locate(k)
        return block.generators[j] if block.generators else None

    def _names(self):
        """The parameter names of :meth:`unstack`'s layout: weights, biases, then batch norms'."""
        return ([f"{name}.weight" for name in self.names] + [f"{name}.bias" for name in self.names]
                + [f"{name}.{part}" for name in self.norm_names for part in ("weight", "bias")])

    def state_dict(self, k):
        """Weights (and batch-norm statistics) of model ``k`` under ``MLPModule``'s names."""
        state = self.unstack(k, self.parameters()[0])
        block, j = self._locate(k)
        for name, norm in zip(self.norm_names, block.norms, strict=True):
            state.update({f"{name}.{key}": value for key, value in norm.buffers(j).items()})
        return state

    def write_module(self, k, module):
        """Write model ``k``'s :meth:`state_dict` into ``module``, an ``MLPModule`` of its shapes.

        What ``module.load_state_dict(self.state_dict(k))`` does, copying each tensor
        once (straight from its stacked slice) instead of twice.
        """
        block, j = self._locate(k)
        tensors = module.state_dict(keep_vars=True)
        names = self._names()
        sources = [(name, stacked[j].T if i < len(self.names) else stacked[j, 0])
                   for i, (name, stacked) in enumerate(zip(names, block.parameters()[0], strict=True))]
        for name, norm in zip(self.norm_names, block.norms, strict=True):
            sources += [(f"{name}.{key}", value) for key, value in norm.buffers(j, copy=False).items()]
        if sorted(tensors) != sorted(name for name, _ in sources):
            raise KeyError(f"The module's tensors {sorted(tensors)} are not the model's.")
        with torch.no_grad():
            for name, value in sources:
                tensors[name].copy_(value)

    def finite(self):
        """Whether each model's parameters are all finite: a ``(K,)`` bool array on the host."""
        per_block = [torch.stack([torch.isfinite(p).flatten(1).all(dim=1) for p in block.parameters()[0]])
                     for block in self.blocks]
        return torch.cat([finite.all(dim=0) for finite in per_block]).cpu().numpy()

    def _by_block(self, tensor):
        """Each block's models' slice of ``tensor`` (stacked along its first axis)."""
        return [tensor] if len(self.blocks) == 1 else [tensor[block.span] for block in self.blocks]

    def _locate(self, k):
        """The block holding model ``k``, and its position there."""
        block = next(block for block in self.blocks if block.span.start <= k < block.span.stop)
        return block, k - block.span.start


class _Block:
    """Models of identical shapes, stacked: the models ``span`` of a ``BatchedMLP``."""

    def __init__(self, modules, start, generators=()):
        layers = [[m for m in module.modules() if isinstance(m, nn.Linear)] for module in modules]
        # nn.Linear computes x @ W.T: store W.T so that baddbmm needs no transpose.
        self.weights = [_stack([lay[i].weight.T for lay in layers]) for i in range(len(layers[0]))]
        self.biases = [_stack([lay[i].bias[None] for lay in layers]) for i in range(len(layers[0]))]
        norms = [[m for m in module.modules() if isinstance(m, nn.BatchNorm1d)] for module in modules]
        self.norms = [_StackedNorm([norm[i] for norm in norms]) for i in range(len(norms[0]))]
        self.span = slice(start, start + len(modules))
        self.generators = list(generators)  # of each model's dropout masks (none without dropout)
        # Gradients are written into the same tensors at every step (optimizers may keep views).
        self.grads = [torch.empty_like(p) for p in self.parameters()[0]]

    def parameters(self):
        affine = [t for norm in self.norms for t in (norm.weight, norm.bias)]
        return (self.weights + self.biases + affine,
                [True] * len(self.weights) + [False] * (len(self.biases) + len(affine)))

    def keep_models(self, index, start):
        self.weights = [w[index] for w in self.weights]
        self.biases = [b[index] for b in self.biases]
        self.generators = [self.generators[j] for j in index.tolist()] if self.generators else []
        for norm in self.norms:
            norm.keep_models(index)
        self.span = slice(start, start + len(index))
        self.grads = [torch.empty_like(p) for p in self.parameters()[0]]


def _split(flat, shapes):
    """Views of consecutive parts of ``flat`` in ``shapes``."""
    parts, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        parts.append(flat[start:start + size].view(shape))
        start += size
    return parts


def _stack(tensors):
    return torch.stack([t.detach() for t in tensors]).contiguous()


class _StackedNorm:
    """K ``nn.BatchNorm1d`` layers of one width: per-model affine parameters and running statistics.

    In training each model normalises with the mean and biased variance of the
    real rows of its own batch and moves its running statistics as torch does
    (momentum 0.1, unbiased variance); otherwise it uses those statistics.
    """

    def __init__(self, norms):
        self.eps, self.momentum = norms[0].eps, norms[0].momentum
        self.weight = _stack([n.weight[None] for n in norms])  # (K, 1, units)
        self.bias = _stack([n.bias[None] for n in norms])
        self.running_mean = _stack([n.running_mean[None] for n in norms])
        self.running_var = _stack([n.running_var[None] for n in norms])
        self.n_batches = torch.as_tensor([int(n.num_batches_tracked) for n in norms],
                                         device=self.weight.device)
        self._saved = None

    def forward(self, z, training, rows):
        if not training:
            return (z - self.running_mean) / (self.running_var + self.eps).sqrt() * self.weight + self.bias
        mask = torch.ones(z.shape[:2], dtype=z.dtype, device=z.device) if rows is None else rows
        mask = mask.unsqueeze(2)
        n = mask.sum(dim=1, keepdim=True)  # (K, 1, 1); a model without a batch has n = 0
        safe_n = n.clamp_min(1)
        mean = (z * mask).sum(dim=1, keepdim=True) / safe_n
        centred = (z - mean) * mask
        var = (centred * centred).sum(dim=1, keepdim=True) / safe_n
        inv_std = (var + self.eps).rsqrt()
        normalised = centred * inv_std
        stepping = n > 0
        unbiased = var * safe_n / (safe_n - 1).clamp_min(1)
        self.running_mean.copy_(torch.where(stepping, torch.lerp(self.running_mean, mean, self.momentum),
                                            self.running_mean))
        self.running_var.copy_(torch.where(stepping, torch.lerp(self.running_var, unbiased, self.momentum),
                                           self.running_var))
        self.n_batches += stepping.view(-1)
        self._saved = (normalised, inv_std, mask, safe_n)
        return normalised * self.weight + self.bias

    def backward(self, grad, grad_weight, grad_bias):
        """Gradient with respect to the normalised layer's input; the affine gradients into their tensors."""
        normalised, inv_std, mask, n = self._saved
        grad = grad * mask
        torch.sum(grad * normalised, dim=1, keepdim=True, out=grad_weight)
        torch.sum(grad, dim=1, keepdim=True, out=grad_bias)
        grad_normalised = grad * self.weight
        mean_grad = grad_normalised.sum(dim=1, keepdim=True) / n
        mean_grad_normalised = (grad_normalised * normalised).sum(dim=1, keepdim=True) / n
        self._saved = None
        return (grad_normalised - mean_grad - normalised * mean_grad_normalised) * inv_std * mask

    def keep_models(self, index):
        for name in ("weight", "bias", "running_mean", "running_var"):
            setattr(self, name, getattr(self, name)[index])
        self.n_batches = self.n_batches[index]

    def buffers(self, k, copy=True):
        """Model ``k``'s running statistics under ``nn.BatchNorm1d``'s names (views unless ``copy``)."""
        views = {"running_mean": self.running_mean[k, 0], "running_var": self.running_var[k, 0],
                 "num_batches_tracked": self.n_batches[k]}
        return {name: view.clone() for name, view in views.items()} if copy else views
