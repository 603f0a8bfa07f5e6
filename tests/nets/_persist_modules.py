"""Torch modules for tests/nets/test_persist.py: save needs them at the top level of a module."""

import torch
from torch import nn


class Linear(nn.Module):
    """One linear layer."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X)


class ScaledLinear(nn.Module):
    """A linear layer whose outputs are scaled by sqrt(scale), computed with a tensor in __init__.

    Reading a tensor's value (``float(...)``) fails on torch's meta device, which has none.
    """

    def __init__(self, n_features, n_outputs, scale=4.0):
        super().__init__()
        self.scale = float(torch.tensor(scale).sqrt())
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.scale * self.linear(X)


class LinearOfWidth(nn.Module):
    """``Linear`` as it might become: a hidden layer whose width is a required argument."""

    def __init__(self, n_features, n_outputs, width):
        super().__init__()
        self.hidden = nn.Linear(n_features, width)
        self.output = nn.Linear(width, n_outputs)

    def forward(self, X):
        return self.output(torch.relu(self.hidden(X)))
