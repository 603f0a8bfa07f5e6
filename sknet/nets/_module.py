"""The torch module an MLP is made of."""

from collections import OrderedDict

import torch
from torch import nn

from .._options import ACTIVATIONS, init_linear


class MLPModule(nn.Module):
    """A fully connected network: ``[linear -> batch norm -> activation -> dropout] * k -> linear``.

    Parameters
    ----------
    n_features : int
        Width of the input; the estimators fill it in from ``X``.
    hidden_sizes : tuple of int, default=(100,)
        Width of each hidden layer; empty for a linear model.
    n_outputs : int, default=1
        Width of the output (logits for classification). The estimators
        fill it in from the targets.
    activation : str
        A key of ``sknet._options.ACTIVATIONS``.
    dropout : float
        Dropout rate after each hidden activation.
    batch_norm : bool
        Whether each hidden linear layer is followed by batch normalisation.
    weight_init : str
        One of ``sknet._options.WEIGHT_INITS``.
    dtype : torch.dtype, default=torch.float32
        Floating-point type of the parameters.
    """

    def __init__(self, n_features, hidden_sizes=(100,), n_outputs=1, activation="relu",
                 dropout=0.0, batch_norm=False, weight_init="default", dtype=torch.float32):
        super().__init__()
        layers = OrderedDict()
        width = n_features
        for i, units in enumerate(hidden_sizes):
            linear = nn.Linear(width, units, dtype=dtype)
            init_linear(linear, weight_init, activation)
            layers[f"linear{i}"] = linear
            if batch_norm:
                layers[f"norm{i}"] = nn.BatchNorm1d(units, dtype=dtype)
            layers[f"act{i}"] = ACTIVATIONS[activation]()
            if dropout > 0:
                layers[f"drop{i}"] = Dropout(dropout)
            width = units
        self.hidden = nn.Sequential(layers)
        self.output = nn.Linear(width, n_outputs, dtype=dtype)
        init_linear(self.output, weight_init, "identity")

    def forward(self, X):
        if not X.is_floating_point():  # integer features (kept integer for embedding modules)
            X = X.to(self.output.weight.dtype)
        return self.output(self.hidden(X))

    def penalized_weights(self):
        """The weight matrices of the linear layers: what L1 and L2 penalise."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask is drawn as uniforms of the activations' own dtype.

    Each element is kept where a uniform draw is below ``1 - p``, and kept
    elements are scaled by ``1 / (1 - p)``, as ``nn.Dropout`` does; but
    ``nn.Dropout`` on the CPU draws a float64 uniform (64 random bits) per
    element whatever the dtype, and float32 draws take half the generator's work.
    The batched engine draws each model's masks the same way, from the same
    generator state, so a batched fit with dropout is its sequential fit.

    Parameters
    ----------
    p : float
        Probability of an element to be zeroed.
    """

    def forward(self, X):
        if not self.training or self.p == 0:
            return X
        keep = 1 - self.p
        scale = torch.lt(torch.rand(X.shape, dtype=X.dtype, device=X.device), keep).to(X.dtype).div_(keep)
        return X * scale
