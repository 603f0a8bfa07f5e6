"""The batched engine inside the searches.

Before scikit-learn cross-validates a round of candidates, the (candidate, fold)
jobs whose estimator is an sknet net (or a pipeline ending in one) are trained
together by :mod:`sknet.engine`; pipelines have their preprocessing fitted per
fold first. scikit-learn's own evaluation then runs unchanged: its ``fit`` calls
adopt the trained results (see :mod:`sknet._prefit`), so scoring, ``error_score``,
callbacks and ``cv_results_`` are exactly those of a sequential search. A job
the engine cannot take trains sequentially as before.
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

        The wrapper also takes ``skip``: the ``(candidate, split)`` pairs of the
        round a checkpoint already holds, which are not trained again.
        """
        if getattr(self, "_engine_data", None) is None:
            def sequential(candidate_params, cv=None, more_results=None, callback_ctx=None, skip=()):
                return evaluate_candidates(candidate_params, cv=cv, more_results=more_results,
                                           callback_ctx=callback_ctx)

            return sequential

        def evaluate(candidate_params, cv=None, more_results=None, callback_ctx=None, skip=()):
            candidate_params = list(candidate_params)
            X, y, params = self._engine_data
            routed = self._get_routed_params_for_fit(params)
            splits = list((cv or self._checked_cv_orig).split(X, y, **routed.splitter.split))
            start = time.perf_counter()
            trained, n_jobs = pretrain(self.estimator, candidate_params, splits, X, y, skip=skip)
            self.engine_time_ += time.perf_counter() - start
            self.n_batched_fits_ += len(trained)
            if self.engine == "batched" and len(trained) < n_jobs:
                warnings.warn(f"{n_jobs - len(trained)} of {n_jobs} fits could not be batched and train "
                              "sequentially (see sknet.engine.can_batch).", UserWarning, stacklevel=2)
            with _prefit.serving(trained):
                return evaluate_candidates(candidate_params, cv=cv, more_results=more_results,
                                           callback_ctx=callback_ctx)

        return evaluate


def pretrain(estimator, candidates, splits, X, y, skip=()):
    """Train every batchable (candidate, split) job; return ``({job key: result}, n_jobs)``.

    ``skip`` holds ``(candidate index, split index)`` pairs not to train (a
    checkpoint has their results); they are not counted in ``n_jobs``.
    """
    from ..engine import can_batch, train_batched

    blocks, jobs, transformed = {}, [], {}
    n_jobs = len(candidates) * len(splits) - len(skip)
    for i, params in enumerate(candidates):
        model = clone(estimator).set_params(**params)
        for split, (train, _) in enumerate(splits):
            if (i, split) in skip:
                continue
            X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train)
            net, X_net = _net_and_input(model, X_train, y_train, split, transformed)
            y_net = np.asarray(y_train)
            key = _prefit.job_key(net, X_net, y_net)
            if key is None or not can_batch(net, net.get_params(deep=False), X_net):
                continue
            block = blocks.setdefault(_prefit.fingerprint(X_net, y_net), (len(blocks), X_net, y_net))
            jobs.append((key, net, block[0]))
    if not jobs:
        return {}, n_jobs
    X_all, y_all, rows = _stack(sorted(blocks.values(), key=lambda b: b[0]))
    fitted = train_batched(jobs[0][1], [(net.get_params(deep=False), rows[b]) for _, net, b in jobs],
                           X_all, y_all)
    trained = {key: result for (key, _, _), result in zip(jobs, fitted, strict=True)}
    return trained, n_jobs


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
