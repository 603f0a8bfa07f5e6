"""Training in stages: jobs trained to an epoch, paused, and trained on, each group one batched model.

Population training pauses its members at the end of each interval to rank them; the
worst then take over the training of the best. :class:`StagedTraining` keeps every
group's :class:`~._group.GroupTrainer` from the first epoch to the last: a pause
hands out each job's estimator as a fit stopped there would leave it (for the caller
to score), and a take-over is an index copy inside the group (weights, optimizer
state, generators) where the job's model can hold the other's. Only where it cannot
(other widths, another group) does a copy of the other's state leave: the group of its
key is stacked again with it at the next stage, its models going on from their states.
"""

from __future__ import annotations

import numpy as np
import torch

from ..nets import refresh_training_params
from ..parallel import fit_threads, flush_denormals
from ._exploit import copy_estimator, copy_state
from ._functional import tensor_layout
from ._group import GroupTrainer
from ._jobs import group_key, n_rows, prepare, refusal, resumed
from ._train import _chunk_work, _chunks_that_fit, _engine_input, _hand_written, _plan_blocks


class StagedTraining:
    """Jobs of one sknet net trained by the engine in stages, between which a job may take over
    another's training.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        The unfitted base estimator.
    jobs : list of (dict, array-like)
        ``(params, train_idx)``, as :func:`~sknet.engine.train_batched` takes them.
    X, y : array-like
        Training data of all jobs.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of all rows in each job's loss.

    Attributes
    ----------
    states : dict
        ``{job: TrainingState}`` of the jobs that finished training.
    n_in_place, n_restacked : int
        Take-overs done inside a group, and those that left theirs for a group stacked again.
    """

    def __init__(self, estimator, jobs, X, y, sample_weight=None):
        for i, (params, _) in enumerate(jobs):
            reason = refusal(estimator, params, X)
            if reason is not None:
                raise ValueError(f"Job {i} cannot be trained by the batched engine: {reason}.")
        self.estimator, self.X, self.y, self.sample_weight = estimator, X, y, sample_weight
        self.params = [params for params, _ in jobs]
        self.rows = [np.arange(n_rows(X))[train_idx] for _, train_idx in jobs]
        self.results = [None] * len(jobs)  # a job's fitted estimator or error, once it left the engine
        self.states = {}
        self.trainers = []  # (GroupTrainer, the jobs it started with, its work per step)
        self.pending = dict.fromkeys(range(len(jobs)))  # jobs to start at the next stage: {job: start}
        self.validated, self.tensors = {}, {}
        self.leaving = set()  # jobs whose models leave their group at the next stage (one re-index per group)
        self.n_in_place = self.n_restacked = 0

    def advance(self, epoch=None):
        """Train every job on to ``epoch`` (to its ``max_epochs`` when None, or sooner).

        Returns each job's estimator as a fit stopped there leaves it (for scoring; it
        trains on at the next call), or the error its fit raised: a job that failed
        has left the engine, to take over another's training or to start afresh.
        """
        self._start_pending()
        training = []
        for trainer, ids, work in self.trainers:
            device = trainer.jobs[0].estimator.device_
            with fit_threads(work, device), flush_denormals(device):
                finished = trainer.run(until=epoch) is not None
            for position, result in enumerate(trainer.results):
                if result is not None:
                    self.results[ids[position]] = result
            self.states.update({ids[position]: state for (position, _), state in trainer.states.items()})
            if not finished:
                training.append((trainer, ids, work))
        self.trainers = training
        now = list(self.results)
        for trainer, ids, _ in self.trainers:
            for k in reversed(range(len(trainer.jobs))):
                i = ids[trainer.index[k]]
                now[i] = trainer.snapshot(k)
                if isinstance(now[i], BaseException):
                    self.results[i] = now[i]
                    self._drop(trainer, k)
        return now

    def take_over(self, dst, src, params):
        """Job ``dst`` goes on from where job ``src`` is now, with ``params`` (its parameters:
        src's but for those the engine changes between epochs), on src's rows.

        Returns whether it did inside src's group; else a copy of src's state joins the group of
        its key at the next stage, which is stacked again.
        """
        source, k_src = self._where(src)
        self.params[dst], self.rows[dst], self.results[dst] = params, self.rows[src], None
        target, k_dst = self._where(dst)
        if target is source and source.can_take_over(k_dst, k_src, params.get("dropout", 0)):
            estimator = copy_estimator(source.jobs[k_src].estimator).set_params(**params)
            refresh_training_params(estimator)
            source.take_over(k_dst, k_src, estimator)
            self.n_in_place += 1
            return True
        state = copy_state(source.state_now(k_src))
        state.estimator.set_params(**params)
        if target is not None:
            self._drop(target, k_dst)
        self.pending[dst] = state
        self.n_restacked += 1
        return False

    def restart(self, i, params, train_idx):
        """Job ``i`` starts afresh at the next stage, as ``(params, train_idx)``."""
        trainer, k = self._where(i)
        if trainer is not None:
            self._drop(trainer, k)
        self.params[i], self.rows[i] = params, np.arange(n_rows(self.X))[train_idx]
        self.results[i], self.pending[i] = None, None

    def _drop(self, trainer, k):
        """Model ``k`` of ``trainer`` leaves it unfinished, at the next stage."""
        _, ids, _ = next(entry for entry in self.trainers if entry[0] is trainer)
        self.leaving.add(ids[trainer.index[k]])

    def _leave(self):
        """The models that left their groups go: one re-index per group; a group left empty ends."""
        kept = []
        for trainer, ids, work in self.trainers:
            gone = [k for k in range(len(trainer.jobs)) if ids[trainer.index[k]] in self.leaving]
            if len(gone) < len(trainer.jobs):
                if gone:
                    trainer.drop(gone)
                kept.append((trainer, ids, work))
        self.trainers, self.leaving = kept, set()

    def _where(self, i):
        """The trainer of job ``i`` and its position there; ``(None, None)`` where none has it."""
        if i in self.leaving:
            return None, None
        for trainer, ids, _ in self.trainers:
            if i in ids:
                k = trainer.position(ids.index(i))
                if k is not None:
                    return trainer, k
        return None, None

    def _start_pending(self):
        """Groups for the pending jobs: each starts, or goes on from its state, in one."""
        prepared = {}
        for i, start in sorted(self.pending.items()):
            args = (self.estimator, self.params[i], self.rows[i], self.X, self.y)
            try:
                job = None if start is None else resumed(*args, start, self.validated, self.sample_weight)
                prepared[i] = job or prepare(*args, self.validated, self.sample_weight)
            except (ValueError, TypeError) as exc:  # this job's fit would raise the same: its result
                self.results[i] = exc
        self.pending = {}
        # A group that newcomers would join is stacked again with them, its models going on
        # from their states: one group per key, not a new small one at every exploit.
        keys = {_key(job) for job in prepared.values()}
        for trainer, ids, _ in [entry for entry in self.trainers if _key(entry[0].jobs[0]) in keys]:
            for k in range(len(trainer.jobs)):
                i = ids[trainer.index[k]]
                if i in self.leaving:
                    continue
                prepared[i] = resumed(self.estimator, self.params[i], self.rows[i], self.X, self.y,
                                      trainer.state_now(k), self.validated, self.sample_weight)
            self.trainers = [entry for entry in self.trainers if entry[0] is not trainer]
        self._leave()
        groups = {}
        for i in sorted(prepared):
            groups.setdefault(_key(prepared[i]), []).append(i)
        for members in groups.values():
            first = prepared[members[0]]
            hand_written = _hand_written(first)
            where = (first.estimator.device_, first.estimator.dtype, hand_written)
            if where not in self.tensors:
                X_all = _engine_input(self.X, first.spec.float_dtype, hand_written)
                if not X_all.flags.writeable:  # joblib's read-only memmaps: torch wants memory it may write
                    X_all = X_all.copy()
                self.tensors[where] = torch.as_tensor(X_all, device=first.estimator.device_)
            X_tensor = self.tensors[where]
            n_features = int(np.prod(X_tensor.shape[1:]))
            widths = _plan_blocks(members, prepared, n_features) if hand_written else None
            for chunk in _chunks_that_fit(members, prepared, n_features, first.estimator.device_, widths):
                padded = None if widths is None else [widths[i] for i in chunk]
                jobs = [prepared[i] for i in chunk]
                trainer = GroupTrainer(jobs, X_tensor, keep_states=True, widths=padded)
                self.trainers.append((trainer, chunk, _chunk_work(jobs, X_tensor, padded)))


def _key(job):
    """What models must share to train in one group here: a group's, and their epochs so far
    (only models at one epoch pause together)."""
    return (group_key(job.spec), job.n_outputs, job.estimator.device_,
            None if _hand_written(job) else tensor_layout(job.estimator.net_.module_),
            len(job.estimator.net_.history))
