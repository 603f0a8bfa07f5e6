"""The plan: which jobs train together, in what chunks, and ``train_batched`` over all of them.

``train_batched`` checks and sets up every job (:mod:`._jobs`), lets the jobs that differ
only in a smaller ``max_epochs`` follow the one with the most epochs, and groups the rest by
what must be equal to share a training loop. Each group is cut into consecutive chunks whose
estimated memory fits its device, and each chunk trains as one :class:`~._group.GroupTrainer`
under the thread count its work calls for; a chunk that runs out of memory anyway is halved
and trained again from fresh nets.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, overload

import numpy as np
import torch
from sklearn.utils import check_array

from .._compat import OutOfMemoryError
from ..nets._data import predict_batch_size
from ..parallel import fit_threads, flush_denormals, step_work
from . import _functional
from ._costs import module_work, padded_widths, padding_waste
from ._functional import tensor_layout
from ._group import GroupTrainer, _RowIndices
from ._jobs import (
    Job,
    TrainingState,
    continuation_refusal,
    group_key,
    n_rows,
    optimizer_name,
    prepare,
    refusal,
    resumed,
    same_but_epochs,
    set_up,
)
from ._shadows import Follower, waits

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._typing import Jobs
    from ..nets._base import BaseTorchNet, FitData

Net = TypeVar("Net", bound="BaseTorchNet")
Fitted: TypeAlias = "list[Net | Exception]"  # each job's fitted estimator, or the error its fit raised
States: TypeAlias = "list[TrainingState | None]"
Starts: TypeAlias = "Sequence[TrainingState | None] | None"


@overload
def train_batched(estimator: Net, jobs: Jobs, X: ArrayLike, y: ArrayLike,
                  sample_weight: ArrayLike | None = ..., *, starts: Starts = ...,
                  keep_states: Literal[False] = ..., verbose: int = ...) -> Fitted[Net]: ...
@overload
def train_batched(estimator: Net, jobs: Jobs, X: ArrayLike, y: ArrayLike,
                  sample_weight: ArrayLike | None = ..., *, starts: Starts = ...,
                  keep_states: Literal[True], verbose: int = ...) -> tuple[Fitted[Net], States]: ...
@overload
def train_batched(estimator: Net, jobs: Jobs, X: ArrayLike, y: ArrayLike,
                  sample_weight: ArrayLike | None = ..., *, starts: Starts = ...,
                  keep_states: bool = ...,
                  verbose: int = ...) -> Fitted[Net] | tuple[Fitted[Net], States]: ...
def train_batched(estimator: Net, jobs: Jobs, X: ArrayLike, y: ArrayLike,
                  sample_weight: ArrayLike | None = None, *, starts: Starts = None,
                  keep_states: bool = False, verbose: int = 0) -> Fitted[Net] | tuple[Fitted[Net], States]:
    """Train many jobs of one sknet net (any torch module) as a few batched models.

    Jobs that differ only in ``max_epochs`` (and whose shorter fits are the start
    of their longer ones: see :func:`~sknet.engine.continuation_refusal`) are
    trained once, to the largest value; the others get its weights at their epoch.

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor, TorchClassifier or TorchRegressor
        The unfitted base estimator.
    jobs : list of (dict, array-like)
        ``(params, train_idx)``: the estimator ``clone(estimator).set_params(**params)``
        fitted on ``X[train_idx], y[train_idx]``. Every job must pass :func:`can_batch`.
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Dense training data of all jobs (for a module other than an MLP, rows of any shape).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets of all jobs.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of all rows in each job's loss, as ``fit(..., sample_weight=...)`` takes them.
    starts : list of TrainingState or None, default=None
        For each job, where an earlier call left the same job trained for fewer
        epochs (its ``keep_states``): training goes on from there, in place,
        instead of from scratch, and computes what a fresh fit would. A state the
        job cannot continue from (other parameters, more epochs, see
        ``continuation_refusal``) is ignored, and so is a state another job
        already goes on from.
    keep_states : bool, default=False
        Also return each job's :class:`~sknet.engine.TrainingState`, for ``starts``.
    verbose : int, default=0
        Above 1, print one line per group as it starts: its models, rows and blocks,
        and what its models share (why two groups did not merge).

    Returns
    -------
    fitted : list
        One entry per job, in order: the fitted estimator, or the exception
        its ``fit`` would have raised: ``FloatingPointError`` when its loss
        diverged, or the ``ValueError`` of data its ``fit`` refuses (a fold with
        one class, a validation split too small).
    states : list of TrainingState or None
        With ``keep_states``: each job's state (None for an error, or a job that
        cannot continue).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.engine import train_batched
    >>> X, y = load_iris(return_X_y=True)
    >>> jobs = [({"lr": lr}, range(0, 150, 2)) for lr in (1e-3, 1e-2)]
    >>> fitted = train_batched(MLPClassifier(max_epochs=5, random_state=0), jobs, X, y)
    >>> [clf.n_iter_ for clf in fitted]
    [5, 5]
    """
    reasons = {}  # a candidate's jobs on its folds share their parameters' values: checked once
    for i, (params, _) in enumerate(jobs):
        # the jobs hold the values:
        key: tuple[object, ...] = tuple((name, id(value)) for name, value in params.items())
        if key not in reasons:
            reasons[key] = refusal(estimator, params, X)
        if reasons[key] is not None:
            raise ValueError(f"Job {i} cannot be trained by the batched engine: {reasons[key]}.")
    fitted: list[Any] = [None] * len(jobs)  # each job's entry is filled in below
    states: States = [None] * len(jobs)
    starts = [None] * len(jobs) if starts is None else list(starts)
    rows = [np.arange(n_rows(X))[train_idx] for _, train_idx in jobs]
    prepared: dict[int, Job] = {}
    waiting: dict[int, Follower] = {}  # followers without nets of their own (see _shadows)
    validated: dict[tuple[Any, ...], FitData] = {}
    taken = set()  # the states a job goes on from: each trains on in place, so for one job only

    def prepare_job(i, fresh=False):
        if starts[i] is not None and not fresh and id(starts[i]) not in taken:
            job = resumed(estimator, jobs[i][0], rows[i], X, y, starts[i], validated, sample_weight)
            if job is not None:
                taken.add(id(starts[i]))
                return job
        return prepare(estimator, jobs[i][0], rows[i], X, y, validated, sample_weight)

    def prepare_or_fail(i):  # whether job i is prepared, now or before (else its error is its result)
        if i not in prepared and fitted[i] is None:
            try:
                prepared[i] = prepare_job(i)
            except (ValueError, TypeError) as exc:  # this job's fit would raise the same: its result
                fitted[i] = exc
        return i in prepared

    epochs = [params.get("max_epochs", estimator.max_epochs) for params, _ in jobs]

    def follower(i):
        return Follower(epochs[i], functools.partial(set_up, estimator, jobs[i][0], rows[i], X, y, validated,
                                                     sample_weight))

    # Jobs that may go on from a state are prepared first: those that do train on their own.
    fresh = [i for i in range(len(jobs))
             if starts[i] is None or prepare_or_fail(i) and prepared[i].shuffle_state is None]
    digests: dict[tuple[Any, ...], object] = {}  # a candidate's jobs share their values: each hashed once
    keys = [(_digest(jobs[i][0], digests), rows[i].tobytes(), epochs[i]) for i in fresh]
    followers = _followers(fresh, keys)
    following = {i for group in followers.values() for i in group}
    for i in fresh:
        if i not in following:
            prepare_or_fail(i)
    followers = _set_up_followers(followers, prepared, prepare_or_fail, follower, waiting)
    following = {i for group in followers.values() for i in group}
    groups: dict[tuple[object, ...], list[int]] = {}
    for i in sorted(prepared):  # in the jobs' order
        job = prepared[i]
        if i in following:
            continue
        key = (group_key(job.spec), job.n_outputs, job.estimator.device_,
               None if _hand_written(job) else tensor_layout(job.estimator.net_.module_))
        groups.setdefault(key, []).append(i)
    tensors = {}  # X moved to each device, in each dtype, once
    for members in groups.values():
        first = prepared[members[0]].estimator
        hand_written = _hand_written(prepared[members[0]])
        where = (first.device_, first.dtype, hand_written)
        if where not in tensors:
            X_all = _engine_input(X, prepared[members[0]].spec.float_dtype, hand_written)
            if not X_all.flags.writeable:  # joblib's read-only memmaps: torch wants memory it may write
                X_all = X_all.copy()
            tensors[where] = torch.as_tensor(X_all, device=first.device_)
        X_tensor = tensors[where]
        n_features = math.prod(X_tensor.shape[1:])  # per row, whatever its shape
        widths = _plan_blocks(members, prepared, n_features) if hand_written else None
        if verbose > 1:
            print(_describe_group(members, prepared, widths, n_features))
        for chunk in _chunks_that_fit(members, prepared, n_features, first.device_, widths):
            # Each batched operation spans all the chunk's models: their work decides the threads.
            work = _chunk_work([prepared[i] for i in chunk], X_tensor,
                               None if widths is None else [widths[i] for i in chunk])
            with fit_threads(work, first.device_), flush_denormals(first.device_):
                results = _train_group(chunk, prepared, X_tensor, prepare_job, followers, keep_states, widths,
                                       waiting)
            for i, (result, state) in results.items():
                fitted[i], states[i] = result, state
    return (fitted, states) if keep_states else fitted


def _followers(fresh, keys):
    """``{leader: [jobs]}``: the ``fresh`` jobs (those not resumed) that may follow another.

    Jobs of the same ``keys`` but their last items (their parameters but ``max_epochs``,
    their rows, then ``max_epochs``) differ only in ``max_epochs``: the others, shortest
    first, follow the one with the most epochs where a shorter fit is the start of a
    longer one (see :func:`_set_up_followers`).
    """
    same = {}
    for i, key in zip(fresh, keys, strict=True):
        same.setdefault(key[:-1], []).append((key[-1], i))
    followers = {}
    for members in same.values():
        *shorter, leader = [i for _, i in sorted(members, key=lambda member: member[0])]  # ties: jobs' order
        if shorter:
            followers[leader] = shorter
    return followers


def _set_up_followers(followers, prepared, prepare_or_fail, follower, waiting):
    """The ``followers`` (``{leader: [jobs]}``) that follow their leader, each job prepared or waiting.

    The longest job that ``prepare_or_fail`` prepares leads; where its shorter fits are
    not the start of its own (:func:`~sknet.engine.continuation_refusal`), each is
    prepared and trains on its own. Where its callbacks let them
    (:func:`~._shadows.waits`), its followers wait in ``waiting``, as the
    :class:`~._shadows.Follower` that ``follower`` gives: no net until they finish.
    The others are prepared (their callbacks run every epoch).
    """
    kept = {}
    for longest, shorter in followers.items():
        order = [*shorter, longest]
        leader = next((i for i in reversed(order) if prepare_or_fail(i)), None)
        shorter = order[:order.index(leader)] if leader is not None else []
        continues = bool(shorter) and continuation_refusal(prepared[leader].estimator) is None
        if continues and waits(prepared[leader]):
            for i in shorter:
                prepared.pop(i, None)  # prepared with a state it could not go on from: not needed
                waiting[i] = follower(i)
            kept[leader] = shorter
            continue
        shorter = [i for i in shorter if prepare_or_fail(i)]
        if continues:
            kept[leader] = shorter
    return kept


def _digest(params, digests):
    """:func:`~._jobs.same_but_epochs` of ``params``, kept in ``digests`` for the same value objects."""
    key = tuple((name, id(value)) for name, value in params.items() if name != "max_epochs")
    if key not in digests:
        digests[key] = same_but_epochs(params)
    return digests[key]


def _engine_input(X, float_dtype, hand_written):
    """``X`` as a numpy array for the engine: an MLP's 2-D floats of ``float_dtype``; for other
    modules rows of any shape, integers (token ids) kept as integers and other values in ``float_dtype``."""
    if hand_written:
        return check_array(X, dtype=float_dtype)
    integer = np.issubdtype(np.asarray(X[:0]).dtype, np.integer)
    return check_array(X, dtype=None if integer else float_dtype, allow_nd=True)


def _hand_written(job):
    """Whether the job's group trains as a :class:`BatchedMLP` (else as a :class:`BatchedModule`)."""
    return _functional.has_hand_written_backward(job.estimator)


def _n_parameters(job):
    return sum(p.numel() for p in job.estimator.net_.module_.parameters())


def _chunk_work(jobs, X, widths=None):
    """Forward multiply-adds of one training step of all the jobs (what their thread count follows).

    Modules other than the MLP share their tensors' layout within a group, so the first is
    counted for all, on one row (a forward under torch's flop counter, and the elements its
    operations write: see :func:`~._costs.module_work`). MLPs count their
    padded ``widths`` (each job's hidden widths; their own when None) and the rows of a step.
    """
    tick = min(job.spec.batch_size for job in jobs)
    rows = [min(tick, len(job.rows)) for job in jobs]
    if not _hand_written(jobs[0]):
        return module_work(jobs[0].estimator.net_.module_, X[jobs[0].rows[:1]]) * sum(rows)
    hidden = [job.spec.hidden_sizes for job in jobs] if widths is None else widths
    return sum(step_work(X.shape[1], h, job.n_outputs, n)
               for job, h, n in zip(jobs, hidden, rows, strict=True))


def _plan_blocks(members, prepared, n_features):
    """Order a group of MLP jobs into blocks, in place; return each job's padded widths (by job).

    Models are padded by the cost model of :func:`~._costs.padded_widths` and sorted by
    depth, padded widths, batch norm and optimizer (a block each), then by activation (a run
    each) and batch size.
    """
    jobs = [prepared[i] for i in members]
    tick = min(job.spec.batch_size for job in jobs)
    padded = padded_widths([job.spec.hidden_sizes for job in jobs], n_features, jobs[0].n_outputs, tick,
                           jobs[0].estimator.device_)
    widths = dict(zip(members, padded, strict=True))
    order = sorted(range(len(members)), key=lambda k: (len(padded[k]), padded[k], jobs[k].spec.batch_norm,
                                                       optimizer_name(jobs[k].spec.optimizer),
                                                       jobs[k].spec.activation, jobs[k].spec.batch_size, k))
    members[:] = [members[k] for k in order]
    return widths


def _describe_group(members, prepared, widths, n_features):
    """One line on a group as it starts: its models, rows, blocks, and what they share."""
    jobs = [prepared[i] for i in members]
    spec = jobs[0].spec
    shared = (f"estimator={spec.estimator.__name__}, loss={spec.loss.__name__}, device={spec.device!r}, "
              f"dtype={spec.dtype!r}")
    if spec.hidden_sizes is None:
        shared += (f", optimizer={spec.optimizer!r}, early_stopping={spec.early_stopping}, "
                   f"lr_schedule={spec.lr_schedule!r}, "
                   f"batch_size={spec.batch_size}, module={spec.module!r}")
        blocks = ""
    else:
        padded = [widths[i] for i in members]
        waste = padding_waste([job.spec.hidden_sizes for job in jobs], padded, n_features, jobs[0].n_outputs)
        sizes = sorted({job.spec.batch_size for job in jobs})
        n_blocks = len({(p, job.spec.batch_norm) for p, job in zip(padded, jobs, strict=True)})
        blocks = (f"; {n_blocks} blocks (depths {sorted({len(p) for p in padded})}, padding adds "
                  f"{waste:.0%} of the products), batch sizes {sizes}, activations "
                  f"{sorted({job.spec.activation for job in jobs})}, schedules "
                  f"{sorted({str(job.spec.lr_schedule) for job in jobs})}, early stopping "
                  f"{sorted({job.spec.early_stopping for job in jobs})}, optimizers "
                  f"{sorted({optimizer_name(job.spec.optimizer) for job in jobs})}")
    rows = sum(len(job.rows) for job in jobs)
    return f"[sknet.engine] group of {len(jobs)} models, {rows} training rows{blocks}; shared: {shared}"


# Share of the free memory a group may plan to use: the rest is headroom for what the
# estimate leaves out (allocator slack, temporaries of the loss and the optimizer).
MEMORY_SHARE = 0.5


def _chunks_that_fit(members, prepared, n_features, device, widths=None):
    """Split a group into consecutive chunks whose estimated training memory fits the device.

    Each model counts for its own padded widths (``widths``, by job; its own when None); a model
    that alone exceeds the budget is a chunk of its own.
    """
    budget = MEMORY_SHARE * _free_memory(device)
    chunks, used = [[]], 0.0
    for i in members:
        size = _estimated_bytes(prepared[i], n_features, None if widths is None else widths[i])
        if chunks[-1] and used + size > budget:
            chunks.append([])
            used = 0.0
        chunks[-1].append(i)
        used += size
    return chunks


def _estimated_bytes(job, n_features, hidden=None):
    """Memory one model of a group needs while it trains, roughly (float32, int64 indices), with its
    hidden layers padded to ``hidden`` (its own widths when None)."""
    spec = job.spec
    if not _hand_written(job):  # parameters, gradients, optimizer state, scratch; activations unknown
        floats = 5 * _n_parameters(job) + 4 * (spec.batch_size + 1) * n_features
        return spec.float_dtype.itemsize * floats + 8 * 8 * len(job.rows)
    hidden = list(spec.hidden_sizes if hidden is None else hidden)
    widths = [n_features, *hidden, job.n_outputs]
    n_params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=False))
    # Parameters, gradients, two optimizer buffers and a scratch copy.
    floats = 5 * n_params
    # One step: the gathered inputs, (z, a, dropout scale, normalised z) per hidden layer,
    # outputs and gradients.
    rows = spec.batch_size + 1
    floats += rows * (n_features + (3 + spec.batch_norm) * sum(hidden) + 3 * job.n_outputs)
    job_rows = len(job.rows)
    if job.valid is not None:  # the validation pass: prediction-sized batches, and all outputs
        n_valid = len(job.valid[0])
        valid_rows = min(n_valid, predict_batch_size(_RowIndices(0), spec.batch_size))
        floats += valid_rows * (n_features + 2 * sum(hidden)) + 2 * n_valid * job.n_outputs
        job_rows += n_valid
    # Row indices, targets, weights, and an epoch's batch layout (indices, mask, targets, coefficients).
    return spec.float_dtype.itemsize * floats + 8 * 8 * job_rows


def _free_memory(device):
    """Bytes free on ``device``: CUDA's own count, or the host's available memory."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX host: do not split
        return float("inf")


def _train_group(members, prepared, X, prepare_again, followers, keep_states, widths=None, waiting=None):
    """Train one group (and the jobs that follow its members); ``{job: (result, state)}``.

    When it runs out of memory anyway, its halves train one after the other.
    Nothing is lost: the jobs of a failed attempt are prepared afresh (new nets,
    empty histories; a resumed job from scratch) before their halves run; the
    followers in ``waiting`` have no net to renew (each attempt builds its own).
    """
    waiting = waiting or {}
    shadows = [followers.get(i, []) for i in members]
    try:
        jobs = [prepared[i] for i in members]
        trainer = GroupTrainer(jobs, X, [[waiting[f] if f in waiting else prepared[f] for f in group]
                                         for group in shadows], keep_states,
                               None if widths is None else [widths[i] for i in members])
        results = trainer.run()
    except OutOfMemoryError:
        if len(members) == 1:
            raise
    else:
        out = {}
        for k, i in enumerate(members):
            out[i] = (results[k], trainer.states.get((k, None)))
            for s, f in enumerate(shadows[k]):
                out[f] = (trainer.shadow_results[k][s], trainer.states.get((k, s)))
        return out
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    for i in members + [f for group in shadows for f in group if f not in waiting]:
        prepared[i] = prepare_again(i, fresh=True)
    half = len(members) // 2
    rest = (prepared, X, prepare_again, followers, keep_states, widths, waiting)
    return {**_train_group(members[:half], *rest), **_train_group(members[half:], *rest)}
