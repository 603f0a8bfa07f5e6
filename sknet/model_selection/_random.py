"""Random search over distributions, lists, ranges and skopt dimensions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import ParameterSampler
from sklearn.model_selection import RandomizedSearchCV as _SklearnRandomizedSearchCV

from ._docs import ALL_IN_ROUNDS, checkpoint_doc, engine_doc, with_shared_parameters
from ._search import SearchMixin, evaluate_all
from ._space import to_distributions

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

    from .._typing import CVParam, ErrorScore, FilePath, ParamSpace, RefitParam, ScoringParam, Seed


class RandomizedSearchCV(SearchMixin, _SklearnRandomizedSearchCV):
    """Randomized search on hyper parameters.

    A drop-in replacement for :class:`sklearn.model_selection.RandomizedSearchCV`
    that also accepts the search spaces of :class:`BayesSearchCV` and
    :class:`GeneticSearchCV`, so that strategies can be swapped on one space.

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator.
    param_distributions : dict or list of dicts
        Parameter names mapped to scipy.stats distributions or lists (as in
        scikit-learn), or to skopt dimensions (``Real``, ``Integer``,
        ``Categorical``) and ``(low, high, "uniform")`` / ``(low, high, "log-uniform")``
        ranges, sampled as the Bayesian and genetic searches would. A bare
        ``(low, high)`` tuple keeps scikit-learn's meaning, two choices, with a
        warning (it is a range to the Bayesian and genetic searches).
    n_iter, scoring, n_jobs, refit, cv, verbose, pre_dispatch, random_state, error_score, \
return_train_score
        As in scikit-learn.
    ENGINE_PARAMETER
    CHECKPOINT_PARAMETER
    MAX_TIME_PARAMETER

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import RandomizedSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> space = {"lr": (1e-4, 1e-1, "log-uniform"), "n_units": (8, 64, "uniform"),
    ...          "activation": ["relu", "tanh"]}
    >>> search = RandomizedSearchCV(MLPClassifier(max_epochs=10, random_state=0), space,
    ...                             n_iter=3, cv=3, random_state=0).fit(X, y)
    >>> sorted(search.best_params_)
    ['activation', 'lr', 'n_units']
    """

    _parameter_constraints = {**_SklearnRandomizedSearchCV._parameter_constraints,
                              **SearchMixin._search_constraints}
    _space_param = "param_distributions"
    __doc__ = with_shared_parameters(__doc__, engine_doc("all candidates x folds"), checkpoint_doc(
        ", with the random state it starts from when ``random_state`` is None or a ``RandomState``"),
        max_time=ALL_IN_ROUNDS)
    _not_identity = (*SearchMixin._not_identity, "refit")

    def __init__(self, estimator: BaseEstimator, param_distributions: ParamSpace, *, n_iter: int = 10,
                 scoring: ScoringParam = None, n_jobs: int | None = None, refit: RefitParam = True,
                 cv: CVParam = None, verbose: int = 0, pre_dispatch: int | str = "2*n_jobs",
                 random_state: Seed = None, error_score: ErrorScore = np.nan,
                 return_train_score: bool = False, engine: str = "auto",
                 checkpoint: FilePath | None = None, max_time: float | None = None) -> None:
        super().__init__(estimator, param_distributions, n_iter=n_iter, scoring=scoring, n_jobs=n_jobs,
                         refit=refit, cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         random_state=random_state, error_score=error_score,
                         return_train_score=return_train_score)
        self.engine = engine
        self.checkpoint = checkpoint
        self.max_time = max_time

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        candidates = ParameterSampler(
            to_distributions(self.param_distributions), self.n_iter,
            random_state=evaluate_candidates.random_state(self.random_state),
        )
        evaluate_all(self, evaluate_candidates, candidates, callback_ctx)
