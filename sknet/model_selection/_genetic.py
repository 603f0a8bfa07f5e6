"""Genetic search: evolve a population of candidates by selection, crossover and mutation.

The strategy only proposes candidates; scikit-learn's ``BaseSearchCV.fit``
trains and scores them. Each generation hands ``evaluate_candidates`` only the
individuals never seen before: a fitness cache keyed by ``candidate_key`` serves
the others (elites, copies, re-discovered points) without training them again.

Genes live in each skopt dimension's transformed space (log10 for a log-uniform
range), so crossover and mutation step evenly whatever the prior; categorical
genes are swapped or resampled as whole values.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from skopt.space import Categorical

from ._docs import ROUNDS_KEPT, ROUNDS_REPLAYED, checkpoint_doc, engine_doc, with_shared_parameters
from ._search import BaseSearchCV, SearchMixin, candidate_key, evaluate_round, objective_key
from ._space import check_space, python_value, sample_value

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

    from .._typing import CVParam, ErrorScore, FilePath, ParamSpace, RefitParam, ScoringParam, Seed

__all__ = ["GeneticSearchCV"]

_MAX_TRIES = 10  # breeding attempts per slot before accepting an already-evaluated child
_MUTATION_SCALE = 0.15  # sigma of a Gaussian mutation, as a fraction of the transformed range
_BLEND_ALPHA = 0.1  # blend crossover may step this far beyond its parents (BLX-alpha)


class GeneticSearchCV(SearchMixin, BaseSearchCV):
    """Genetic-algorithm search over hyperparameters.

    A population of candidates evolves over generations: tournament selection
    picks parents, crossover mixes them, mutation perturbs the children, and the
    ``elitism`` best survive unchanged. Cross-validation, scoring, parallelism,
    ``error_score``, refitting and callbacks are scikit-learn's, so the fitted
    attributes and ``cv_results_`` read as those of
    :class:`~sklearn.model_selection.RandomizedSearchCV`.

    Parameters
    ----------
    estimator : estimator object
        An sknet net, a pipeline ending in one, or any scikit-learn estimator.
    param_distributions : dict
        Parameter names mapped to skopt dimensions (``Real``, ``Integer``,
        ``Categorical``), ``(low, high)`` / ``(low, high, "log-uniform")`` ranges
        (an ``Integer`` when both bounds are integers) or lists of choices.
    population_size : int, default=20
        Individuals per generation.
    generations : int, default=10
        Maximum number of generations, the initial random population included:
        at most ``population_size * generations`` candidates are evaluated.
    crossover_prob : float, default=0.8
        Probability that a child mixes two parents rather than copying one.
        Numeric genes blend in the transformed space (integers are rounded),
        categorical genes come from either parent with equal chance.
    mutation_prob : float, default=0.2
        Probability that each gene of a child mutates: a Gaussian step of 15% of
        the transformed range (clipped to the bounds), or another category.
    tournament_size : int, default=3
        Individuals drawn (without replacement) per tournament; the fittest is a
        parent. Larger means greedier. At most ``population_size``.
    elitism : int, default=1
        The best individuals copied unchanged into the next generation; below
        ``population_size``.
    patience : int or None, default=None
        Stop after this many generations without improving the best score so
        far. None runs all ``generations``.
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in scikit-learn. With several metrics, the search maximises the one
        ``refit`` names. ``verbose > 0`` also prints a line per generation.
    ENGINE_PARAMETER
    random_state : int, RandomState instance or None, default=None
        Seeds the initial population, selection, crossover and mutation.
    CHECKPOINT_PARAMETER
    MAX_TIME_PARAMETER
    PRUNE_PARAMETER
    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        As in scikit-learn, one row per evaluated candidate, plus a
        ``"generation"`` column: the generation that first evaluated it.
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_, \
refit_time_, multimetric_
        As in scikit-learn.
    history_ : list of dict
        One dict per generation run, with keys ``generation``; ``best_score``,
        ``mean_score`` and ``std_score``, over that generation's population
        (finite scores only, NaN if none); ``best_score_so_far``, over every
        candidate evaluated up to then; ``n_evaluated``, the candidates trained
        in that generation (the others came from the cache); ``wall_time`` in
        seconds.
    n_generations_ : int
        Generations run, fewer than ``generations`` after an early stop.

    See Also
    --------
    RandomizedSearchCV : independent random samples of the same space.

    Notes
    -----
    A candidate is never trained twice: each parameter setting appears at most
    once in ``cv_results_``. A child that was already evaluated is bred again up
    to 10 times; then it is kept and scored from the cache, so a small space or
    ``crossover_prob=mutation_prob=0`` costs no extra training.

    A candidate whose fits fail scores ``error_score`` and ranks below all
    others. When every fit of a later generation fails, scikit-learn would abort
    the search; this search warns instead, keeps going and leaves those
    candidates out of ``cv_results_`` (they are still never retried).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sknet.model_selection import GeneticSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> space = {"C": (1e-3, 1e2, "log-uniform"), "fit_intercept": [True, False]}
    >>> search = GeneticSearchCV(LogisticRegression(max_iter=500), space, population_size=4,
    ...                          generations=3, cv=3, random_state=0).fit(X, y)
    >>> search.n_generations_, sorted(search.best_params_)
    (3, ['C', 'fit_intercept'])
    >>> sorted(set(search.cv_results_["generation"].tolist()))
    [0, 1, 2]
    """

    __doc__ = with_shared_parameters(__doc__, engine_doc("each generation's new candidates x folds"),
                                     checkpoint_doc(ROUNDS_KEPT, ROUNDS_REPLAYED), prune=True,
                                     max_time="generation")

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        **SearchMixin._search_constraints,
        "param_distributions": [dict],
        "population_size": [Interval(Integral, 2, None, closed="left")],
        "generations": [Interval(Integral, 1, None, closed="left")],
        "crossover_prob": [Interval(Real, 0, 1, closed="both")],
        "mutation_prob": [Interval(Real, 0, 1, closed="both")],
        "tournament_size": [Interval(Integral, 1, None, closed="left")],
        "elitism": [Interval(Integral, 0, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "prune": ["array-like", None],
    }
    _space_param = "param_distributions"

    def __init__(
        self,
        estimator: BaseEstimator,
        param_distributions: ParamSpace,
        *,
        population_size: int = 20,
        generations: int = 10,
        crossover_prob: float = 0.8,
        mutation_prob: float = 0.2,
        tournament_size: int = 3,
        elitism: int = 1,
        patience: int | None = None,
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
        self.param_distributions = param_distributions
        self.population_size = population_size
        self.generations = generations
        self.crossover_prob = crossover_prob
        self.mutation_prob = mutation_prob
        self.tournament_size = tournament_size
        self.elitism = elitism
        self.patience = patience
        self.random_state = random_state
        self.engine = engine
        self.checkpoint = checkpoint
        self.max_time = max_time
        self.prune = prune

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        dims = check_space(self.param_distributions)
        self._check_sizes()
        rng = check_random_state(evaluate_candidates.random_state(self.random_state))
        cache = {}  # candidate_key -> fitness: nothing is trained twice
        self.history_ = []
        # One subtask per generation; each generation's context numbers its own fits, so
        # successive evaluate_candidates calls never clash on task ids.
        search_ctx = callback_ctx.subcontext(
            task_name="search", max_subtasks=self.generations
        ).call_on_fit_task_begin(estimator=self)
        population = [_sample(dims, rng) for _ in range(self.population_size)]
        fitness, best, stale = None, -np.inf, 0
        for generation in range(self.generations):
            start = time.perf_counter()
            if generation:
                population = self._next_population(dims, population, fitness, cache, rng)
            n_new, stop = self._evaluate(evaluate_candidates, population, generation, cache, search_ctx)
            fitness = np.array([cache[candidate_key(p)] for p in population])
            self._record(generation, fitness, cache, n_new, time.perf_counter() - start)
            so_far = max(cache.values())
            stale, best = (0, so_far) if so_far > best else (stale + 1, best)
            if stop or (self.patience is not None and stale >= self.patience):
                break
            if generation < self.generations - 1 and evaluate_candidates.stop_for_time():  # max_time
                break
        self.n_generations_ = len(self.history_)
        search_ctx.call_on_fit_task_end(estimator=self)

    def _check_sizes(self):
        if self.elitism >= self.population_size:
            raise ValueError(
                f"elitism={self.elitism} must be below population_size={self.population_size}: "
                "each generation needs at least one new child."
            )
        if self.tournament_size > self.population_size:
            raise ValueError(
                f"tournament_size={self.tournament_size} must be at most "
                f"population_size={self.population_size}."
            )

    def _evaluate(self, evaluate_candidates, population, generation, cache, search_ctx):
        """Train the individuals not in the cache; return their count and a callback's stop."""
        new = {}
        for individual in population:
            new.setdefault(candidate_key(individual), individual)
        new = {key: ind for key, ind in new.items() if key not in cache}
        # A later generation whose children all fail is bad luck, not a broken model:
        # it is scored last and the search goes on; the first generation still raises.
        scores, _, stop, _ = evaluate_round(
            self, evaluate_candidates, list(new.values()), key=objective_key(self), parent_ctx=search_ctx,
            task_name="generation", label=f"generation {generation}",
            more_results={"generation": [generation] * len(new)}, tolerate_total_failure=generation > 0,
        )
        cache.update(zip(new, scores, strict=True))
        return len(new), stop

    def _record(self, generation, fitness, cache, n_new, wall_time):
        """Append this generation's scores to ``history_`` (and print them if verbose)."""
        finite = fitness[np.isfinite(fitness)]
        self.history_.append({
            "generation": generation,
            "best_score": _finite_or_nan(fitness.max()),
            "best_score_so_far": _finite_or_nan(max(cache.values())),
            "mean_score": float(finite.mean()) if finite.size else np.nan,
            "std_score": float(finite.std()) if finite.size else np.nan,
            "n_evaluated": n_new,
            "wall_time": wall_time,
        })
        if self.verbose > 0:
            record = self.history_[-1]
            print(
                f"[GeneticSearchCV] generation {generation}: {n_new} new candidates, "
                f"best {record['best_score']:.4g}, best so far {record['best_score_so_far']:.4g}, "
                f"{wall_time:.1f} s"
            )

    def _next_population(self, dims, population, fitness, cache, rng):
        """Elites first, then children bred from tournament winners, new ones preferred."""
        order = np.argsort(-fitness, kind="stable")
        children = [population[i] for i in order[: self.elitism]]
        seen = set(cache)
        while len(children) < self.population_size:
            for _ in range(_MAX_TRIES):
                child = self._breed(dims, population, fitness, rng)
                if candidate_key(child) not in seen:
                    break
            seen.add(candidate_key(child))
            children.append(child)
        return children

    def _breed(self, dims, population, fitness, rng):
        child = population[_tournament(fitness, self.tournament_size, rng)]
        if rng.rand() < self.crossover_prob:
            other = population[_tournament(fitness, self.tournament_size, rng)]
            child = {name: _cross_gene(dim, child[name], other[name], rng) for name, dim in dims.items()}
        return {
            name: _mutate_gene(dim, child[name], rng) if rng.rand() < self.mutation_prob else child[name]
            for name, dim in dims.items()
        }


def _finite_or_nan(score):
    return float(score) if np.isfinite(score) else np.nan


def _tournament(fitness, size, rng):
    """Index of the fittest of ``size`` individuals drawn without replacement."""
    contenders = rng.choice(len(fitness), size=size, replace=False)
    return contenders[np.argmax(fitness[contenders])]


def _sample(dims, rng):
    return {name: sample_value(dim, rng) for name, dim in dims.items()}


def _bounds(dim):
    # Transform the bounds rather than read dim.transformed_bounds, which skopt gets
    # wrong for a log-uniform Integer.
    low, high = np.ravel(dim.transform([dim.low, dim.high]))
    return float(low), float(high)


def _to_value(dim, transformed):
    low, high = _bounds(dim)
    return python_value(dim.inverse_transform([float(np.clip(transformed, low, high))])[0])


def _to_gene(dim, value):
    return float(np.ravel(dim.transform([value]))[0])


def _cross_gene(dim, a, b, rng):
    if isinstance(dim, Categorical):
        return a if rng.rand() < 0.5 else b
    ta, tb = _to_gene(dim, a), _to_gene(dim, b)
    return _to_value(dim, ta + rng.uniform(-_BLEND_ALPHA, 1 + _BLEND_ALPHA) * (tb - ta))


def _mutate_gene(dim, value, rng):
    if isinstance(dim, Categorical):
        others = [c for c in dim.categories if c is not value and c != value]
        return python_value(others[rng.randint(len(others))]) if others else value
    low, high = _bounds(dim)
    return _to_value(dim, _to_gene(dim, value) + rng.normal(0.0, _MUTATION_SCALE * (high - low)))
