"""One vocabulary: option names mapped to torch objects.

The estimators and (later) the batched engine both read these tables, so a
name means the same thing everywhere.
"""

import fnmatch
import functools
import inspect

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "selu": nn.SELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}

# Gain names understood by ``torch.nn.init.calculate_gain`` for each activation.
_GAIN_NAMES = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "relu",
    "gelu": "relu",
    "selu": "selu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "logistic": "sigmoid",
    "identity": "linear",
}

WEIGHT_INITS = (
    "default",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "normal",
    "orthogonal",
)

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}

LR_SCHEDULES = ("step", "exponential", "cosine", "plateau", "onecycle")

REGRESSION_LOSSES = {
    "mse": nn.MSELoss,
    "mae": nn.L1Loss,
    "huber": nn.HuberLoss,
}


def init_linear(layer, weight_init, activation):
    """Initialise one ``nn.Linear`` layer in place.

    Biases start at zero for every scheme but ``"default"``, which keeps
    torch's own initialisation of both weight and bias.
    """
    if weight_init == "default":
        return
    gain_name = _GAIN_NAMES[activation]
    weight = layer.weight
    with torch.no_grad():
        if weight_init == "xavier_uniform":
            nn.init.xavier_uniform_(weight, nn.init.calculate_gain(gain_name))
        elif weight_init == "xavier_normal":
            nn.init.xavier_normal_(weight, nn.init.calculate_gain(gain_name))
        elif weight_init in ("he_uniform", "he_normal"):
            init = nn.init.kaiming_uniform_ if weight_init == "he_uniform" else nn.init.kaiming_normal_
            nonlinearity = "leaky_relu" if gain_name == "leaky_relu" else "relu"
            init(weight, nonlinearity=nonlinearity)
        elif weight_init == "normal":
            nn.init.normal_(weight, mean=0.0, std=0.01)
        elif weight_init == "orthogonal":
            nn.init.orthogonal_(weight, nn.init.calculate_gain(gain_name))
        if layer.bias is not None:
            layer.bias.zero_()


def optimizer_class(optimizer):
    """Return the torch optimizer class for a name or a class."""
    if isinstance(optimizer, str):
        return OPTIMIZERS[optimizer]
    return optimizer


# ``momentum=None`` means the optimizer's usual default: scikit-learn's MLP uses 0.9 for SGD (torch
# 0, plain SGD); for any other optimizer, torch's own default (RMSprop: 0).
_DEFAULT_MOMENTUM = {torch.optim.SGD: 0.9}


def effective_momentum(optimizer, momentum):
    """The momentum an optimizer (a name or a class) trains with, for ``momentum`` (a float or None).

    An explicit float applies to any optimizer that takes one; None gives 0.9
    for SGD and the optimizer's own default otherwise (0 for RMSprop; 0 where
    it takes none).
    """
    if momentum is not None:
        return float(momentum)
    cls = optimizer_class(optimizer)
    if cls in _DEFAULT_MOMENTUM:
        return _DEFAULT_MOMENTUM[cls]
    default = _parameters(cls).get("momentum")
    if default is None or not isinstance(default.default, (int, float)) or isinstance(default.default, bool):
        return 0.0
    return float(default.default)


# Parameters that take no weight decay, by name (fnmatch patterns): biases and normalisation
# parameters, as scikit-learn's alpha spares the intercepts. The estimators' param groups and the
# batched optimizers both read this one rule.
NO_DECAY_PATTERNS = ("*.bias", "*norm*")


def takes_weight_decay(name):
    """Whether the parameter ``name`` takes weight decay (see ``NO_DECAY_PATTERNS``)."""
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in NO_DECAY_PATTERNS)


@functools.lru_cache(maxsize=64)
def _parameters(cls):
    """The parameters of a class's constructor: read once (0.1 ms each), for every job of a search."""
    return inspect.signature(cls).parameters


def optimizer_kwargs(optimizer_cls, momentum, weight_decay):
    """Keyword arguments the optimizer class accepts, among momentum (a float) and decay."""
    accepted = _parameters(optimizer_cls)
    kwargs = {}
    if "momentum" in accepted:
        kwargs["momentum"] = momentum
    if "weight_decay" in accepted:
        kwargs["weight_decay"] = weight_decay
    return kwargs


def lr_scheduler(name, *, lr, max_epochs, steps_per_epoch, patience, monitor):
    """Return ``(policy, kwargs, step_every)`` for skorch's ``LRScheduler``.

    Each schedule has fixed, documented defaults so that only its name is a
    hyperparameter: step divides the rate by 10 at each third of training,
    exponential multiplies it by 0.95 per epoch, cosine anneals to zero over
    ``max_epochs``, plateau divides it by 10 after ``patience // 2`` epochs
    without improvement of ``monitor``, onecycle runs PyTorch's one-cycle
    policy peaking at ``lr`` (momentum is not cycled).
    """
    sched = torch.optim.lr_scheduler
    if name == "step":
        return sched.StepLR, {"step_size": max(1, max_epochs // 3), "gamma": 0.1}, "epoch"
    if name == "exponential":
        return sched.ExponentialLR, {"gamma": 0.95}, "epoch"
    if name == "cosine":
        return sched.CosineAnnealingLR, {"T_max": max_epochs}, "epoch"
    if name == "plateau":
        kwargs = {"factor": 0.1, "patience": max(1, patience // 2), "monitor": monitor}
        return sched.ReduceLROnPlateau, kwargs, "epoch"
    if name == "onecycle":
        # One step more than the batches run, so the last batch ends the annealing
        # instead of stepping past it; momentum stays the user's (Adagrad has none).
        kwargs = {"max_lr": lr, "total_steps": max_epochs * steps_per_epoch + 1, "cycle_momentum": False}
        return sched.OneCycleLR, kwargs, "batch"
    raise ValueError(f"Unknown lr_schedule {name!r}; allowed: None, {', '.join(LR_SCHEDULES)}.")
