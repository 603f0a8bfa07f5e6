"""Successive halving: scikit-learn's HalvingGridSearchCV and HalvingRandomSearchCV, batched.

scikit-learn's halving searches call ``evaluate_candidates`` once per rung (with a
subsampling splitter for ``resource="n_samples"``, or with the resource set on
every candidate); with sknet's round evaluator each rung is one round, whose
candidates × folds the batched engine trains together. With an epochs resource the
evaluator keeps each rung's training states, and a survivor goes on from its own.
"""

from __future__ import annotations

import numbers
from inspect import signature
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import ParameterSampler

from .._compat import SklearnHalvingGridSearchCV, SklearnHalvingRandomSearchCV, _num_samples
from ._docs import checkpoint_doc, engine_doc, with_shared_parameters
from ._search import SearchMixin
from ._space import to_distributions

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from sklearn.base import BaseEstimator
    from typing_extensions import Self

    from .._typing import CVParam, ErrorScore, Features, FilePath, ParamSpace, RefitParam, ScoringParam, Seed

_ENGINE = engine_doc("each rung's candidates x folds")
_CHECKPOINT = checkpoint_doc(", rung by rung", "resumes where it stopped", """With ``resource="n_samples"``
    (subsampled folds) or random candidates, the search must have an int ``random_state``, from which
    both are drawn.""")


class _HalvingMixin(SearchMixin):
    """What both halving searches add to scikit-learn's: sknet's ``fit`` around its strategy."""

    _not_identity = (*SearchMixin._not_identity, "refit")

    def _continued_param(self):
        """The parameter whose survivors go on training from the previous rung (None: restart)."""
        return None if self.resource == "n_samples" else self.resource

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        """scikit-learn's rungs; with ``max_time``, none after the one that passes it."""
        # scikit-learn before 1.9 has no callback contexts
        takes_context = "callback_ctx" in signature(super()._run_search).parameters
        context = {"callback_ctx": callback_ctx} if takes_context else {}
        if self.max_time is None:
            return super()._run_search(evaluate_candidates, **context)
        rungs = []

        def rung(candidates, *args, **kwargs):
            if rungs and evaluate_candidates.stop_for_time():
                raise _Deadline
            rungs.append(len(candidates))
            return evaluate_candidates(candidates, *args, **kwargs)

        try:
            super()._run_search(rung, **context)
        except _Deadline:  # the best is chosen in the last rung trained, as scikit-learn chooses it
            # scikit-learn counted the rung it was about to train: only those trained count.
            self.n_iterations_ = len(rungs)
            self.n_resources_ = self.n_resources_[:len(rungs)]
            self.n_candidates_ = self.n_candidates_[:len(rungs)]
            self.n_remaining_candidates_ = rungs[-1]

    def fit(self, X: Features, y: ArrayLike | None = None, **params: Any) -> Self:
        """Run successive halving: each rung cross-validated as one round, then refit the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets.
        **params : dict
            Fit parameters, routed as scikit-learn routes them.

        Returns
        -------
        self : object
            The fitted search, with scikit-learn's attributes (``n_candidates_``,
            ``n_resources_``, ``n_remaining_candidates_``, ...).
        """
        draws = self.resource == "n_samples" or isinstance(self, HalvingRandomSearchCV)
        if (getattr(self, "checkpoint", None) is not None and draws
                and not isinstance(self.random_state, numbers.Integral)):
            raise ValueError(
                f"{type(self).__name__} with a checkpoint needs an int random_state: its "
                "subsampled folds (resource='n_samples') or random candidates are drawn anew at "
                f"each fit otherwise, and a resumed search would mix two draws. Got "
                f"random_state={self.random_state!r}."
            )
        self._n_samples_orig = _num_samples(X)  # scikit-learn's fit sets it before its own
        SearchMixin.fit(self, X, y, **params)
        # scikit-learn does not set best_score_ for a callable refit, which halving's is
        self.best_score_ = self.cv_results_["mean_test_score"][self.best_index_]
        return self


class HalvingGridSearchCV(_HalvingMixin, SklearnHalvingGridSearchCV):
    """Search over a grid with successive halving, each rung batched.

    A drop-in replacement for scikit-learn's ``HalvingGridSearchCV`` (no
    ``enable_halving_search_cv`` import needed): the same arguments, fitted
    attributes and ``cv_results_`` (``iter``, ``n_resources``), for any
    estimator. Each rung evaluates its candidates with a growing resource:
    samples (``resource="n_samples"``, the default) or an estimator parameter
    such as an sknet net's ``max_epochs``. A rung is one round of the
    round evaluator, so the batched engine trains its candidates x folds
    together. With ``resource="max_epochs"`` (or a pipeline's
    ``<step>__max_epochs``), the survivors of a rung that are sknet MLPs go on
    training from where they stopped, which computes what scikit-learn's
    restart computes, for fewer epochs; where it would not (early stopping, a
    schedule scaled to ``max_epochs``, dropout on a GPU, other estimators)
    they are trained from scratch, as in scikit-learn. See the user guide's
    "Successive halving".

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator.
    param_grid : dict or list of dicts
        Parameter names mapped to lists of values to try.
    factor, resource, max_resources, min_resources, aggressive_elimination, cv, scoring, \
refit, error_score, return_train_score, random_state, n_jobs, verbose
        As in scikit-learn.
    ENGINE_PARAMETER
    CHECKPOINT_PARAMETER
    MAX_TIME_PARAMETER

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import HalvingGridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = HalvingGridSearchCV(MLPClassifier(random_state=0), {"lr": [1e-3, 1e-2, 3e-2]},
    ...                              resource="max_epochs", min_resources=5, max_resources=45,
    ...                              cv=3).fit(X, y)
    >>> search.n_resources_, search.n_candidates_
    ([5, 15], [3, 1])
    """

    __doc__ = with_shared_parameters(__doc__, _ENGINE, _CHECKPOINT, max_time="rung")

    _parameter_constraints = {**SklearnHalvingGridSearchCV._parameter_constraints,
                              **SearchMixin._search_constraints}
    _space_param = "param_grid"

    def __init__(self, estimator: BaseEstimator, param_grid: ParamSpace, *, factor: float = 3,
                 resource: str = "n_samples", max_resources: int | str = "auto",
                 min_resources: int | str = "exhaust", aggressive_elimination: bool = False, cv: CVParam = 5,
                 scoring: ScoringParam = None, refit: RefitParam = True, error_score: ErrorScore = np.nan,
                 return_train_score: bool = True, random_state: Seed = None, n_jobs: int | None = None,
                 verbose: int = 0, engine: str = "auto", checkpoint: FilePath | None = None,
                 max_time: float | None = None) -> None:
        super().__init__(estimator, param_grid, factor=factor, resource=resource, max_resources=max_resources,
                         min_resources=min_resources, aggressive_elimination=aggressive_elimination, cv=cv,
                         scoring=scoring, refit=refit, error_score=error_score,
                         return_train_score=return_train_score, random_state=random_state, n_jobs=n_jobs,
                         verbose=verbose)
        self.engine = engine
        self.checkpoint = checkpoint
        self.max_time = max_time


class HalvingRandomSearchCV(_HalvingMixin, SklearnHalvingRandomSearchCV):
    """Randomized search with successive halving, each rung batched.

    A drop-in replacement for scikit-learn's ``HalvingRandomSearchCV`` that,
    like :class:`RandomizedSearchCV`, also takes the spaces of
    :class:`BayesSearchCV` and :class:`GeneticSearchCV` (skopt dimensions,
    ``(low, high, prior)`` ranges). See :class:`HalvingGridSearchCV`.

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator.
    param_distributions : dict or list of dicts
        Parameter names mapped to distributions, lists, ranges or skopt dimensions.
    n_candidates, factor, resource, max_resources, min_resources, aggressive_elimination, cv, \
scoring, refit, error_score, return_train_score, random_state, n_jobs, verbose
        As in scikit-learn.
    ENGINE_PARAMETER
    CHECKPOINT_PARAMETER
    MAX_TIME_PARAMETER

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import HalvingRandomSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = HalvingRandomSearchCV(MLPClassifier(random_state=0), {"lr": (1e-3, 1e-1, "log-uniform")},
    ...                                n_candidates=4, factor=2, resource="max_epochs", min_resources=10,
    ...                                max_resources=40, cv=3, random_state=0).fit(X, y)
    >>> search.n_candidates_
    [4, 2, 1]
    """

    __doc__ = with_shared_parameters(__doc__, _ENGINE, _CHECKPOINT, max_time="rung")

    _parameter_constraints = {**SklearnHalvingRandomSearchCV._parameter_constraints,
                              **SearchMixin._search_constraints}
    _space_param = "param_distributions"

    def __init__(self, estimator: BaseEstimator, param_distributions: ParamSpace, *,
                 n_candidates: int | str = "exhaust", factor: float = 3, resource: str = "n_samples",
                 max_resources: int | str = "auto", min_resources: int | str = "smallest",
                 aggressive_elimination: bool = False, cv: CVParam = 5, scoring: ScoringParam = None,
                 refit: RefitParam = True, error_score: ErrorScore = np.nan, return_train_score: bool = True,
                 random_state: Seed = None, n_jobs: int | None = None, verbose: int = 0, engine: str = "auto",
                 checkpoint: FilePath | None = None, max_time: float | None = None) -> None:
        super().__init__(estimator, param_distributions, n_candidates=n_candidates, factor=factor,
                         resource=resource, max_resources=max_resources, min_resources=min_resources,
                         aggressive_elimination=aggressive_elimination, cv=cv, scoring=scoring, refit=refit,
                         error_score=error_score, return_train_score=return_train_score,
                         random_state=random_state, n_jobs=n_jobs, verbose=verbose)
        self.engine = engine
        self.checkpoint = checkpoint
        self.max_time = max_time

    def _generate_candidate_params(self):
        # scikit-learn's lines, on sknet's spaces too (ranges and skopt dimensions as distributions)
        n_candidates = self.n_candidates
        if n_candidates == "exhaust":  # enough for the last rung to use as many resources as it can
            n_candidates = self.max_resources_ // self.min_resources_
        return ParameterSampler(to_distributions(self.param_distributions), n_candidates,
                                random_state=self.random_state)


class _Deadline(Exception):
    """``max_time`` passed before a rung: scikit-learn's loop over the rungs ends there."""
