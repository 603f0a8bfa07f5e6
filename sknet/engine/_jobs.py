"""Which jobs the engine trains, which train together, and each job's setup.

A job is ``(params, train_idx)``: the estimator ``clone(base).set_params(**params)``
fitted on the rows ``train_idx``. Setting a job up reuses the estimator's own
code (validation, label encoding, seeds, ``_build_net``) so that the batched
model starts from exactly the state a sequential ``fit`` would.
"""

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import _check_sample_weight

from .. import _options
from ..nets._base import _MAX_SEED, BaseMLP, resolve_device, seeded
from ._loss import LOSSES


@dataclass
class Job:
    """A job ready to train: its estimator (with an initialised ``net_``) and its data."""

    estimator: BaseMLP
    seed: int
    rows: np.ndarray  # indices of its training rows in the full X
    y: np.ndarray  # encoded targets of those rows
    weight: np.ndarray | None  # per-row loss weights (class_weight), or None
    n_outputs: int
    valid: tuple | None = None  # (rows, y, weight) of the early-stopping validation part


def optimizer_name(optimizer):
    """The name of a named optimizer (given by name or class), else None."""
    if isinstance(optimizer, str):
        return optimizer if optimizer in _options.OPTIMIZERS else None
    names = [name for name, cls in _options.OPTIMIZERS.items() if cls is optimizer]
    return names[0] if names else None


def refusal(estimator, params, X=None):
    """Why the engine cannot train this job, or None when it can.

    The engine refuses, and the caller fits sequentially: estimators other
    than sknet's MLPs, parameters ``fit`` would reject, sparse ``X``, skorch
    or scikit-learn callbacks, ``warm_start``, an optimizer class other than
    the named ones, and ``verbose``.
    """
    if not isinstance(estimator, BaseMLP):
        return f"{type(estimator).__name__} is not an sknet MLP estimator"
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
    )


def prepare(base, params, train_idx, X, y, validated=None, sample_weight=None):
    """Set a job up as ``BaseMLP._train`` does for a fresh fit, up to the training loop.

    ``validated``, a dict shared by jobs on the same ``X`` and ``y``, keeps what
    validating each training set gave, so that the jobs of many candidates on one
    fold validate it once (the estimators' ``_validate_targets`` depends on the data only).
    ``sample_weight`` holds the weights of all rows of ``X``, or None.
    """
    est = clone(base).set_params(**params)
    est._validate_params()
    rows = np.arange(_n_samples(X))[train_idx]
    key = (type(est), rows.tobytes())
    if validated is None or key not in validated:
        before = dict(est.__dict__)
        data = est._validate_targets(_safe_indexing(X, rows), _safe_indexing(y, rows), reset=True)
        fitted = {name: value for name, value in est.__dict__.items()
                  if name not in before or value is not before[name]}
        if validated is not None:
            validated[key] = (data, fitted)
    else:
        data, fitted = validated[key]
        est.__dict__.update(fitted)
    X_job, y_job, n_outputs = data
    if sample_weight is not None:
        sample_weight = _check_sample_weight(_safe_indexing(sample_weight, rows), X_job, dtype=np.float32,
                                             ensure_non_negative=True)
    weight = est._sample_weight(y_job, sample_weight)
    # From here on, line for line what BaseMLP._train does; the equivalence tests pin it.
    est._check_arguments()
    est.device_ = resolve_device(est.device)
    est._seed_rng = np.random.RandomState(check_random_state(est.random_state).randint(_MAX_SEED))
    seed = int(est._seed_rng.randint(_MAX_SEED))
    parts = [np.arange(len(rows))]
    if est.early_stopping:
        parts = est._validation_split(y_job, seed)
    est._check_training_size(len(parts[0]))
    rows_y_weight = [(rows[part], y_job[part], None if weight is None else weight[part]) for part in parts]
    est.net_ = est._build_net(X_job.shape[1], n_outputs, math.ceil(len(parts[0]) / est.batch_size))
    est.net_.train_split = None
    est.net_.shuffle_seed = seed
    with seeded(seed, est.device_):
        est.net_.initialize()
    valid = rows_y_weight[1] if est.early_stopping else None
    return Job(est, seed, *rows_y_weight[0], n_outputs, valid)


def _n_samples(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)
