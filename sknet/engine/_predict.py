"""Batched prediction: many fitted nets' raw outputs on the same rows, one forward pass at a time.

A search scores each fold's models on the fold's test rows. Run one by one,
each model's forward pass pays torch's per-operation cost for a few small
products; stacked as a :class:`BatchedMLP` (in evaluation mode: no dropout,
batch normalisation from the running statistics), or any other module as a
:class:`BatchedModule` (vmap), all the models of one architecture share each operation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..nets import training_spec
from ._conv import stack_modules
from ._functional import has_hand_written_backward, tensor_layout
from ._model import BatchedMLP

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ..nets._base import BaseTorchNet

# Floats of one layer's activations for all the models of a pass: rows are cut to stay under it.
MAX_PASS_FLOATS = 2**23


def predict_batched(estimators: Sequence[BaseTorchNet], X: ArrayLike) -> list[torch.Tensor]:
    """Raw outputs of fitted sknet nets (any torch module) on the same rows.

    Parameters
    ----------
    estimators : list of MLPClassifier, MLPRegressor, TorchClassifier or TorchRegressor
        Fitted estimators, all on the same features and of one ``dtype``.
    X : ndarray of shape (n_samples, n_features) or (n_samples, ...)
        The rows, validated by one of them (:func:`sknet.nets.validate_input`): dense, of their dtype.

    Returns
    -------
    outputs : list of torch.Tensor of shape (n_samples, n_outputs)
        Each estimator's raw network outputs, on the CPU, as its ``net_.forward`` gives them
        (up to float rounding: the batched products sum in another order).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.engine import predict_batched
    >>> from sknet.nets import validate_input
    >>> X, y = load_iris(return_X_y=True)
    >>> nets = [MLPClassifier(n_units=u, max_epochs=5, random_state=0).fit(X, y) for u in (8, 16)]
    >>> outputs = predict_batched(nets, validate_input(nets[0], X))
    >>> [tuple(out.shape) for out in outputs]
    [(150, 3), (150, 3)]
    """
    outputs: list[Any] = [None] * len(estimators)  # each estimator's filled in below
    # Each MLP's spec once (it reads every parameter: a third of a millisecond).
    specs = [training_spec(est) if has_hand_written_backward(est) else None for est in estimators]
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, est in enumerate(estimators):
        groups.setdefault(_architecture(est, specs[i]), []).append(i)
    for members in groups.values():
        if specs[members[0]] is not None:  # equal depths and widths: blocks; equal activations: runs
            members.sort(key=lambda i: _block_order(specs[i]))
            found = _forward([estimators[i] for i in members], [specs[i] for i in members], X)
        else:
            found = _forward_modules([estimators[i] for i in members], X)
        for i, out in zip(members, found, strict=True):
            outputs[i] = out
    return outputs


def _block_order(spec):
    """An MLP's place in a batched pass (its ``spec``): by depth, widths and batch norm (blocks), then
    activation (runs)."""
    hidden = spec.hidden_sizes or ()
    return len(hidden), hidden, spec.batch_norm, spec.activation


def _architecture(estimator, spec):
    """What models must share to be stacked: all but their depths, widths, batch norm and activations
    (and the rates of dropout); for modules other than sknet's MLP, their class and their tensors'
    names, shapes and dtypes."""
    module = estimator.net_.module_
    if spec is None:
        return (type(module), tensor_layout(module), estimator.device_)
    return (module.output.out_features, estimator.device_, spec.dtype)


def _forward(estimators, specs, X):
    first = estimators[0]
    model = BatchedMLP([est.net_.module_ for est in estimators], [spec.activation for spec in specs],
                       np.zeros(len(estimators)))
    X = torch.as_tensor(np.asarray(X), device=first.device_)
    widest = max([X.shape[1], *(max(spec.hidden_sizes, default=0) for spec in specs)])
    step = max(1, MAX_PASS_FLOATS // (len(estimators) * widest))
    parts = []
    with torch.no_grad():
        for start in range(0, len(X), step):
            rows = X[start:start + step]
            parts.append(model.forward(rows.expand(len(estimators), *rows.shape)).cpu())
    out = torch.cat(parts, dim=1) if parts else X.new_empty((len(estimators), 0, 0))
    return list(out)


def _forward_modules(estimators, X):
    """Outputs of fitted nets whose modules are stacked as a :class:`BatchedModule` (vmap)."""
    model = stack_modules([est.net_.module_ for est in estimators])
    X = torch.as_tensor(np.asarray(X), device=estimators[0].device_)
    step = max(1, MAX_PASS_FLOATS // (len(estimators) * max(1, math.prod(X.shape[1:]))))
    parts = [model.forward(X[start:start + step].expand(len(estimators), *X[start:start + step].shape)).cpu()
             for start in range(0, len(X), step)]
    return list(torch.cat(parts, dim=1)) if parts else [X.new_empty((0, 0))] * len(estimators)
