"""What stands around the net a search trains: pipelines and TransformedTargetRegressor.

A search's estimator may be an sknet net, or a net wrapped in layers that
prepare its data: a :class:`~sklearn.pipeline.Pipeline` (preprocessing of
``X``) or a :class:`~sklearn.compose.TransformedTargetRegressor` (a transform of
``y``), nested in any order. The engine trains only the nets, so each fold's
layers are fitted once per setting (:func:`fit_layers`), the nets train on what
comes out of them, and each trained net is put back inside its fitted layers
(:func:`assemble`); a net's predictions go out through them as the fitted
estimator's ``predict`` would send them (:func:`predictions_out`).
"""

import copy

from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array

from ..nets._base import BaseTorchNet


def inner(estimator, fitted=False):
    """The estimator a layer wraps: a pipeline's last step or a target transform's regressor (its
    fitted ``regressor_`` with ``fitted``, where it has one); else None."""
    if isinstance(estimator, Pipeline):
        return estimator.steps[-1][1]
    if isinstance(estimator, TransformedTargetRegressor):
        return getattr(estimator, "regressor_", estimator.regressor) if fitted else estimator.regressor
    return None


def final_net(estimator, fitted=False):
    """The sknet net a search would train inside ``estimator`` (with ``fitted``: the one a fitted
    ``estimator`` holds); None if there is none."""
    while inner(estimator, fitted) is not None:
        estimator = inner(estimator, fitted)
    return estimator if isinstance(estimator, BaseTorchNet) else None


def epochs_param(estimator):
    """The name under which a search sets ``max_epochs`` of the net inside ``estimator``; None if no net."""
    if final_net(estimator) is None:
        return None
    prefix = ""
    while inner(estimator) is not None:
        prefix += f"{estimator.steps[-1][0]}__" if isinstance(estimator, Pipeline) else "regressor__"
        estimator = inner(estimator)
    return f"{prefix}max_epochs"


def layers_key(estimator):
    """What the fitted layers of ``estimator`` depend on besides the data: each layer's own settings."""
    key = []
    while inner(estimator) is not None:
        if isinstance(estimator, Pipeline):
            own = estimator[:-1].get_params(deep=True)
        else:
            own = {k: v for k, v in estimator.get_params(deep=False).items() if k != "regressor"}
        key.append(repr(sorted(own.items(), key=lambda item: item[0])))
        estimator = inner(estimator)
    return tuple(key)


def fit_layers(estimator, X_train, y_train, X_test):
    """Fit the layers around the net on a fold, outermost first, as their own ``fit`` would.

    Returns ``(X_fit, y_fit, X_predict, layers)``: the net's training inputs and
    targets, its test inputs, and the fitted layers (a pipeline's fitted steps
    but the last, or a fitted target transform), outermost first.
    """
    layers = []
    while inner(estimator) is not None:
        if isinstance(estimator, Pipeline):
            steps = clone(estimator[:-1])
            X_train = steps.fit_transform(X_train, y_train)
            X_test = steps.transform(X_test)
            layers.append(steps.steps)
        else:
            target = clone(estimator)
            y_train = _fit_target(target, y_train)
            layers.append(target)
        estimator = inner(estimator)
    return X_train, y_train, X_test, layers


def _fit_target(target, y):
    """``TransformedTargetRegressor.fit``'s handling of ``y``: fit the transform, return the net's targets.

    scikit-learn gives no hook between transforming ``y`` and fitting the
    regressor, so these lines follow its ``fit``; the batched-versus-sequential
    tests guard that they agree.
    """
    y = check_array(y, input_name="y", accept_sparse=False, ensure_2d=False, dtype="numeric", allow_nd=True)
    target._training_dim = y.ndim
    y_2d = y.reshape(-1, 1) if y.ndim == 1 else y
    target._fit_transformer(y_2d)
    y_trans = target.transformer_.transform(y_2d)
    if y_trans.ndim == 2 and y_trans.shape[1] == 1 and target._training_dim == 1:
        y_trans = y_trans.squeeze(axis=1)
    return y_trans


def assemble(estimator, layers, net):
    """The fitted estimator of a job: ``net`` put back inside its fitted ``layers``."""
    if not layers:
        return net
    wrapped = assemble(inner(estimator), layers[1:], net)
    if isinstance(estimator, Pipeline):
        fitted = copy.copy(estimator)
        fitted.steps = [*layers[0], (estimator.steps[-1][0], wrapped)]
        return fitted
    fitted = copy.copy(layers[0])
    fitted.regressor_ = wrapped
    if hasattr(wrapped, "feature_names_in_"):  # as its fit sets it (n_features_in_ reads regressor_)
        fitted.feature_names_in_ = wrapped.feature_names_in_
    return fitted


def predictions_out(layers, prediction, X):
    """A net's ``prediction`` on ``X``, sent out through its fitted ``layers`` as their ``predict`` would.

    A pipeline passes its last step's prediction on; a target transform maps it
    back with its own ``predict`` (its regressor stood in for by the prediction).
    """
    for layer in reversed(layers):
        if isinstance(layer, TransformedTargetRegressor):
            shell = copy.copy(layer)
            shell.regressor_ = _Answer(prediction)
            prediction = shell.predict(X)
    return prediction


class _Answer:
    """A fitted regressor whose prediction is already known."""

    def __init__(self, prediction):
        self.prediction = prediction

    def predict(self, X, **params):
        return self.prediction
