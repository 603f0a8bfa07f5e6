"""Scores of one fold's models from their outputs in hand, for scikit-learn's built-in metrics.

After a batched round, all of a fold's models answer on the same rows. Scored
one by one, each would pay scikit-learn's checks of those rows' targets
(``type_of_target``, ``check_consistent_length``, the encoding of the labels...):
about 1.5 ms a model, more than its metric. Here the targets are checked and
encoded once a fold, the models' answers are stacked (predicted class indices,
probabilities or values: one row per model), and a metric is computed for all of
them at once.

Only what is fully understood is computed here: scikit-learn's own scorers (from
a name, or ``make_scorer`` of the same metric functions with keyword arguments
read below) and the estimator's ``score``, of sknet's own single-label
classifiers and regressors (inside pipelines and target transforms), with at
most ``sample_weight`` as a scoring parameter. Wherever scikit-learn would
warn, raise or score NaN (a label missing from the rows, a zero division, a
model with NaN outputs...), and for anything else, the score is left to
scikit-learn, which scores it as it always did.
"""

import functools
import inspect
import math

import numpy as np
import torch
from sklearn import metrics
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.compose import TransformedTargetRegressor

from .._compat import _MultimetricScorer, _PassthroughScorer, _routing_enabled, _Scorer
from ..nets import respond
from ..nets._base import BaseTorchNet
from ..nets._torch import TorchClassifier, TorchRegressor
from ._fold_metrics import (
    _absolute_error,
    _accuracy,
    _balanced_accuracy,
    _class_index,
    _explained_variance,
    _log_loss,
    _own_score,
    _prf,
    _r2,
    _roc_auc,
    _root_squared_error,
    _squared_error,
)
from ._wrappers import predictions_out


def fold_scores(scorer, estimators, nets, outputs, X, y, score_params, layers=()):
    """The scores of one fold's models on the rows ``X``, from their nets' outputs in hand.

    Parameters
    ----------
    scorer : callable
        The search's scorer: a scikit-learn scorer, the estimator's ``score``
        (``scoring=None``), or a ``_MultimetricScorer`` of several.
    estimators : list of estimator
        Each model's fitted estimator: its net inside the fitted ``layers``.
    nets : list of BaseTorchNet
        Each model's fitted net.
    outputs : list of torch.Tensor or None
        Each net's raw outputs on ``X`` (None where there are none).
    X, y : array-like
        The fold's rows and their targets, as scikit-learn's scorers would get them.
    score_params : dict
        The scorer's parameters of these rows.
    layers : list
        The fitted layers around the nets (see ``_wrappers.fit_layers``).

    Returns
    -------
    scores : list
        For each model, its score (a float), or for several metrics a dict of
        those computed here (perhaps not all); None where scikit-learn must score it.
    """
    n_models = len(nets)
    wanted = _metrics(scorer, score_params)
    if not wanted or y is None:
        return [None] * n_models
    try:
        found = _compute(wanted, estimators, nets, outputs, X, y, score_params, layers)
    except Exception:  # targets or answers not understood here: scikit-learn will say
        return [None] * n_models
    if None in wanted:  # a lone metric
        return [found[None].get(k) for k in range(n_models)]
    return [{name: by_model[k] for name, by_model in found.items() if k in by_model} or None
            for k in range(n_models)]


def completed(scorer, fast, score):
    """A model's whole score: ``fast`` (its entry of :func:`fold_scores`), where it lacks a
    metric completed by ``score(scorer)`` (scikit-learn's ``_score`` on its view) for those."""
    if fast is None:
        return score(scorer)
    if not isinstance(fast, dict):
        return fast
    missing = {name: sub for name, sub in scorer._scorers.items() if name not in fast}
    slow = score(_MultimetricScorer(scorers=missing, raise_exc=scorer._raise_exc)) if missing else {}
    return {name: fast[name] if name in fast else slow[name] for name in scorer._scorers}


def _metrics(scorer, score_params):
    """``{name: (metric, scorer)}`` of the metrics of ``scorer`` computed here (name None
    for a lone scorer); empty if there are none."""
    params = score_params or {}
    if set(params) - {"sample_weight"}:  # metadata other than the weights: scikit-learn routes it
        return {}
    if type(scorer) is _MultimetricScorer:
        if params and _routing_enabled():  # each metric gets the weights only if it asked for them
            return {}
        read = {name: (_metric(sub), sub) for name, sub in scorer._scorers.items()}
        return {name: pair for name, pair in read.items() if pair[0] is not None}
    metric = _metric(scorer)
    return {} if metric is None else {None: (metric, scorer)}


def _compute(wanted, estimators, nets, outputs, X, y, score_params, layers):
    """``{name: {model: score}}`` of the models and metrics computed here."""
    models = [k for k in range(len(nets)) if _understood(nets[k], outputs[k], layers)]
    models = [k for k in models if _alike(nets[k], nets[models[0]])]
    if not models:
        return {name: {} for name in wanted}
    fold = _Fold([nets[k] for k in models], [outputs[k] for k in models], X, y, score_params, layers)
    found = {}
    for name, (metric, scorer) in wanted.items():
        answers = [k for k in models if _answers(estimators[k], nets[k], scorer, metric, fold.kind)]
        found[name] = {}
        if answers and _valid_pos_label(metric, fold):
            try:
                values = metric.compute(fold)
            except Exception:  # e.g. predictions a target transform cannot give: scikit-learn's to say
                continue
            values = np.where(fold.broken, np.nan, values)
            answering = set(answers)
            found[name] = {k: float(metric.sign * value) for k, value in zip(models, values, strict=True)
                           if k in answering and np.isfinite(value)}
    return found


def _valid_pos_label(metric, fold):
    """Whether a binary classifier has the scorer's ``pos_label`` among its classes (else
    scikit-learn raises before it predicts, whatever the metric)."""
    return (metric.pos_label is None or fold.kind != "classifier" or len(fold.classes) != 2
            or _class_index(fold.classes, metric.pos_label) is not None)


def _understood(net, outputs, layers):
    """Whether the predictions of ``net`` from ``outputs`` are known here: sknet's own mapping
    of a single-label classifier's or a regressor's outputs, finite (else its predict raises)."""
    checked = type(net)._checked_outputs is BaseTorchNet._checked_outputs  # outputs as predict takes them
    if not isinstance(outputs, torch.Tensor) or not checked:
        return False
    if isinstance(net, TorchClassifier):
        if (type(net)._respond is not TorchClassifier._respond or net._is_multilabel()
                or any(isinstance(layer, TransformedTargetRegressor) for layer in layers)):
            return False
    elif not isinstance(net, TorchRegressor) or type(net)._respond is not TorchRegressor._respond:
        return False
    return bool(torch.isfinite(outputs).all())


def _alike(net, first):
    """Whether ``net`` answers in the terms of the fold's first net (same kind, classes, target shape)."""
    if isinstance(first, TorchClassifier):
        return (isinstance(net, TorchClassifier) and net.classes_.dtype == first.classes_.dtype
                and np.array_equal(net.classes_, first.classes_))
    return isinstance(net, TorchRegressor) and net._y_ndim == first._y_ndim


def _answers(estimator, net, scorer, metric, kind):
    """Whether ``scorer`` would score ``estimator`` with ``metric``'s computation: of its
    kind of net, and through the response method the metric reads."""
    if metric.kind is None:  # the estimator's score: the mixin's accuracy or R^2 (see fitted_view)
        mixin = ClassifierMixin if kind == "classifier" else RegressorMixin
        return type(net).score is mixin.score
    if metric.kind != kind:
        return False
    methods = scorer._response_method
    names = (methods,) if isinstance(methods, str) else tuple(methods)
    # The scorer calls the first of its methods the estimator has.
    used = next((name for name in names if getattr(estimator, name, None) is not None), None)
    return used == metric.response


class _Metric:
    """A metric computed here: the kind of net and response it reads, and how (``compute``:
    a :class:`_Fold` to each model's value, NaN where scikit-learn must score it)."""

    def __init__(self, kind, response, compute):
        self.kind = kind  # "classifier", "regressor", or None for the estimator's own score
        self.response = response  # "predict" or "predict_proba"
        self.compute = compute
        self.sign = 1  # the scorer's: -1 for a loss
        self.pos_label = None  # the scorer's, which scikit-learn checks for a binary classifier


def _metric(scorer):
    """The :class:`_Metric` that ``scorer`` computes, or None if it is not one computed here."""
    if type(scorer) is _PassthroughScorer:
        return _Metric(None, "predict", _own_score)
    if type(scorer) is not _Scorer or scorer._sign not in (1, -1):
        return None
    read = _READERS.get(scorer._score_func)
    settings = _settings(scorer._score_func, scorer._kwargs)
    if read is None or settings is None:
        return None
    pos_label = settings.get("pos_label")  # before the reader takes the settings apart
    metric = read(settings)
    if metric is not None:
        metric.sign, metric.pos_label = scorer._sign, pos_label
    return metric


@functools.cache
def _defaults(func):
    """A metric function's keyword parameters and their defaults, less targets and sample weights."""
    parameters = list(inspect.signature(func).parameters.values())[2:]
    return {p.name: p.default for p in parameters if p.name != "sample_weight"}


def _settings(func, kwargs):
    """Every keyword argument ``func`` gets from a scorer: its defaults and the scorer's own;
    None for an argument it does not take."""
    defaults = _defaults(func)
    return None if set(kwargs) - set(defaults) else {**defaults, **kwargs}


def _is(value, *options):
    """Whether ``value`` is one of ``options``, of the same type (True is not 1 here)."""
    return any(value is None if option is None else type(value) is type(option) and value == option
               for option in options)


def _read_accuracy(s):
    if _is(s.pop("normalize"), True) and not s:
        return _Metric("classifier", "predict", _accuracy)
    return None


def _read_balanced(s):
    adjusted = s.pop("adjusted")
    if _is(adjusted, True, False) and not s:
        return _Metric("classifier", "predict", functools.partial(_balanced_accuracy, adjusted=adjusted))
    return None


def _read_prf(quantity, s):
    """F-beta, precision or recall. ``zero_division`` may be anything valid: where it would
    matter, scikit-learn scores."""
    beta = s.pop("beta", 1.0)
    average, pos_label, zero_division = s.pop("average"), s.pop("pos_label"), s.pop("zero_division")
    if (not isinstance(beta, (int, float)) or isinstance(beta, bool) or not 0 < beta < math.inf
            or not _is(average, "binary", "micro", "macro", "weighted") or not _is(s.pop("labels"), None)
            or not _is(zero_division, "warn", 0.0, 1.0, 0, 1) and not _is_nan(zero_division) or s):
        return None
    if average != "binary" and not _is(pos_label, None, 1):  # scikit-learn warns it is ignored
        return None
    compute = functools.partial(_prf, quantity=quantity, beta2=beta**2, average=average, pos_label=pos_label)
    return _Metric("classifier", "predict", compute)


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def _read_log_loss(s):
    # y_pred: scikit-learn 1.9's deprecated name of the probabilities, which a scorer passes first.
    normalize, labels, renamed = s.pop("normalize"), s.pop("labels"), s.pop("y_pred", "deprecated")
    if _is(normalize, True) and _is(labels, None) and _is(renamed, "deprecated") and not s:
        return _Metric("classifier", "predict_proba", _log_loss)
    return None


def _read_roc_auc(s):
    multi_class, average = s.pop("multi_class"), s.pop("average")
    if (_is(multi_class, "raise", "ovr", "ovo") and _is(average, "macro", "weighted")
            and _is(s.pop("max_fpr"), None) and _is(s.pop("labels"), None) and not s):
        compute = functools.partial(_roc_auc, multi_class=multi_class, average=average)
        return _Metric("classifier", "predict_proba", compute)
    return None


def _read_regression(compute, s):
    if _is(s.pop("multioutput"), "uniform_average") and _is(s.pop("force_finite", True), True) and not s:
        return _Metric("regressor", "predict", compute)
    return None


class _Fold:
    """A fold's targets, checked and encoded once, and its models' answers, each stacked once.

    For classifiers ``y`` holds the index of each row's class in ``classes`` (a
    label the nets never saw makes the fold one for scikit-learn); for
    regressors, the targets as a float64 matrix of one column per output.
    """

    def __init__(self, nets, outputs, X, y, score_params, layers):
        self.nets, self.outputs, self.X, self.layers = nets, outputs, X, layers
        self.kind = "classifier" if isinstance(nets[0], TorchClassifier) else "regressor"
        if self.kind == "classifier":
            self.classes = nets[0].classes_
            self.y = _encoded(self.classes, y)
        else:
            self.y = _values(y)
        self.n = len(self.y)
        self.weight = _weights(score_params, self.n)
        self.broken = np.zeros(len(nets), dtype=bool)  # models whose predictions scikit-learn would refuse

    def mean(self, values):
        """The (weighted) mean over the rows, axis 1 of ``values``, as ``np.average`` takes it."""
        if self.weight is None:
            return values.mean(axis=1)
        weight = self.weight.reshape((-1,) + (1,) * (values.ndim - 2))
        return (values * weight).sum(axis=1) / self.weight.sum()

    @functools.cached_property
    def labels(self):
        """Each model's predicted classes, as indices into ``classes``: ``(n_models, n)``."""
        # The first largest output, as predict takes it (from the outputs as float64: the same).
        return torch.stack(self.outputs).argmax(dim=2).numpy()

    @functools.cached_property
    def proba(self):
        """Each model's ``predict_proba``: ``(n_models, n, n_classes)``."""
        return np.stack([respond(net, "predict_proba", out) for net, out in zip(self.nets, self.outputs,
                                                                                 strict=True)])

    @functools.cached_property
    def values(self):
        """Each model's ``predict`` (through a target transform), ``(n_models, n, n_outputs)``;
        a model whose predictions scikit-learn would not take is marked ``broken``."""
        stacked = np.full((len(self.nets),) + self.y.shape, np.nan)
        for k, (net, out) in enumerate(zip(self.nets, self.outputs, strict=True)):
            prediction = np.asarray(predictions_out(self.layers, respond(net, "predict", out), self.X))
            # scikit-learn would compute in float32 for float32 predictions, and refuses NaN.
            shaped = (prediction.ndim in (1, 2) and len(prediction) == self.n
                      and prediction.reshape(self.n, -1).shape == self.y.shape)
            if prediction.dtype == np.float64 and shaped and np.isfinite(prediction).all():
                stacked[k] = prediction.reshape(self.y.shape)
            else:
                self.broken[k] = True
        return stacked

    def _count(self, labels, where=None, weighted=False):
        """Per model, the (weighted) number of rows predicted in each class: ``(n_models, n_classes)``
        from ``labels`` ``(n_models, n)``, counting only the rows ``where`` marks, if given.

        One bincount of all models' labels, each model's shifted to bins of its own; each bin
        sums its rows in their order, as scikit-learn's bincount of one model's does.
        """
        n_models, n_classes = len(labels), len(self.classes)
        flat = labels + n_classes * np.arange(n_models)[:, None]
        weights = np.broadcast_to(self.weight, labels.shape) if weighted and self.weight is not None else None
        if where is not None:
            flat, weights = flat[where], None if weights is None else weights[where]
        counts = np.bincount(flat.ravel(), weights=None if weights is None else weights.ravel(),
                             minlength=n_models * n_classes)
        return counts.reshape(n_models, n_classes).astype(np.float64)

    @functools.cached_property
    def true_count(self):
        """The number of rows of each class."""
        return np.bincount(self.y, minlength=len(self.classes))

    @functools.cached_property
    def true_sum(self):
        """The weight of each class's rows (their number, unweighted)."""
        return np.bincount(self.y, weights=self.weight, minlength=len(self.classes)).astype(np.float64)

    @functools.cached_property
    def pred_sum(self):
        """Per model, the weight of the rows predicted in each class."""
        return self._count(self.labels, weighted=True)

    @functools.cached_property
    def true_positives(self):
        """Per model, the weight of each class's rows predicted right."""
        return self._count(self.labels, where=self.labels == self.y, weighted=True)

    @functools.cached_property
    def present(self):
        """Per model, the labels scikit-learn averages over: those among the rows or predicted."""
        return (self.true_count > 0) | (self._count(self.labels) > 0)


def _encoded(classes, y):
    """``y`` as indices into ``classes``; raises if a label is not a class (scikit-learn's to say)."""
    y = np.asarray(y)
    if y.ndim != 1 or not len(y):
        raise ValueError("not one label a row")
    index = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
    if not np.all(classes[index] == y):
        raise ValueError("a label the nets never saw")
    return index


def _values(y):
    """Regression targets as a float64 matrix, one column per output; raises if scikit-learn would."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf" or y.ndim not in (1, 2) or not len(y):
        raise ValueError("not numeric targets")
    y = y.astype(np.float64).reshape(len(y), -1)
    if not np.isfinite(y).all():
        raise ValueError("non-finite targets")
    return y


def _weights(score_params, n):
    """The rows' sample weights as float64 (None without); raises for weights scikit-learn might refuse."""
    weight = (score_params or {}).get("sample_weight")
    if weight is None:
        return None
    weight = np.asarray(weight, dtype=np.float64)
    if weight.shape != (n,) or not np.isfinite(weight).all() or (weight < 0).any() or not weight.sum() > 0:
        raise ValueError("weights left to scikit-learn")
    return weight


# The metric functions computed here, and how each one's keyword arguments are read.
_READERS = {
    metrics.accuracy_score: _read_accuracy,
    metrics.balanced_accuracy_score: _read_balanced,
    metrics.f1_score: functools.partial(_read_prf, "f"),
    metrics.fbeta_score: functools.partial(_read_prf, "f"),
    metrics.precision_score: functools.partial(_read_prf, "precision"),
    metrics.recall_score: functools.partial(_read_prf, "recall"),
    metrics.log_loss: _read_log_loss,
    metrics.roc_auc_score: _read_roc_auc,
    metrics.r2_score: functools.partial(_read_regression, _r2),
    metrics.explained_variance_score: functools.partial(_read_regression, _explained_variance),
    metrics.mean_squared_error: functools.partial(_read_regression, _squared_error),
    metrics.root_mean_squared_error: functools.partial(_read_regression, _root_squared_error),
    metrics.mean_absolute_error: functools.partial(_read_regression, _absolute_error),
}
