"""Population-based training, cross-validated: the whole population one batched model.

Population-based training (Jaderberg et al. 2017, "Population Based Training of Neural
Networks") trains a population of nets for an interval of epochs, then lets the worst
copy the weights of the best ("exploit") and perturb their hyperparameters
("explore"), so that a search finds a *schedule* of learning rates and
regularisation for about the compute of one random search.

Here every member trains on every CV split, and the engine trains the population x
folds as one batched model from the first epoch to the last, pausing at the end of
each interval (:class:`~sknet.engine._stages.StagedTraining`): the members are ranked
by their mean validation score, and an exploit is an index copy, split by split, of
weights, optimizer state and generators inside the stacked model. A member that
copies one of other widths (or whose fit failed) leaves with a copy of the state, and the
group it joins is stacked again. No checkpoint files. With ``engine="sequential"`` (or fits the engine cannot
take together) each interval is a round of the round evaluator instead, each job going
on from its :class:`~sknet.engine.TrainingState`, copied at an exploit.
"""

from __future__ import annotations

import math
import time
import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from skopt.space import Categorical

from .._identity import random_state_from_json, random_state_to_json
from ..engine._exploit import CHANGEABLE, copy_state
from ..engine._jobs import continuation_refusal, refusal
from ._docs import checkpoint_doc, engine_doc, with_shared_parameters
from ._pruning import stage_score
from ._refit import replay
from ._search import BaseSearchCV, SearchMixin, objective_key
from ._space import check_space, python_value, sample_value
from ._wrappers import epochs_param, final_net

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

    from .._typing import CVParam, ErrorScore, FilePath, RefitParam, ScoringParam, Seed

__all__ = ["PopulationSearchCV"]

_ENGINE = engine_doc("the whole population x folds of each interval")
_CHECKPOINT = checkpoint_doc(
    ", and each interval's decisions (scores, exploits, new parameters, the generator's state)",
    "trains the finished intervals again under their journaled decisions (the states themselves are "
    "not journaled), serves the journaled results of the last one",
    "With ``random_state`` None or a ``RandomState``, the state it starts from is journaled too.")


class PopulationSearchCV(SearchMixin, BaseSearchCV):
    """Population-based training (PBT) of an sknet net, cross-validated, the population batched.

    ``population_size`` members start from ``param_distributions`` and train for
    the estimator's ``max_epochs`` in all, on every CV split. Every
    ``perturbation_interval`` epochs they are ranked by their mean validation
    score over the splits; each member of the bottom ``quantile_fraction``
    (and any member whose fit failed there) copies the weights, optimizer state and
    generators of a member of the top quantile drawn at random, split by split,
    with its parameters (``mutable`` ones and fixed ones alike), then explores: each
    ``mutable`` parameter is resampled from its space with probability
    ``resample_probability``, else multiplied by one of ``perturbation_factors``
    (clipped to its range; a list of choices moves to the next choice up or down).
    The batched engine trains the whole population x folds as one model from the
    first epoch to the last: an exploit is an index copy inside it, between two
    epochs. The winner's schedule of parameters is replayed on all the data for the
    refit.

    Parameters
    ----------
    estimator : estimator object
        An sknet MLP (:class:`~sknet.MLPClassifier`, :class:`~sknet.MLPRegressor`), or
        a pipeline or target transform ending in one, without early stopping and
        with no ``lr_schedule`` or an exponential or plateau one (none with a mutable
        ``lr``): members go on training between intervals.
    param_distributions : dict
        Parameter names mapped to skopt dimensions, ``(low, high[, prior])`` ranges or
        lists of choices, as for :class:`BayesSearchCV`; the members' first parameters
        are drawn from it. ``max_epochs`` is not searched: it is the training length.
    population_size : int, default=16
        Members of the population.
    perturbation_interval : int, default=5
        Epochs between two exploit-and-explore steps.
    quantile_fraction : float, default=0.25
        Share of the population in the top and in the bottom quantile (rounded up, at
        most half of it).
    resample_probability : float, default=0.25
        Probability that an explored parameter is drawn afresh from its space.
    perturbation_factors : tuple of float, default=(1.2, 0.8)
        Factors an explored parameter is multiplied by, one drawn at random.
    mutable : list of str or None, default=None
        The parameters that change during training, each in ``param_distributions``
        and one of the net's ``lr``, ``weight_decay``, ``momentum``, ``l1``,
        ``dropout`` (prefixed as in ``param_distributions``: ``"net__lr"`` for a
        pipeline). None: those of ``param_distributions`` the engine can change.
        The others are fixed per member and copied along with the weights.
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in scikit-learn; members are ranked by the metric ``refit`` names when
        there are several. ``verbose > 0`` prints a line per interval.
    random_state : int, RandomState instance or None, default=None
        Seeds the first population, the exploits and the explores.
    ENGINE_PARAMETER
    CHECKPOINT_PARAMETER

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        One row per member: its final parameters (``max_epochs`` included) and its
        scores at the end of training, ``fit_time`` summed over the intervals, plus
        ``"lineage"``, the member slots whose weights it carried through each
        interval, and ``"failed_epochs"``, the epochs at which a fit of its failed
        (it was replaced at that exploit).
    population_history_ : list of dict
        One dict per interval: ``epoch`` (epochs trained when it ended), ``params``
        (each member's parameters during it), ``scores`` (each member's mean
        validation score at its end, -inf where a fit failed) and ``exploits``
        (``{member: source}``, the copies made at its end).
    schedules_ : list of list of (int, dict)
        Each member's schedule following its lineage: ``(start_epoch, params)`` steps.
    best_schedule_ : list of (int, dict)
        The winner's schedule, which the refit replays on all the data.
    mutable_ : tuple of str
        The parameters that changed during training.
    exploit_time_ : float
        Seconds spent ranking, copying states and exploring.
    exploits_in_group_, exploits_restacked_ : int
        With the batched engine: the models (member x split) that took over another's
        training by an index copy inside the stacked model, and those that left theirs
        (the source had other widths, or another group): the group they join is stacked
        again with them.
    best_estimator_, best_score_, best_params_, best_index_, scorer_, n_splits_, \
refit_time_, multimetric_
        As in scikit-learn; ``best_params_`` are the winner's final parameters.

    See Also
    --------
    HalvingRandomSearchCV : successive halving on epochs, survivors continuing.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.model_selection import PopulationSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = PopulationSearchCV(MLPClassifier(max_epochs=12, random_state=0),
    ...                             {"lr": (1e-3, 1e-1, "log-uniform")}, population_size=4,
    ...                             perturbation_interval=4, cv=3, random_state=0).fit(X, y)
    >>> len(search.population_history_), len(search.cv_results_["params"])
    (3, 4)
    """

    __doc__ = with_shared_parameters(__doc__, _ENGINE, _CHECKPOINT)

    _parameter_constraints = {
        **BaseSearchCV._parameter_constraints,
        **SearchMixin._search_constraints,
        "param_distributions": [dict],
        "population_size": [Interval(Integral, 1, None, closed="left")],
        "perturbation_interval": [Interval(Integral, 1, None, closed="left")],
        "quantile_fraction": [Interval(Real, 0, 0.5, closed="both")],
        "resample_probability": [Interval(Real, 0, 1, closed="both")],
        "perturbation_factors": [tuple, list],
        "mutable": [list, tuple, None],
        "random_state": ["random_state"],
    }
    _space_param = "param_distributions"
    _trains_in_stages = True  # its nets' training states are kept, whatever the engine

    def __init__(self, estimator: BaseEstimator, param_distributions: dict, *, population_size: int = 16,
                 perturbation_interval: int = 5, quantile_fraction: float = 0.25,
                 resample_probability: float = 0.25, perturbation_factors: tuple[float, ...] = (1.2, 0.8),
                 mutable: list[str] | None = None, scoring: ScoringParam = None, n_jobs: int | None = None,
                 refit: RefitParam = True, cv: CVParam = None, verbose: int = 0,
                 pre_dispatch: int | str = "2*n_jobs", random_state: Seed = None,
                 error_score: ErrorScore = np.nan, return_train_score: bool = False, engine: str = "auto",
                 checkpoint: FilePath | None = None) -> None:
        super().__init__(estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv,
                         verbose=verbose, pre_dispatch=pre_dispatch, error_score=error_score,
                         return_train_score=return_train_score)
        self.param_distributions = param_distributions
        self.population_size = population_size
        self.perturbation_interval = perturbation_interval
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability
        self.perturbation_factors = perturbation_factors
        self.mutable = mutable
        self.random_state = random_state
        self.engine = engine
        self.checkpoint = checkpoint

    # -- the strategy ---------------------------------------------------------------------
    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        evaluate = evaluate_candidates
        dims = check_space(self.param_distributions)
        epochs_name, ends = self._intervals(dims)
        self.mutable_ = self._mutable(dims, epochs_name)
        factors = self._factors()
        rng = check_random_state(evaluate.random_state(self.random_state))
        members = [{name: sample_value(dim, rng) for name, dim in dims.items()}
                   for _ in range(self.population_size)]
        self._check_members(evaluate, members)
        metric = objective_key(self)[len("mean_test_"):]
        n_splits = self.n_splits_
        history, failed = [], [[] for _ in members]
        earlier = np.zeros(len(members) * n_splits)  # fit time of the intervals before the last
        self.exploit_time_ = 0.0
        now = {"members": members, "rng": rng}  # what the exploits change, interval after interval

        def interval_end(t, out):
            """Rank the members after interval ``t`` (its results ``out``), record it; exploit and
            explore unless it is the last. Returns the exploits, ``{member: source}``."""
            end, members = ends[t], now["members"]
            scores = np.array([stage_score(out[m * n_splits:(m + 1) * n_splits], metric)
                               for m in range(len(members))])
            history.append({"epoch": end, "params": [dict(member) for member in members],
                            "scores": scores, "exploits": {}})
            if self.verbose > 0:
                print(f"[PopulationSearchCV] epoch {end}: best {np.max(scores):.4g}, "
                      f"median {np.median(scores):.4g}")
            if t == len(ends) - 1:
                return {}
            earlier[:] += [result["fit_time"] for result in out]
            start = time.perf_counter()
            for m in np.flatnonzero(~np.isfinite(scores)):
                failed[m].append(end)
            _warn_failures(out, scores, end, n_splits)
            now["members"], exploits, now["rng"] = self._exploit_and_explore(t, history[-1], dims, factors,
                                                                              now["rng"], evaluate)
            self.exploit_time_ += time.perf_counter() - start
            return exploits

        def candidates(end):
            return [{**member, epochs_name: end} for member in now["members"]]

        staged = evaluate.train_stages(candidates(ends[-1]), ends[:-1], lambda t, out: {
            m: (source, candidates(ends[-1])[m]) for m, source in interval_end(t, out).items()})
        if staged is not None:  # the engine trained every interval, the population one model throughout
            states, seconds, copies = staged
            earlier += seconds
            self.exploit_time_ += copies["seconds"]
            self.exploits_in_group_, self.exploits_restacked_ = copies["in_group"], copies["restacked"]
        else:  # an interval a round of the engine (or of the net's own loops), states copied between
            states = {}
            for t, end in enumerate(ends[:-1]):
                out, states = evaluate.train_round(candidates(end), states)
                exploits = interval_end(t, out)
                start = time.perf_counter()
                states = self._exploit(states, exploits, now["members"], evaluate, n_splits)
                self.exploit_time_ += time.perf_counter() - start
        interval_end(len(ends) - 1, self._last_round(evaluate, candidates(ends[-1]), states, callback_ctx))
        self._record(evaluate, history, failed, earlier)

    def _exploit_and_explore(self, t, record, dims, factors, rng, evaluate):
        """The members after interval ``t`` (its ``record`` in the history, given its exploits
        here), the exploits ``{member: source}``, and the generator after the decisions: the
        journaled ones where there are."""
        members = record["params"]
        decisions = self._decide(record["scores"], members, dims, factors, rng)
        journal = evaluate.journal()
        if journal is not None:  # a resumed search takes the decisions it took before
            decisions = journal.state(f"population interval {t}", decisions)
            rng = random_state_from_json(decisions["random_state"])
        exploits = {int(m): int(source) for m, source in decisions["exploits"].items()}
        record["exploits"] = exploits
        members = [{**members[exploits[m]], **decisions["explored"][str(m)]} if m in exploits else members[m]
                   for m in range(len(members))]
        return members, exploits, rng

    def _last_round(self, evaluate, candidates, states, callback_ctx):
        """The last interval, the search's one round: its results are ``cv_results_``'s rows."""
        n_fits = len(candidates) * self.n_splits_
        ctx = None if callback_ctx is None else callback_ctx.subcontext(
            task_name="population", max_subtasks=n_fits, sequential_subtasks=False
        ).call_on_fit_task_begin(estimator=self)
        evaluate(candidates, callback_ctx=ctx, starts=states)
        if ctx is not None:
            ctx.call_on_fit_task_end(estimator=self)
        return evaluate.out[-n_fits:]

    def _decide(self, scores, members, dims, factors, rng):
        """The exploits and explores at the end of an interval, and the generator after them (JSON).

        The bottom quantile (and every member whose fit failed) copies a member of the
        top quantile, drawn at random; each copy's mutable parameters are then explored.
        """
        n = len(members)
        n_quantile = min(math.ceil(n * self.quantile_fraction), n // 2)
        order = np.argsort(-scores, kind="stable")  # best first; ties in the members' order
        top = [int(m) for m in order[:n_quantile] if np.isfinite(scores[m])]
        bottom = {int(m) for m in order[n - n_quantile:]} if n_quantile else set()
        bottom = sorted((bottom | {int(m) for m in np.flatnonzero(~np.isfinite(scores))}) - set(top))
        exploits, explored = {}, {}
        for m in bottom if top else []:
            source = top[rng.randint(len(top))]
            exploits[str(m)] = source
            explored[str(m)] = {name: self._explore(dims[name], members[source][name], factors, rng)
                                for name in self.mutable_}
        return {"scores": [float(s) if np.isfinite(s) else None for s in scores], "exploits": exploits,
                "explored": explored, "random_state": random_state_to_json(rng)}

    def _explore(self, dim, value, factors, rng):
        """A mutable parameter's next value: drawn afresh, or ``value`` perturbed by a factor."""
        if rng.rand() < self.resample_probability:
            return sample_value(dim, rng)
        factor = factors[rng.randint(len(factors))]
        if isinstance(dim, Categorical):  # the next choice up (factor > 1) or down, in sorted order
            choices = sorted(dim.categories)
            k = choices.index(value) + (1 if factor > 1 else -1 if factor < 1 else 0)
            return python_value(choices[min(max(k, 0), len(choices) - 1)])
        moved = min(max(value * factor, dim.low), dim.high)
        return int(round(moved)) if isinstance(dim.low, Integral) else float(moved)

    def _exploit(self, states, exploits, members, evaluate, n_splits):
        """The states the next interval goes on from: each exploiting member's a copy of its
        source's, split by split, with its own (explored) mutable parameters set."""
        states = dict(states)
        for m, source in exploits.items():
            net_params = self._net_params(evaluate, members[m])
            for split in range(n_splits):
                state = states.get((source, split))
                if state is None:  # no state to copy (the source's fit failed): from scratch
                    states.pop((m, split), None)
                    continue
                states[m, split] = copy_state(state)
                states[m, split].estimator.set_params(**net_params)
        return states

    def _net_params(self, evaluate, params):
        """The net's own values of a member's mutable parameters."""
        net = final_net(clone(evaluate.base).set_params(**clone(params, safe=False)))
        own = net.get_params(deep=False)
        return {_net_name(name, self._prefix): own[_net_name(name, self._prefix)] for name in self.mutable_}

    def _record(self, evaluate, history, failed, earlier):
        """The fitted attributes of the population, and ``fit_time`` summed over the intervals."""
        self.population_history_ = history
        lineage = _lineage(history, len(failed))
        self.schedules_ = [_schedule(history, slots) for slots in lineage]
        n_fits = len(earlier)
        evaluate.out[-n_fits:] = [{**result, "fit_time": result["fit_time"] + seconds}
                                  for result, seconds in zip(evaluate.out[-n_fits:], earlier, strict=True)]
        evaluate.results = self._format_results(evaluate.candidate_params, self.n_splits_, evaluate.out,
                                                evaluate.more_results)
        evaluate.results.update(lineage=_objects(lineage), failed_epochs=_objects(failed))

    def _choose_best(self, evaluate, refit_metric):
        super()._choose_best(evaluate, refit_metric)
        if hasattr(self, "best_index_"):
            self.best_schedule_ = self.schedules_[self.best_index_]

    def _refit(self, evaluate, X, y, routed, root_ctx, metadata):
        """The winner's schedule replayed on all the data (see :func:`~._refit.replay`)."""
        start = time.time()
        max_epochs = self.best_params_[epochs_param(self.estimator)]
        self.best_estimator_ = replay(evaluate.base, self.best_schedule_, max_epochs, X, y,
                                      evaluate.sample_weight, evaluate.sequential)
        self.refit_time_ = time.time() - start
        if hasattr(self.best_estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.best_estimator_.feature_names_in_

    # -- checks -----------------------------------------------------------------------------
    def _intervals(self, dims):
        """The net's epochs parameter and the epochs at which the intervals end."""
        name = epochs_param(self.estimator)
        if name is None:
            raise ValueError(f"PopulationSearchCV trains an sknet MLP (its members go on training between "
                             f"intervals); {type(self.estimator).__name__} holds none.")
        if name in dims:
            raise ValueError(f"{name!r} is the members' training length (the estimator's max_epochs), which "
                             "PopulationSearchCV does not search; remove it from param_distributions.")
        self._prefix = name[:-len("max_epochs")]
        max_epochs = clone(self.estimator).get_params()[name]
        interval = self.perturbation_interval
        return name, [*range(interval, max_epochs, interval), max_epochs]

    def _mutable(self, dims, epochs_name):
        """The mutable parameters, checked: in the space, and changeable by the engine mid-training."""
        prefix = self._prefix
        if self.mutable is None:
            names = tuple(name for name in dims if _net_name(name, prefix) in CHANGEABLE)
            if not names:
                raise ValueError(f"None of param_distributions' parameters {sorted(dims)} can change during "
                                 f"training; PopulationSearchCV explores "
                                 f"{[prefix + name for name in CHANGEABLE]}.")
            return _checked_dropout(names, dims, prefix)
        for name in self.mutable:
            if name not in dims:
                raise ValueError(f"mutable parameter {name!r} is not in param_distributions "
                                 f"({sorted(dims)}): its explores draw from its space there.")
            if _net_name(name, prefix) not in CHANGEABLE:
                raise ValueError(f"mutable parameter {name!r} cannot change during training; the engine "
                                 f"changes {[prefix + n for n in CHANGEABLE]} between epochs.")
        if not self.mutable:
            raise ValueError("mutable is empty; name at least one parameter, or None for the default.")
        return _checked_dropout(tuple(self.mutable), dims, prefix)

    def _factors(self):
        factors = [float(f) for f in self.perturbation_factors]
        if not factors or not all(math.isfinite(f) and f > 0 for f in factors):
            raise ValueError(f"perturbation_factors must be positive numbers; got "
                             f"{self.perturbation_factors!r}.")
        return factors

    def _check_members(self, evaluate, members):
        """Refuse, by name, what keeps a member from going on training between intervals."""
        if not evaluate.engine:
            raise ValueError("PopulationSearchCV trains its members through sknet's engine, which this fit "
                             "cannot use: it takes no fit parameters but groups and sample weights, and "
                             "no scikit-learn callbacks on a pipeline.")
        for params in members:
            net = final_net(clone(evaluate.base).set_params(**clone(params, safe=False)))
            why = _why_not(net, self._prefix + "lr" in self.mutable_)
            if why is not None:
                raise ValueError(f"PopulationSearchCV cannot train {type(net).__name__} with {params}: "
                                 f"{why}.")


def _why_not(net, lr_mutable):
    """Why ``net``'s training cannot stop and go on between intervals, or None."""
    reason = continuation_refusal(net)
    if reason is None and lr_mutable and net.lr_schedule is not None:
        reason = "lr is mutable, so the population finds its schedule: set lr_schedule=None"
    return reason or refusal(net, {})


def _warn_failures(out, scores, epoch, n_splits):
    """Warn of the members whose fits failed in an interval, with the first error."""
    failed = np.flatnonzero(~np.isfinite(scores))
    if not len(failed):
        return
    errors = [result["fit_error"] for m in failed for result in out[m * n_splits:(m + 1) * n_splits]
              if result.get("fit_error")]
    warnings.warn(f"{len(failed)} members' fits failed at epoch {epoch}; they copy better members' "
                  f"states at this exploit (cv_results_['failed_epochs']). The first error:\n"
                  f"{errors[0] if errors else 'a non-finite score'}", FitFailedWarning, stacklevel=4)


def _checked_dropout(mutable, dims, prefix):
    """``mutable``, refused where a mutable dropout's space holds 0: a member that trained without
    dropout has no dropout layers to turn on mid-training."""
    name = prefix + "dropout"
    if name in mutable:
        dim = dims[name]
        values = dim.categories if isinstance(dim, Categorical) else [dim.low]
        if any(value <= 0 for value in values):
            raise ValueError(f"mutable parameter {name!r} has 0 in its space ({dim}); a member that trains "
                             "without dropout cannot turn it on mid-training. Give it a range above 0, or "
                             "leave it out of mutable (fixed per member).")
    return mutable


def _net_name(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else None


def _lineage(history, n_members):
    """For each member, the slot whose weights it carried through each interval (following its copies
    back from the last interval)."""
    lineage = []
    for m in range(n_members):
        slots, current = [], m
        for t in range(len(history) - 1, -1, -1):
            if t < len(history) - 1:
                current = history[t]["exploits"].get(current, current)
            slots.append(current)
        lineage.append(slots[::-1])
    return lineage


def _schedule(history, slots):
    """``(start_epoch, params)`` steps of a lineage: the parameters its weights trained with."""
    steps, start = [], 0
    for record, slot in zip(history, slots, strict=True):
        params = record["params"][slot]
        if not steps or steps[-1][1] != params:
            steps.append((start, params))
        start = record["epoch"]
    return steps


def _objects(values):
    """A 1-D object array of ``values`` (lists): one cell each, as ``cv_results_`` columns are."""
    array = np.empty(len(values), dtype=object)
    array[:] = [list(value) for value in values]
    return array
