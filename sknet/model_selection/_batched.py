"""The batched engine inside the searches.

Before scikit-learn cross-validates a round of candidates, the (candidate, fold)
jobs whose estimator is an sknet net (or a pipeline ending in one) are trained
together by :mod:`sknet.engine`; pipelines have their preprocessing fitted per
fold first. scikit-learn's own evaluation then runs unchanged: its ``fit`` calls
adopt the trained results (see :mod:`sknet._prefit`), so scoring, ``error_score``,
callbacks and ``cv_results_`` are exactly those of a sequential search. A job
the engine cannot take trains sequentially as before.

With a checkpoint, a round is trained in slices (runs of whole candidates),
each on demand when scikit-learn's evaluation reaches its first job, so the
results of a slice are scored and journaled before the next one trains: a kill
during training loses the slice in training, not the whole round (for a grid,
the whole search).
"""

import time
import warnings

import numpy as np
from joblib import parallel_config
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import StrOptions

from .. import _prefit
from ..nets._base import BaseMLP

ENGINES = ("auto", "batched", "sequential")
# Slices of a round trained with a checkpoint: at least MIN_SLICE_JOBS jobs each (fewer
# models per batched step would waste the engine) and at most MAX_SLICES per round.
MIN_SLICE_JOBS = 32
MAX_SLICES = 8


def final_net(estimator):
    """The sknet net a search would train: the estimator or a pipeline's last step; else None."""
    if isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator if isinstance(estimator, BaseMLP) else None


class EngineMixin:
    """Adds ``engine`` to a search: batched training of sknet nets, sequential otherwise."""

    _engine_constraints = {"engine": [StrOptions(set(ENGINES))]}

    def fit(self, X, y=None, **params):
        # Decided once per fit; _batched reads the decision from _engine_data.
        self._engine_data = (X, y, params) if self._engine_on(params) else None
        try:
            if self._engine_data is None:
                return super().fit(X, y, **params)
            # Set only here: a search of another estimator has exactly scikit-learn's attributes.
            self.engine_time_, self.n_batched_fits_ = 0.0, 0
            # Trained results are shared in this process: evaluate with threads, not processes.
            with parallel_config(backend="threading"):
                return super().fit(X, y, **params)
        finally:
            del self._engine_data

    def _engine_on(self, params):
        if self.engine == "sequential" or final_net(self.estimator) is None:
            return False
        unsupported = sorted(set(params) - {"groups"})
        if unsupported and self.engine == "batched":
            warnings.warn(f"The batched engine does not take fit parameters {unsupported}; "
                          "training sequentially.", UserWarning, stacklevel=3)
        return not unsupported

    def _batched(self, evaluate_candidates):
        """Wrap scikit-learn's ``evaluate_candidates`` so each round is trained batched first.

        The wrapper also takes ``skip``, the ``(candidate, split)`` pairs of the
        round a checkpoint already holds, which are not trained again, and
        ``in_slices``: train the round slice by slice as its fits are reached.
        """
        if getattr(self, "_engine_data", None) is None:
            def sequential(candidate_params, cv=None, more_results=None, callback_ctx=None, skip=(),
                           in_slices=False):
                return evaluate_candidates(candidate_params, cv=cv, more_results=more_results,
                                           callback_ctx=callback_ctx)

            return sequential

        def evaluate(candidate_params, cv=None, more_results=None, callback_ctx=None, skip=(),
                     in_slices=False):
            candidate_params = list(candidate_params)
            X, y, params = self._engine_data
            routed = self._get_routed_params_for_fit(params)
            splits = list((cv or self._checked_cv_orig).split(X, y, **routed.splitter.split))
            start = time.perf_counter()
            jobs, blocks, n_jobs = plan(self.estimator, candidate_params, splits, X, y, skip=skip)
            if self.engine == "batched" and len(jobs) < n_jobs:
                warnings.warn(f"{n_jobs - len(jobs)} of {n_jobs} fits could not be batched and train "
                              "sequentially (see sknet.engine.can_batch).", UserWarning, stacklevel=2)
            # Slices only when every job is batched: a sequential fit in another thread
            # would share torch's global generators with a slice in training.
            parts = _slices(jobs, len(candidate_params)) if in_slices and len(jobs) == n_jobs else [jobs]
            if len(parts) == 1:
                store, slices = train(jobs, blocks), []
                self.n_batched_fits_ += len(jobs)
            else:
                slices = [_TimedSlice(part, blocks) for part in parts]
                store = {key: piece.slice for piece in slices for _, key, _, _ in piece.jobs}
            self.engine_time_ += time.perf_counter() - start
            try:
                with _prefit.serving(store):
                    return evaluate_candidates(candidate_params, cv=cv, more_results=more_results,
                                               callback_ctx=callback_ctx)
            finally:
                trained = [piece for piece in slices if piece.slice.trained]
                self.engine_time_ += sum(piece.seconds for piece in trained)
                self.n_batched_fits_ += sum(len(piece.jobs) for piece in trained if piece.error is None)
                for piece in trained:
                    if piece.error is not None:
                        warnings.warn(f"The batched engine failed on {len(piece.jobs)} fits, which "
                                      f"trained sequentially instead: {piece.error!r}", UserWarning,
                                      stacklevel=2)

        return evaluate


def plan(estimator, candidates, splits, X, y, skip=()):
    """The batchable (candidate, split) jobs of a round.

    ``skip`` holds ``(candidate index, split index)`` pairs not to train (a
    checkpoint has their results). Returns ``(jobs, blocks, n_jobs)``: jobs as
    ``(candidate index, job key, net, block)`` in scikit-learn's order, the
    distinct training sets ``{fingerprint: (block, X, y)}``, and the number of
    jobs to fit, batchable or not.
    """
    from ..engine import can_batch

    blocks, jobs, transformed = {}, [], {}
    n_jobs = len(candidates) * len(splits) - len(skip)
    for i, params in enumerate(candidates):
        model = clone(estimator).set_params(**params)
        for split, (train_rows, _) in enumerate(splits):
            if (i, split) in skip:
                continue
            X_train, y_train = _safe_indexing(X, train_rows), _safe_indexing(y, train_rows)
            net, X_net = _net_and_input(model, X_train, y_train, split, transformed)
            y_net = np.asarray(y_train)
            key = _prefit.job_key(net, X_net, y_net)
            if key is None or not can_batch(net, net.get_params(deep=False), X_net):
                continue
            block = blocks.setdefault(_prefit.fingerprint(X_net, y_net), (len(blocks), X_net, y_net))
            jobs.append((i, key, net, block[0]))
    return jobs, blocks, n_jobs


def train(jobs, blocks):
    """Train planned jobs as one batched model; return ``{job key: fitted net or exception}``."""
    from ..engine import train_batched

    if not jobs:
        return {}
    used = sorted({b for _, _, _, b in jobs})
    X_all, y_all, rows = _stack([block for block in sorted(blocks.values(), key=lambda b: b[0])
                                 if block[0] in used])
    row_of = dict(zip(used, rows, strict=True))
    fitted = train_batched(jobs[0][2], [(net.get_params(deep=False), row_of[b]) for _, _, net, b in jobs],
                           X_all, y_all)
    return {key: result for (_, key, _, _), result in zip(jobs, fitted, strict=True)}


def pretrain(estimator, candidates, splits, X, y, skip=()):
    """Train every batchable (candidate, split) job; return ``({job key: result}, n_jobs)``."""
    jobs, blocks, n_jobs = plan(estimator, candidates, splits, X, y, skip=skip)
    return train(jobs, blocks), n_jobs


def _slices(jobs, n_candidates):
    """Cut planned jobs into runs of whole candidates (see MIN_SLICE_JOBS, MAX_SLICES)."""
    n_slices = max(1, min(MAX_SLICES, len(jobs) // MIN_SLICE_JOBS, n_candidates))
    bounds = np.linspace(0, n_candidates, n_slices + 1).round().astype(int)
    which = np.searchsorted(bounds, [i for i, _, _, _ in jobs], side="right") - 1
    return [part for part in ([job for job, s in zip(jobs, which, strict=True) if s == k]
                              for k in range(n_slices)) if part]


class _TimedSlice:
    """A :class:`sknet._prefit.Slice` of planned jobs that remembers how long it trained.

    Should the engine fail on the slice, its jobs are left to their own
    ``fit`` (and the error kept for a warning): raised from inside a ``fit``,
    it would be taken for each job's own failure and journaled as such.
    """

    def __init__(self, jobs, blocks):
        self.jobs, self.seconds, self.error = jobs, 0.0, None
        self.slice = _prefit.Slice(lambda: self._train(blocks))

    def _train(self, blocks):
        start = time.perf_counter()
        try:
            return train(self.jobs, blocks)
        except Exception as exc:
            self.error = exc
            return {}
        finally:
            self.seconds = time.perf_counter() - start


def _net_and_input(model, X_train, y_train, split, transformed):
    """The net to train and its input: a pipeline's preprocessing is fitted on the fold once."""
    if not isinstance(model, Pipeline):
        return model, X_train
    pre = model[:-1]
    cache_key = (split, repr(sorted(pre.get_params(deep=True).items(), key=lambda kv: kv[0])))
    if cache_key not in transformed:
        transformed[cache_key] = clone(pre).fit_transform(X_train, y_train)
    return model.steps[-1][1], transformed[cache_key]


def _stack(blocks):
    """One array of all distinct training sets and the row indices of each."""
    X_all = np.concatenate([X for _, X, _ in blocks])
    y_all = np.concatenate([y for _, _, y in blocks])
    offsets = np.cumsum([0] + [len(X) for _, X, _ in blocks])
    rows = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(blocks))]
    return X_all, y_all, rows
