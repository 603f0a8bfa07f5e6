"""Metrics of all of a fold's models at once, from its targets and their stacked answers.

Each function takes a ``_Fold`` of :mod:`._fast_scores` (the fold's encoded
targets, sample weights, and the models' predicted class indices, probabilities
or values, one row per model) and returns one float64 score per model: NaN
where scikit-learn would warn or score NaN, so that the caller leaves that
model's score to scikit-learn.
"""

import functools
import itertools
import math

import numpy as np

# A probability row summing this close to 1 passes scikit-learn's checks (log loss and
# multiclass AUC), whose tolerances are at least this wide.
_SUM_TOLERANCE = math.sqrt(np.finfo(np.float64).eps)


def _own_score(fold):
    """The estimator's ``score``: accuracy for a classifier, R^2 for a regressor."""
    return _accuracy(fold) if fold.kind == "classifier" else _r2(fold)


def _accuracy(fold):
    return fold.mean(fold.labels == fold.y)


def _balanced_accuracy(fold, adjusted):
    """Mean recall over the rows' classes; NaN where scikit-learn would warn (a label predicted
    but without rows, or whose rows weigh nothing; a single label in all)."""
    undefined = (fold.present & (fold.true_sum == 0)).any(axis=1) | (fold.present.sum(axis=1) < 2)
    seen = fold.true_count > 0
    score = np.ascontiguousarray(fold.true_positives[:, seen] / fold.true_sum[seen]).mean(axis=1)
    if adjusted:
        chance = 1 / seen.sum()
        score = (score - chance) / (1 - chance) if chance < 1 else np.full(len(score), np.nan)
    return np.where(undefined, np.nan, score)


def _prf(fold, quantity, beta2, average, pos_label):
    """F-beta (``quantity`` "f"), precision or recall, averaged over the labels present per model."""
    reduce = functools.partial(_averaged, quantity, beta2, average)
    true = np.broadcast_to(fold.true_sum, fold.pred_sum.shape)
    counts = (fold.true_positives, fold.pred_sum, true)
    if average != "binary":
        return _by_label_set(fold.present, reduce, *counts)
    # The positive class's counts, where the rows and predictions hold two labels at most (a
    # binary task to scikit-learn, even of a multiclass net), the positive one among them:
    # scikit-learn raises for more labels or another positive one, and finds 0/0 for one label.
    positive = _class_index(fold.classes, pos_label)
    if positive is None:
        return np.full(len(true), np.nan)
    binary = (fold.present.sum(axis=1) <= 2) & fold.present[:, positive]
    return np.where(binary, reduce(*(np.ascontiguousarray(c[:, [positive]]) for c in counts)), np.nan)


def _class_index(classes, label):
    """The index of ``label`` in a binary classifier's ``classes`` as scikit-learn finds it
    (by ``==``, among Python values), or None where it finds none (and raises)."""
    return next((i for i, value in enumerate(classes.tolist()) if value == label), None)


def _averaged(quantity, beta2, average, true_positives, predicted, true):
    """``quantity`` per label from its counts ``(n_models, n_labels)``, averaged per model;
    NaN where a label's ratio is 0/0 (scikit-learn warns and puts ``zero_division`` there)."""
    if average == "micro":
        counts = (true_positives, predicted, true)
        true_positives, predicted, true = (c.sum(axis=1, keepdims=True) for c in counts)
    if quantity == "precision":
        top, bottom = true_positives, predicted
    elif quantity == "recall":
        top, bottom = true_positives, true
    else:
        top, bottom = (1 + beta2) * true_positives, beta2 * true + predicted
    undefined = (bottom == 0).any(axis=1)
    score = top / np.where(bottom == 0, 1.0, bottom)
    if average == "weighted":
        support = true.sum(axis=1)
        undefined |= support == 0
        return np.where(undefined, np.nan, (score * true).sum(axis=1) / np.where(support == 0, 1.0, support))
    return np.where(undefined, np.nan, score.mean(axis=1))


def _by_label_set(present, reduce, *arrays):
    """``reduce`` of the columns of ``arrays`` that ``present`` marks, row by row, as
    contiguous arrays (so that numpy sums each row as it sums a lone vector), one call per
    distinct set of columns."""
    result = np.empty(len(present))
    sets, which = np.unique(present, axis=0, return_inverse=True)
    which = which.reshape(-1)
    for j, columns in enumerate(sets):
        rows = which == j
        result[rows] = reduce(*(np.ascontiguousarray(a[rows][:, columns]) for a in arrays))
    return result


def _log_loss(fold):
    """Mean negative log of each row's probability of its class, clipped as scikit-learn clips it."""
    if not (fold.true_count > 0).all():  # scikit-learn reads the classes off the rows, and raises
        return np.full(len(fold.nets), np.nan)
    proba = fold.proba
    if len(fold.classes) == 2:
        # scikit-learn takes the positive column and makes the other 1 - it.
        positive = proba[:, :, 1]
        right = np.where(fold.y == 1, positive, 1 - positive)
    else:
        right = np.take_along_axis(proba, fold.y[None, :, None], axis=2)[:, :, 0]
    eps = np.finfo(proba.dtype).eps
    loss = fold.mean(-np.log(np.clip(right, eps, 1 - eps)))
    return np.where(_proper(proba), loss, np.nan)


def _proper(proba):
    """Per model, whether its probabilities pass scikit-learn's checks: in [0, 1], rows summing to 1."""
    return ((proba >= 0).all(axis=(1, 2)) & (proba <= 1).all(axis=(1, 2))
            & (np.abs(proba.sum(axis=2) - 1) <= _SUM_TOLERANCE).all(axis=1))


def _roc_auc(fold, multi_class, average):
    """ROC AUC: of the second class's probability for two classes; one class against the
    rest ("ovr") or pairwise ("ovo", Hand & Till) for more."""
    nan = np.full(len(fold.nets), np.nan)
    if not (fold.true_count > 0).all():  # scikit-learn warns (binary) or raises
        return nan
    proba = fold.proba
    if len(fold.classes) == 2:  # average and multi_class play no part
        return _auc(proba[:, :, 1], fold.y == 1, fold.weight)
    if multi_class == "raise" or multi_class == "ovo" and fold.weight is not None:  # scikit-learn raises
        return nan
    classes = range(len(fold.classes))
    if multi_class == "ovr":
        scores = np.stack([_auc(proba[:, :, c], fold.y == c, fold.weight) for c in classes], axis=1)
        weights = fold.true_sum if average == "weighted" else None
    else:
        scores, weights = _one_vs_one(fold, proba, classes)
        weights = weights if average == "weighted" else None
    if weights is None:
        score = scores.mean(axis=1)
    elif weights.sum() < 1e-6:  # scikit-learn scores 0 for weights close to nothing
        return nan
    else:
        score = (scores * weights).sum(axis=1) / weights.sum()
    return np.where(_proper(proba), score, np.nan)


def _one_vs_one(fold, proba, classes):
    """Each pair of classes' mean AUC (each class's probability on the pair's rows), and the
    pairs' shares of the rows."""
    scores, shares = [], []
    for a, b in itertools.combinations(classes, 2):
        rows = (fold.y == a) | (fold.y == b)
        pair = fold.y[rows]
        both = _auc(proba[:, rows, a], pair == a, None) + _auc(proba[:, rows, b], pair == b, None)
        scores.append(both / 2)
        shares.append(rows.mean())
    return np.stack(scores, axis=1), np.array(shares)


def _auc(scores, positive, weight):
    """Per row of ``scores`` ``(n_models, n)``, the area under its ROC curve for the ``positive``
    rows: the (weighted) share of (positive, negative) pairs that it orders right, ties
    counting half; NaN where one side weighs nothing (scikit-learn warns).

    Each row is sorted once; a positive row gets the weight of the negatives scored below
    it, and half of those tied with it. Unweighted, all of it is exact in floats (counts and
    halves) but the last division.
    """
    weight = np.ones(len(positive)) if weight is None else weight
    positives = np.where(positive, weight, 0.0)
    negatives = np.where(positive, 0.0, weight)
    total_positive, total_negative = positives.sum(), negatives.sum()
    if not (total_positive > 0 and total_negative > 0):
        return np.full(len(scores), np.nan)
    n_models, n = scores.shape
    order = np.argsort(scores, axis=1, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=1)
    starts = np.ones((n_models, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    tie = np.cumsum(starts, axis=1) - 1  # each sorted row's group of equal scores, from 0
    flat = (tie + n * np.arange(n_models)[:, None]).ravel()
    negative_in_tie = np.bincount(flat, weights=negatives[order].ravel(), minlength=n_models * n)
    negative_in_tie = negative_in_tie.reshape(n_models, n)
    below = np.cumsum(negative_in_tie, axis=1) - negative_in_tie
    credit = np.take_along_axis(below + 0.5 * negative_in_tie, tie, axis=1)
    return (positives[order] * credit).sum(axis=1) / (total_positive * total_negative)


def _squared_error(fold):
    return fold.mean((fold.y - fold.values) ** 2).mean(axis=1)


def _root_squared_error(fold):
    return np.sqrt(fold.mean((fold.y - fold.values) ** 2)).mean(axis=1)


def _absolute_error(fold):
    return fold.mean(np.abs(fold.values - fold.y)).mean(axis=1)


def _r2(fold):
    """R^2 per output (1 where perfect, 0 where the targets are constant but the predictions
    are not, as scikit-learn forces them finite), averaged over the outputs."""
    if fold.n < 2:  # scikit-learn warns
        return np.full(len(fold.nets), np.nan)
    weight = 1.0 if fold.weight is None else fold.weight[:, None]
    residual = (weight * (fold.y - fold.values) ** 2).sum(axis=1)
    spread = (weight * (fold.y - np.average(fold.y, axis=0, weights=fold.weight)) ** 2).sum(axis=0)
    return _explained(residual, spread)


def _explained_variance(fold):
    errors = fold.y - fold.values
    residual = fold.mean((errors - fold.mean(errors)[:, None, :]) ** 2)
    mean = np.average(fold.y, axis=0, weights=fold.weight)
    spread = np.average((fold.y - mean) ** 2, axis=0, weights=fold.weight)
    return _explained(residual, spread)


def _explained(residual, spread):
    """1 - residual / spread per output, forced finite as scikit-learn forces it, averaged."""
    score = 1 - residual / np.where(spread == 0, 1.0, spread)
    score = np.where(residual == 0, 1.0, np.where(spread == 0, 0.0, score))
    return score.mean(axis=1)
