"""Bayesian search: scikit-optimize's ask/tell loop over scikit-learn's cross-validation.

One ``skopt.Optimizer`` per subspace proposes each round's candidates; scikit-learn's
``BaseSearchCV.fit`` trains and scores them with one ``evaluate_candidates`` call per
round, and the optimizer is told minus the objective. The public API is that of
scikit-optimize's ``BayesSearchCV``; the machinery is the one every sknet search shares.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from math import ceil
from numbers import Integral
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from scipy.stats import rankdata
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from skopt import Optimizer
from skopt.callbacks import check_callback
from skopt.space import Categorical, Space
from skopt.utils import create_result, eval_callbacks
from threadpoolctl import threadpool_limits

from ._docs import ROUNDS_KEPT, ROUNDS_REPLAYED, checkpoint_doc, engine_doc, with_shared_parameters
from ._proposals import propose, round_kwargs, warm_start
from ._search import BaseSearchCV, SearchMixin, evaluate_round, objective_key
from ._space import check_space, python_value

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from sklearn.base import BaseEstimator
    from typing_extensions import Self

    from .._typing import CVParam, ErrorScore, Features, FilePath, RefitParam, ScoringParam, Seed

__all__ = ["BayesSearchCV"]

# A space (parameter names mapped to dimensions), or a list of spaces, each alone or with its own n_iter.
SearchSpaces: TypeAlias = "Mapping[str, Any] | Sequence[Mapping[str, Any] | tuple[Mapping[str, Any], int]]"

# What skopt is told for a failed candidate when no candidate has scored yet: its
# surrogates cannot take inf, and nothing else says how bad "failed" is.
_NO_SCORE_PENALTY = 1e6
_RESERVED_OPTIMIZER_KWARGS = ("dimensions", "random_state")


class BayesSearchCV(SearchMixin, BaseSearchCV):
    """Bayesian optimization over hyperparameters.

    A surrogate model of the cross-validated score (a Gaussian process by
    default) is fitted to the candidates evaluated so far, and an acquisition
    function picks the next ones, so the search spends its budget where the
    score is likely high. Proposals come from scikit-optimize's
    :class:`skopt.Optimizer`; cross-validation, scoring, parallelism,
    ``error_score``, refitting, callbacks and metadata routing are
    scikit-learn's, so ``cv_results_`` reads as that of
    :class:`~sklearn.model_selection.RandomizedSearchCV`. The API follows
    :class:`skopt.BayesSearchCV`.

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator.
    search_spaces : dict, list of dict or list of (dict, int) tuples
        A dict maps parameter names to skopt dimensions (``Real``, ``Integer``,
        ``Categorical``), ``(low, high)`` / ``(low, high, "log-uniform")`` ranges
        (an ``Integer`` when both bounds are integers) or lists of choices: the
        spaces of :class:`GeneticSearchCV` and sknet's
        :class:`RandomizedSearchCV`. A list of dicts is searched one subspace
        after the other, ``n_iter`` candidates each; a ``(dict, n_iter)`` tuple
        gives its subspace its own number of candidates.
    optimizer_kwargs : dict or None, default=None
        Keyword arguments of :class:`skopt.Optimizer`, e.g.
        ``{"base_estimator": "RF", "n_initial_points": 5, "acq_func": "EI"}``.
        ``dimensions`` and ``random_state`` are set by the search. The
        per-second acquisitions ("EIps", "PIps") are refused: this search
        tells scores only (:class:`HyperbandSearchCV` takes them).
    n_iter : int, default=50
        Candidates evaluated per subspace given as a dict.
    scoring : str, callable, list, tuple, dict or None, default=None
        As in scikit-learn. With several metrics, the search maximises the one
        ``refit`` names.
    n_jobs : int or None, default=None
        Fits run in parallel; a round has ``n_points * n_splits`` of them.
    n_points : int or "auto", default=1
        Candidates proposed per round and evaluated together. Fewer rounds run
        with fewer observations each, but ``n_jobs`` and the batched engine have
        more fits to share. A round's points come from one fit of the surrogate
        (the kriging believer: skopt's own next point, then each next one where the
        acquisition is best once the Gaussian process believes the points before;
        other surrogates use skopt's constant liar, a fit per point). With more
        than one point, skopt minimises the acquisition over its random
        candidates (``acq_optimizer="sampling"``, unless ``optimizer_kwargs``
        says otherwise), and each fit of the Gaussian process starts from the
        kernel the last one found, without restarts. ``"auto"``
        fills the engine: ``ceil(32 / n_splits)`` candidates a round (32 models per
        batched step, below which its steps' fixed costs show), or, for fits the
        engine does not take, ``ceil(n_jobs / n_splits)``; recommended for sknet
        nets.
    refit : bool, str or callable, default=True
        As in scikit-learn. With several metrics it must be a metric name,
        which is also the objective (a callable or a bool names none, so they
        are refused); with one metric a callable picks ``best_index_``.
    cv, verbose, pre_dispatch, error_score, return_train_score
        As in scikit-learn, and so ``error_score=np.nan`` by default where
        scikit-optimize raises. ``verbose > 0`` also prints a line per round.
    ENGINE_PARAMETER
    random_state : int, RandomState instance or None, default=None
        Seeds the optimizers, one seed drawn per subspace.
    CHECKPOINT_PARAMETER
    MAX_TIME_PARAMETER
    PRUNE_PARAMETER
    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        As in scikit-learn, one row per evaluated candidate in the order they
        were proposed, plus a ``"subspace"`` column: the index of the subspace
        that proposed it.
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_, \
refit_time_, multimetric_
        As in scikit-learn.
    n_points_ : int
        Candidates proposed per round (``n_points``, or what ``"auto"`` chose).
    proposal_time_ : float
        Seconds spent proposing: skopt's ``tell`` (the surrogate's fit and its
        next point) and the rounds' proposals.
    optimizer_results_ : list of scipy.optimize.OptimizeResult
        One per subspace explored, as skopt's ``gp_minimize`` returns: ``x_iters``
        and ``x`` in the search's own parameter values (in the order of the
        sorted parameter names), ``func_vals`` minus the objective, ``models``
        the fitted surrogates and ``space``.

    See Also
    --------
    RandomizedSearchCV : independent random samples of the same space.
    GeneticSearchCV : evolves a population over the same space.

    Notes
    -----
    The search does not take skopt's constructor argument ``fit_params``, which
    scikit-learn removed from its searches: pass fit parameters to ``fit``. The
    arguments after ``search_spaces`` are keyword-only, so a positional call
    written for skopt's signature fails loudly instead of binding the wrong
    arguments.

    A candidate whose fits fail scores ``error_score`` and ranks last; skopt is
    told the worst finite score seen so far (its surrogates cannot take NaN or
    inf), and ``optimizer_results_`` holds that value. When every fit of a round
    fails, scikit-learn would abort the search; this search warns, leaves that
    round's candidates out of ``cv_results_`` (still in ``optimizer_results_``)
    and goes on. It raises only when every round failed.

    Categories reach skopt as their indices, so tuples, ``None``, estimators and
    mixed types are passed to the estimator as the very objects of the space.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sknet.model_selection import BayesSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> space = {"C": (1e-3, 1e2, "log-uniform"), "fit_intercept": [True, False]}
    >>> search = BayesSearchCV(LogisticRegression(max_iter=500), space, n_iter=6, cv=3,
    ...                        optimizer_kwargs={"n_initial_points": 3}, random_state=0).fit(X, y)
    >>> search.total_iterations, len(search.cv_results_["params"]), sorted(search.best_params_)
    (6, 6, ['C', 'fit_intercept'])
    >>> result = search.optimizer_results_[0]
    >>> bool(result.fun == -search.best_score_)
    True
    """

    __doc__ = with_shared_parameters(__doc__, engine_doc("each round's candidates x folds"),
                                     checkpoint_doc(ROUNDS_KEPT, ROUNDS_REPLAYED), prune=True,
                                     max_time="round of ``n_points`` candidates")

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        **SearchMixin._search_constraints,
        "search_spaces": [dict, list],
        "optimizer_kwargs": [dict, None],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "n_points": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "random_state": ["random_state"],
        "prune": ["array-like", None],
    }
    _space_param = "search_spaces"

    def __init__(
        self,
        estimator: BaseEstimator,
        search_spaces: SearchSpaces,
        *,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_iter: int = 50,
        scoring: ScoringParam = None,
        n_jobs: int | None = None,
        n_points: int | str = 1,
        refit: RefitParam = True,
        cv: CVParam = None,
        verbose: int = 0,
        pre_dispatch: int | str = "2*n_jobs",
        random_state: Seed = None,
        error_score: ErrorScore = np.nan,
        return_train_score: bool = False,
        engine: str = "auto",
        checkpoint: FilePath | None = None, max_time: float | None = None,
        prune: Sequence[int] | None = None,
    ) -> None:
        super().__init__(
            estimator=estimator,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.search_spaces = search_spaces
        self.optimizer_kwargs = optimizer_kwargs
        self.n_iter = n_iter
        self.n_points = n_points
        self.random_state = random_state
        self.engine = engine
        self.checkpoint = checkpoint
        self.max_time = max_time
        self.prune = prune
        # scikit-optimize checks the spaces on construction and code written for it
        # relies on that; nothing is stored, and fit checks them again.
        for space, _ in _subspaces(search_spaces, n_iter):
            check_space(space)

    def _format_results(self, candidate_params, n_splits, out, more_results=None):
        # scikit-optimize's cv_results_ also ranks the train scores.
        results = super()._format_results(candidate_params, n_splits, out, more_results)
        for key in [k for k in results if k.startswith("mean_train_")]:
            results["rank_train_" + key[len("mean_train_"):]] = _rank(results[key])
        return results

    @property
    def total_iterations(self):
        """Candidates a full search evaluates: the sum of ``n_iter`` over the subspaces."""
        return sum(n_iter for _, n_iter in _subspaces(self.search_spaces, self.n_iter))

    def fit(self, X: Features, y: ArrayLike | None = None, *, groups: ArrayLike | None = None,
            callback: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
            **fit_params: Any) -> Self:
        """Run the search: cross-validate each proposed candidate, then refit the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets; None for unsupervised learning.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group splitter given as ``cv``.
        callback : callable, list of callables or None, default=None
            Called as ``callback(result)`` after each round with the subspace's
            ``OptimizeResult`` so far (see ``optimizer_results_``), like skopt's
            callbacks (``DeadlineStopper``, ``DeltaYStopper``...). If one returns
            True, that subspace's optimization ends and the next subspace starts,
            as in skopt. scikit-learn callbacks (``set_callbacks``) see one task
            per round; one returning True at a round's end stops the search.
        **fit_params : dict
            Parameters for the estimator's ``fit`` (and, with metadata routing,
            for the scorer and splitter), as scikit-learn's ``fit`` takes them.

        Returns
        -------
        self : BayesSearchCV
            The fitted search.
        """
        self._skopt_callbacks = check_callback(callback)
        if groups is not None:
            fit_params["groups"] = groups
        try:
            return super().fit(X, y, **fit_params)
        finally:
            del self._skopt_callbacks  # callbacks often close over local state; keep the search picklable

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        key = objective_key(self)  # fails before any training when the objective is ambiguous
        subspaces = [(_Codec(check_space(space)), n_iter)
                     for space, n_iter in _subspaces(self.search_spaces, self.n_iter)]
        self.n_points_ = self._round_size(evaluate_candidates)
        optimizers = self._make_optimizers([codec for codec, _ in subspaces],
                                           evaluate_candidates.random_state(self.random_state))
        n_rounds = [ceil(n_iter / self.n_points_) for _, n_iter in subspaces]
        search_ctx = callback_ctx.subcontext(
            task_name="search", max_subtasks=sum(n_rounds)
        ).call_on_fit_task_begin(estimator=self)
        run = _Run(self, evaluate_candidates, key, search_ctx)
        self.optimizer_results_, self.proposal_time_ = [], 0.0
        for index, ((codec, n_iter), optimizer) in enumerate(zip(subspaces, optimizers, strict=True)):
            self.optimizer_results_.append(self._optimize(run, index, codec, optimizer, n_iter))
            if run.stop or index < len(subspaces) - 1 and evaluate_candidates.stop_for_time():
                break
        search_ctx.call_on_fit_task_end(estimator=self)
        run.raise_if_nothing_scored()

    def _make_optimizers(self, codecs, random_state):
        kwargs = dict(self.optimizer_kwargs or {})
        reserved = sorted(set(kwargs) & set(_RESERVED_OPTIMIZER_KWARGS))
        if reserved:
            raise ValueError(
                f"optimizer_kwargs must not set {reserved}: the search sets the dimensions from "
                "search_spaces and seeds each optimizer from its own random_state."
            )
        if str(kwargs.get("acq_func", "")).endswith("ps"):
            # skopt's own BayesSearchCV fails on them too, deep in skopt ("expected y to be a list of
            # (func_val, t)"): say so by name.
            raise ValueError(f"optimizer_kwargs acq_func={kwargs['acq_func']!r} is per second of cost, "
                             "which BayesSearchCV does not tell its optimizer: use 'EI', 'PI', 'LCB' or "
                             "'gp_hedge', or HyperbandSearchCV, which tells each result's seconds per epoch.")
        rng = check_random_state(random_state)
        kwargs = round_kwargs(kwargs, self.n_points_)
        return [Optimizer(codec.dimensions, random_state=rng.randint(np.iinfo(np.int32).max), **kwargs)
                for codec in codecs]

    def _round_size(self, evaluate):
        """Candidates a round: ``n_points``, or with ``"auto"`` as many as fill the engine (or the
        workers, for fits it does not take)."""
        if self.n_points != "auto":
            return int(self.n_points)
        return evaluate.round_size()

    def _optimize(self, run, index, codec, optimizer, n_iter):
        """Ask/evaluate/tell rounds over one subspace; return its ``OptimizeResult``."""
        n_rounds = ceil(n_iter / self.n_points_)
        for round_index in range(n_rounds):
            n_points = int(min(self.n_points_, n_iter - round_index * self.n_points_))
            start = time.perf_counter()
            with _one_blas_thread():
                points = propose(optimizer, n_points)
            self.proposal_time_ += time.perf_counter() - start
            scores = run.evaluate([codec.decode(point) for point in points], index)
            start = time.perf_counter()
            with _one_blas_thread():
                optimizer.tell(points, run.objective_values(scores))
                if self.n_points_ > 1:
                    warm_start(optimizer)
            self.proposal_time_ += time.perf_counter() - start
            result = codec.result(optimizer)
            if self.verbose > 0:
                print(f"[BayesSearchCV] subspace {index + 1}, round {round_index + 1}/{n_rounds}: "
                      f"best score {-result.fun:.4g}")
            if run.stop or eval_callbacks(getattr(self, "_skopt_callbacks", []), result):
                break
            if round_index < n_rounds - 1 and run.evaluate_candidates.stop_for_time():  # max_time
                run.stop = True
                break
        return result


class _Run:
    """What a search carries from round to round: the objective and the failures."""

    def __init__(self, search, evaluate_candidates, key, search_ctx):
        self.search = search
        self.evaluate_candidates = evaluate_candidates
        self.key = key
        self.search_ctx = search_ctx
        self.worst = None  # the worst finite score so far: what a failed candidate counts as
        self.scored = False  # whether any round reached cv_results_
        self.error = None  # the last round that failed as a whole
        self.stop = False  # a scikit-learn callback asked to stop
        self.rounds = 0

    def evaluate(self, candidates, subspace):
        """Cross-validate one round's candidates; return their mean scores, -inf if failed."""
        self.rounds += 1
        scores, failure, self.stop, _ = evaluate_round(
            self.search, self.evaluate_candidates, candidates, key=self.key, parent_ctx=self.search_ctx,
            task_name="round", label=f"round {self.rounds}",
            more_results={"subspace": [subspace] * len(candidates)}, tolerate_total_failure=True,
        )
        if failure is None:
            self.scored = True
        else:
            self.error = failure
        return scores

    def objective_values(self, scores):
        """Scores to maximise -> finite values for skopt to minimise."""
        finite = scores[np.isfinite(scores)]
        if finite.size:
            self.worst = float(finite.min()) if self.worst is None else min(self.worst, float(finite.min()))
        penalty = _NO_SCORE_PENALTY if self.worst is None else -self.worst
        return [float(-score) if np.isfinite(score) else penalty for score in scores]

    def raise_if_nothing_scored(self):
        if not self.scored:
            raise ValueError(f"Every round of the search failed.{self.error}") from self.error


class _Codec:
    """A space as skopt optimises it, and back.

    skopt converts categories through numpy arrays, which breaks on tuples and
    turns mixed types into strings; it sees each category as its index instead.
    """

    def __init__(self, space):
        self.names = list(space)
        self.user_dims = list(space.values())
        self.dimensions = [_encode(dim) for dim in self.user_dims]

    def decode(self, point):
        """A point skopt proposed -> a parameter dict of plain Python values."""
        return dict(zip(self.names, self._values(point), strict=True))

    def _values(self, point):
        return [dim.categories[int(value)] if isinstance(dim, Categorical) else python_value(value)
                for dim, value in zip(self.user_dims, point, strict=True)]

    def result(self, optimizer):
        """The optimizer's ``OptimizeResult`` in the user's values and categories."""
        space = Space([_like(user, used) for user, used in
                       zip(self.user_dims, optimizer.space.dimensions, strict=True)])
        points = [self._values(point) for point in optimizer.Xi]
        result = create_result(points, optimizer.yi, space, optimizer.rng, models=optimizer.models)
        result.specs = optimizer.specs
        return result


def _one_blas_thread():
    # The surrogate's matrices are tiny: threads gain nothing, and on a busy machine
    # multithreaded BLAS spin-waits, making ask/tell ten times slower.
    return threadpool_limits(limits=1, user_api="blas")


def _encode(dim):
    if isinstance(dim, Categorical):
        return Categorical(list(range(len(dim.categories))), prior=dim.prior, name=dim.name,
                           transform=dim.transform_)
    return copy.copy(dim)  # skopt re-sets the transform of the dimensions it is given


def _like(user_dim, used_dim):
    """The user's categorical, transformed as the optimizer's index one; other dims as used."""
    if not isinstance(user_dim, Categorical):
        return used_dim
    dim = copy.copy(user_dim)
    dim.set_transformer(used_dim.transform_)
    return dim


def _subspaces(search_spaces, n_iter):
    """``[(space dict, n_iter)]`` from a dict, a list of dicts or a list of (dict, n_iter)."""
    items = [search_spaces] if isinstance(search_spaces, dict) else search_spaces
    if not isinstance(items, list) or not items:
        raise ValueError(
            "search_spaces must be a dict, or a non-empty list of dicts or of (dict, n_iter) tuples. "
            f"Got {search_spaces!r}."
        )
    return [_subspace(item, n_iter) for item in items]


def _subspace(item, n_iter):
    if isinstance(item, dict):
        return item, n_iter
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], dict):
        space, own_n_iter = item
        if not isinstance(own_n_iter, Integral) or isinstance(own_n_iter, bool) or own_n_iter < 1:
            raise ValueError(f"The n_iter of a (dict, n_iter) subspace must be a positive int. Got {item!r}.")
        return space, int(own_n_iter)
    raise TypeError(f"Each subspace must be a dict or a (dict, n_iter) tuple. Got {item!r}.")


def _rank(scores):
    """Rank 1 = best, ties share the lowest rank, NaN ranks last (as scikit-learn ranks tests)."""
    scores = np.asarray(scores, dtype=float)
    if np.isnan(scores).all():
        return np.ones(len(scores), dtype=np.int32)
    scores = np.nan_to_num(scores, nan=np.nanmin(scores) - 1)
    return rankdata(-scores, method="min").astype(np.int32)
