"""Hyperband and BOHB: brackets of successive halving on epochs, candidates drawn or proposed.

Hyperband (Li et al., 2017) runs successive halving several times, each bracket
starting from a different resource: many candidates on few epochs, or few on many.
Its survivors go on training from the rung before, as in sknet's halving searches, and
each rung is one round of the round evaluator (one batched group for sknet nets).
With ``sampler="bayes"`` each bracket's candidates are proposed by scikit-optimize's
Gaussian process fitted on the highest resource that has enough results (the rule of
BOHB, Falkner et al., 2018), a fraction of them still drawn at random.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import defaultdict
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from skopt import Optimizer
from skopt.space import Space

from ._bayes import _Codec, _one_blas_thread
from ._docs import ROUNDS_KEPT, ROUNDS_REPLAYED, checkpoint_doc, engine_doc, with_shared_parameters
from ._proposals import point_key, propose, round_kwargs, warm_start
from ._search import BaseSearchCV, SearchMixin, evaluate_round, objective_key
from ._space import check_space
from ._wrappers import epochs_param

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

    from .._typing import CVParam, ErrorScore, FilePath, ParamSpace, RefitParam, ScoringParam, Seed

__all__ = ["HyperbandSearchCV"]

_RESERVED_OPTIMIZER_KWARGS = ("dimensions", "random_state", "n_initial_points")


class HyperbandSearchCV(SearchMixin, BaseSearchCV):
    """Hyperband over an estimator's resource parameter; with ``sampler="bayes"``, BOHB.

    Each bracket is a successive halving: its candidates are cross-validated with a
    small value of ``resource`` (an sknet net's ``max_epochs`` by default), the best
    ``1 / factor`` of them go on to a ``factor`` times larger one, and so on up to
    ``max_resources``. The brackets start from different resources, from
    ``min_resources`` (many candidates, few epochs) to ``max_resources`` (a few,
    trained in full), which hedges against a space where early scores mislead.
    Survivors that are sknet MLPs go on training from where the rung before left
    them, and each rung is one round, so the batched engine trains its candidates
    x folds together (as :class:`HalvingRandomSearchCV` does on epochs).

    With ``sampler="bayes"`` (BOHB), a bracket's candidates are proposed by a
    Gaussian process (scikit-optimize's, one fit per bracket, its points chosen
    as :class:`BayesSearchCV` chooses a round's) fitted on the largest resource
    that has at least one result more than the space has dimensions;
    ``random_fraction`` of them, and all of them until some resource has enough
    results, are drawn at random. ``sampler="random"`` is plain Hyperband.

    A bracket's candidates are distinct (fewer than asked where a discrete space
    has fewer points), and a candidate whose fits failed never goes on.

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator
        with the ``resource`` parameter.
    param_distributions : dict
        Parameter names mapped to skopt dimensions, ``(low, high)`` /
        ``(low, high, "log-uniform")`` ranges or lists of choices: the spaces of
        :class:`BayesSearchCV`.
    resource : str, default="auto"
        The estimator parameter a rung grows, an int such as ``max_epochs``.
        ``"auto"``: the net's ``max_epochs`` (``"<step>__max_epochs"`` in a
        pipeline).
    max_resources : int or "auto", default="auto"
        The resource of the last rung of every bracket. ``"auto"``: the
        estimator's own value of ``resource``.
    min_resources : int, default=1
        The smallest resource a bracket starts from.
    factor : float, default=3
        Each rung keeps the best ``1 / factor`` of its candidates and multiplies
        the resource by ``factor`` (Hyperband's eta).
    n_brackets : int or "auto", default="auto"
        Brackets to run, from the most candidates to the fewest, then again.
        ``"auto"``: one of each, ``floor(log(max_resources / min_resources) /
        log(factor)) + 1``.
    sampler : {"bayes", "random"}, default="bayes"
        How a bracket's candidates are chosen: proposed by a surrogate (BOHB),
        or drawn at random (Hyperband).
    random_fraction : float, default=1/3
        With ``sampler="bayes"``, the share of each bracket's candidates still
        drawn at random, so the surrogate cannot lock the search in one region.
    optimizer_kwargs : dict or None, default=None
        Keyword arguments of :class:`skopt.Optimizer` for ``sampler="bayes"``,
        e.g. ``{"acq_func": "EI"}``. ``dimensions``, ``random_state`` and
        ``n_initial_points`` are set by the search. ``{"acq_func": "EIps"}``
        (or ``"PIps"``) makes the search cost-aware: each result is told with
        its measured seconds per epoch (the candidate's ``mean_fit_time`` over
        its epochs in its first rung, where it trained from scratch), skopt
        fits a second Gaussian process on their logarithms, and candidates are
        ranked by expected improvement per expected second.
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in scikit-learn. The best candidate is the best of those trained on
        ``max_resources``. With several metrics, the search keeps the best by
        the one ``refit`` names, which must then be a metric name.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws and the surrogates.
    ENGINE_PARAMETER
    CHECKPOINT_PARAMETER
    MAX_TIME_PARAMETER

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        As in scikit-learn, one row per candidate and rung, with the halving
        searches' ``iter`` (the rung in its bracket) and ``n_resources``, and
        ``bracket`` (which bracket, counted from 0).
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_, \
refit_time_, multimetric_
        As in scikit-learn.
    max_resources_, min_resources_ : int
        The resources of the last and of the first rung of the largest bracket.
    bracket_candidates_, bracket_resources_ : list of list of int
        For each bracket run, its rungs' candidates and resources (a rung whose
        fits all failed is left out, as in ``cv_results_``).
    n_proposed_ : int
        Candidates the surrogate proposed (the others were drawn at random).
    proposal_time_ : float
        Seconds spent fitting surrogates and proposing.

    See Also
    --------
    HalvingRandomSearchCV : one bracket of random candidates.
    BayesSearchCV : Bayesian optimisation, every candidate trained in full.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import HyperbandSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = HyperbandSearchCV(MLPClassifier(max_epochs=27, random_state=0),
    ...                            {"lr": (1e-3, 1e-1, "log-uniform")}, min_resources=3, cv=3,
    ...                            random_state=0).fit(X, y)
    >>> search.bracket_resources_
    [[3, 9, 27], [9, 27], [27]]
    >>> search.bracket_candidates_
    [[9, 3, 1], [5, 1], [3]]
    """

    __doc__ = with_shared_parameters(__doc__, engine_doc("each rung's candidates x folds"),
                                     checkpoint_doc(ROUNDS_KEPT, ROUNDS_REPLAYED), max_time="rung")

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        **SearchMixin._search_constraints,
        "param_distributions": [dict],
        "resource": [str],
        "max_resources": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "min_resources": [Interval(Integral, 1, None, closed="left")],
        "factor": [Interval(Real, 1, None, closed="neither")],
        "n_brackets": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "sampler": [StrOptions({"bayes", "random"})],
        "random_fraction": [Interval(Real, 0, 1, closed="both")],
        "optimizer_kwargs": [dict, None],
        "random_state": ["random_state"],
    }
    _space_param = "param_distributions"

    def __init__(
        self,
        estimator: BaseEstimator,
        param_distributions: ParamSpace,
        *,
        resource: str = "auto",
        max_resources: int | str = "auto",
        min_resources: int = 1,
        factor: float = 3,
        n_brackets: int | str = "auto",
        sampler: str = "bayes",
        random_fraction: float = 1 / 3,
        optimizer_kwargs: dict[str, Any] | None = None,
        scoring: ScoringParam = None,
        n_jobs: int | None = None,
        refit: RefitParam = True,
        cv: CVParam = None,
        verbose: int = 0,
        pre_dispatch: int | str = "2*n_jobs",
        random_state: Seed = None,
        error_score: ErrorScore = np.nan,
        return_train_score: bool = False,
        engine: str = "auto",
        checkpoint: FilePath | None = None,
        max_time: float | None = None,
    ) -> None:
        super().__init__(estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv,
                         verbose=verbose, pre_dispatch=pre_dispatch, error_score=error_score,
                         return_train_score=return_train_score)
        self.param_distributions = param_distributions
        self.resource = resource
        self.max_resources = max_resources
        self.min_resources = min_resources
        self.factor = factor
        self.n_brackets = n_brackets
        self.sampler = sampler
        self.random_fraction = random_fraction
        self.optimizer_kwargs = optimizer_kwargs
        self.random_state = random_state
        self.engine = engine
        self.checkpoint = checkpoint
        self.max_time = max_time

    # -- what the evaluator asks ---------------------------------------------------------
    def _continued_param(self):
        """Survivors go on training from the rung before in the resource parameter."""
        return self._resource_name()

    def _resource_name(self):
        if self.resource != "auto":
            return self.resource
        name = epochs_param(self.estimator)
        if name is None:
            raise ValueError("HyperbandSearchCV(resource='auto') needs an sknet net (or a pipeline ending "
                             "in one), whose max_epochs it grows; name the resource parameter of "
                             f"{type(self.estimator).__name__} instead.")
        return name

    def _select_best_index(self, refit, refit_metric, results):
        """The best candidate trained on ``max_resources_`` (a callable ``refit`` chooses itself)."""
        if callable(refit):
            return BaseSearchCV._select_best_index(refit, refit_metric, results)
        scores = np.asarray(results[f"mean_test_{refit_metric}"], dtype=float)
        resources = np.asarray(results["n_resources"])
        full = (resources == self.max_resources_) & np.isfinite(scores)
        if not full.any():  # stopped early, or every fit on max_resources_ failed
            full = np.isfinite(scores)
            if full.any():
                best = int(np.flatnonzero(full)[np.argmax(scores[full])])
                warnings.warn(f"No candidate trained on max_resources_={self.max_resources_} scored (the "
                              "search stopped before, or their fits failed): the best is chosen among "
                              f"those trained on {resources[best]}, and refitted with it.", UserWarning,
                              stacklevel=4)
                return best
            return 0
        return int(np.flatnonzero(full)[np.argmax(scores[full])])

    # -- the strategy --------------------------------------------------------------------
    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        key = objective_key(self)
        resource = self._resource_name()
        codec = _Codec(check_space(self.param_distributions))
        brackets = self._brackets(resource, codec)
        kwargs = self._optimizer_kwargs()
        # after every argument check: a search refused by one leaves no checkpoint behind
        rng = check_random_state(evaluate_candidates.random_state(self.random_state))
        search_ctx = callback_ctx.subcontext(task_name="search", max_subtasks=sum(map(len, brackets))
                                             ).call_on_fit_task_begin(estimator=self)
        seen = defaultdict(dict)  # resource -> {point key: (point, score)}: what surrogates are fitted on
        # point key -> seconds per epoch, from its first rung (trained from scratch; survivors go on from
        # where they were, and their fit time covers the epochs added): what cost-aware surrogates are told
        costs = {}
        self.bracket_candidates_, self.bracket_resources_ = [], []
        self.n_proposed_, self.proposal_time_ = 0, 0.0
        surrogates = {}  # resource -> the last GP fitted there, whose kernel the next fit starts from
        for b, rungs in enumerate(brackets):
            if b and evaluate_candidates.stop_for_time():
                break
            points = self._candidates(codec, rungs[0][0], seen, costs, surrogates, rng, kwargs)
            self.bracket_candidates_.append([])
            self.bracket_resources_.append([])
            stop = self._halve(evaluate_candidates, points, rungs, b, codec, resource, key, (seen, costs),
                               search_ctx)
            if not self.bracket_candidates_[-1]:  # its first rung failed as a whole
                del self.bracket_candidates_[-1], self.bracket_resources_[-1]
            if stop:
                break
        search_ctx.call_on_fit_task_end(estimator=self)

    def _halve(self, evaluate_candidates, points, rungs, b, codec, resource, key, learnt, search_ctx):
        """Successive halving of bracket ``b`` on ``points``; True if a callback asked to stop. Records
        each rung's scores and the first rung's costs in ``learnt``, ``(seen, costs)``."""
        seen, costs = learnt
        for i, (_, r) in enumerate(rungs):
            if i and evaluate_candidates.stop_for_time():
                return False
            candidates = [{**codec.decode(point), resource: r} for point in points]
            scores, failure, stop, fit_times = evaluate_round(
                self, evaluate_candidates, candidates, key=key, parent_ctx=search_ctx, task_name="rung",
                label=f"bracket {b}, rung {i}", tolerate_total_failure=bool(b or i),
                more_results={"iter": [i] * len(points), "n_resources": [r] * len(points),
                              "bracket": [b] * len(points)})
            if failure is not None:  # every fit failed: left out of cv_results_, and nothing survives
                return stop
            self.bracket_candidates_[-1].append(len(points))
            self.bracket_resources_[-1].append(r)
            for point, score, seconds in zip(points, scores, fit_times, strict=True):
                seen[r].setdefault(point_key(point), (point, score))
                if i == 0:
                    costs.setdefault(point_key(point), seconds / r)
            if stop or i == len(rungs) - 1:
                return stop
            # the best 1 / factor go on, never a failed one
            keep = [j for j in np.argsort(-scores, kind="stable")[:rungs[i + 1][0]] if np.isfinite(scores[j])]
            if not keep:
                return False
            points = [points[j] for j in sorted(keep)]
        return False

    def _brackets(self, resource, codec):
        """Each bracket's rungs, ``[(n_candidates, resource)]``; sets ``max_resources_`` and
        ``min_resources_``."""
        params = self.estimator.get_params()
        if resource not in params:
            raise ValueError(f"resource={resource!r} is not a parameter of {type(self.estimator).__name__}; "
                             "name an int parameter such as an sknet net's max_epochs.")
        if resource in codec.names:
            raise ValueError(f"resource={resource!r} is also in param_distributions: the search sets it.")
        max_r = params[resource] if self.max_resources == "auto" else self.max_resources
        if not isinstance(max_r, Integral) or max_r < self.min_resources:
            raise ValueError(f"max_resources={max_r!r} must be an int at least min_resources="
                             f"{self.min_resources}.")
        eta = int(self.factor) if float(self.factor).is_integer() else float(self.factor)
        s_max = 0
        while max_r >= self.min_resources * eta ** (s_max + 1) * (1 - 1e-12):
            s_max += 1
        resources = [max(1, math.floor(max_r / eta ** (s_max - i) + 0.5)) for i in range(s_max + 1)]
        if len(set(resources)) < len(resources):
            raise ValueError(f"factor={self.factor} is too small for resources {self.min_resources} to "
                             f"{max_r}: rounded to ints, rungs would repeat a resource ({resources}).")
        if s_max == 0 and self.n_brackets == "auto":
            warnings.warn(f"max_resources={max_r} is below factor * min_resources: one bracket of one "
                          "candidate; lower min_resources, or give n_brackets.", UserWarning, stacklevel=4)
        self.max_resources_, self.min_resources_ = int(max_r), resources[0]
        n_brackets = s_max + 1 if self.n_brackets == "auto" else self.n_brackets
        brackets = []
        for b in range(n_brackets):
            s = s_max - b % (s_max + 1)
            # Hyperband's n = ceil((s_max + 1) / (s + 1) * eta ** s), exact for an int eta
            n = -(-(s_max + 1) * eta ** s // (s + 1)) if isinstance(eta, int) else math.ceil(
                (s_max + 1) / (s + 1) * eta ** s - 1e-9)
            brackets.append([(max(1, math.floor(n / eta ** i + 1e-9)), resources[s_max - s + i])
                             for i in range(s + 1)])
        return brackets

    def _optimizer_kwargs(self):
        kwargs = dict(self.optimizer_kwargs or {})
        reserved = sorted(set(kwargs) & set(_RESERVED_OPTIMIZER_KWARGS))
        if reserved:
            raise ValueError(f"optimizer_kwargs must not set {reserved}: the search sets the dimensions from "
                             "param_distributions, seeds each surrogate and fits it on results only.")
        return kwargs

    def _candidates(self, codec, n, seen, costs, surrogates, rng, kwargs):
        """A bracket's ``n`` distinct candidates as skopt points: drawn, or proposed by a surrogate (BOHB).

        Fewer where a discrete space has fewer points left.
        """
        fitted = [r for r, results in seen.items()
                  if sum(np.isfinite(score) for _, score in results.values()) > len(codec.dimensions)]
        n_random = math.floor(n * self.random_fraction + 0.5)
        n_model = 0 if self.sampler == "random" or not fitted else n - n_random
        points = []
        if n_model:
            results = seen[max(fitted)].items()
            told = [(point, score, costs.get(key, np.nan)) for key, (point, score) in results]
            points = self._proposed(codec, n_model, told, max(fitted), surrogates, rng, kwargs)
        taken = {point_key(point) for point in points}
        space = Space(codec.dimensions)
        for _ in range(10 * n):  # draws with replacement: a small discrete space repeats its points
            if len(points) >= n:
                break
            point = space.rvs(random_state=rng)[0]
            if point_key(point) not in taken:
                taken.add(point_key(point))
                points.append(point)
        return points

    def _proposed(self, codec, n, told, resource, surrogates, rng, kwargs):
        """``n`` points from a GP fitted on ``told``, ``[(point, score, seconds per epoch)]`` at
        ``resource``."""
        start = time.perf_counter()
        optimizer = Optimizer(codec.dimensions, n_initial_points=0,
                              random_state=rng.randint(np.iinfo(np.int32).max), **round_kwargs(kwargs, n))
        per_second = optimizer.acq_func.endswith("ps")
        if resource in surrogates and not per_second:  # start from the kernel fitted on this resource before
            warm_start(optimizer, surrogates[resource])
        with _one_blas_thread():
            optimizer.tell([list(point) for point, _, _ in told], told_values(told, per_second))
            points = propose(optimizer, n)
        if not per_second:
            surrogates[resource] = optimizer.models[-1]
        self.proposal_time_ += time.perf_counter() - start
        self.n_proposed_ += n
        return points


def told_values(told, per_second):
    """What skopt minimises for ``told`` results, ``(point, score, seconds per epoch)``: minus each
    score (a failed candidate's counts as the worst finite one), and with ``per_second`` (skopt's
    "EIps" and "PIps") each with its cost, ``[-score, seconds]``; an unknown cost is the median's."""
    scores = np.array([score for _, score, _ in told], dtype=float)
    values = -np.where(np.isfinite(scores), scores, scores[np.isfinite(scores)].min())
    if not per_second:
        return values.tolist()
    seconds = np.array([cost for _, _, cost in told], dtype=float)
    known = np.isfinite(seconds) & (seconds > 0)
    seconds = np.where(known, seconds, np.median(seconds[known]) if known.any() else 1.0)
    return [[value, cost] for value, cost in zip(values.tolist(), seconds.tolist(), strict=True)]
