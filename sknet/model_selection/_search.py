"""What the four searches share.

All four are scikit-learn ``BaseSearchCV`` subclasses: scikit-learn's own ``fit``
does the cross-validation, parallelism (joblib), scoring, ``error_score``
handling, refitting, callbacks and metadata routing, so ``cv_results_`` means
the same thing whichever strategy proposed the candidates. A strategy only
implements ``_run_search``: which candidates to evaluate next, through the
``evaluate_candidates`` that :meth:`SearchMixin._evaluator` wraps with the
batched engine and the checkpoint.

The checkpoint hook
-------------------
scikit-learn's ``evaluate_candidates`` runs one ``_fit_and_score`` per
(candidate, split) inside joblib, with ``caller=<the search>``,
``candidate_progress`` and ``split_progress``. For the length of a fit with a
checkpoint, the name ``_fit_and_score`` in scikit-learn's search module is
:func:`_journaled_fit_and_score`: for one of our searches with a checkpoint it
serves a journaled result instead of fitting, or fits and journals the result
the moment it exists, in the worker (thread or process) that fitted it; for any
other caller it is scikit-learn's function, untouched. Rewriting ``fit``
instead would mean owning scikit-learn's metadata routing, callbacks and
``error_score`` handling; the hook keeps all of that theirs, and a check after
every round (every fit journaled?) fails loudly should scikit-learn stop
calling it.
"""

import numbers
import os
import platform
import threading
import time
import warnings
from contextlib import contextmanager

import numpy as np
import sklearn
import sklearn.model_selection._search as _sklearn_search
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import _validation
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import _safe_split

from ..checkpoint import Journal, data_digest, describe, random_state_from_json, random_state_to_json
from ._batched import EngineMixin
from ._space import python_value

__all__ = ["BaseSearchCV", "SearchMixin", "objective_key", "candidate_key", "latest_scores",
           "evaluate_round"]

# Search parameters that change how a search runs, not what it computes: a checkpoint
# may be resumed with others. The engine is one: batched and sequential fits agree to
# float rounding, as fits on two devices do.
_HOW_NOT_WHAT = ("n_jobs", "verbose", "pre_dispatch", "engine", "checkpoint")


class SearchMixin(EngineMixin):
    """What every sknet search adds to scikit-learn's: the batched engine and the checkpoint.

    A subclass names its search space parameter in ``_space_param``, and calls
    ``self._evaluator(evaluate_candidates)`` at the start of ``_run_search``
    and ``self._random_state()`` where it needs its random state.
    """

    _search_constraints = {**EngineMixin._engine_constraints, "checkpoint": [str, os.PathLike, None]}
    _space_param = None
    _not_identity = _HOW_NOT_WHAT  # grid and random add refit, which only acts after the search

    def fit(self, X, y=None, **params):
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
        if getattr(self, "checkpoint", None) is None:
            return super().fit(X, y, **params)
        self._checkpoint_fit = (X, y, params)  # for the identity; dropped once the journal is open
        try:
            with _hook():
                return super().fit(X, y, **params)
        except BaseException as exc:
            self._note_progress(exc)
            raise
        finally:
            for name in ("_checkpoint_fit", "_checkpoint_run", "_checkpoint_round"):
                self.__dict__.pop(name, None)

    def _evaluator(self, evaluate_candidates):
        """scikit-learn's ``evaluate_candidates``, batched by the engine and journaled."""
        evaluate = self._batched(evaluate_candidates)
        if getattr(self, "_checkpoint_fit", None) is None:
            return evaluate

        def journaled(candidate_params, cv=None, more_results=None, callback_ctx=None):
            run = self._checkpoint()
            candidate_params = list(candidate_params)
            first, index, n = run.next, run.rounds, len(candidate_params)
            run.next, run.rounds = first + n, index + 1
            done = run.journal.begin_round(index, first, candidate_params, more_results)
            # Read by _journaled_fit_and_score through caller=self: pickled into worker
            # processes with each task, shared by worker threads. A new object per round.
            self._checkpoint_round = _Round(run.journal, first, bool(done))
            if self.verbose > 0 and done:
                print(f"[{type(self).__name__}] {len(done)} of {n * self.n_splits_} fits of this round "
                      f"come from checkpoint {run.journal.path}")
            results = evaluate(candidate_params, cv=cv, more_results=more_results,
                               callback_ctx=callback_ctx, skip=done, in_slices=True)
            missing = n * self.n_splits_ - run.journal.count(first, first + n)
            if missing:
                raise RuntimeError(
                    f"{missing} fits of this round were not journaled: scikit-learn {sklearn.__version__} "
                    "no longer calls sklearn.model_selection._search._fit_and_score as sknet's checkpoint "
                    "expects. Run without checkpoint, or with the scikit-learn version sknet supports."
                )
            return results

        return journaled

    def _checkpoint(self):
        """The journal of this fit, opened (created or checked) on first need; None without one.

        Opened when the strategy first needs it (its random state or its first
        round), after its own argument checks: a search that fails those
        leaves no checkpoint claiming its arguments behind.
        """
        run = getattr(self, "_checkpoint_run", None)
        if run is not None or getattr(self, "_checkpoint_fit", None) is None:
            return run
        X, y, params = self._checkpoint_fit
        del self._checkpoint_fit  # keep the data out of what workers receive as caller
        routed = self._get_routed_params_for_fit(params)
        splits = list(self._checked_cv_orig.split(X, y, **routed.splitter.split))
        import sknet

        info = {"created": time.strftime("%Y-%m-%d %H:%M:%S %z"), "sknet": sknet.__version__,
                "scikit-learn": sklearn.__version__, "numpy": np.__version__,
                "python": platform.python_version(),
                "engine": "batched" if getattr(self, "_engine_data", None) is not None else "sequential"}
        journal = Journal(self.checkpoint).open(self._identity(X, y, params, splits), info)
        self._checkpoint_run = _Run(journal)
        return self._checkpoint_run

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
        return {
            "search": f"{module}.{type(self).__qualname__}",
            "estimator": describe(self.estimator),
            self._space_param: describe(search_params[self._space_param]),
            "settings": describe(settings),
            "scoring": describe(scoring),
            "cv": {"n_splits": len(splits), "splits": data_digest(split_indices)},
            "data": {"X": data_digest(X), "y": data_digest(y),
                     **{f"fit parameter {k}": data_digest(v) for k, v in sorted(params.items())}},
        }

    def _random_state(self):
        """The strategy's random state: ``random_state``, or with a checkpoint the journaled one.

        An int seeds the same sequence every run (and is part of the identity).
        None or a ``RandomState`` would not: with a checkpoint, the state they
        are in when the search first runs is journaled, and every run of the
        search (the first and each resumption) draws from a copy of it; the
        ``RandomState`` passed is not advanced.
        """
        if isinstance(self.random_state, numbers.Integral) or self._checkpoint() is None:
            return self.random_state
        run = self._checkpoint()
        state = run.journal.state("random_state", random_state_to_json(check_random_state(self.random_state)))
        return random_state_from_json(state)

    def _note_progress(self, exc):
        run = getattr(self, "_checkpoint_run", None)
        if run is None or not hasattr(exc, "add_note"):  # add_note: Python >= 3.11
            return
        try:
            n_done = len(run.journal)
        except Exception:  # the note must never hide the error itself
            return
        exc.add_note(f"{n_done} finished fits are kept in checkpoint {run.journal.path!r}: fit the same "
                     "search with the same checkpoint to resume from there.")


class _Run:
    """The journal of the fit in progress, and how far its rounds have come."""

    def __init__(self, journal):
        self.journal, self.rounds, self.next = journal, 0, 0


class _Round:
    """What a worker needs to journal a fit of this round: the journal and the first position.

    ``any_done``: whether the journal had results of this round when it began;
    when not, workers need not look there first.
    """

    def __init__(self, journal, first, any_done):
        self.journal, self.first, self.any_done = journal, first, any_done


_HOOK_LOCK = threading.Lock()
_hook_users = 0  # fits with a checkpoint in progress in this process (threads may run several)
_unhooked = None  # what scikit-learn's search module called before the hook went in


@contextmanager
def _hook():
    """Route scikit-learn's search module through :func:`_journaled_fit_and_score` meanwhile."""
    global _hook_users, _unhooked
    with _HOOK_LOCK:
        if _hook_users == 0:
            current = _sklearn_search._fit_and_score
            _unhooked = _validation._fit_and_score if current is _journaled_fit_and_score else current
            _sklearn_search._fit_and_score = _journaled_fit_and_score
        _hook_users += 1
    try:
        yield
    finally:
        with _HOOK_LOCK:
            _hook_users -= 1
            if _hook_users == 0:
                _sklearn_search._fit_and_score, _unhooked = _unhooked, None


def _journaled_fit_and_score(estimator, X, y, **kwargs):
    """scikit-learn's ``_fit_and_score``, served from or written to the caller's checkpoint.

    Passes through for anything but one of our searches fitting with a
    checkpoint. A failed fit (``error_score`` numeric) is journaled with its
    traceback like any result; with ``error_score="raise"`` the error
    propagates and nothing is written for that fit.
    """
    fit_and_score = _unhooked or _validation._fit_and_score  # a worker process has no hook in
    round_ = getattr(kwargs.get("caller"), "_checkpoint_round", None)
    split, candidate = kwargs.get("split_progress"), kwargs.get("candidate_progress")
    if round_ is None or split is None or candidate is None or kwargs.get("return_estimator"):
        return fit_and_score(estimator, X, y, **kwargs)
    position, split = round_.first + candidate[0], split[0]
    parameters = kwargs.get("parameters") or {}
    stored = round_.journal.get(position, split, parameters) if round_.any_done else None
    if stored is None:
        result = fit_and_score(estimator, X, y, **kwargs)
        round_.journal.put(position, split, parameters,
                           {k: v for k, v in result.items() if k != "parameters"})
        return result
    ctx = kwargs.get("callback_ctx")
    if ctx is not None:  # the task still begins and ends for scikit-learn's callbacks (progress bars)
        data = {"X": lambda: _safe_split(estimator, X, y, kwargs["train"])[0],
                "y": lambda: _safe_split(estimator, X, y, kwargs["train"])[1]}
        ctx.call_on_fit_task_begin(estimator=kwargs["caller"], **data)
        ctx.call_on_fit_task_end(estimator=kwargs["caller"], **data)
    if kwargs.get("return_parameters"):
        stored["parameters"] = parameters
    return stored


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
