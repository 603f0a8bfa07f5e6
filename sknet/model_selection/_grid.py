"""Exhaustive search over a grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import GridSearchCV as _SklearnGridSearchCV
from sklearn.model_selection import ParameterGrid

from ._docs import ALL_IN_ROUNDS, checkpoint_doc, engine_doc, with_shared_parameters
from ._search import SearchMixin, evaluate_all

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

    from .._typing import CVParam, ErrorScore, FilePath, ParamSpace, RefitParam, ScoringParam


class GridSearchCV(SearchMixin, _SklearnGridSearchCV):
    """Exhaustive search over specified parameter values for an estimator.

    A drop-in replacement for :class:`sklearn.model_selection.GridSearchCV`:
    the same arguments, the same fitted attributes and ``cv_results_``, for any
    scikit-learn estimator. See scikit-learn's documentation for every argument.

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator.
    param_grid : dict or list of dicts
        Parameter names mapped to lists of values to try.
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in scikit-learn. With ``n_jobs > 1`` each worker process runs torch
        with ``cores // n_jobs`` threads, and sknet nets with ``device="auto"``
        share the visible GPUs round-robin.
    ENGINE_PARAMETER
    CHECKPOINT_PARAMETER
    MAX_TIME_PARAMETER

    Attributes
    ----------
    engine_time_ : float
        Seconds spent training batched groups; with the batched engine the fit
        times in ``cv_results_`` count only handing over each trained result.
        Set when the engine was used (an sknet net and ``engine != "sequential"``).
    n_batched_fits_ : int
        Fits the batched engine trained; set with ``engine_time_``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import GridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(MLPClassifier(max_epochs=20, random_state=0),
    ...                       {"lr": [1e-3, 1e-2]}, cv=3).fit(X, y)
    >>> search.best_params_
    {'lr': 0.01}
    """

    _parameter_constraints = {**_SklearnGridSearchCV._parameter_constraints,
                              **SearchMixin._search_constraints}
    _space_param = "param_grid"
    __doc__ = with_shared_parameters(__doc__, engine_doc("all candidates x folds"), checkpoint_doc(),
                                     max_time=ALL_IN_ROUNDS)
    _not_identity = (*SearchMixin._not_identity, "refit")

    def __init__(self, estimator: BaseEstimator, param_grid: ParamSpace, *, scoring: ScoringParam = None,
                 n_jobs: int | None = None, refit: RefitParam = True, cv: CVParam = None, verbose: int = 0,
                 pre_dispatch: int | str = "2*n_jobs", error_score: ErrorScore = np.nan,
                 return_train_score: bool = False, engine: str = "auto",
                 checkpoint: FilePath | None = None, max_time: float | None = None) -> None:
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv,
                         verbose=verbose, pre_dispatch=pre_dispatch, error_score=error_score,
                         return_train_score=return_train_score)
        self.engine = engine
        self.checkpoint = checkpoint
        self.max_time = max_time

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        evaluate_all(self, evaluate_candidates, ParameterGrid(self.param_grid), callback_ctx)
