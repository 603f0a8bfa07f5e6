"""Exhaustive search over a grid."""

import numpy as np
from sklearn.model_selection import GridSearchCV as _SklearnGridSearchCV

from ._search import SearchMixin


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
    engine : {"auto", "batched", "sequential"}, default="auto"
        How sknet nets (or pipelines ending in one) are trained: "auto" and
        "batched" train all candidates x folds together with
        :mod:`sknet.engine` where it can (pipelines' preprocessing is fitted per
        fold first) and the rest one by one; "batched" warns about the ones it
        could not batch. "sequential" fits every job on its own, as
        scikit-learn does. Other estimators are always fitted sequentially.
    checkpoint : str, os.PathLike or None, default=None
        A file in which each finished (candidate, fold) result is journaled the
        moment it exists (SQLite). Fitting the same search again with the same
        file skips what is there and gives the ``cv_results_`` of an
        uninterrupted run, fit and score times included; a file from another
        search is refused with a ValueError and left as it is. See
        ``docs/checkpoint.md``.

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
    _not_identity = (*SearchMixin._not_identity, "refit")

    def __init__(self, estimator, param_grid, *, scoring=None, n_jobs=None, refit=True, cv=None, verbose=0,
                 pre_dispatch="2*n_jobs", error_score=np.nan, return_train_score=False, engine="auto",
                 checkpoint=None):
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv,
                         verbose=verbose, pre_dispatch=pre_dispatch, error_score=error_score,
                         return_train_score=return_train_score)
        self.engine = engine
        self.checkpoint = checkpoint
