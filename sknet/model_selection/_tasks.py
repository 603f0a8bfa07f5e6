"""What a search's workers run: a group of jobs trained by the engine and scored, or one plain fit.

Each task is a function of picklable arguments, run under the search's joblib
backend (threads, processes, a Dask cluster). It returns scikit-learn's result
dicts (what ``_fit_and_score`` returns) and journals each one the moment it
exists, so that an interruption loses only the tasks in flight.

A group task trains its jobs together with :func:`sknet.engine.train_batched`,
then scores them fold by fold: the fold's test rows go through all of the fold's
trained nets in one batched forward pass (:func:`sknet.engine.predict_batched`),
and scikit-learn's scorers are applied to each job through a :func:`fitted_view`
that answers ``predict`` and ``predict_proba`` on those rows from the outputs in hand;
scikit-learn's built-in metrics are computed for all of the fold's jobs at once instead,
from those outputs (:func:`~._fast_scores.fold_scores`).
"""

from __future__ import annotations

import copy
import functools
import gc
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from .._compat import _fit_and_score, _safe_split, _score, fit_and_score_kwargs
from ..engine import predict_batched, train_batched, train_sequential
from ..engine._jobs import n_rows
from ..engine._stages import StagedTraining
from ..nets import replay_fit_callbacks, respond, training_spec, validate_input
from ._fast_scores import completed, fold_scores
from ._wrappers import assemble, final_net, predictions_out

if TYPE_CHECKING:
    from ..checkpoint import Journal
    from ..engine import TrainingState


@dataclass
class Block:
    """A fold as the nets of one setting of their layers see it: its rows before and after the layers."""

    X_train: object  # the fold's training rows, as the search's fit got them
    y_train: object
    X_test: object  # the fold's test rows, as the search's fit got them
    y_test: object
    X_fit: object  # what the nets train on: X_train through the fitted preprocessing (or X_train)
    y_fit: object  # ... and their targets: y_train through a fitted target transform (or y_train)
    X_predict: object  # X_test through the fitted preprocessing (or X_test)
    weight: object  # the net's sample weights of the training rows, or None
    layers: list[Any]  # the fitted layers around the nets, outermost first (see _wrappers.fit_layers)
    score_params: dict[str, Any]  # the scorer's parameters of the test rows
    score_params_train: dict[str, Any]  # ... and of the training rows


@dataclass
class EngineJob:
    """A (candidate, split) the engine trains: its place in the round and its unfitted estimator."""

    index: int  # position in the round's results: candidate * n_splits + split
    candidate: int
    split: int
    params: dict[str, Any]  # the candidate's parameters
    estimator: object  # the candidate's estimator: an sknet net, or a pipeline ending in one
    block: int  # the Block it trains and is scored on
    context: object = None  # its scikit-learn callback context, or None
    # the TrainingState of the same job for fewer epochs, to continue from (population training: or
    # the error its fit raised, its result)
    start: TrainingState | BaseException | None = None


@dataclass
class Scoring:
    """What every task of a round needs to score and journal its jobs."""

    scorer: Callable[..., Any]  # scikit-learn's scorer (a _MultimetricScorer for several metrics)
    error_score: float | str  # a number, or "raise"
    return_train_score: bool
    journal: Journal | None  # the checkpoint's Journal, or None
    first: int  # the position of the round's first candidate in the whole search
    caller: object = None  # the search, for scikit-learn's callbacks
    replay_epochs: bool = False  # the search has scikit-learn callbacks: report each job's epochs
    verbose: int = 0  # the search's: above 1, a line per finished fit, as scikit-learn prints
    n_splits: int = 0


@dataclass
class TaskResult:
    """What a task hands back: ``{index: result}``, and the engine's share of it."""

    results: dict[int, dict[str, Any]]  # _fit_and_score's result dict of each job, by its index
    seconds: float = 0.0  # spent training in the engine
    n_batched: int = 0  # jobs the engine trained
    engine_error: BaseException | None = None  # the engine failed; the jobs were fitted one by one
    states: dict[int, TrainingState] = field(default_factory=dict)  # by index, when asked to keep them


def fit_and_score(index, candidate, split, journal, first, **kwargs):
    """One task: scikit-learn's ``_fit_and_score`` of a job, journaled."""
    result = {**_fit_and_score(**fit_and_score_kwargs(kwargs)), "finished_at": time.time()}
    if journal is not None:
        journal.put(first + candidate, split, kwargs["parameters"], result)
    return TaskResult({index: result})


def train_and_score(jobs, blocks, scoring, fallback, keep_states=False, sequential=False):
    """One task: jobs of one engine group trained as one batched model, then scored and journaled.

    ``fallback`` holds the keyword arguments of ``_fit_and_score`` shared by
    all jobs (``X``, ``y``, ``scorer``, ``fit_params``...) for the case where
    the engine fails: the jobs are then fitted one by one, and the error is
    handed back for a warning. Jobs with a ``start`` continue from it; with
    ``keep_states``, their states come back for the next round to continue from.
    With ``sequential``, each job trains in its net's own loop instead
    (:func:`sknet.engine.train_sequential`), its state kept.
    """
    with heap_frozen():
        start = time.perf_counter()
        try:
            fitted, states = _train(jobs, blocks, keep_states, scoring.verbose, sequential)
        except Exception as exc:
            return _fit_each(jobs, scoring, fallback, exc)
        seconds = time.perf_counter() - start
        results, errors = _score_all(jobs, blocks, fitted, seconds / len(jobs), scoring)
        if errors and scoring.error_score == "raise":
            raise errors[0]
        kept = {job.index: state for job, state in zip(jobs, states, strict=True) if state is not None}
        return TaskResult(results, seconds, len(jobs), states=kept)


def train_in_stages(jobs, blocks, scoring, stages, between):
    """Population training: the jobs trained by the engine in stages ending at the epochs ``stages``
    (then to the end), every group one batched model throughout
    (:class:`~sknet.engine._stages.StagedTraining`).

    At the end of stage ``t`` the jobs are scored as :func:`train_and_score` scores them
    (nothing journaled), and ``between(t, out)`` (the results in the round's order) returns
    the exploits, ``{candidate: (source candidate, its parameters now)}``: split by split,
    the candidate's job takes over the source's training. A failed job that takes over none
    starts afresh. Returns ``(states, fit_times, copies)``: ``{(candidate, split):
    TrainingState or the error its fit raised}`` at the end, each job's share of the
    training time, and the take-overs' count in the group and out of it and their seconds.
    """
    used = sorted({job.block for job in jobs})
    X_all, y_all, weight_all, rows = stack_training_sets([blocks[b] for b in used])
    row_of = dict(zip(used, rows, strict=True))

    def engine_job(job):
        return final_net(job.estimator).get_params(deep=False), row_of[job.block]

    jobs = list(jobs)
    session = StagedTraining(final_net(jobs[0].estimator), [engine_job(job) for job in jobs], X_all, y_all,
                             weight_all)
    where = {(job.candidate, job.split): k for k, job in enumerate(jobs)}
    training, copying = 0.0, 0.0
    for t, epoch in enumerate([*stages, None]):
        start = time.perf_counter()
        fitted = session.advance(epoch)
        seconds = time.perf_counter() - start
        training += seconds
        if epoch is None:
            break
        results, errors = _score_all(jobs, blocks, fitted, seconds / len(jobs), scoring)
        if errors and scoring.error_score == "raise":
            raise errors[0]
        exploits = between(t, [results[index] for index in sorted(results)])
        start = time.perf_counter()
        taken = set()
        for m, (source, params) in exploits.items():
            # One estimator for the member's splits, as the round's plan gives them.
            estimator = clone(jobs[where[source, 0]].estimator).set_params(**params)
            net_params = final_net(estimator).get_params(deep=False)
            for split in range(scoring.n_splits):
                dst, src = where[m, split], where[source, split]
                jobs[dst] = replace(jobs[dst], params=params, block=jobs[src].block, estimator=estimator)
                if isinstance(session.results[src], BaseException):  # nothing to take over: afresh
                    session.restart(dst, net_params, row_of[jobs[dst].block])
                else:
                    session.take_over(dst, src, net_params)
                taken.add(dst)
        for k, result in enumerate(session.results):
            if isinstance(result, BaseException) and k not in taken:
                session.restart(k, *engine_job(jobs[k]))
        copying += time.perf_counter() - start
    states = {(job.candidate, job.split): session.states.get(k, fitted[k]) for k, job in enumerate(jobs)}
    copies = {"in_group": session.n_in_place, "restacked": session.n_restacked, "seconds": copying}
    return states, np.full(len(jobs), training / len(jobs)), copies


def _train(jobs, blocks, keep_states, verbose=0, sequential=False):
    """The jobs' fitted nets (or the exceptions their fits raise) and, with ``keep_states``, their
    training states (else Nones), in order; above 1, ``verbose`` prints each group as it starts.
    A job whose start is an error (population training's: its fit failed) has that error as result."""
    if any(isinstance(job.start, BaseException) for job in jobs):
        rest = [job for job in jobs if not isinstance(job.start, BaseException)]
        trained = iter(zip(*_train(rest, blocks, keep_states, verbose, sequential), strict=True)
                       if rest else [])
        out = [(job.start, None) if isinstance(job.start, BaseException) else next(trained) for job in jobs]
        return [result for result, _ in out], [state for _, state in out]
    used = sorted({job.block for job in jobs})
    X_all, y_all, weight_all, rows = stack_training_sets([blocks[b] for b in used])
    row_of = dict(zip(used, rows, strict=True))
    nets = [final_net(job.estimator) for job in jobs]
    jobs_of = [(net.get_params(deep=False), row_of[job.block]) for net, job in zip(nets, jobs, strict=True)]
    starts = [job.start for job in jobs]
    if sequential or keep_states:
        return train_with_states(sequential, nets[0], jobs_of, X_all, y_all, weight_all, starts, verbose)
    return (train_batched(nets[0], jobs_of, X_all, y_all, weight_all, starts=starts, verbose=verbose),
            [None] * len(jobs))


def train_with_states(sequential, net, jobs, X, y, sample_weight, starts, verbose=0):
    """``(fitted, states)`` of ``jobs`` trained by the engine, or with ``sequential`` each in its net's
    own loop, each going on from its start (None: from scratch)."""
    if sequential:
        return train_sequential(net, jobs, X, y, sample_weight, starts=starts)
    return train_batched(net, jobs, X, y, sample_weight, starts=starts, keep_states=True, verbose=verbose)


def _fit_each(jobs, scoring, fallback, error):
    """The jobs fitted one by one, as scikit-learn would: the engine failed on them."""
    results = {}
    for job in jobs:
        train, test = fallback["splits"][job.split]
        kwargs = {k: v for k, v in fallback.items() if k != "splits"}
        done = fit_and_score(job.index, job.candidate, job.split, scoring.journal, scoring.first,
                             estimator=job.estimator, train=train, test=test, parameters=job.params,
                             callback_ctx=job.context, **kwargs)
        results.update(done.results)
    return TaskResult(results, engine_error=error)


def _score_all(jobs, blocks, fitted, fit_time, scoring):
    """Every job's result, scored fold by fold, and the fits' errors; each result journaled."""
    results, errors = {}, []
    by_block = {}
    for k, job in enumerate(jobs):
        by_block.setdefault(job.block, []).append(k)
    for b, members in by_block.items():
        block = blocks[b]
        trained = [k for k in members if not isinstance(fitted[k], BaseException)]
        start = time.perf_counter()
        outputs = _outputs([fitted[k] for k in trained], block.X_predict)
        forward_time = (time.perf_counter() - start) / max(len(trained), 1)
        # The training rows' outputs too, in one pass, for the training scores.
        train_outputs = (_outputs([fitted[k] for k in trained], block.X_fit) if scoring.return_train_score
                         else [None] * len(trained))
        estimators = [assemble(jobs[k].estimator, block.layers, fitted[k]) for k in trained]
        fast, fast_time = _fold_scores(block, scoring, estimators, [fitted[k] for k in trained], outputs,
                                       train_outputs)
        done = dict(zip(trained, zip(estimators, outputs, train_outputs, fast, strict=True), strict=True))
        for k in members:
            job = jobs[k]
            if isinstance(fitted[k], BaseException):
                errors.append(fitted[k])
                result = _failed(fitted[k], block, fit_time, scoring)
            else:
                estimator, test_out, train_out, scores = done[k]
                result = _scored(job, block, estimator, fitted[k], (test_out, train_out), fit_time,
                                 forward_time + fast_time, scoring, scores)
            result["finished_at"] = time.time()  # when it was scored (the search's finish_time_)
            if scoring.journal is not None:
                scoring.journal.put(scoring.first + job.candidate, job.split, job.params, result)
            if scoring.verbose > 1:
                _print_fit_line(job, result, scoring)
            results[job.index] = result
    return results, errors


def _fold_scores(block, scoring, estimators, nets, outputs, train_outputs):
    """Each model's test and training scores computed from the outputs in hand for the whole
    fold at once (see :func:`fold_scores`; Nones where scikit-learn scores), and the test
    scores' time per model."""
    start = time.perf_counter()
    test = fold_scores(scoring.scorer, estimators, nets, outputs, block.X_test, block.y_test,
                       block.score_params, block.layers)
    seconds = (time.perf_counter() - start) / max(len(nets), 1)
    train = (fold_scores(scoring.scorer, estimators, nets, train_outputs, block.X_train, block.y_train,
                         block.score_params_train, block.layers) if scoring.return_train_score
             else [None] * len(nets))
    return list(zip(test, train, strict=True)), seconds


def _print_fit_line(job, result, scoring):
    """A finished batched fit's line, in the form of scikit-learn's ``[CV i/n] END ...``."""
    params = ", ".join(f"{k}={job.params[k]}" for k in sorted(job.params))
    scores = result["test_scores"]
    shown = (", ".join(f"{name}: {value:.3f}" for name, value in sorted(scores.items()))
             if isinstance(scores, dict) else f"score={scores:.3f}")
    total = result["fit_time"] + result["score_time"]
    print(f"[CV {job.split + 1}/{scoring.n_splits}] END {params}; {shown} total time={total:.2f}s (batched)")


def _outputs(nets, X):
    """Each net's raw outputs on ``X`` (one batched pass), or Nones where that cannot be done.

    Where the rows cannot be validated or stacked (text, NaN, large sparse data),
    each net answers for itself when scored, raising what its ``predict`` raises.
    """
    if not nets:
        return []
    try:
        X = validate_input(nets[0], X)
        if sp.issparse(X):
            return [None] * len(nets)
        return predict_batched(nets, X)
    except Exception:
        return [None] * len(nets)


def _failed(error, block, fit_time, scoring):
    """The result ``_fit_and_score`` gives for a fit that raised ``error``, with a numeric error_score."""
    if hasattr(scoring.scorer, "_scorers"):  # several metrics
        scores = {name: scoring.error_score for name in scoring.scorer._scorers}
    else:
        scores = scoring.error_score
    result = {"fit_error": "".join(traceback.format_exception(error)), "test_scores": scores}
    if scoring.return_train_score:
        result["train_scores"] = copy.copy(scores)
    return {**result, "n_test_samples": n_rows(block.X_test), "fit_time": fit_time, "score_time": 0.0}


def _scored(job, block, estimator, net, outputs, fit_time, score_share, scoring, fast=(None, None)):
    """The result ``_fit_and_score`` gives for a job the engine trained (``estimator``: its net in
    its fitted layers); ``outputs``: its net's on the test rows and on the training rows (or
    Nones); ``fast``: its test and training scores from :func:`fold_scores` (or Nones);
    ``score_share``: its share of the fold's forward pass and scoring."""
    outputs, train_outputs = outputs
    if scoring.replay_epochs and job.context is not None:
        with job.context.propagate_callback_context(net):
            job.context.call_on_fit_task_begin(estimator=scoring.caller, X=block.X_train, y=block.y_train)
            replay_fit_callbacks(net, block.X_fit, block.y_fit)
    start = time.perf_counter()
    result = {"fit_error": None,
              "test_scores": _scores(scoring, fast[0], estimator, net, block.layers, block.X_test,
                                     block.y_test, outputs, block.score_params)}
    score_time = score_share + time.perf_counter() - start
    if scoring.return_train_score:
        result["train_scores"] = _scores(scoring, fast[1], estimator, net, block.layers, block.X_train,
                                         block.y_train, train_outputs, block.score_params_train)
    if scoring.replay_epochs and job.context is not None:
        job.context.call_on_fit_task_end(estimator=scoring.caller, X=block.X_train, y=block.y_train)
    return {**result, "n_test_samples": n_rows(block.X_test), "fit_time": fit_time,
            "score_time": score_time}


def _scores(scoring, fast, estimator, net, layers, X, y, outputs, params):
    """A job's scores on the rows ``(X, y)``: ``fast`` (from :func:`fold_scores`), completed by
    scikit-learn's ``_score`` through a :func:`fitted_view` for what it lacks."""
    def score(scorer):
        view = fitted_view(estimator, net, X, outputs, layers)
        return _score(view, X, y, scorer, params, scoring.error_score)

    return completed(scoring.scorer, fast, score)


def fitted_view(estimator, net, X, outputs, layers=()):
    """``estimator`` (fitted) as scorers should see it on the rows ``X``, whose net outputs are in hand.

    A shallow copy of the fitted estimator, of its very class (so that scorers
    may index a pipeline, read its attributes or check its type), whose
    ``predict`` and ``predict_proba`` answer for that very ``X`` object from
    ``outputs``, exactly as the net's own methods turn its outputs into
    predictions, and pass any other call on to the estimator's own methods;
    ``score`` on ``X`` is the net's mixin score (accuracy or R^2) of those
    predictions, as a pipeline's score is its last step's. Predictions go out
    through the fitted ``layers`` (a target transform maps them back). Without
    outputs, the estimator itself.
    """
    if outputs is None:
        return estimator
    view = copy.copy(estimator)
    for name in ("predict", "predict_proba"):
        if hasattr(estimator, name):
            setattr(view, name, _responder(name, getattr(estimator, name), net, X, outputs, layers))
    view.score = _scorer(estimator.score, net, view, X)
    return view


def _responder(name, method, net, X_seen, outputs, layers):
    # Named as the method it stands for: scikit-learn reads the response method's __name__.
    @functools.wraps(method)
    def answer(X, *args, **kwargs):
        if X is X_seen and not args and not kwargs:
            response = respond(net, name, outputs)
            return predictions_out(layers, response, X) if name == "predict" else response
        return method(X, *args, **kwargs)

    return answer


def _scorer(method, net, view, X_seen):
    @functools.wraps(method)
    def score(X, y, sample_weight=None, **params):
        if X is X_seen and not params:
            return type(net).score(view, X, y, sample_weight=sample_weight)  # calls view.predict
        return method(X, y, sample_weight=sample_weight, **params)

    return score


def stack_training_sets(blocks):
    """One training set of several blocks' ``(X_fit, y_fit, weight)``, and each block's row positions.

    DataFrames are stacked as a DataFrame, so that the nets learn their column names.
    """
    Xs = [block.X_fit for block in blocks]
    if all(hasattr(X, "iloc") for X in Xs):
        import pandas as pd  # the blocks are DataFrames: pandas is there

        X_all = pd.concat(Xs, ignore_index=True)
    else:
        X_all = np.concatenate([np.asarray(X) for X in Xs])
    y_all = np.concatenate([np.asarray(block.y_fit) for block in blocks])
    weights = [block.weight for block in blocks]
    weight_all = None if weights[0] is None else np.concatenate([np.asarray(w) for w in weights])
    offsets = np.cumsum([0] + [n_rows(X) for X in Xs])
    rows = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(blocks))]
    return X_all, y_all, weight_all, rows



def split_fold(estimator, X, y, train, test):
    """A fold's training and test rows, as scikit-learn's ``_fit_and_score`` cuts them."""
    X_train, y_train = _safe_split(estimator, X, y, train)
    X_test, y_test = _safe_split(estimator, X, y, test, train)
    return X_train, y_train, X_test, y_test


# Searches (and their tasks) inside one another or in threads share one freeze.
_FREEZE_LOCK = threading.Lock()
_freezes = 0


@contextmanager
def heap_frozen():
    """Within the block, Python's cycle collector skips the objects that existed before it.

    A batched search allocates many small objects (histories, nets), and each
    full collection they trigger walked every object of the process, torch's
    and scikit-learn's modules included (about a quarter of a million): a tenth
    of a small search's time. Objects made within the block are collected as
    usual. A heap the caller froze is left as it is.
    """
    global _freezes
    with _FREEZE_LOCK:
        # Counting frozen objects walks them all (20 ms here): only when none should be.
        ours = _freezes > 0 or gc.get_freeze_count() == 0
        if ours:
            if _freezes == 0:
                gc.freeze()
            _freezes += 1
    try:
        yield
    finally:
        if ours:
            with _FREEZE_LOCK:
                _freezes -= 1
                if _freezes == 0:
                    gc.unfreeze()


def shares(group, n_parts, n_features):
    """A group's jobs shared out into up to ``n_parts`` tasks of about equal arithmetic.

    The jobs of one width (a block of stacked tensors in the batched model) stay
    together; the widths go, largest first, to the task with the least work so far.
    """
    if n_parts <= 1:
        return [group]
    by_width = {}
    for job in group:
        net = final_net(job.estimator)
        by_width.setdefault(training_spec(net).hidden_sizes or (), []).append(job)
    tasks = [[] for _ in range(min(n_parts, len(by_width)))]
    work = np.zeros(len(tasks))
    for widths, jobs in sorted(by_width.items(), key=lambda item: -_cost(n_features, item[0]) * len(item[1])):
        lightest = int(np.argmin(work))
        tasks[lightest] += jobs
        work[lightest] += _cost(n_features, widths) * len(jobs)
    return tasks


def _cost(n_features, hidden_sizes):
    """Weights of a net's hidden layers: what its arithmetic grows with."""
    widths = [n_features, *hidden_sizes]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=False)) or 1
