"""What the four searches share.

All four are scikit-learn ``BaseSearchCV`` subclasses: scikit-learn's own ``fit``
does the cross-validation, parallelism (joblib), scoring, ``error_score``
handling, refitting, callbacks and metadata routing, so ``cv_results_`` means
the same thing whichever strategy proposed the candidates. A strategy only
implements ``_run_search``: which candidates to evaluate next.
"""

import warnings

import numpy as np
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection._search import BaseSearchCV

from ._space import python_value

__all__ = ["BaseSearchCV", "objective_key", "candidate_key", "latest_scores", "evaluate_round"]


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


def evaluate_round(search, evaluate_candidates, candidates, *, key, parent_ctx, task_name, label,
                   more_results, tolerate_total_failure):
    """Cross-validate one round of a sequential strategy (a generation, a batch of points).

    Each round is a callback subtask of its own, since scikit-learn numbers the
    candidate tasks from 0 under the context it is given. Returns ``(scores,
    failure, stop)``: the candidates' objective (-inf for failed ones), the error
    if every fit of the round failed and that was tolerated (else None), and
    whether a scikit-learn callback asked to stop. ``label`` names the round in
    warnings ("generation 3").

    scikit-learn aborts a call whose fits all fail. For a strategy that evaluates
    a few candidates at a time that may be one unlucky round, not a broken model,
    so with ``tolerate_total_failure`` the round is scored -inf with a warning
    (its candidates are then missing from ``cv_results_``).
    """
    ctx = parent_ctx.subcontext(task_name=task_name, max_subtasks=len(candidates) * search.n_splits_,
                                sequential_subtasks=False).call_on_fit_task_begin(estimator=search)
    scores, failure = np.empty(0), None
    if candidates:
        try:
            results = evaluate_candidates(candidates, more_results=more_results, callback_ctx=ctx)
            scores = latest_scores(results, key, len(candidates))
        except ValueError as exc:
            # The message is scikit-learn's only signal for "all fits failed".
            if not tolerate_total_failure or search.error_score == "raise" or "fits failed" not in str(exc):
                raise
            warnings.warn(
                f"Every fit of the {len(candidates)} candidate(s) of {label} failed; they rank last "
                f"and are left out of cv_results_.{exc}", FitFailedWarning, stacklevel=3,
            )
            scores, failure = np.full(len(candidates), -np.inf), exc
    return scores, failure, bool(ctx.call_on_fit_task_end(estimator=search))
