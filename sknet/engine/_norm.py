"""Stacked tensors of many models: zero-padded stacking, and K batch norms as one."""

import torch


def stack_padded(tensors, shape):
    """``tensors`` stacked along a new first axis, each padded with zeros to ``shape``."""
    first = tensors[0]
    stacked = first.new_zeros((len(tensors), *shape))
    with torch.no_grad():
        for k, tensor in enumerate(tensors):
            stacked[(k,) + tuple(slice(size) for size in tensor.shape)] = tensor
    return stacked


class StackedNorm:
    """K ``nn.BatchNorm1d`` layers of one (padded) width: per-model affine parameters and running statistics.

    In training each model normalises with the mean and biased variance of the
    real rows of its own batch and moves its running statistics as torch does
    (momentum 0.1, unbiased variance); otherwise it uses those statistics.
    """

    def __init__(self, norms, units):
        self.eps, self.momentum = norms[0].eps, norms[0].momentum
        # (K, 1, units), padded units at 0: their inputs are 0, and so are their outputs.
        self.weight, self.bias, self.running_mean, self.running_var = (
            stack_padded([getattr(n, name)[None] for n in norms], (1, units))
            for name in ("weight", "bias", "running_mean", "running_var"))
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

    def buffers(self, k, units, copy=True):
        """Model ``k``'s running statistics (of its ``units`` real units) under ``nn.BatchNorm1d``'s
        names (views unless ``copy``)."""
        views = {"running_mean": self.running_mean[k, 0, :units],
                 "running_var": self.running_var[k, 0, :units],
                 "num_batches_tracked": self.n_batches[k]}
        return {name: view.clone() for name, view in views.items()} if copy else views
