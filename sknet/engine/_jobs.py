"""Which jobs the engine trains, which train together, and each job's setup.

A job is ``(params, train_idx)``: the estimator ``clone(base).set_params(**params)``
fitted on the rows ``train_idx``. It is set up by the estimator's own
``_validate_fit_data`` and ``_prepare_fit``, the first steps of its ``fit``, so
that the batched model starts from exactly the state a sequential ``fit`` would.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.utils import _safe_indexing

from .. import _options
from ..nets._base import BaseMLP, BaseTorchNet
from ._loss import LOSSES


@dataclass
class Job:
    """A job ready to train: its estimator (with an initialised ``net_``) and its rows."""

    estimator: BaseMLP
    seed: int
    rows: np.ndarray  # positions of its training rows in the engine's X
    y: np.ndarray  # encoded targets of those rows
    weight: np.ndarray | None  # per-row loss weights (sample and class weights), or None
    n_outputs: int
    valid: tuple | None = None  # (rows, y, weight) of the early-stopping validation part
    rng_state: torch.Tensor | None = None  # its generator after initialisation (dropout draws go on from it)


def optimizer_name(optimizer):
    """The name of a named optimizer (given by name or class), else None."""
    if isinstance(optimizer, str):
        return optimizer if optimizer in _options.OPTIMIZERS else None
    names = [name for name, cls in _options.OPTIMIZERS.items() if cls is optimizer]
    return names[0] if names else None


def refusal(estimator, params, X=None):
    """Why the engine cannot train this job, or None when it can.

    The engine refuses, and the caller fits sequentially: estimators other
    than sknet's MLPs, subclasses that override ``fit`` (the engine would
    not run theirs), parameters ``fit`` would reject, sparse ``X``, skorch
    or scikit-learn callbacks, ``warm_start``, an optimizer class other than
    the named ones, and ``verbose``. TorchClassifier and TorchRegressor train
    any module, which the engine does not know how to batch.
    """
    if isinstance(estimator, BaseTorchNet) and not isinstance(estimator, BaseMLP):
        return "the batched engine trains sknet's MLPs only"
    if not isinstance(estimator, BaseMLP):
        return f"{type(estimator).__name__} is not an sknet MLP estimator"
    if type(estimator).fit is not BaseMLP.fit:
        return f"{type(estimator).__name__} overrides fit, which the engine would not run"
    if X is not None and sp.issparse(X):
        return "X is sparse"
    try:
        est = clone(estimator).set_params(**params)
        est._validate_params()
        est._check_arguments()
    except (ValueError, TypeError) as exc:
        return f"invalid parameters ({exc})"
    unsupported = {
        "callbacks are set": bool(est.callbacks) or bool(getattr(est, "_skl_callbacks", None)),
        "warm_start=True": est.warm_start,
        f"optimizer={est.optimizer!r} is not a named optimizer": optimizer_name(est.optimizer) is None,
        "verbose > 0": bool(est.verbose),
        f"its loss {est._criterion().__name__} has no batched gradient": est._criterion() not in LOSSES,
    }
    reasons = [reason for reason, refused in unsupported.items() if refused]
    return reasons[0] if reasons else None


def group_key(estimator):
    """What must be equal for models to share a training loop.

    The rest is per model: lr, momentum, weight decay, l1, dropout rate, weight
    init, random state, class weights, max_epochs, and the layers' widths
    (models of equal widths share tensors within the loop).
    """
    if not isinstance(estimator, BaseMLP):  # never batched (see refusal): a group of its own class
        return (type(estimator), estimator.device, estimator.dtype)
    return (
        type(estimator),
        len(estimator._hidden_sizes()),
        estimator.activation,
        estimator.dropout > 0,
        estimator.batch_norm,
        optimizer_name(estimator.optimizer),
        estimator.batch_size,
        getattr(estimator, "loss", None),
        estimator.early_stopping,
        estimator.lr_schedule,
        estimator.device,
        estimator.dtype,
    )


def prepare(base, params, rows, X, y, validated=None, sample_weight=None):
    """Set a job up as its own ``fit`` would, up to the training loop; return its :class:`Job`.

    ``rows`` are the positions of its training rows in ``X``. ``validated``, a
    dict shared by jobs on the same ``X`` and ``y``, keeps each training set's
    validated data, so that the jobs of many candidates on one fold validate it
    once. ``sample_weight`` holds the weights of all rows of ``X``, or None.
    """
    est = clone(base).set_params(**params)
    rows = np.asarray(rows)
    validated = {} if validated is None else validated
    key = (type(est), est.dtype, rows.tobytes())
    if key not in validated:
        weight = None if sample_weight is None else _safe_indexing(sample_weight, rows)
        validated[key] = est._validate_fit_data(_safe_indexing(X, rows), _safe_indexing(y, rows), weight)
    setup = est._prepare_fit(validated[key])
    # Bridge until _train.py reads ``estimator._momentum()``: it reads ``momentum`` as a float,
    # and None (the default) means the optimizer's own. Only this job's clone is changed.
    est.momentum = est._momentum()
    parts = [(rows[part], setup.y[part], None if setup.weight is None else setup.weight[part])
             for part in (setup.train, setup.valid) if part is not None]
    return Job(est, setup.seed, *parts[0], setup.n_outputs, parts[1] if len(parts) > 1 else None,
               setup.rng_state)


def _n_samples(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)
