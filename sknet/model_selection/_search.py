"""What the sknet searches share: ``fit``, the engine, the checkpoint.

Each is a scikit-learn ``BaseSearchCV`` subclass whose ``fit`` is
:meth:`SearchMixin.fit`: scikit-learn's own steps (scorers, metadata routing,
callbacks, the choice of the best candidate, the refit), with its
``evaluate_candidates`` replaced by a :class:`~._evaluate.RoundEvaluator`, which
serves journaled results, trains what it can with the batched engine and runs
scikit-learn's ``_fit_and_score`` for the rest. A strategy only implements
``_run_search``: which candidates to evaluate next. scikit-learn gives no hook
between its ``fit`` and its per-fit function, so these few lines of ``fit`` are
ours; scikit-learn's own search test suite, run against our classes
(``tests/model_selection/test_upstream.py``), guards that they do what its do.
"""

from __future__ import annotations

import numbers
import os
import platform
import time
import warnings
from contextlib import nullcontext
from inspect import signature
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.base import clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import indexable
from skorch.helper import SliceDict

from .._compat import (
    BaseSearchCV,
    CallbackSupportMixin,
    _check_method_params,
    _fit_context,
    _MultimetricScorer,
)
from .._identity import code_digest, data_digest, data_identity, describe, module_classes
from ..checkpoint import CheckpointDamagedError, CheckpointPermissionError, Journal
from ._evaluate import ENGINES, RoundEvaluator
from ._refit import refit
from ._space import python_value
from ._tasks import heap_frozen
from ._wrappers import epochs_param, final_net

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from typing_extensions import Self

    from .._typing import Features

__all__ = ["BaseSearchCV", "SearchMixin", "objective_key", "candidate_key", "latest_scores",
           "evaluate_round"]

# Search parameters that change how a search runs, not what it computes: a checkpoint
# may be resumed with others. The engine is one: batched and sequential fits agree to
# float rounding, as fits on two devices do.
_HOW_NOT_WHAT = ("n_jobs", "verbose", "pre_dispatch", "engine", "checkpoint", "max_time")


class SearchMixin(CallbackSupportMixin):  # BaseSearchCV has no _init_callback_context before 1.9
    """What every sknet search adds to scikit-learn's: the round evaluator, the engine, the checkpoint.

    A subclass names its search space parameter in ``_space_param``; its
    ``_run_search`` gets the :class:`~._evaluate.RoundEvaluator` as
    ``evaluate_candidates``, and asks it for its random state
    (``evaluate_candidates.random_state(self.random_state)``).
    """

    _search_constraints = {"engine": [StrOptions(set(ENGINES))], "checkpoint": [str, os.PathLike, None],
                           "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None]}
    _space_param: str | None = None
    # Grid and random add refit, which only acts after the search:
    _not_identity: tuple[str, ...] = _HOW_NOT_WHAT

    @_fit_context(prefer_skip_nested_validation=False)  # the estimator is validated by its own fit
    def fit(self, X: Features, y: ArrayLike | None = None, **params: Any) -> Self:
        """Run the search: cross-validate the candidates, then refit the best one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (anything the estimator accepts: arrays, DataFrames, sparse).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets.
        **params : dict
            Fit parameters routed as scikit-learn routes them (``groups``, ``sample_weight``, ...).
            The batched engine takes ``groups`` and the net's sample weights (``sample_weight``,
            or ``<last step>__sample_weight`` for a pipeline); other fit parameters turn it off.

        Returns
        -------
        self : object
            The fitted search. With ``checkpoint``, finished fits are read from the
            journal and new ones written to it as they finish.
        """
        scorers, refit_metric = self._get_scorers()
        _refuse_plain_dict(X)
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        weights = params.get("sample_weight")
        metadata = None if weights is None else {"sample_weight": weights}
        root_ctx = self._init_callback_context(max_subtasks=1 + (self.refit is not False))
        root_ctx.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata)
        self._checked_cv_orig = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        if hasattr(self, "_check_input_parameters"):  # a BaseSearchCV hook from scikit-learn 1.9 on
            self._check_input_parameters(X=X, y=y, split_params=routed.splitter.split)
        self.n_splits_ = self._checked_cv_orig.get_n_splits(X, y, **routed.splitter.split)
        open_journal = None
        if getattr(self, "checkpoint", None) is not None:
            def open_journal(engine):
                return self._open_journal(X, y, params, routed, engine)
        evaluate = RoundEvaluator(self, X, y, params, routed, scorers, open_journal)
        try:
            with evaluate.parallel, heap_frozen() if evaluate.engine else nullcontext():
                if "callback_ctx" in signature(self._run_search).parameters:
                    self._run_search(evaluate, callback_ctx=root_ctx)
                else:  # a user's search class written for scikit-learn without callbacks
                    self._run_search(evaluate)
                self._finish_journal(evaluate)
                self._choose_best(evaluate, refit_metric)
                if self.refit:
                    self._refit(evaluate, X, y, routed, root_ctx, metadata)
        except BaseException as exc:
            self._note_progress(exc, evaluate)
            raise
        if evaluate.engine and not evaluate.sequential:  # set only then: scikit-learn's attributes otherwise
            self.engine_time_, self.n_batched_fits_ = evaluate.engine_time, evaluate.n_batched
        self.scorer_ = scorers._scorers if isinstance(scorers, _MultimetricScorer) else scorers
        self.cv_results_ = evaluate.results
        if final_net(self.estimator) is not None:
            # Beside cv_results_, not in it, and for nets only: scikit-learn's own search tests pin
            # cv_results_'s keys and the attributes of a search of any other estimator.
            self.finish_time_ = np.asarray(evaluate.finish_times, dtype=float)
        if getattr(self, "max_time", None) is not None:
            self.timed_out_ = evaluate.timed_out
        root_ctx.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=metadata)
        return self

    def _continued_param(self):
        """The parameter whose candidates go on training from their last stage (None: none do):
        the net's ``max_epochs`` when pruning."""
        return None if getattr(self, "prune", None) is None else epochs_param(self.estimator)

    def _choose_best(self, evaluate, refit_metric):
        """Set ``multimetric_``, ``best_index_``, ``best_score_``, ``best_params_`` as scikit-learn does."""
        # A callable scoring says whether it is multi-metric only once it has run.
        first_test_score = evaluate.out[0]["test_scores"]
        self.multimetric_ = isinstance(first_test_score, dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(first_test_score)
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            results = evaluate.results
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            finished = ~np.asarray(results.get("pruned", np.zeros(len(results["params"]), dtype=bool)))
            if not callable(self.refit) and not finished[self.best_index_] and finished.any():
                # A pruned candidate's score is partial: the best is among those that finished.
                ranks = np.asarray(results[f"rank_test_{refit_metric}"], dtype=float)
                self.best_index_ = int(np.flatnonzero(finished)[np.argmin(ranks[finished])])
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]

    def _refit(self, evaluate, X, y, routed, root_ctx, metadata):
        """``best_estimator_``: the best parameters fitted on all the data, and ``refit_time_``."""
        # The parameters are cloned too: they may be estimators (a search over a pipeline's steps).
        self.best_estimator_ = clone(evaluate.base).set_params(**clone(self.best_params_, safe=False))
        refit_ctx = root_ctx.subcontext(task_name="refit-with-best-params")
        with refit_ctx.propagate_callback_context(self.best_estimator_):
            refit_ctx.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata)
            start = time.time()
            refit(evaluate, self.best_estimator_, X, y, routed.estimator.fit)
            self.refit_time_ = time.time() - start
        if hasattr(self.best_estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.best_estimator_.feature_names_in_
        refit_ctx.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=metadata)

    def _open_journal(self, X, y, params, routed, engine):
        """Create the checkpoint's journal, or check that it belongs to this search."""
        splits = list(self._checked_cv_orig.split(X, y, **routed.splitter.split))
        import sknet

        info = {"created": time.strftime("%Y-%m-%d %H:%M:%S %z"), "sknet": sknet.__version__,
                "scikit-learn": sklearn.__version__, "numpy": np.__version__,
                "python": platform.python_version(), "engine": "batched" if engine else "sequential"}
        return Journal(self.checkpoint).open(self._identity(X, y, params, splits), info)

    def _identity(self, X, y, params, splits):
        """What makes two searches the same search: the same proposals and the same results."""
        search_params = self.get_params(deep=False)
        own = {"estimator", self._space_param, "cv", "scoring", "error_score", "return_train_score"}
        settings = {k: v for k, v in search_params.items() if k not in own and k not in self._not_identity}
        if "random_state" in settings and not isinstance(settings["random_state"], numbers.Integral):
            settings["random_state"] = "None or a RandomState: its state is journaled"
        module = ".".join(m for m in type(self).__module__.split(".") if not m.startswith("_"))
        scoring = {k: search_params[k] for k in ("scoring", "error_score", "return_train_score")}
        split_indices = [np.asarray(indices) for split in splits for indices in split]
        identity = {
            "search": f"{module}.{type(self).__qualname__}",
            "estimator": describe(self.estimator),
            self._space_param: describe(search_params[self._space_param]),
            "settings": describe(settings),
            "scoring": describe(scoring),
            "cv": {"n_splits": len(splits), "splits": data_digest(split_indices)},
            "data": {"X": data_identity(X), "y": data_identity(y),
                     **{f"fit parameter {k}": data_identity(v) for k, v in sorted(params.items())}},
        }
        # Apart from the estimator and the space, whose description names classes only: a class's
        # code is read in this process, never in a worker (which may unpickle __main__'s by value).
        modules = module_classes(self.estimator, search_params[self._space_param])
        if modules:  # only then: checkpoints of searches over other estimators stay as they were
            identity["module code"] = self._module_code(modules)
        return identity

    def _module_code(self, modules):
        """The digest of each torch module class's code; warns of those whose source cannot be read."""
        code, unread = {}, {}
        for name, cls in modules.items():
            code[name], missing = code_digest(cls)
            unread.update(dict.fromkeys(missing))
        if unread:
            warnings.warn(
                f"Checkpoint {os.fspath(self.checkpoint)!r} cannot tell whether the code of "
                f"{', '.join(unread)} changes: its source cannot be read (a class defined in an interactive "
                "session or by exec), so the checkpoint identifies it by name only. After changing its "
                "code, pass a new checkpoint path.", UserWarning, stacklevel=2)
        return code

    def _finish_journal(self, evaluate):
        """Mark the checkpoint finished once the strategy has run to its end: it may then be read-only."""
        if evaluate._journal is not None:
            evaluate._journal.finish()

    def _note_progress(self, exc, evaluate):
        journal = evaluate._journal
        if journal is None or not hasattr(exc, "add_note"):  # add_note: Python >= 3.11
            return
        if isinstance(exc, (CheckpointPermissionError, CheckpointDamagedError)):  # says itself what
            return  # keeps the search from resuming
        try:
            n_done = len(journal)
        except Exception:  # the note must never hide the error itself
            return
        exc.add_note(f"{n_done} finished fits are kept in checkpoint {journal.path!r}: fit the same "
                     "search with the same checkpoint to resume from there.")


def _refuse_plain_dict(X):
    """A search splits X by rows: a dict of arrays (a module of several inputs) must be a SliceDict."""
    if isinstance(X, dict) and not isinstance(X, SliceDict) and not sp.issparse(X):  # DOK is a dict
        names = ", ".join(map(repr, list(X)[:5])) + (", ..." if len(X) > 5 else "")
        raise ValueError(
            f"X is a dict of {len(X)} array{'s' * (len(X) != 1)} ({names}); a search splits X by rows, "
            "which a plain dict cannot do. Wrap it: X = SliceDict(**X) (from skorch.helper import SliceDict)."
        )


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


def evaluate_all(search, evaluate_candidates, candidates, callback_ctx):
    """Grid and random search: every candidate in one round; with ``max_time``, in rounds that
    fill the engine (:meth:`~._evaluate.RoundEvaluator.round_size`), each a callback subtask of
    its own, up to the round that passes the deadline."""
    candidates = list(candidates)
    size = max(len(candidates), 1) if search.max_time is None else evaluate_candidates.round_size()
    rounds = [candidates[start:start + size] for start in range(0, len(candidates), size)] or [[]]
    if len(rounds) == 1:
        search_ctx = callback_ctx.subcontext(
            task_name="search", max_subtasks=len(candidates) * search.n_splits_, sequential_subtasks=False,
        ).call_on_fit_task_begin(estimator=search)
        evaluate_candidates(candidates, callback_ctx=search_ctx)
        search_ctx.call_on_fit_task_end(estimator=search)
        return
    search_ctx = callback_ctx.subcontext(task_name="search", max_subtasks=len(rounds)).call_on_fit_task_begin(
        estimator=search)
    for k, part in enumerate(rounds):
        if k and evaluate_candidates.stop_for_time():
            break
        ctx = search_ctx.subcontext(task_name="round", max_subtasks=len(part) * search.n_splits_,
                                    sequential_subtasks=False).call_on_fit_task_begin(estimator=search)
        evaluate_candidates(part, callback_ctx=ctx)
        if ctx.call_on_fit_task_end(estimator=search):  # a scikit-learn callback asked to stop
            break
    search_ctx.call_on_fit_task_end(estimator=search)


def evaluate_round(search, evaluate_candidates, candidates, *, key, parent_ctx, task_name, label,
                   more_results, tolerate_total_failure):
    """Cross-validate one round of a sequential strategy (a generation, a batch of points).

    Each round is a callback subtask of its own, since scikit-learn numbers the
    candidate tasks from 0 under the context it is given. Returns ``(scores,
    failure, stop, fit_times)``: the candidates' objective (-inf for failed ones),
    the error if every fit of the round failed and that was tolerated (else None),
    whether a scikit-learn callback asked to stop, and each candidate's mean fit
    time (``mean_fit_time``; NaN where unknown). ``label`` names the round in
    warnings ("generation 3").

    scikit-learn aborts a call whose fits all fail. For a strategy that evaluates
    a few candidates at a time that may be one unlucky round, not a broken model,
    so with ``tolerate_total_failure`` the round is scored -inf with a warning
    (its candidates are then missing from ``cv_results_``).
    """
    ctx = parent_ctx.subcontext(task_name=task_name, max_subtasks=len(candidates) * search.n_splits_,
                                sequential_subtasks=False).call_on_fit_task_begin(estimator=search)
    scores, failure, fit_times = np.empty(0), None, np.full(len(candidates), np.nan)
    if candidates:
        try:
            results = evaluate_candidates(candidates, more_results=more_results, callback_ctx=ctx)
            scores = latest_scores(results, key, len(candidates))
            fit_times = np.asarray(results["mean_fit_time"][-len(candidates):], dtype=float)
        except ValueError as exc:
            # The message is scikit-learn's only signal for "all fits failed".
            if not tolerate_total_failure or search.error_score == "raise" or "fits failed" not in str(exc):
                raise
            warnings.warn(
                f"Every fit of the {len(candidates)} candidate(s) of {label} failed; they rank last "
                f"and are left out of cv_results_.{exc}", FitFailedWarning, stacklevel=3,
            )
            scores, failure = np.full(len(candidates), -np.inf), exc
    return scores, failure, bool(ctx.call_on_fit_task_end(estimator=search)), fit_times
