"""Per-model losses and their gradients with respect to the outputs, for the batched step.

Each model's loss is the weighted mean of its rows' losses (weights from
``class_weight``; padded rows weigh 0), as ``SkorchNet.get_loss`` computes it
for one model. Every function takes the outputs ``(K, n, n_outputs)``, the
targets, and ``coef`` of shape ``(K, n)``, each row's weight divided by its
model's total weight, and returns ``(loss, grad)``: the ``(K,)`` losses and
their gradient with respect to the outputs.
"""

import torch
from torch import nn


def cross_entropy(out, target, coef):
    """``nn.CrossEntropyLoss`` on logits ``(K, n, C)`` and class indices ``(K, n)``."""
    # log_softmax over a short last axis is slow on CPU: the same formula in a few passes, in
    # place where it can (and fast on BatchedMLP's outputs, whose class axis is outermost).
    shifted = out - out.amax(dim=2, keepdim=True)
    index = target.unsqueeze(2)
    picked = shifted.gather(2, index)
    exp = shifted.exp_()
    total = exp.sum(dim=2, keepdim=True)
    weight = coef.unsqueeze(2)
    loss = ((total.log() - picked) * weight).sum(dim=(1, 2))
    return loss, exp.mul_(weight / total).scatter_add_(2, index, -weight)


def squared_error(out, target, coef):
    """``nn.MSELoss``, averaged over outputs per row."""
    diff = out - target
    return _reduce(diff * diff, coef), diff * (2 * coef / out.shape[2]).unsqueeze(2)


def absolute_error(out, target, coef):
    """``nn.L1Loss``, averaged over outputs per row."""
    diff = out - target
    return _reduce(diff.abs(), coef), diff.sign() * (coef / out.shape[2]).unsqueeze(2)


def huber(out, target, coef, delta=1.0):
    """``nn.HuberLoss`` (torch's default ``delta=1``), averaged over outputs per row."""
    diff = out - target
    size = diff.abs()
    per_element = torch.where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))
    return _reduce(per_element, coef), diff.clamp(-delta, delta) * (coef / out.shape[2]).unsqueeze(2)


def binary_cross_entropy(out, target, coef):
    """``nn.BCEWithLogitsLoss`` on logits and 0/1 targets ``(K, n, L)``, averaged over labels per row."""
    # log(1 + exp(-|x|)) + max(x, 0) - x * t: the loss without overflow for logits of either sign.
    per_element = torch.nn.functional.softplus(-out.abs()) + out.clamp_min(0) - out * target
    return _reduce(per_element, coef), (torch.sigmoid(out) - target) * (coef / out.shape[2]).unsqueeze(2)


def _reduce(per_element, coef):
    return (per_element.mean(dim=2) * coef).sum(dim=1)


LOSSES = {
    nn.CrossEntropyLoss: cross_entropy,
    nn.MSELoss: squared_error,
    nn.L1Loss: absolute_error,
    nn.HuberLoss: huber,
    nn.BCEWithLogitsLoss: binary_cross_entropy,
}
