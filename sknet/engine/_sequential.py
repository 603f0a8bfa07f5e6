"""``train_sequential``: the jobs of :func:`~sknet.engine.train_batched`, each by its own skorch loop.

Each job trains alone, one after the other, by the loop its estimator's ``fit`` runs: a
fresh job is its ``fit``, a job going on from a :class:`~._jobs.TrainingState` (of either
function) is that loop continued from the state's generators (:func:`~sknet.nets.continue_fit`),
under the engine's acceptance rule (:func:`~._jobs.resumed`). Both functions leave their
jobs in states the other can go on from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing

from ..nets import check_params, continue_fit, tracked_generators, training_spec
from ._jobs import TrainingState, _validated, continuation_refusal, n_rows, resumed

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._typing import Jobs
    from ..nets._base import BaseTorchNet
    from ._train import Fitted, Starts, States

Net = TypeVar("Net", bound="BaseTorchNet")


def train_sequential(estimator: Net, jobs: Jobs, X: ArrayLike, y: ArrayLike,
                     sample_weight: ArrayLike | None = None, *,
                     starts: Starts = None) -> tuple[Fitted[Net], States]:
    """Train the jobs of :func:`train_batched` one at a time, each by its estimator's own loop.

    The sequential twin of ``train_batched(..., starts=starts, keep_states=True)``:
    the same jobs, starts and results (its arithmetic aside: the engine's stacked
    models round differently, by about 1e-16 a step in float64), trained by the
    skorch loop each estimator's ``fit`` runs, never batched.

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor, TorchClassifier or TorchRegressor
        The unfitted base estimator.
    jobs : list of (dict, array-like)
        ``(params, train_idx)``: the estimator ``clone(estimator).set_params(**params)``
        fitted on ``X[train_idx], y[train_idx]`` (with ``sample_weight[train_idx]``), as its ``fit`` does.
    X : array-like of shape (n_samples, ...)
        Training data of all jobs.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets of all jobs.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of all rows in each job's loss.
    starts : list of TrainingState or None, default=None
        For each job, a state (of ``train_batched`` or ``train_sequential``) to go on
        from: its estimator trains ``max_epochs - state.epochs`` more epochs, in place,
        from the state's shuffle and dropout generators, under the parameters set on it
        since (``state.estimator.set_params(lr=...)``: lr, momentum, weight decay, l1 and
        dropout take effect; the optimizer's state carries on). It is taken where
        ``train_batched`` takes it: the state's estimator has the job's parameters but
        for ``max_epochs``, trained no more epochs, passes ``continuation_refusal``, does
        not turn dropout on after training without it, and no earlier job took the state.
        Otherwise the job trains from scratch.

    Returns
    -------
    fitted : list
        One entry per job, in order: the fitted estimator (``n_iter_`` counts all its
        epochs, its history holds them all), or the exception its ``fit`` raised
        (``FloatingPointError`` when its loss diverged, the ``ValueError`` or
        ``TypeError`` of data it refuses).
    states : list of TrainingState or None
        Each job's state, None for an error or a net that cannot continue
        (:func:`continuation_refusal`).

    Raises
    ------
    ValueError
        A job's parameters are invalid (``train_batched`` refuses those too).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.engine import train_batched, train_sequential
    >>> X, y = load_iris(return_X_y=True)
    >>> net, rows = MLPClassifier(random_state=0), range(150)
    >>> _, [state] = train_batched(net, [({"max_epochs": 3}, rows)], X, y, keep_states=True)
    >>> _ = state.estimator.set_params(lr=1e-2)  # the next epochs' learning rate
    >>> [clf], [state] = train_sequential(net, [({"max_epochs": 5, "lr": 1e-2}, rows)], X, y,
    ...                                   starts=[state])
    >>> clf is state.estimator, clf.n_iter_
    (True, 5)
    """
    reasons: dict[tuple[object, ...], str | None] = {}  # jobs sharing their values' objects: checked once
    for i, (params, _) in enumerate(jobs):
        key = tuple((name, id(value)) for name, value in params.items())
        if key not in reasons:
            reasons[key] = _invalid(estimator, params)
        if reasons[key] is not None:
            raise ValueError(f"Job {i} has invalid parameters: {reasons[key]}.")
    starts = [None] * len(jobs) if starts is None else list(starts)
    fitted: list[Any] = [None] * len(jobs)
    states: list[TrainingState | None] = [None] * len(jobs)
    validated: dict[tuple[Any, ...], Any] = {}  # each training set validated once (see _jobs._validated)
    taken = set()  # a state trains on in place: one job only goes on from it
    for i, (params, train_idx) in enumerate(jobs):
        rows = np.arange(n_rows(X))[train_idx]
        start = starts[i] if id(starts[i]) not in taken else None
        try:
            job = None if start is None else resumed(estimator, params, rows, X, y, start, validated,
                                                     sample_weight)
            if start is None or job is None:
                fitted[i], states[i] = _fresh(clone(estimator).set_params(**params), rows, X, y,
                                              sample_weight)
                continue
            taken.add(id(start))
            data = _validated(job.estimator, rows, X, y, validated, sample_weight)
            generators = continue_fit(job.estimator, data, job.spec.max_epochs - start.epochs,
                                      start.shuffle_state, start.dropout_state)
            fitted[i], states[i] = job.estimator, TrainingState(job.estimator, *generators)
        except (ValueError, TypeError, FloatingPointError) as exc:  # what its fit raises: its result
            fitted[i] = exc
    return fitted, states


def _invalid(estimator, params):
    """Why ``fit`` would reject the job's parameters, or None."""
    try:
        check_params(clone(estimator).set_params(**params))
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def _fresh(estimator, rows, X, y, sample_weight):
    """``estimator.fit`` on ``rows``, and its :class:`TrainingState` (None where it cannot continue)."""
    weight = None if sample_weight is None else _safe_indexing(sample_weight, rows)
    with tracked_generators() as generators:
        estimator.fit(_safe_indexing(X, rows), _safe_indexing(y, rows), sample_weight=weight)
    if continuation_refusal(estimator) is not None:
        return estimator, None
    dropout = generators.dropout_state if training_spec(estimator).dropout > 0 else None
    return estimator, TrainingState(estimator, generators.shuffle_state, dropout)
