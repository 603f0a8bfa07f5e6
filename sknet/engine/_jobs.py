"""Which jobs the engine trains, which train together, and each job's setup.

:func:`can_batch` (through :func:`refusal`) says whether the engine trains a job,
:func:`group_jobs` (through :func:`group_key`) which jobs share a training loop, and
:func:`prepare` (or :func:`resumed`, going on from a :class:`TrainingState`) sets
each job up as a :class:`Job`, whatever the net's torch module (:func:`set_up` only its
estimator, for a job that another one trains for).

A job is ``(params, train_idx)``: the estimator ``clone(base).set_params(**params)``
fitted on the rows ``train_idx``. It is set up through the estimator's contract
(:func:`~sknet.nets.validate_fit_data` and :func:`~sknet.nets.begin_fit`, the first
steps of its ``fit``), so that the batched model starts from exactly the state a
sequential ``fit`` would, and the engine reads its parameters from its
:class:`~sknet.nets.TrainingSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.utils import _safe_indexing, check_array

from .. import _options
from ..nets import (
    TrainingSpec,
    begin_fit,
    build_module,
    check_params,
    loss_weights,
    refresh_training_params,
    resume_refusal,
    training_spec,
)
from ..nets import validate_fit_data as _validate_fit_data
from ..nets._base import BaseTorchNet
from ..nets._data import is_dict_of_arrays
from ..nets._mlp import BaseMLP
from ..parallel import resolve_device
from ._costs import shares_ticks
from ._functional import vmap_refusal
from ._loss import LOSSES

if TYPE_CHECKING:
    from .._typing import Features, Jobs


@dataclass
class Job:
    """A job ready to train: its estimator (with an initialised ``net_``) and its rows."""

    estimator: BaseTorchNet
    spec: TrainingSpec  # its parameters, as the engine reads them
    seed: int
    rows: np.ndarray  # positions of its training rows in the engine's X
    y: np.ndarray  # encoded targets of those rows
    weight: np.ndarray | None  # per-row loss weights (sample and class weights), or None
    n_outputs: int
    # (rows, y, weight) of the early-stopping validation part:
    valid: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    rng_state: torch.Tensor | None = None  # its generator after initialisation (dropout draws go on from it)
    shuffle_state: torch.Tensor | None = None  # resumed: its shuffling generator (else seeded afresh)


@dataclass
class TrainingState:
    """Where a job's training stopped, for :func:`~sknet.engine.train_batched` to continue it.

    The fitted estimator holds the weights, the optimizer's state, the history and
    the callbacks' states; the generators' states are what else its training
    draws from next: the next epoch's shuffle, and the next dropout masks. Going on
    from them for more epochs computes what a fit for the larger ``max_epochs``
    computes (see :func:`continuation_refusal`).

    Attributes
    ----------
    estimator : MLPClassifier or MLPRegressor
        The fitted net; continuing trains it on, in place.
    shuffle_state : torch.Tensor
        The state of the generator of its shuffles.
    dropout_state : torch.Tensor or None
        The state of the generator of its dropout masks (None without dropout).
    epochs : int
        Epochs trained so far.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.engine import train_batched
    >>> X, y = load_iris(return_X_y=True)
    >>> net, rows = MLPClassifier(random_state=0), range(150)
    >>> _, [state] = train_batched(net, [({"max_epochs": 3}, rows)], X, y, keep_states=True)
    >>> [clf] = train_batched(net, [({"max_epochs": 8}, rows)], X, y, starts=[state])
    >>> state.epochs, clf.n_iter_  # 3 epochs trained before, 5 more now
    (8, 8)
    """

    estimator: BaseMLP  # fitted; continuing trains it on, in place
    shuffle_state: torch.Tensor
    dropout_state: torch.Tensor | None = None

    @property
    def epochs(self) -> int:
        """Epochs trained so far."""
        return len(self.estimator.net_.history)


# Schedules whose learning rate at an epoch does not depend on ``max_epochs`` (step, cosine and
# onecycle scale themselves to it).
_EPOCH_FREE_SCHEDULES = (None, "exponential", "plateau")


def continuation_refusal(estimator: object) -> str | None:
    """Why training ``estimator`` for fewer epochs does not give the start of a longer fit, or None.

    Where it does, a fit for ``max_epochs=n`` is the first ``n`` epochs of any
    longer one: the engine may continue a fitted net instead of training it
    again, and train jobs differing only in ``max_epochs`` once. It does for
    sknet's MLPs without early stopping (whose best epoch and stop depend on the
    epochs to come), under no schedule or one that ignores ``max_epochs``
    (exponential, plateau), and without dropout on a GPU (whose masks the engine
    draws per block there, not per model).

    Parameters
    ----------
    estimator : estimator
        A net: fitted or set up for training (its ``device_`` resolved), or unfitted (its
        ``device`` resolved here).

    Returns
    -------
    reason : str or None
        Why not, or None when a shorter fit is the start of a longer one.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.engine import continuation_refusal
    >>> X, y = load_iris(return_X_y=True)
    >>> continuation_refusal(MLPClassifier(max_epochs=2).fit(X, y)) is None
    True
    >>> continuation_refusal(MLPClassifier(max_epochs=2, lr_schedule="cosine").fit(X, y))
    "lr_schedule='cosine' scales itself to max_epochs"
    """
    if not isinstance(estimator, BaseMLP):
        return "only sknet's MLPs continue training"
    if estimator.early_stopping:
        return "early stopping picks its epoch from the epochs to come"
    if estimator.lr_schedule not in _EPOCH_FREE_SCHEDULES:
        return f"lr_schedule={estimator.lr_schedule!r} scales itself to max_epochs"
    device = getattr(estimator, "device_", None) or resolve_device(estimator.device)
    if estimator.dropout > 0 and torch.device(device).type != "cpu":
        return "dropout masks are drawn per block on a GPU"
    return None


def same_but_epochs(params):
    """A digest of ``params`` without ``max_epochs``: equal for jobs that differ only there.

    Where joblib cannot pickle a value (a class local to a function, before joblib 1.4), a
    digest equal to no other: such a job neither follows another nor goes on from a state.
    """
    try:
        return joblib.hash({name: value for name, value in params.items() if name != "max_epochs"})
    except Exception:
        return object()


def resumed(base, params, rows, X, y, state, validated=None, sample_weight=None):
    """The job :func:`prepare` would set up, going on from ``state`` instead; None where it cannot.

    It cannot when the state's net is not the job's but for ``max_epochs``, when it
    trained more epochs than the job asks for, when continuing would not compute
    what the job's own fit computes (:func:`continuation_refusal`), or when its
    parameters now turn dropout on for a net that trained without it
    (:func:`~sknet.nets.resume_refusal`: no dropout generator to go on from). The data is
    validated as for a fresh job (``validated`` keeps it); no new net is built. The
    parameters set on the state's estimator since its fit (lr, momentum, weight decay, l1,
    dropout) take effect, its net's optimizer included (:func:`~sknet.nets.refresh_training_params`).
    """
    wanted, estimator = clone(base).set_params(**params), state.estimator
    if (continuation_refusal(estimator) is not None or state.epochs > wanted.max_epochs
            or same_but_epochs(estimator.get_params(deep=False))
            != same_but_epochs(wanted.get_params(deep=False))
            or resume_refusal(estimator, state.dropout_state) is not None):
        return None
    rows = np.asarray(rows)
    data = _validated(wanted, rows, X, y, {} if validated is None else validated, sample_weight)
    refresh_training_params(estimator)  # the engine reads the lr from the net's optimizer
    estimator.max_epochs = estimator.net_.max_epochs = wanted.max_epochs
    # Without early stopping every row trains: the rows, targets and weights of a fresh setup.
    return Job(estimator, training_spec(estimator), int(estimator.net_.shuffle_seed), rows, data.y,
               loss_weights(estimator, data), data.n_outputs, None, state.dropout_state, state.shuffle_state)


def optimizer_name(optimizer):
    """The name of a named optimizer (given by name or class), else None."""
    if isinstance(optimizer, str):
        return optimizer if optimizer in _options.OPTIMIZERS else None
    names = [name for name, cls in _options.OPTIMIZERS.items() if cls is optimizer]
    return names[0] if names else None


def refusal(estimator, params, X=None):
    """Why the engine cannot train this job, or None when it can.

    The engine refuses, and the caller fits sequentially: estimators other
    than sknet's nets, subclasses that override ``fit`` (the engine would
    not run theirs), parameters ``fit`` would reject, sparse ``X``, a dict of
    arrays as ``X`` (a module of several inputs), skorch
    or scikit-learn callbacks, ``warm_start``, an optimizer class other than
    the named ones, and ``verbose``. For a TorchClassifier or TorchRegressor
    (any module), given ``X``, a module that ``vmap`` cannot train (see
    :func:`~sknet.engine.vmap_refusal`).
    """
    if not isinstance(estimator, BaseTorchNet):
        return f"{type(estimator).__name__} is not an sknet net"
    if type(estimator).fit is not BaseTorchNet.fit:
        return f"{type(estimator).__name__} overrides fit, which the engine would not run"
    if X is not None and sp.issparse(X):
        return "X is sparse"
    if X is not None and is_dict_of_arrays(X):
        return "X is a dict of arrays"
    try:
        est = clone(estimator).set_params(**params)
        check_params(est)
    except (ValueError, TypeError) as exc:
        return f"invalid parameters ({exc})"
    spec = training_spec(est)
    unsupported = {
        "callbacks are set": spec.has_callbacks,
        "warm_start=True": spec.warm_start,
        f"optimizer={spec.optimizer!r} is not a named optimizer": optimizer_name(spec.optimizer) is None,
        "verbose > 0": bool(spec.verbose),
        f"its loss {spec.loss.__name__} has no batched gradient": spec.loss not in LOSSES,
    }
    reasons = [reason for reason, refused in unsupported.items() if refused]
    if reasons:
        return reasons[0]
    return None if X is None or isinstance(est, BaseMLP) else _module_refusal(est, X)


def _module_refusal(estimator, X):
    """Why ``vmap`` cannot train the module of ``estimator`` on rows like those of ``X``, or None.

    The module is built as the estimator's fit would build it (``n_outputs`` is
    unknown here: 2 stands in) and probed on two rows of ``X``.
    """
    float_dtype = training_spec(estimator).float_dtype
    rows = check_array(_safe_indexing(X, np.arange(min(2, n_rows(X)))), allow_nd=True,
                       dtype=[float_dtype, np.int64, np.int32])
    try:
        module = build_module(estimator, rows.shape[1:], 2)
    except Exception as exc:  # its own fit fails the same way, and says so
        return f"its module cannot be built ({exc!r})"
    example = torch.as_tensor(rows if rows.dtype.kind in "iu" else rows.astype(float_dtype))
    return vmap_refusal(module, example)


def can_batch(estimator: object, params: Mapping[str, Any], X: Features | None = None) -> bool:
    """Whether the batched engine can train ``clone(estimator).set_params(**params)``.

    It cannot (and the caller should fit sequentially) for: estimators other
    than sknet's nets, subclasses that override ``fit``, parameters ``fit``
    would reject, sparse ``X``, a dict of arrays as ``X``, skorch or
    scikit-learn callbacks, ``warm_start``, an optimizer class other than the
    named ones, ``verbose``, a loss without a batched gradient, and, given
    ``X``, a module that ``vmap`` cannot train (see :func:`vmap_refusal`).

    Parameters
    ----------
    estimator : estimator
        The unfitted base estimator.
    params : dict
        The job's parameters.
    X : array-like or sparse matrix, default=None
        The training data, when known.

    Returns
    -------
    bool
    """
    return refusal(estimator, params, X) is None


def group_key(spec):
    """What must be equal for models to share a training loop, of a :class:`~sknet.nets.TrainingSpec`.

    Shared: the estimator class, the loss, the device and the dtype; for modules
    other than sknet's MLP, the optimizer, early stopping, the schedule, the batch
    size, the module's class and its ``module__`` arguments (equal arguments give
    equal shapes). sknet's MLPs' depths, widths, activations, dropout, batch norm,
    optimizers, schedules, early stopping and batch sizes may differ (models of one
    depth, padded widths, batch norm or not and optimizer share tensors within the
    loop, and a larger batch is several steps of the smallest), except that the
    batch size is shared with batch normalisation (its statistics are the whole
    batch's), early stopping (its validation batches follow the batch size), and on
    a CPU, where separate loops measured faster (see :mod:`._costs`). The rest is per model: lr, momentum,
    weight decay, l1, dropout rate, weight init, random state, class weights and
    max_epochs.
    """
    shared = (spec.estimator, spec.loss, spec.device, spec.dtype)
    if spec.hidden_sizes is None:  # any module: equal module arguments give equal shapes
        return (*shared, optimizer_name(spec.optimizer), spec.early_stopping, spec.lr_schedule,
                spec.batch_size, spec.module, spec.module_args)
    whole_batches = spec.batch_norm or spec.early_stopping or not shares_ticks(spec.device)
    return (*shared, spec.batch_size if whole_batches else None)


def group_jobs(estimator: BaseTorchNet, jobs: Jobs) -> list[list[int]]:
    """Group jobs that can train as one batched model.

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor, TorchClassifier or TorchRegressor
        The unfitted base estimator.
    jobs : list of (dict, array-like)
        ``(params, train_idx)`` pairs, each passing :func:`can_batch`.

    Returns
    -------
    groups : list of list of int
        Indices into ``jobs``, groups in order of first appearance. Jobs
        differing in what ``group_key`` names fall in different groups:
        the estimator class, loss, device or dtype; MLPs differing in batch size
        on a CPU or with batch norm or early stopping; other modules differing in
        optimizer, early stopping, schedule, batch size, class or ``module__``
        arguments. ``train_batched`` may split a group further when folds see
        different numbers of classes. MLPs of different depths, widths,
        activations, dropout, batch norm, optimizers, schedules, early stopping
        and batch sizes share a group.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, (params, _) in enumerate(jobs):
        reason = refusal(estimator, params)
        if reason is not None:
            raise ValueError(f"Job {i} cannot be trained by the batched engine: {reason}.")
        groups.setdefault(group_key(training_spec(clone(estimator).set_params(**params))), []).append(i)
    return list(groups.values())


def prepare(base, params, rows, X, y, validated=None, sample_weight=None):
    """Set a job up as its own ``fit`` would, up to the training loop; return its :class:`Job`.

    ``rows`` are the positions of its training rows in ``X``. ``validated``, a
    dict shared by jobs on the same ``X`` and ``y``, keeps each training set's
    validated data, so that the jobs of many candidates on one fold validate it
    once. ``sample_weight`` holds the weights of all rows of ``X``, or None.
    """
    rows = np.asarray(rows)
    est, setup = _set_up(base, params, rows, X, y, validated, sample_weight)
    parts = [(rows[part], setup.y[part], None if setup.weight is None else setup.weight[part])
             for part in (setup.train, setup.valid) if part is not None]
    return Job(est, training_spec(est), setup.seed, *parts[0], setup.n_outputs,
               parts[1] if len(parts) > 1 else None, setup.rng_state)


def set_up(base, params, rows, X, y, validated=None, sample_weight=None):
    """The job's estimator, set up as :func:`prepare` sets it up, without the rest of a :class:`Job`:
    a follower's (see :class:`~._shadows.Follower`), whose training another job does."""
    return _set_up(base, params, np.asarray(rows), X, y, validated, sample_weight)[0]


def _set_up(base, params, rows, X, y, validated, sample_weight):
    """``(estimator, FitSetup)``: the job's estimator through :func:`~sknet.nets.begin_fit`."""
    est = clone(base).set_params(**params)
    data = _validated(est, rows, X, y, {} if validated is None else validated, sample_weight)
    return est, begin_fit(est, data)


def _validated(est, rows, X, y, validated, sample_weight):
    """The :class:`FitData` of the rows ``rows`` as ``est``'s fit validates them, kept in ``validated``."""
    key = (type(est), est.dtype, rows.tobytes())
    if key not in validated:
        weight = None if sample_weight is None else _safe_indexing(sample_weight, rows)
        validated[key] = _validate_fit_data(est, _safe_indexing(X, rows), _safe_indexing(y, rows), weight)
    return validated[key]


def n_rows(X):
    """The number of rows (samples) of data of any kind: an array, a sparse matrix, a DataFrame, a
    SliceDict (its ``shape``), a list."""
    return X.shape[0] if hasattr(X, "shape") else len(X)
