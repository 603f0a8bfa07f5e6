"""K MLPs of one shape as one batched model, with a hand-written backward pass.

An MLP's gradients are a few batched matrix products, so the engine computes
them itself instead of recording an autograd graph at every step: with many
small models, building and walking that graph costs more than the arithmetic.
The derivatives of the activations are torch's own backward kernels (the ones
autograd would call), so the numbers are autograd's up to float rounding.
"""

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
    """Stacked linear layers: weights ``(K, in, out)``, biases ``(K, 1, out)``.

    Built from K initialised ``MLPModule`` instances (so each model starts
    from exactly the weights its sequential fit would), and written back into
    them after training.

    Parameters
    ----------
    modules : list of MLPModule
        Modules of identical shape (all with batch normalisation, or none).
    activation : str
        A key of ``sknet._options.ACTIVATIONS``.
    dropout : ndarray of shape (K,)
        Dropout rate of each model (all zero, or all positive).
    generator : torch.Generator, default=None
        Source of the dropout masks.
    """

    def __init__(self, modules, activation, dropout, generator=None):
        self.names = [name for name, m in modules[0].named_modules() if isinstance(m, nn.Linear)]
        layers = [[m for m in module.modules() if isinstance(m, nn.Linear)] for module in modules]
        # nn.Linear computes x @ W.T: store W.T so that baddbmm needs no transpose.
        self.weights = [_stack([lay[i].weight.T for lay in layers]) for i in range(len(self.names))]
        self.biases = [_stack([lay[i].bias[None] for lay in layers]) for i in range(len(self.names))]
        self.activation = ACTIVATIONS[activation]()
        self.activation_grad = _ACTIVATION_GRADS[type(self.activation)]
        self.relu = type(self.activation) is nn.ReLU
        device = self.weights[0].device
        self.keep = torch.as_tensor(1 - dropout, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.dropout = bool((dropout > 0).any())
        self.generator = generator
        self._saved = None
        norms = [[m for m in module.modules() if isinstance(m, nn.BatchNorm1d)] for module in modules]
        self.norm_names = [name for name, m in modules[0].named_modules() if isinstance(m, nn.BatchNorm1d)]
        self.norms = [_StackedNorm([norm[i] for norm in norms]) for i in range(len(self.norm_names))]
        # Gradients are written into the same tensors at every step (optimizers may keep views).
        self.grads = [torch.empty_like(p) for p in self.parameters()[0]]
        self._buffers = {}

    def parameters(self):
        """Stacked tensors to optimise, and whether each takes weight decay (linear weights only)."""
        affine = [t for norm in self.norms for t in (norm.weight, norm.bias)]
        return (self.weights + self.biases + affine,
                [True] * len(self.weights) + [False] * (len(self.biases) + len(affine)))

    def forward(self, X, training=False, rows=None):
        """Outputs ``(K, n, n_outputs)`` of inputs ``(K, n, n_features)``.

        With ``training=True`` dropout is applied, batch normalisation uses (and
        updates) the batch's statistics over the real ``rows`` (a ``(K, n)``
        mask; all rows when None), and what :meth:`backward` needs is kept.
        """
        saved = []
        h = X
        for i, (weight, bias) in enumerate(zip(self.weights[:-1], self.biases[:-1], strict=True)):
            out = self._buffer(f"z{i}", (*h.shape[:2], weight.shape[2]), h, weight) if training else None
            z = torch.baddbmm(bias, h, weight, out=out)
            if self.norms:
                z = self.norms[i].forward(z, training, rows)
            # ReLU's backward needs only its output, so it may overwrite z (saving an allocation).
            a = z.relu_() if self.relu else self.activation(z)
            scale = None
            if training and self.dropout:
                draw = torch.rand(a.shape, generator=self.generator, device=a.device)
                scale = (draw < self.keep) / self.keep
            saved.append((h, z, a, scale))
            h = a if scale is None else a * scale
        self._saved = (saved, h) if training else None
        out = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        # Returned with the outputs axis outermost in memory: the loss reduces over it, which
        # is several times faster along an outer axis than along a short inner one on CPU.
        return out.transpose(1, 2).contiguous().transpose(1, 2)

    def backward(self, grad_out):
        """Gradients of the loss for every tensor of :meth:`parameters`, in its order.

        They are written into the same tensors (``self.grads``) at every call.

        Parameters
        ----------
        grad_out : torch.Tensor of shape (K, n, n_outputs)
            Gradient of the loss with respect to the last :meth:`forward`'s output
            (which must have run with ``training=True``).
        """
        saved, h = self._saved
        n_layers = len(self.weights)
        grad_w, grad_b = self.grads[:n_layers], self.grads[n_layers:]
        grad = grad_out
        for i in reversed(range(n_layers)):
            torch.bmm(h.transpose(1, 2), grad, out=grad_w[i])
            torch.sum(grad, dim=1, keepdim=True, out=grad_b[i])
            if i == 0:
                break
            h, z, a, scale = saved[i - 1]
            weight_t = self.weights[i].transpose(1, 2)
            grad = torch.bmm(grad, weight_t, out=self._buffer(f"grad{i}", z.shape, grad, weight_t))
            if scale is not None:
                grad = grad * scale
            grad = self.activation_grad(grad, z, a)
            if self.norms:
                norm_grads = self.grads[2 * n_layers + 2 * (i - 1):2 * n_layers + 2 * i]
                grad = self.norms[i - 1].backward(grad, *norm_grads)
        self._saved = None
        return self.grads

    def _buffer(self, name, shape, *operands):
        """A float tensor of ``shape`` reused from step to step (None when autograd records ``operands``).

        A training step's large temporaries are written into these: on CPU, allocating
        several MB per operation made the allocator map and fault in fresh pages every step.
        """
        if torch.is_grad_enabled() and any(t.requires_grad for t in operands):
            return None  # the tests check the hand-written backward pass against autograd's
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self._buffers[name] = torch.empty(shape, device=self.weights[0].device)
        return buffer

    def keep_models(self, index):
        """Keep only the models ``index`` (a tensor of positions), in that order."""
        self._buffers = {}
        self.weights = [w[index] for w in self.weights]
        self.biases = [b[index] for b in self.biases]
        for norm in self.norms:
            norm.keep_models(index)
        self.grads = [torch.empty_like(p) for p in self.parameters()[0]]
        self.keep = self.keep[index]

    def l1_norms(self):
        """Sum of absolute weights of each model, shape ``(K,)``: what ``l1`` penalises."""
        return sum(w.abs().sum(dim=(1, 2)) for w in self.weights)

    def add_l1_grads(self, grads, l1):
        """Add the gradient of ``l1 * l1_norms()`` (``l1`` of shape ``(K, 1, 1)``) to the weights'."""
        for grad, weight in zip(grads[:len(self.weights)], self.weights, strict=True):
            grad.addcmul_(weight.sign(), l1)

    def unstack(self, k, tensors):
        """Model ``k``'s slices of ``tensors`` (laid out as :meth:`parameters`), under
        ``MLPModule``'s parameter names and in its parameters' shapes."""
        names = ([f"{name}.weight" for name in self.names] + [f"{name}.bias" for name in self.names]
                 + [f"{name}.{part}" for name in self.norm_names for part in ("weight", "bias")])
        return {name: tensor[k].T.contiguous() if i < len(self.weights) else tensor[k, 0].clone()
                for i, (name, tensor) in enumerate(zip(names, tensors, strict=True))}

    def state_dict(self, k):
        """Weights (and batch-norm statistics) of model ``k`` under ``MLPModule``'s names."""
        state = self.unstack(k, self.parameters()[0])
        for name, norm in zip(self.norm_names, self.norms, strict=True):
            state.update({f"{name}.{key}": value for key, value in norm.buffers(k).items()})
        return state


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

    def buffers(self, k):
        """Model ``k``'s running statistics under ``nn.BatchNorm1d``'s buffer names."""
        return {"running_mean": self.running_mean[k, 0].clone(),
                "running_var": self.running_var[k, 0].clone(),
                "num_batches_tracked": self.n_batches[k].clone()}
