"""K MLPs as one batched model, with a hand-written backward pass.

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
from ._norm import StackedNorm, stack_padded

_aten = torch.ops.aten
# x + bias then ReLU in one pass, in place (the kernel torch's JIT fuses add and relu into);
# two passes where this torch lacks it.
_add_relu_ = (_aten._add_relu_.Tensor if hasattr(_aten, "_add_relu_")
              else lambda x, bias: x.add_(bias).relu_())

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
    """K MLPs as one model, with a hand-written backward pass.

    The models may differ in depth, in their layers' widths and in their
    activation. Models of one depth whose layers are padded to the same widths
    form a block, whose weights are stacked ``(K_b, in, out)`` and biases
    ``(K_b, 1, out)``: a narrower model's extra units have zero weights in and
    out, get zero gradients and stay zero under every optimizer, so each model
    computes what its own fit computes. Each block runs its own matrix products,
    batch norm and dropout draws; at hidden layer ``i`` the activations and their
    gradients run over the blocks deeper than ``i`` at once, on a buffer holding
    them end to end (one pass per activation when models differ there), as do the
    loss and the optimizer step outside: with many small models, each operation's
    fixed cost is what counts. Each block's output layer reads its own last
    hidden layer.

    Built from K initialised ``MLPModule`` instances (so each model starts
    from exactly the weights its sequential fit would), and written back into
    them after training.

    Parameters
    ----------
    modules : list of MLPModule
        Adjacent models of equal padded widths (``widths``), all with batch
        normalisation or all without, form a block.
    activation : str or list of str
        Keys of ``sknet._options.ACTIVATIONS``: one for all models, or each model's.
    dropout : ndarray of shape (K,)
        Dropout rate of each model (0 for a model without dropout: it draws nothing).
    generators : list of torch.Generator, default=None
        Each model's generator of dropout masks (on its device); needed with dropout.
        On the CPU a model draws its masks from it as its ``Dropout`` layers would
        draw them from torch's global generator in its own fit: one draw per hidden
        layer and step, over its real rows and units only. In the state that generator
        has after the net's initialisation, a model's masks are those of its sequential
        fit. (On a GPU each block draws from its first model's generator.)
    widths : list of tuple of int, default=None
        The hidden widths each model is padded to (each at least its own); its own
        widths when None.
    labels : list, default=None
        A label of each model that also splits blocks (its optimizer: each
        optimizer steps its own tensors); a block's is its ``label``.
    """

    def __init__(self, modules, activation, dropout, generators=None, widths=None, labels=None):
        activations = [activation] * len(modules) if isinstance(activation, str) else list(activation)
        padded = [tuple(_hidden_widths(m)) for m in modules] if widths is None else [tuple(w) for w in widths]
        # A block: models of one depth, padded widths, and batch norm or not.
        labels = [None] * len(modules) if labels is None else list(labels)
        kinds = [(p, any(isinstance(m, nn.BatchNorm1d) for m in module.modules()), label)
                 for p, module, label in zip(padded, modules, labels, strict=True)]
        starts = [k for k in range(len(modules)) if k == 0 or kinds[k] != kinds[k - 1]]
        generators = generators or []
        self.blocks = [_Block(modules[start:stop], start, generators[start:stop], padded[start],
                              activations[start:stop], labels[start])
                       for start, stop in zip(starts, [*starts[1:], len(modules)], strict=True)]
        self.depth = max(block.depth for block in self.blocks)
        kinds = {ACTIVATIONS[name] for name in activations}
        # One activation for all: one pass over each layer's buffer (ReLU's in place).
        self.activation = ACTIVATIONS[activations[0]]() if len(kinds) == 1 else None
        self.relu = kinds == {nn.ReLU}
        self.norm = any(block.norms for block in self.blocks)
        weight = self.blocks[0].weights[0]  # every buffer and column takes the parameters' dtype
        self.keep_host = (1 - np.asarray(dropout, dtype=np.float64)).tolist()  # as torch computes 1 - p
        self.keep = torch.as_tensor(self.keep_host, dtype=weight.dtype, device=weight.device).view(-1, 1, 1)
        self.dropout = bool((np.asarray(dropout) > 0).any())
        self._saved = None
        self._buffers = {}
        self._zero_views = {}
        self._masks = {}  # each model's dropout masks of its batch of several steps

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

    def forward(self, X, training=False, rows=None, counts=None, batches=None):
        """Outputs ``(K, n, n_outputs)`` of inputs ``(K, n, n_features)``.

        With ``training=True`` dropout is applied, batch normalisation uses (and
        updates) the batch's statistics over the real ``rows`` (a ``(K, n)``
        mask; all rows when None), and what :meth:`backward` needs is kept.
        ``counts`` (host integers, one per model) says how many rows of each
        model are real, the first ones (as ``rows`` does; all when None).
        ``batches`` (host integers ``(offsets, sizes)``, one of each per model; None
        when each step is a whole batch) says where a step's rows start in their
        batch, and how many rows the batch has: dropout masks are drawn per batch.
        """
        saved = []
        hidden = self._by_block(X)  # each block's input to its next layer
        block_rows = None if rows is None or not self.norm else self._by_block(rows)
        for i in range(self.depth):
            live = [b for b, block in enumerate(self.blocks) if block.depth > i]
            inputs = [hidden[b] for b in live]
            shapes = [(*h.shape[:2], self.blocks[b].weights[i].shape[2])
                      for b, h in zip(live, inputs, strict=True)]
            flat, parts = self._flat(f"z{i}", shapes, training, X)
            if self.relu and not self.norm and flat is not None:
                # Bias and ReLU in one pass over the product (a, written over z: ReLU's backward
                # needs only a); padded units stay 0 (zero weights and bias).
                for b, h, part in zip(live, inputs, parts, strict=True):
                    _add_relu_(torch.bmm(h, self.blocks[b].weights[i], out=part), self.blocks[b].biases[i])
                hidden, saved = self._keep(i, live, inputs, flat, flat, parts, shapes, training, counts,
                                           batches, hidden, saved)
                continue
            zs = [torch.baddbmm(self.blocks[b].biases[i], h, self.blocks[b].weights[i], out=part)
                  for b, h, part in zip(live, inputs, parts, strict=True)]
            if self.norm:
                zs = [self._normalise(b, i, z, training, block_rows) for b, z in zip(live, zs, strict=True)]
                if flat is not None:
                    for part, z in zip(parts, zs, strict=True):
                        if z is not part:
                            part.copy_(z)
            if flat is None:  # autograd records this pass (the tests' reference)
                flat = torch.cat([z.reshape(-1) for z in zs])
                parts = _split(flat, shapes)
            a, outputs = self._activate(i, live, flat, parts, shapes, training)
            hidden, saved = self._keep(i, live, inputs, flat, a, outputs, shapes, training, counts,
                                       batches, hidden, saved)
        self._saved = (saved, hidden) if training else None
        # Written with the outputs axis outermost in memory: the loss reduces over it, which
        # is several times faster along an outer axis than along a short inner one on CPU.
        shape = (len(X), self.blocks[0].weights[-1].shape[2], X.shape[1])
        out_t = self._flat("out", [shape], training, X)[1][0]
        outs = [None] * len(hidden) if out_t is None else self._by_block(out_t)
        parts = [torch.baddbmm(block.biases[-1].transpose(1, 2), block.weights[-1].transpose(1, 2),
                               h.transpose(1, 2), out=out)
                 for block, h, out in zip(self.blocks, hidden, outs, strict=True)]
        return (out_t if out_t is not None else torch.cat(parts)).transpose(1, 2)

    def _keep(self, i, live, inputs, z, a, outputs, shapes, training, counts, batches, hidden, saved):
        """Hidden layer ``i``'s outputs (after dropout) as the blocks' next inputs, and what its
        backward pass needs (in ``saved``)."""
        scales = [None] * len(live)
        if training and self.dropout:
            scales = self._dropout_scales(i, live, shapes, counts, batches)
            # Into memory kept from step to step where autograd does not record (as _flat's).
            kept = self._flat(f"dropped{i}", shapes, training, z)[1]
            outputs = [out if scale is None else torch.mul(out, scale, out=into)
                       for out, scale, into in zip(outputs, scales, kept, strict=True)]
        saved.append((live, inputs, z, a, scales, shapes))
        for b, out in zip(live, outputs, strict=True):
            hidden[b] = out
        return hidden, saved

    def _normalise(self, b, i, z, training, block_rows):
        """Block ``b``'s batch norm of its hidden layer ``i`` (``z`` as it is without one)."""
        norms = self.blocks[b].norms
        return norms[i].forward(z, training, None if block_rows is None else block_rows[b]) if norms else z

    def _activate(self, i, live, flat, parts, shapes, training):
        """Hidden layer ``i``'s activations of the blocks ``live`` (their pre-activations ``flat``,
        viewed as ``parts``): the flat activations, and each block's (padded units at 0)."""
        if self.activation is not None:
            # ReLU's backward needs only its output, so it may overwrite z (saving an allocation).
            a = flat.relu_() if self.relu else self.activation(flat)
            outputs = parts if a is flat else _split(a, shapes)
        else:
            a = self._flat(f"a{i}", shapes, training, flat)[0]
            if a is None:  # autograd records: the activations out of place
                a = torch.cat([self.blocks[b].activate(part).reshape(-1)
                               for b, part in zip(live, parts, strict=True)])
            else:
                for b, part, out in zip(live, parts, _split(a, shapes), strict=True):
                    self.blocks[b].activate(part, out)
            outputs = _split(a, shapes)
        # Padded units are 0 already where the activation of 0 is 0; elsewhere masked (out of place:
        # the activation's backward reads its output).
        return a, [out if self.blocks[b].unit_masks[i] is None else out * self.blocks[b].unit_masks[i]
                   for b, out in zip(live, outputs, strict=True)]

    def backward(self, grad_out, accumulate=False):
        """Gradients of the loss for every tensor of :meth:`parameters`, in its order.

        They are written into the same tensors (``grads``) at every call, or added
        to what they hold with ``accumulate`` (a model's batch cut into several steps).

        Parameters
        ----------
        grad_out : torch.Tensor of shape (K, n, n_outputs)
            Gradient of the loss with respect to the last :meth:`forward`'s output
            (which must have run with ``training=True``).
        accumulate : bool, default=False
            Add the gradients to ``grads`` instead of overwriting them.
        """
        saved, hidden = self._saved
        ups = self._by_block(grad_out)  # each block's gradient of the layer above the current one
        for block, h, up in zip(self.blocks, hidden, ups, strict=True):
            block.add_grads(block.depth, h, up, accumulate)
        for i in reversed(range(self.depth)):
            live, inputs, z, a, scales, shapes = saved[i]
            flat, parts = self._flat(f"grad{i}", shapes, True, z)
            for b, part, scale in zip(live, parts, scales, strict=True):
                torch.bmm(ups[b], self.blocks[b].weights[i + 1].transpose(1, 2), out=part)
                if scale is not None:
                    part.mul_(scale)
            grads = self._activation_grads(live, flat, parts, z, a, shapes)
            for b, h, grad in zip(live, inputs, grads, strict=True):
                block = self.blocks[b]
                if block.norms:
                    grad = block.norms[i].backward(grad, *block.grads[2 * (block.depth + 1) + 2 * i:][:2])
                block.add_grads(i, h, grad, accumulate)
                ups[b] = grad
        self._saved = None
        return self.grads

    def _activation_grads(self, live, flat, parts, z, a, shapes):
        """The gradients ``parts`` (of the activations ``a``, pre-activations ``z``) through the
        activations: each block's gradient of its pre-activations."""
        if self.activation is not None:
            grad = _ACTIVATION_GRADS[type(self.activation)](flat, z, a)
            return parts if grad is flat else _split(grad, shapes)
        for b, part, z_part, a_part in zip(live, parts, _split(z, shapes), _split(a, shapes), strict=True):
            self.blocks[b].activation_grad(part, z_part, a_part)
        return parts

    def zero_grads(self, stepped):
        """Zero the gradients of the models ``stepped`` (a ``(K,)`` bool array): where the next
        batch's first step starts adding them up. One call; the views of each pattern are kept
        (models of a few batch sizes step in a few patterns, the same every epoch)."""
        key = stepped.tobytes()
        if key not in self._zero_views:
            self._zero_views[key] = [grad[run] for block in self.blocks
                                     for run in _runs(np.flatnonzero(stepped[block.span]))
                                     for grad in block.grads]
        torch._foreach_zero_(self._zero_views[key])

    def _dropout_scales(self, layer, live, shapes, counts, batches=None):
        """Each live block's dropout scales (``shapes``) at hidden layer ``layer``: ``mask / keep``.

        Each model draws the mask of its real rows and units as its ``Dropout``
        layers (``sknet.nets._module.Dropout``) do in its fit, from its own generator:
        uniforms of the parameters' dtype, kept below ``keep``, through one model-sized
        buffer compared while it is in cache. The scale ``1 / keep`` is rounded in the
        parameters' dtype, as the fit's; a model without rows or without dropout draws
        nothing, and padding rows and units get 0 (1 without dropout). A batch of several
        steps (``batches``) draws all its layers' masks at its first step, in the order
        its fit draws them, and each step takes its rows of them.

        On a GPU a draw per model would cost a kernel launch each: there each block
        draws all its masks at once, from its first model's generator (reproducible,
        but not the sequential fits' masks).
        """
        scales = self._buffer(f"dropout{layer}", shapes)[1]
        blocks = [self.blocks[b] for b in live]
        if scales[0].device.type != "cpu":
            for block, scale in zip(blocks, scales, strict=True):
                draw = torch.rand(scale.shape, generator=block.generators[0], device=scale.device,
                                  dtype=scale.dtype)
                torch.div(draw < self.keep[block.span], self.keep[block.span], out=scale)
            return scales
        draws = self._buffer("draws", [(max(math.prod(shape[1:]) for shape in shapes),)])[0]
        for block, scale in zip(blocks, scales, strict=True):
            rows = scale.shape[1]
            for j, generator in enumerate(block.generators):
                k = block.span.start + j
                if self.keep_host[k] == 1:
                    scale[j].fill_(1)
                    continue
                n = rows if counts is None else counts[k]
                units = block.widths[j][layer + 1]
                scale[j].zero_()
                if n and (batches is None or batches[1][k] == n):
                    uniforms = draws[:n * units].uniform_(generator=generator).view(n, units)
                    scale[j, :n, :units] = uniforms < self.keep_host[k]
                elif n:
                    offset = batches[0][k]
                    if layer == 0 and offset == 0:
                        self._masks[k] = self._batch_masks(block, j, batches[1][k], generator,
                                                           self.keep_host[k])
                    scale[j, :n, :units] = self._masks[k][layer][offset:offset + n]
            scale.div_(self.keep[block.span])
        return scales

    def _batch_masks(self, block, j, n, generator, keep):
        """Model ``j`` of ``block``'s dropout masks of every hidden layer for a batch of ``n`` rows."""
        weight = block.weights[0]
        return [torch.empty(n * units, dtype=weight.dtype).uniform_(generator=generator).view(n, units) < keep
                for units in block.widths[j][1:-1]]

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
        self._buffers, self._zero_views, self._masks = {}, {}, {}
        host = index.cpu().numpy()
        blocks, start = [], 0
        for block in self.blocks:
            local = host[(host >= block.span.start) & (host < block.span.stop)] - block.span.start
            if len(local):
                block.keep_models(torch.as_tensor(local, device=index.device), start)
                blocks.append(block)
                start += len(local)
        self.blocks = blocks
        self.depth = max(block.depth for block in self.blocks)
        self.keep = self.keep[index]
        self.keep_host = [self.keep_host[k] for k in host.tolist()]

    def set_dropout(self, k, rate):
        """Model ``k`` drops units at ``rate`` from now on (a model with dropout has a generator)."""
        self.keep_host[k] = float(1 - np.float64(rate))
        self.keep[k] = self.keep_host[k]
        self.dropout = self.dropout or rate > 0
        self._masks.pop(k, None)

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
        block, j, start = self._locate(k)
        names = block.parameter_names()
        return {name: _as_module(block.real(j, i, tensor), i < block.depth + 1).clone(
                    memory_format=torch.contiguous_format)
                for i, (name, tensor) in enumerate(zip(names, tensors[start:], strict=False))}

    def restack(self, k, named, tensors):
        """Write ``named`` (tensors under ``MLPModule``'s parameter names, in their shapes) into
        model ``k``'s slices of ``tensors`` (laid out as :meth:`parameters`): :meth:`unstack` undone."""
        block, j, start = self._locate(k)
        with torch.no_grad():
            for i, (name, tensor) in enumerate(zip(block.parameter_names(), tensors[start:], strict=False)):
                if name in named:
                    block.real(j, i, tensor).copy_(_as_module(named[name], i < block.depth + 1))

    def generator(self, k):
        """Model ``k``'s dropout generator, or None without dropout."""
        block, j, _ = self._locate(k)
        return block.generators[j] if block.generators else None

    def state_dict(self, k):
        """Weights (and batch-norm statistics) of model ``k`` under ``MLPModule``'s names."""
        state = self.unstack(k, self.parameters()[0])
        block, j, _ = self._locate(k)
        for name, norm, units in zip(block.norm_names, block.norms, block.widths[j][1:], strict=False):
            state.update({f"{name}.{key}": value for key, value in norm.buffers(j, units).items()})
        return state

    def write_module(self, k, module):
        """Write model ``k``'s :meth:`state_dict` into ``module``, an ``MLPModule`` of its shapes.

        What ``module.load_state_dict(self.state_dict(k))`` does, copying each tensor
        once (straight from its stacked slice) instead of twice.
        """
        block, j, _ = self._locate(k)
        tensors = module.state_dict(keep_vars=True)
        sources = [(name, _as_module(block.real(j, i, stacked), i < block.depth + 1))
                   for i, (name, stacked) in enumerate(zip(block.parameter_names(), block.parameters()[0],
                                                           strict=True))]
        for name, norm, units in zip(block.norm_names, block.norms, block.widths[j][1:], strict=False):
            sources += [(f"{name}.{key}", value) for key, value in norm.buffers(j, units, copy=False).items()]
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
        """The block holding model ``k``, its position there, and where its tensors start in
        :meth:`parameters`."""
        start = 0
        for block in self.blocks:
            if block.span.start <= k < block.span.stop:
                return block, k - block.span.start, start
            start += len(block.grads)
        raise IndexError(k)


class _Block:
    """Models of one depth and padded widths, stacked: the models ``span`` of a ``BatchedMLP``.

    ``widths[j]`` are model ``j``'s own widths (features, hidden layers, outputs);
    ``padded`` the block's. ``runs`` are the runs of models of one activation.
    """

    def __init__(self, modules, start, generators, hidden, activations, label=None):
        self.label = label
        layers = [[m for m in module.modules() if isinstance(m, nn.Linear)] for module in modules]
        self.names = [name for name, m in modules[0].named_modules() if isinstance(m, nn.Linear)]
        self.norm_names = [name for name, m in modules[0].named_modules() if isinstance(m, nn.BatchNorm1d)]
        self.depth = len(hidden)
        self.widths = [[lay[0].in_features, *(linear.out_features for linear in lay)] for lay in layers]
        self.padded = [self.widths[0][0], *hidden, self.widths[0][-1]]
        pairs = list(zip(self.padded[:-1], self.padded[1:], strict=True))
        # nn.Linear computes x @ W.T: store W.T so that baddbmm needs no transpose.
        self.weights = [stack_padded([lay[i].weight.T for lay in layers], pairs[i])
                        for i in range(len(pairs))]
        self.biases = [stack_padded([lay[i].bias[None] for lay in layers], (1, pairs[i][1]))
                       for i in range(len(pairs))]
        norms = [[m for m in module.modules() if isinstance(m, nn.BatchNorm1d)] for module in modules]
        self.norms = [StackedNorm([norm[i] for norm in norms], hidden[i]) for i in range(len(norms[0]))]
        self.span = slice(start, start + len(modules))
        self.generators = list(generators)  # of each model's dropout masks (none without dropout)
        self.activations = list(activations)
        self._set_models()

    def _set_models(self):
        """What follows from the models held: activation runs, unit masks, gradient tensors."""
        kinds = [ACTIVATIONS[name] for name in self.activations]
        self.runs = [(kind, slice(int(run[0]), int(run[-1]) + 1)) for kind, run in _kind_runs(kinds)]
        self.instances = {kind: kind() for kind in set(kinds)}
        weight = self.weights[0]
        # A padded unit's pre-activation is 0; where its activation is not, it is masked to 0.
        nonzero = any(act(torch.zeros(1)).item() != 0 for act in self.instances.values())
        self.unit_masks = [self._unit_mask(i + 1, weight) if nonzero else None for i in range(self.depth)]
        # Gradients are written into the same tensors at every step (optimizers may keep views),
        # or added to them over a batch of several steps: zero at first.
        self.grads = [torch.zeros_like(p) for p in self.parameters()[0]]

    def _unit_mask(self, layer, like):
        """``(K_b, 1, units)``: 1 on each model's own units of layer ``layer`` (its widths' index),
        0 on its padding; None where no model is padded there."""
        own = torch.as_tensor([w[layer] for w in self.widths], device=like.device)
        if bool((own == self.padded[layer]).all()):
            return None
        units = torch.arange(self.padded[layer], device=like.device)
        return (units < own[:, None]).to(like.dtype)[:, None, :]

    def parameters(self):
        affine = [t for norm in self.norms for t in (norm.weight, norm.bias)]
        return (self.weights + self.biases + affine,
                [True] * len(self.weights) + [False] * (len(self.biases) + len(affine)))

    def parameter_names(self):
        """The names of :meth:`parameters` in ``MLPModule``: weights, biases, then batch norms'."""
        return ([f"{name}.weight" for name in self.names] + [f"{name}.bias" for name in self.names]
                + [f"{name}.{part}" for name in self.norm_names for part in ("weight", "bias")])

    def real(self, j, i, tensor):
        """Model ``j``'s own part (without padding) of ``tensor``, the ``i``-th of :meth:`parameters`
        (or a tensor laid out as it): a view, weights ``(in, out)``, the others ``(units,)``."""
        widths, n_linear = self.widths[j], self.depth + 1
        if i < n_linear:
            return tensor[j, :widths[i], :widths[i + 1]]
        layer = i - n_linear if i < 2 * n_linear else (i - 2 * n_linear) // 2
        return tensor[j, 0, :widths[layer + 1]]

    def add_grads(self, i, h, grad, accumulate):
        """Linear layer ``i``'s gradients from its inputs ``h`` and its outputs' gradient ``grad``."""
        weight, bias = self.grads[i], self.grads[self.depth + 1 + i]
        if accumulate:
            torch.baddbmm(weight, h.transpose(1, 2), grad, out=weight)
            bias.add_(grad.sum(dim=1, keepdim=True))
        else:
            torch.bmm(h.transpose(1, 2), grad, out=weight)
            torch.sum(grad, dim=1, keepdim=True, out=bias)

    def activate(self, z, out=None):
        """Each run's activation of ``z`` (the block's ``(K_b, n, units)``), into ``out``."""
        if out is None:
            return torch.cat([self.instances[kind](z[run]) for kind, run in self.runs])
        for kind, run in self.runs:
            out[run].copy_(self.instances[kind](z[run]))
        return out

    def activation_grad(self, grad, z, a):
        """Each run's activation gradient, into ``grad``."""
        for kind, run in self.runs:
            result = _ACTIVATION_GRADS[kind](grad[run], z[run], a[run])
            if result.data_ptr() != grad[run].data_ptr():
                grad[run].copy_(result)

    def keep_models(self, index, start):
        self.weights = [w[index] for w in self.weights]
        self.biases = [b[index] for b in self.biases]
        host = index.tolist()
        self.generators = [self.generators[j] for j in host] if self.generators else []
        self.widths = [self.widths[j] for j in host]
        self.activations = [self.activations[j] for j in host]
        for norm in self.norms:
            norm.keep_models(index)
        self.span = slice(start, start + len(index))
        self._set_models()


def _hidden_widths(module):
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)][:-1]


def _kind_runs(kinds):
    """``(kind, positions)`` for each run of equal consecutive ``kinds``."""
    runs = []
    for j, kind in enumerate(kinds):
        if runs and runs[-1][0] is kind:
            runs[-1][1].append(j)
        else:
            runs.append((kind, [j]))
    return runs


def _runs(positions):
    """Slices of the runs of consecutive integers in ``positions`` (ascending)."""
    if not len(positions):
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    return [slice(int(run[0]), int(run[-1]) + 1) for run in np.split(positions, breaks)]


def _as_module(tensor, weight):
    """A stacked slice in the module's layout: a weight's ``(in, out)`` transposed."""
    return tensor.T if weight else tensor


def _split(flat, shapes):
    """Views of consecutive parts of ``flat`` in ``shapes``."""
    parts, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        parts.append(flat[start:start + size].view(shape))
        start += size
    return parts
