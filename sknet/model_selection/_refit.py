"""The refit: the best candidate fitted on all the data, its net by the engine where it can.

:func:`refit` fits a candidate as its own ``fit`` would (the engine reproduces it);
:func:`replay` fits one whose net was trained under a schedule of hyperparameters (a
population search's winner): its net trains leg by leg, each leg going on from where
the previous one stopped, as the member trained on each split.
"""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing

from .._compat import _num_samples
from ..engine import can_batch, train_batched
from ..nets import replay_fit_callbacks
from ..nets._mlp import BaseMLP
from ..parallel import resolve_device
from ._evaluate import _dense
from ._tasks import train_with_states
from ._wrappers import assemble, final_net, fit_layers


def refit(evaluate, estimator, X, y, fit_params):
    """Fit ``estimator`` (the best candidate) on all the data: its net by the engine where it can.

    The engine trains only a bare net or a pipeline's (its preprocessing is
    fitted as usual first), and only where it reproduces the net's own fit: not with
    dropout on a GPU (where the engine draws a block's masks at once), not
    where it cannot take the net, and, with a warning, not where it fails.
    ``evaluate`` is the search's :class:`~._evaluate.RoundEvaluator`.
    """
    net = final_net(estimator)
    # A net inside a target transform is refitted as usual: its layers are fitted in place. So
    # is a module of the user's, whose dropout masks the engine draws otherwise than its fit.
    direct = estimator is net or (isinstance(estimator, Pipeline) and estimator.steps[-1][1] is net)
    if (not evaluate.engine or not direct or not isinstance(net, BaseMLP)
            or (net.dropout > 0 and not _on_cpu(net))):
        return _fit(estimator, X, y, fit_params)
    X_net = estimator[:-1].fit_transform(X, y) if isinstance(estimator, Pipeline) else X
    X_net = _dense(X_net)
    if not can_batch(net, {}, X_net):
        return net.fit(X_net, y, **_net_params(estimator, fit_params))
    try:
        fitted = train_batched(net, [({}, np.arange(_num_samples(X_net)))], X_net, y,
                               evaluate.sample_weight)[0]
    except Exception as exc:
        warnings.warn(f"The batched engine failed on the refit, which is fitted as usual instead: "
                      f"{exc!r}", UserWarning, stacklevel=3)
        return _fit(estimator, X, y, fit_params)
    if isinstance(fitted, BaseException):
        raise fitted  # what the net's own fit raises
    net.__dict__.update(fitted.__dict__)
    if getattr(evaluate.search, "_skl_callbacks", None):
        replay_fit_callbacks(net, X_net, y)
    return estimator


def replay(base, schedule, max_epochs, X, y, sample_weight=None, sequential=False):
    """``base`` fitted on all the data with its net trained leg by leg along ``schedule``.

    ``schedule`` is a list of ``(start_epoch, params)``: from ``start_epoch`` on, the
    net trains with the hyperparameters of ``clone(base).set_params(**params)``, going
    on from the weights, optimizer state and generators the previous leg left, up to
    the next step's epoch (``max_epochs`` for the last), with the net's
    ``sample_weight`` (one per row of ``X``) if any. Each leg is a continuation in
    the engine (:func:`~sknet.engine.train_batched`), or with ``sequential`` in
    the net's own loop (:func:`~sknet.engine.train_sequential`): on a split's
    rows, exactly what a population member trained there. Returns the fitted
    estimator with the last step's parameters.
    """
    state = layers = X_fit = y_fit = rows = None
    for k, (_, params) in enumerate(schedule):
        stop = schedule[k + 1][0] if k + 1 < len(schedule) else max_epochs
        estimator = clone(base).set_params(**clone(params, safe=False))
        if layers is None:  # a lineage keeps its first member's fixed parameters: fitted once
            # (no test rows here: one row stands in, rather than transforming X twice)
            X_fit, y_fit, _, layers = fit_layers(estimator, X, y, _safe_indexing(X, [0]))
            X_fit = _dense(X_fit)
            rows = np.arange(_num_samples(X_fit))
        net = final_net(estimator)
        job = {**net.get_params(deep=False), "max_epochs": stop}
        if state is not None:  # the net that goes on takes this leg's hyperparameters
            state.estimator.set_params(**{name: value for name, value in job.items() if name != "max_epochs"})
        [fitted], [state] = train_with_states(sequential, net, [(job, rows)], X_fit, y_fit, sample_weight,
                                              [state])
        if isinstance(fitted, BaseException):
            raise fitted  # what the net's own fit raises
    net.__dict__.update(state.estimator.__dict__)  # the last leg's estimator, fitted
    return assemble(estimator, layers, net)


def _on_cpu(net):
    return resolve_device(net.device).startswith("cpu")


def _fit(estimator, X, y, fit_params):
    return estimator.fit(X, **fit_params) if y is None else estimator.fit(X, y, **fit_params)


def _net_params(estimator, fit_params):
    """The fit parameters of a pipeline's last step (its own, for a bare net)."""
    if not isinstance(estimator, Pipeline):
        return fit_params
    prefix = f"{estimator.steps[-1][0]}__"
    return {k[len(prefix):]: v for k, v in fit_params.items() if k.startswith(prefix)}
