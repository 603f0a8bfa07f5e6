"""K MLPs of one shape as one batched model."""

import torch
from torch import nn

from .._options import ACTIVATIONS


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
        device = self.weights[0].device
        self.keep = torch.as_tensor(1 - dropout, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.dropout = bool((dropout > 0).any())
        self.generator = generator

    def parameters(self):
        """Stacked tensors to optimise, and whether each takes weight decay (weights only)."""
        return self.weights + self.biases, [True] * len(self.weights) + [False] * len(self.biases)

    def forward(self, X, training=False):
        """Outputs ``(K, n, n_outputs)`` of inputs ``(K, n, n_features)``."""
        h = X
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = self.activation(torch.baddbmm(bias, h, weight))
            if training and self.dropout:
                draw = torch.rand(h.shape, generator=self.generator, device=h.device)
                h = h * (draw < self.keep) / self.keep
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

    def l1_norms(self):
        """Sum of absolute weights of each model, shape ``(K,)``: what ``l1`` penalises."""
        return sum(w.abs().sum(dim=(1, 2)) for w in self.weights)

    def state_dict(self, k):
        """Weights of model ``k`` under ``MLPModule``'s names."""
        state = {}
        for name, weight, bias in zip(self.names, self.weights, self.biases, strict=True):
            state[f"{name}.weight"] = weight[k].detach().T.contiguous()
            state[f"{name}.bias"] = bias[k, 0].detach().clone()
        return state


def _stack(tensors):
    return torch.stack([t.detach() for t in tensors]).contiguous().requires_grad_()
