"""What pruning and population training rank candidates by: their scores at an epoch checkpoint.

A pruned round stops the candidates whose partial score at a checkpoint is below the median of
the finite ones seen there; population training ranks its members at each interval's end.
"""

import numbers

import numpy as np

from ._wrappers import epochs_param


def objective(results, metric):
    """The mean test score of one candidate's split results in ``metric`` (the one a search
    maximises); -inf where a fit failed."""
    scores = [r["test_scores"][metric] if isinstance(r["test_scores"], dict) else r["test_scores"]
              for r in results]
    score = float(np.mean(scores))
    return score if np.isfinite(score) else -np.inf


def stage_score(results, metric):
    """A candidate's partial score at a pruning checkpoint (:func:`objective`); -inf where a fit
    failed, whatever ``error_score`` scored it: a number would otherwise pass for a result."""
    if any(result.get("fit_error") is not None for result in results):
        return -np.inf
    return objective(results, metric)


def finite_median(scores):
    """The median of the finite ``scores`` (-inf without any): failed fits (-inf) must not drag it
    down, or once half of a checkpoint's candidates failed, none would ever be pruned there."""
    finite = [score for score in scores if np.isfinite(score)]
    return float(np.median(finite)) if finite else -np.inf


def pruning(search):
    """A search's pruning: ``(its net's epochs parameter, sorted checkpoints)``, or None without.

    Raises ValueError for checkpoints that are not positive ints, and for an
    estimator without an sknet net.
    """
    prune = getattr(search, "prune", None)
    if prune is None:
        return None
    name = epochs_param(search.estimator)
    if name is None:
        raise ValueError(f"prune needs an sknet net (it stops training at epoch checkpoints); "
                         f"{type(search.estimator).__name__} has none.")
    if not len(prune) or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) and e >= 1
                                 for e in prune):
        raise ValueError(f"prune must be None or a list of epoch counts (ints >= 1) at which to compare "
                         f"the candidates' partial scores; got prune={prune!r}.")
    return name, sorted({int(e) for e in prune})
