"""The batched engine inside the searches.

Before scikit-learn cross-validates a round of candidates, the (candidate, fold)
jobs whose estimator is an sknet net (or a pipeline ending in one) are trained
together by :mod:`sknet.engine`; pipelines have their preprocessing fitted per
fold first. scikit-learn's own evaluation then runs unchanged: its ``fit`` calls
adopt the trained results (see :mod:`sknet._prefit`), so scoring, ``error_score``,
callbacks and ``cv_results_`` are exactly those of a sequential search.

Training is dispatched with joblib under the backend the user chose (the
search's ``n_jobs``, or e.g. ``joblib.parallel_backend("dask")``): each group of
jobs that share tensor shapes is one task, and each job the engine cannot take
(``batch_norm``, say) is a task of its own, an ordinary ``fit``. Only the
scoring then runs in threads of this process, where the results are.

With a checkpoint, a round is trained in slices (runs of whole candidates),
each on demand when scikit-learn's evaluation reaches its first job, so the
results of a slice are scored and journaled before the next one trains: a kill
during training loses the slice in training, not the whole round (for a grid,
the whole search).
"""

import gc
import threading
import time
import warnings
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from joblib.parallel import get_active_backend
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.validation import _check_method_params, _is_arraylike, _num_samples

from .. import _prefit
from ..nets._base import BaseMLP

ENGINES = ("auto", "batched", "sequential")
# Slices of a round trained with a checkpoint: at least MIN_SLICE_JOBS jobs each (fewer
# models per batched step would waste the engine) and at most MAX_SLICES per round.
MIN_SLICE_JOBS = 32
MAX_SLICES = 8


# Searches (and their training tasks) inside one another or in threads share one freeze.
_FREEZE_LOCK = threading.Lock()
_freezes = 0


@contextmanager
def _heap_frozen():
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
        self._engine_data = (X, y, params) if self._engine_on(X, params) else None
        try:
            if self._engine_data is None:
                return super().fit(X, y, **params)
            # Set only here: a search of another estimator has exactly scikit-learn's attributes.
            self.engine_time_, self.n_batched_fits_ = 0.0, 0
            # Training goes to the user's backend; the trained results are then in this
            # process, so scikit-learn's evaluation (which adopts and scores them) uses threads.
            self._training_backend = get_active_backend()[0]
            with parallel_config(backend="threading"), _prefit.training_alone(self._refit), _heap_frozen():
                return super().fit(X, y, **params)
        finally:
            del self._engine_data
            self.__dict__.pop("_training_backend", None)

    def _engine_on(self, X, params):
        if self.engine == "sequential" or final_net(self.estimator) is None:
            return False
        # The net's sample weights (one per row) go with its jobs, not with metadata routing,
        # which could route them elsewhere too; other fit parameters change what a job computes.
        taken = {"groups"}
        weight = weight_param(self.estimator)
        if not _routing_enabled() and _is_arraylike(params.get(weight)) and (
                _num_samples(params[weight]) == _num_samples(X)):
            taken.add(weight)
        unsupported = sorted(set(params) - taken)
        if unsupported and self.engine == "batched":
            warnings.warn(f"The batched engine does not take fit parameters {unsupported}; "
                          "training sequentially.", UserWarning, stacklevel=3)
        return not unsupported

    def _refit(self, net, X, y, sample_weight=None):
        """The refit's net trained alone by the engine (see ``_prefit.training_alone``); None otherwise.

        Only the net of ``best_estimator_``, which scikit-learn fits after the search: any
        other fit in this thread (nets inside a pipeline's preprocessing, say) trains as usual.
        """
        if net is not final_net(getattr(self, "best_estimator_", None)):
            return None
        return _train_alone(net, X, y, sample_weight)

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
            jobs, blocks, n_jobs = plan(self.estimator, candidate_params, splits, X, y, skip=skip,
                                        sample_weight=params.get(weight_param(self.estimator)))
            n_batchable = sum(job[4] for job in jobs)
            if self.engine == "batched" and n_batchable < n_jobs:
                warnings.warn(f"{n_jobs - n_batchable} of {n_jobs} fits could not be batched and train "
                              "sequentially (see sknet.engine.can_batch).", UserWarning, stacklevel=2)
            dispatch = _Dispatch(self._training_backend, self.n_jobs)
            # Slices only when every job is batched: a fit in scikit-learn's loop runs in another
            # thread and would share torch's global generators with a slice in training.
            parts = _slices(jobs, len(candidate_params)) if in_slices and n_batchable == n_jobs else [jobs]
            if len(parts) == 1:
                store, slices = train(jobs, blocks, dispatch), []
                self.n_batched_fits_ += n_batchable
            else:
                slices = [_TimedSlice(part, blocks, dispatch) for part in parts]
                store = {key: piece.slice for piece in slices for _, key, *_ in piece.jobs}
            self.engine_time_ += time.perf_counter() - start
            try:
                # Jobs the engine did not train (or failed on) fit as usual.
                with _prefit.serving(store):
                    return evaluate_candidates(candidate_params, cv=cv, more_results=more_results,
                                               callback_ctx=callback_ctx)
            finally:
                trained = [piece for piece in slices if piece.slice.trained]
                self.engine_time_ += sum(piece.seconds for piece in trained)
                self.n_batched_fits_ += sum(sum(job[4] for job in piece.jobs) for piece in trained
                                            if piece.error is None)
                for piece in trained:
                    if piece.error is not None:
                        warnings.warn(f"The batched engine failed on {len(piece.jobs)} fits, which "
                                      f"trained sequentially instead: {piece.error!r}", UserWarning,
                                      stacklevel=2)

        return evaluate


def weight_param(estimator):
    """The name under which a search's ``fit`` passes sample weights on to the net of ``estimator``."""
    if isinstance(estimator, Pipeline):
        return f"{estimator.steps[-1][0]}__sample_weight"
    return "sample_weight"


def plan(estimator, candidates, splits, X, y, skip=(), sample_weight=None):
    """The (candidate, split) jobs of a round the engine trains ahead of scikit-learn's loop.

    ``skip`` holds ``(candidate index, split index)`` pairs not to train (a
    checkpoint has their results); ``sample_weight``, the net's weights of all
    rows, or None. Returns ``(jobs, blocks, n_jobs)``: jobs as
    ``(candidate index, job key, net, block, batchable)`` in scikit-learn's
    order, the distinct training sets ``{fingerprint: (block, X, y, sample_weight)}``,
    and the number of jobs to fit. A job whose training data cannot be keyed
    (an object table, say) is left to scikit-learn's loop.
    """
    from ..engine import can_batch

    blocks, jobs, transformed, digests = {}, [], {}, {}
    n_jobs = len(candidates) * len(splits) - len(skip)
    # Each fold as scikit-learn hands it to fit, the weights sliced by its own helper.
    train_sets = [(_safe_indexing(X, rows), _safe_indexing(y, rows),
                   _check_method_params(X, {"w": sample_weight}, rows)["w"]) for rows, _ in splits]
    for i, params in enumerate(candidates):
        model = clone(estimator).set_params(**params)
        net_key, batchable = None, {}  # the candidate's part of the key, and the engine's verdict
        for split, (X_train, y_train, weight) in enumerate(train_sets):
            if (i, split) in skip:
                continue
            net, X_net = _net_and_input(model, X_train, y_train, split, transformed)
            if id(X_net) not in digests:  # one digest per training set (kept alive with it)
                digests[id(X_net)] = (X_net, _prefit.data_key(X_net, y_train, weight))
            data = digests[id(X_net)][1]
            if data is None:
                continue
            net_key = net_key or _prefit.params_key(net)
            if data not in blocks:
                blocks[data] = (len(blocks), _dense(X_net), np.asarray(y_train),
                                None if weight is None else np.asarray(weight))
            sparse = sp.issparse(blocks[data][1])
            if sparse not in batchable:
                batchable[sparse] = can_batch(net, net.get_params(deep=False), blocks[data][1])
            # The key is what the job's own fit will look up.
            jobs.append((i, _prefit.job_key(net_key, data), net, blocks[data][0], batchable[sparse]))
    return jobs, blocks, n_jobs


# Sparse training sets up to this size (as dense float32) are densified for the engine, which
# computes what a fit on the sparse rows computes (sknet densifies each batch); larger ones
# stay sparse and their jobs train one by one.
DENSIFY_BYTES = 2**30


def _dense(X):
    """Training data as the engine takes it: an array (lists and DataFrames too), or a large sparse matrix."""
    if not sp.issparse(X):
        return np.asarray(X)
    return X.toarray() if 4 * X.shape[0] * X.shape[1] <= DENSIFY_BYTES else X


class _Dispatch:
    """Where training tasks run: the joblib backend active when the search started, ``n_jobs``."""

    def __init__(self, backend, n_jobs):
        self.backend, self.n_jobs = backend, n_jobs

    def __call__(self, tasks):
        with parallel_config(backend=self.backend):
            return Parallel(n_jobs=self.n_jobs)(tasks)

    def workers(self):
        """How many tasks can run at once (a Dask cluster's cores under its backend)."""
        with parallel_config(backend=self.backend):
            return effective_n_jobs(self.n_jobs)


def train(jobs, blocks, dispatch=None):
    """Train planned jobs; return ``{job key: fitted net or exception}``.

    Batchable jobs train as few batched models: the jobs of a group (same input
    width and ``group_key``) in one task, or, where several tasks can run at
    once, shared out into up to that many (see :func:`_shares`); the others one
    task each.
    """
    from ..engine._jobs import group_key

    dispatch = dispatch or _Dispatch(None, None)
    by_block = {b: (X, y, weight) for b, X, y, weight in blocks.values()}
    groups = {}  # plan() already checked each job with can_batch: only group them here
    for job in jobs:
        if job[4]:
            groups.setdefault((by_block[job[3]][0].shape[1], group_key(job[2])), []).append(job)
    n_workers = dispatch.workers() if groups else 1
    keys, tasks = [], []
    shares = [share for (n_features, _), group in groups.items()
              for share in _shares(group, n_workers, n_features)]
    for group in shares:
        used = sorted({job[3] for job in group})
        X_all, y_all, weight_all, rows = _stack([by_block[b] for b in used])
        row_of = dict(zip(used, rows, strict=True))
        keys.append([job[1] for job in group])
        tasks.append(delayed(_train_group)(group[0][2], [(job[2].get_params(deep=False), row_of[job[3]])
                                                         for job in group], X_all, y_all, weight_all))
    for _, key, net, block, batchable in jobs:
        if not batchable:
            keys.append([key])
            tasks.append(delayed(_fit_one)(net, *by_block[block]))
    results = dispatch(tasks) if tasks else []
    return {key: result for group, fitted in zip(keys, results, strict=True)
            for key, result in zip(group, fitted, strict=True)}


def _shares(group, n_parts, n_features):
    """A group's jobs shared out into up to ``n_parts`` tasks of about equal arithmetic.

    The jobs of one width (a block of stacked tensors in the batched model) stay
    together; the widths go, largest first, to the task with the least work so far.
    """
    if n_parts <= 1:
        return [group]
    by_width = {}
    for job in group:
        by_width.setdefault(job[2]._hidden_sizes(), []).append(job)
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


def _train_group(net, jobs, X, y, sample_weight=None):
    """One task: a group of jobs trained as one batched model."""
    from ..engine import train_batched

    with _heap_frozen():  # in a worker process too
        return train_batched(net, jobs, X, y, sample_weight)


def _train_alone(net, X, y, sample_weight=None):
    """``net`` trained on ``(X, y)`` by the engine, or None where its own ``fit`` should train it.

    That is where the engine cannot take it, where it would not reproduce the fit (dropout
    masks are drawn differently), and where the engine fails (with a warning).
    """
    from ..engine import can_batch, train_batched

    X = _dense(X) if sp.issparse(X) else X  # the net validates (and names) the rest itself
    if net.dropout > 0 or not can_batch(net, {}, X):
        return None
    try:
        return train_batched(net, [({}, np.arange(_num_samples(X)))], X, y, sample_weight)[0]
    except Exception as exc:
        warnings.warn(f"The batched engine failed on the refit, which trains sequentially instead: {exc!r}",
                      UserWarning, stacklevel=2)
        return None


def _fit_one(net, X, y, sample_weight=None):
    """One task: a job the engine cannot batch, fitted on its own (its failure is its result)."""
    try:
        return [clone(net).fit(X, y, sample_weight=sample_weight)]
    except Exception as exc:
        return [exc]


def _slices(jobs, n_candidates):
    """Cut planned jobs into runs of whole candidates (see MIN_SLICE_JOBS, MAX_SLICES)."""
    n_slices = max(1, min(MAX_SLICES, len(jobs) // MIN_SLICE_JOBS, n_candidates))
    bounds = np.linspace(0, n_candidates, n_slices + 1).round().astype(int)
    which = np.searchsorted(bounds, [job[0] for job in jobs], side="right") - 1
    return [part for part in ([job for job, s in zip(jobs, which, strict=True) if s == k]
                              for k in range(n_slices)) if part]


class _TimedSlice:
    """A :class:`sknet._prefit.Slice` of planned jobs that remembers how long it trained.

    Should the engine fail on the slice, its jobs are left to their own
    ``fit`` (and the error kept for a warning): raised from inside a ``fit``,
    it would be taken for each job's own failure and journaled as such.
    """

    def __init__(self, jobs, blocks, dispatch):
        self.jobs, self.seconds, self.error = jobs, 0.0, None
        self.slice = _prefit.Slice(lambda: self._train(blocks, dispatch))

    def _train(self, blocks, dispatch):
        start = time.perf_counter()
        try:
            return train(self.jobs, blocks, dispatch)
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
    """One array of several training sets ``[(X, y, sample_weight), ...]`` and the row indices of each."""
    X_all = np.concatenate([X for X, _, _ in blocks])
    y_all = np.concatenate([y for _, y, _ in blocks])
    weights = [weight for _, _, weight in blocks]
    weight_all = None if weights[0] is None else np.concatenate(weights)
    offsets = np.cumsum([0] + [len(X) for X, _, _ in blocks])
    rows = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(blocks))]
    return X_all, y_all, weight_all, rows
