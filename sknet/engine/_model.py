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
    nn.ReLU: lambda grad, z, a: _aten.threshold_backward.default(grad, a, 0),
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
        Modules of identical shape, without batch normalisation.
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
        device = self.weights[0].device
        self.keep = torch.as_tensor(1 - dropout, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.dropout = bool((dropout > 0).any())
        self.generator = generator
        self._saved = None
        # Gradients are written into the same tensors at every step (optimizers may keep views).
        self.grads = [torch.empty_like(p) for p in self.weights + self.biases]

    def parameters(self):
        """Stacked tensors to optimise, and whether each takes weight decay (weights only)."""
        return self.weights + self.biases, [True] * len(self.weights) + [False] * len(self.biases)

    def forward(self, X, training=False):
        """Outputs ``(K, n, n_outputs)`` of inputs ``(K, n, n_features)``.

        With ``training=True`` dropout is applied and what :meth:`backward`
        needs is kept.
        """
        saved = []
        h = X
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            z = torch.baddbmm(bias, h, weight)
            a = self.activation(z)
            scale = None
            if training and self.dropout:
                draw = torch.rand(a.shape, generator=self.generator, device=a.device)
                scale = (draw < self.keep) / self.keep
            saved.append((h, z, a, scale))
            h = a if scale is None else a * scale
        self._saved = (saved, h) if training else None
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

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
            grad = torch.bmm(grad, self.weights[i].transpose(1, 2))
            if scale is not None:
                grad = grad * scale
            grad = self.activation_grad(grad, z, a)
        self._saved = None
        return self.grads

    def keep_models(self, index):
        """Keep only the models ``index`` (a tensor of positions), in that order."""
        self.weights = [w[index] for w in self.weights]
        self.biases = [b[index] for b in self.biases]
        self.grads = [torch.empty_like(p) for p in self.weights + self.biases]
        self.keep = self.keep[index]

    def l1_norms(self):
        """Sum of absolute weights of each model, shape ``(K,)``: what ``l1`` penalises."""
        return sum(w.abs().sum(dim=(1, 2)) for w in self.weights)

    def add_l1_grads(self, grads, l1):
        """Add the gradient of ``l1 * l1_norms()`` (``l1`` of shape ``(K, 1, 1)``) to the weights'."""
        for grad, weight in zip(grads[:len(self.weights)], self.weights, strict=True):
            grad.addcmul_(weight.sign(), l1)

    def state_dict(self, k):
        """Weights of model ``k`` under ``MLPModule``'s names."""
        state = {}
        for name, weight, bias in zip(self.names, self.weights, self.biases, strict=True):
            state[f"{name}.weight"] = weight[k].T.contiguous()
            state[f"{name}.bias"] = bias[k, 0].clone()
        return state


def _stack(tensors):
    return torch.stack([t.detach() for t in tensors]).contiguous()
