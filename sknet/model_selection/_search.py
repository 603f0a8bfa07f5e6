"""What the four searches share.

All four are scikit-learn ``BaseSearchCV`` subclasses: scikit-learn's own ``fit``
does the cross-validation, parallelism (joblib), scoring, ``error_score``
handling, refitting, callbacks and metadata routing, so ``cv_results_`` means
the same thing whichever strategy proposed the candidates. A strategy only
implements ``_run_search``: which candidates to evaluate next.
"""

import numpy as np
from sklearn.model_selection._search import BaseSearchCV

from ._space import python_value

__all__ = ["BaseSearchCV", "objective_key", "candidate_key", "latest_scores"]


def objective_key(search):
    """The ``cv_results_`` key a sequential strategy maximises.

    With several metrics the search optimises the one ``refit`` names, as
    scikit-optimize does; a callable ``refit`` names none, so it is refused.
    """
    _, refit_metric = search._get_scorers()
    if callable(search.scoring) and isinstance(search.refit, str):
        refit_metric = search.refit  # a callable returning a dict of metrics, refit names one
    if not isinstance(refit_metric, str):
        raise ValueError(
            f"{type(search).__name__} with several scoring metrics needs refit=<metric name> to know "
            "which metric to optimise; a callable or boolean refit does not say."
        )
    return f"mean_test_{refit_metric}"


def candidate_key(params):
    """A hashable, order-independent key for a parameter dict (cache lookups)."""
    return tuple(sorted((name, repr(python_value(value))) for name, value in params.items()))


def latest_scores(results, key, n_latest):
    """Mean test scores of the ``n_latest`` candidates just evaluated; NaN -> -inf.

    A candidate whose fits all failed scores ``error_score`` (NaN by default):
    it must rank below every real score, never crash the strategy.
    """
    if key not in results:
        raise ValueError(f"cv_results_ has no {key!r}; pass refit=<metric name> with a dict scoring.")
    scores = np.asarray(results[key][-n_latest:], dtype=float)
    return np.where(np.isfinite(scores), scores, -np.inf)
