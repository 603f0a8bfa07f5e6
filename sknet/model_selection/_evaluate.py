"""The round evaluator: one round of a search's candidates cross-validated, in the open.

A strategy's ``_run_search`` calls the evaluator with a round of candidates,
as it would call scikit-learn's ``evaluate_candidates``, and gets back the same
``cv_results_``. For each (candidate, split) the evaluator

1. serves the result the checkpoint journaled, if any;
2. hands the jobs the batched engine can take to tasks that train them together
   (:func:`sknet.engine.train_batched`) and score them fold by fold (see
   :mod:`._tasks`);
3. runs scikit-learn's own ``_fit_and_score`` for every other job;

all of them under the joblib backend the user chose, ``n_jobs`` tasks at a time;
each result is journaled the moment it exists. The results are formatted by
scikit-learn's ``_format_results``, so ``cv_results_``, ``error_score``,
multi-metric scoring, ``return_train_score``, metadata routing and callbacks
mean what they mean in scikit-learn. Data flows one way: the strategy proposes,
the evaluator dispatches, the engine trains, the estimator knows nothing of any search.
"""

import numbers
import time
import warnings
from collections import defaultdict

import joblib
import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

from .._compat import (
    _check_method_params,
    _insert_error_scores,
    _is_arraylike,
    _num_features,
    _num_samples,
    _routing_enabled,
    _warn_or_raise_about_fit_failures,
)
from .._identity import random_state_from_json, random_state_to_json
from ..engine._jobs import group_key, refusal
from ..nets import training_spec
from ._pruning import finite_median, pruning, stage_score
from ._tasks import (
    Block,
    EngineJob,
    Scoring,
    fit_and_score,
    heap_frozen,
    shares,
    split_fold,
    train_and_score,
    train_in_stages,
)
from ._wrappers import final_net, fit_layers, layers_key

ENGINES = ("auto", "batched", "sequential")
# With a checkpoint, a group is trained in slices of whole candidates, each scored and journaled
# before the next trains: at least MIN_SLICE_JOBS jobs each (fewer models per batched step would
# waste the engine) and at most MAX_SLICES per group.
MIN_SLICE_JOBS = 32
MAX_SLICES = 8
# Sparse training sets up to this size (as dense float32) are densified for the engine, which
# computes what a fit on the sparse rows computes (sknet densifies each batch); larger ones
# stay sparse and their jobs are fitted one by one.
DENSIFY_BYTES = 2**30


class RoundEvaluator:
    """scikit-learn's ``evaluate_candidates`` for one ``fit`` of a search: journal, engine, plain fits.

    Parameters
    ----------
    search : BaseSearchCV
        The search being fitted (its settings: ``n_jobs``, ``error_score``, ``engine``...).
    X, y : array-like
        The data ``fit`` got, made indexable.
    params : dict
        ``fit``'s parameters, checked by scikit-learn.
    routed : Bunch
        Those parameters as scikit-learn routes them (splitter, estimator, scorer).
    scorers : callable or _MultimetricScorer
        The search's scorers.
    open_journal : callable or None
        Opens the checkpoint's journal when first needed; None without a checkpoint.

    Attributes
    ----------
    results : dict
        The ``cv_results_`` of every round so far.
    out : list of dict
        Every (candidate, split) result so far, as ``_fit_and_score`` returns them.
    engine : bool
        Whether the batched engine trains this search's sknet nets.
    engine_time, n_batched : float, int
        Seconds the engine's tasks spent training, and the fits it trained.
    finish_times : list of float
        For each row of ``results``, the seconds from the start of ``fit`` to when that
        candidate's last split was scored.
    """

    def __init__(self, search, X, y, params, routed, scorers, open_journal=None):
        self.search, self.X, self.y, self.params, self.routed = search, X, y, params, routed
        self.scorers = scorers
        self.base = clone(search.estimator)
        # A search that trains in stages (population training) needs its nets' states: with
        # engine="sequential" each net then trains in its own loop, its state kept.
        self.sequential = search.engine == "sequential" and getattr(search, "_trains_in_stages", False)
        self.engine = engine_takes(search, X, params, self.sequential)
        self.sample_weight = params.get(weight_param(search.estimator)) if self.engine else None
        self.parallel = Parallel(n_jobs=search.n_jobs, pre_dispatch=search.pre_dispatch)
        self.candidate_params, self.out, self.more_results = [], [], defaultdict(list)
        self.results = {}
        self.engine_time, self.n_batched = 0.0, 0
        # When fit began: what each candidate's finish time counts from (wall clock: tasks run in
        # other processes, or on other machines of a cluster).
        self.started, self.finish_times = time.time(), []
        max_time = getattr(search, "max_time", None)
        self.deadline = None if max_time is None else self.started + max_time
        self.timed_out = False  # a strategy stopped at the deadline with candidates left
        self._open_journal, self._journal = open_journal, None
        self._rounds, self._next = 0, 0  # rounds so far, and the position of the next candidate
        # A halving search on epochs: the parameter its rungs grow, and the last round's training
        # states, {(candidate but that parameter, split): TrainingState}, for survivors to go on from.
        self.continued = getattr(search, "_continued_param", lambda: None)() if self.engine else None
        self._states = {}
        self.pruning = pruning(search)  # (epochs parameter, checkpoints) or None
        self._partial = defaultdict(list)  # checkpoint -> every partial score seen there

    # -- what a strategy calls ------------------------------------------------------------
    def __call__(self, candidate_params, cv=None, more_results=None, callback_ctx=None, starts=None):
        """Cross-validate one round of candidates; return ``cv_results_`` of all rounds so far.

        ``starts`` (population training) maps ``(candidate, split)`` to the
        :class:`~sknet.engine.TrainingState` that job goes on from.
        """
        search = self.search
        candidates = list(candidate_params)
        n_splits = search.n_splits_
        splits = self._splits(cv)
        if search.verbose > 0:
            print(f"Fitting {n_splits} folds for each of {len(candidates)} candidates, totalling "
                  f"{len(candidates) * n_splits} fits")
        n_fits = len(candidates) * n_splits
        # Made here, not in the workers: a context is changed as it is pickled otherwise.
        contexts = ([callback_ctx.subcontext(task_name="candidate-split-evaluation", task_id=i)
                     for i in range(n_fits)] if callback_ctx is not None else [None] * n_fits)
        journal, first, index = self.journal(), self._next, self._rounds
        # `is None`: an empty Journal is falsy (len 0), and its first round must be recorded too.
        done = set() if journal is None else journal.begin_round(self._rounds, first, candidates,
                                                                  more_results)
        self._rounds, self._next = self._rounds + 1, first + len(candidates)
        if search.verbose > 0 and done:
            print(f"[{type(search).__name__}] {len(done)} of {n_fits} fits of this round come from "
                  f"checkpoint {journal.path}")
        out = [None] * n_fits
        if self.pruning is not None:
            pruning = self._pruned_round(index, candidates, splits, contexts, out, journal, first)
            more_results = {**(more_results or {}), **pruning}
        else:
            for i, split in done:
                out[i * n_splits + split] = self._served(journal, first, i, split, candidates[i],
                                                         splits[split], contexts[i * n_splits + split])
            self._run(candidates, splits, done, contexts, journal, first, out, starts)
        if not out:
            raise ValueError("No fits were performed. Was the CV iterator empty? Were there no candidates?")
        finish_times = self._finish_times(out, n_splits)
        _warn_or_raise_about_fit_failures(out, search.error_score)
        if callable(search.scoring):  # multimetric or not is known once a scorer has run
            _insert_error_scores(out, search.error_score)
        self.candidate_params.extend(candidates)
        self.finish_times.extend(finish_times)
        self.out.extend(out)
        for key, values in (more_results or {}).items():
            self.more_results[key].extend(values)
        self.results = search._format_results(self.candidate_params, n_splits, self.out, self.more_results)
        return self.results

    def out_of_time(self):
        """Whether the search's ``max_time`` has passed: a strategy stops at the end of this round."""
        return self.deadline is not None and time.time() >= self.deadline

    def stop_for_time(self):
        """Whether to stop before the next round (``max_time`` passed); marks the search timed out."""
        self.timed_out = self.timed_out or self.out_of_time()
        return self.timed_out

    def round_size(self):
        """Candidates a round that fills the engine: ``ceil(32 / n_splits)`` models' worth (the
        workers', ``ceil(n_jobs / n_splits)``, for fits it does not take)."""
        models = MIN_SLICE_JOBS if self.engine else effective_n_jobs(self.search.n_jobs)
        return max(1, -(-models // self.search.n_splits_))

    def _finish_times(self, out, n_splits):
        """Each candidate's finish time: seconds from the start of ``fit`` to when its last split was
        scored (or served from the journal). The results' own stamps are taken out of them."""
        stamps = [result.pop("finished_at", None) for result in out]
        now = time.time()
        return [max(now if stamp is None else stamp for stamp in stamps[i:i + n_splits]) - self.started
                for i in range(0, len(stamps), n_splits)]

    def _splits(self, cv=None):
        """The splits of ``cv`` (the search's by default), checked against ``n_splits_``."""
        cv = cv or self.search._checked_cv_orig
        splits = list(cv.split(self.X, self.y, **self.routed.splitter.split))
        if len(splits) != self.search.n_splits_:
            raise ValueError("cv.split and cv.get_n_splits return inconsistent results. Expected "
                             f"{self.search.n_splits_} splits, got {len(splits)}")
        return splits

    def train_round(self, candidates, starts):
        """A stage of population training: ``candidates`` cross-validated, each ``(candidate, split)``
        going on from its state in ``starts`` (or from scratch), nothing journaled.

        Returns ``(out, states)``: the results, and ``{(candidate, split): TrainingState}``.
        """
        splits = self._splits()
        out = [None] * (len(candidates) * len(splits))
        states = self._run(candidates, splits, set(), [None] * len(out), None, 0, out, starts)
        return out, states

    def train_stages(self, candidates, stages, between):
        """Population training: ``candidates`` cross-validated, trained by the engine in this
        process in stages that end at the epochs ``stages`` (then to the end), each group one
        batched model throughout (see :func:`~._tasks.train_in_stages`); nothing journaled.

        Returns ``(states, fit_times, copies)`` (see there), or None where the engine cannot
        take every fit (the strategy then trains each interval as a round).
        """
        if self.sequential:
            return None
        splits = self._splits()
        n_fits = len(candidates) * len(splits)
        jobs, blocks, plain, _ = self._plan(candidates, splits, set(), [None] * n_fits)
        if plain:
            return None
        search = self.search
        scoring = Scoring(self.scorers, search.error_score, search.return_train_score, None, 0, search,
                          verbose=search.verbose, n_splits=len(splits))
        start = time.perf_counter()
        with heap_frozen():
            states, fit_times, copies = train_in_stages(jobs, blocks, scoring, stages, between)
        self.engine_time += time.perf_counter() - start
        self.n_batched += len(jobs) * len(stages)  # the intervals but the last (its round counts it)
        return states, fit_times, copies

    def _run(self, candidates, splits, done, contexts, journal, first, out, starts=None):
        """Train and score the round's fits but ``done`` into ``out``; keep their training states.

        Returns the states, ``{(candidate, split): TrainingState}``. Without ``starts``
        they are also kept for the next round's candidates (halving, pruning) to go on from.
        """
        n_splits = len(splits)
        tasks = self._tasks(candidates, splits, done, contexts, journal, first, starts)
        states, by_job = {}, {}
        for task_result in self.parallel(tasks) if tasks else []:
            for index, result in task_result.results.items():
                out[index] = result
            for index, state in task_result.states.items():
                candidate, split = divmod(index, n_splits)
                by_job[candidate, split] = state
                states[self._continuation_key(candidates[candidate]), split] = state
            self.engine_time += task_result.seconds
            self.n_batched += task_result.n_batched
            if task_result.engine_error is not None:
                warnings.warn(f"The batched engine failed on {len(task_result.results)} fits, which were "
                              f"fitted one by one instead: {task_result.engine_error!r}", UserWarning,
                              stacklevel=3)
        if starts is None:
            self._states = states  # the next round's (or stage's) candidates are among these
        return by_job

    def _pruned_round(self, index, candidates, splits, contexts, out, journal, first):
        """A round with pruning (:meth:`_pruned`), journaled as a whole.

        Its results and its pruning (flags, epochs, partial scores) are journaled when the
        round ends, the pruning last: a journal that has it serves the whole round, and a
        round interrupted before is trained again.
        """
        n_splits = len(splits)
        key = f"pruning of round {index}"
        record = None if journal is None else journal.peek(key)
        if record is None:
            more = self._pruned(candidates, splits, contexts, out)
            if journal is not None:
                for row, result in enumerate(out):
                    journal.put(first + row // n_splits, row % n_splits, candidates[row // n_splits], result)
                journal.state(key, more)
            return {name: value for name, value in more.items() if name != "partial"}
        for row in range(len(out)):
            i, split = divmod(row, n_splits)
            out[row] = self._served(journal, first, i, split, candidates[i], splits[split], contexts[row])
        for checkpoint, scores in record["partial"].items():
            self._partial[int(checkpoint)].extend(scores)
        return {"pruned": record["pruned"], "epochs_trained": record["epochs_trained"]}

    def _pruned(self, candidates, splits, contexts, out):
        """Cross-validate a round with pruning into ``out``; return its ``pruned`` and ``epochs_trained``.

        At each checkpoint below its own ``max_epochs``, a candidate still training is
        scored on every split. If its mean score there is below the median of every finite
        score seen at that checkpoint so far (this search's), or if a fit of that stage failed
        (diverged: each stage ends with the fit's divergence checks), it stops: its result is
        that partial one, marked ``pruned``. The others go on (from where they stopped, where
        the engine can continue them) to the next checkpoint, then to their end. Each
        result's ``fit_time`` is the sum over its stages.
        """
        name, checkpoints = self.pruning
        n_splits, metric = len(splits), self.search._get_scorers()[1]
        estimator = clone(self.base)
        epochs = [int(c.get(name, estimator.get_params()[name])) for c in candidates]
        alive, pruned = list(range(len(candidates))), [False] * len(candidates)
        earlier = np.zeros(len(out))  # fit time of a candidate's stages before its result's
        partial_seen = {}  # checkpoint -> this round's partial scores there (the median's history)
        for checkpoint in checkpoints:
            stage = [i for i in alive if epochs[i] > checkpoint]
            if not stage:
                break
            partial = [None] * (len(stage) * n_splits)
            self._run([{**candidates[i], name: checkpoint} for i in stage], splits, set(),
                      [None] * len(partial), None, 0, partial)
            scores = [stage_score(partial[j * n_splits:(j + 1) * n_splits], metric)
                      for j in range(len(stage))]
            self._partial[checkpoint].extend(scores)
            partial_seen[str(checkpoint)] = [float(score) for score in scores]
            median = finite_median(self._partial[checkpoint])
            for j, i in enumerate(stage):
                results = partial[j * n_splits:(j + 1) * n_splits]
                if np.isfinite(scores[j]) and scores[j] >= median:  # a failed stage stops at once
                    earlier[i * n_splits:(i + 1) * n_splits] += [result["fit_time"] for result in results]
                    continue
                alive.remove(i)
                pruned[i], epochs[i] = True, checkpoint
                out[i * n_splits:(i + 1) * n_splits] = results
                for s, (train, test) in enumerate(splits):
                    _report_task(contexts[i * n_splits + s], self.search,
                            lambda train=train, test=test: split_fold(self.base, self.X, self.y, train, test))
        if alive:
            rest = [None] * (len(alive) * n_splits)
            self._run([candidates[i] for i in alive], splits, set(),
                      [contexts[i * n_splits + s] for i in alive for s in range(n_splits)], None, 0, rest)
            for j, i in enumerate(alive):
                out[i * n_splits:(i + 1) * n_splits] = rest[j * n_splits:(j + 1) * n_splits]
        for row, seconds in enumerate(earlier):
            out[row] = {**out[row], "fit_time": out[row]["fit_time"] + seconds}
        return {"pruned": pruned, "epochs_trained": epochs, "partial": partial_seen}

    def _continuation_key(self, params):
        """What a candidate's training states are found by: its parameters but the one continued."""
        try:
            return joblib.hash({name: value for name, value in params.items() if name != self.continued})
        except Exception:  # parameters that cannot be hashed: this candidate is trained afresh
            return None

    def journal(self):
        """The checkpoint's journal, opened (created or checked) on first need; None without one.

        Opened when the strategy first needs it (its random state or its first
        round), after its own argument checks: a search that fails those leaves
        no checkpoint claiming its arguments behind.
        """
        if self._journal is None and self._open_journal is not None:
            self._journal = self._open_journal(engine=self.engine)
        return self._journal

    def random_state(self, random_state):
        """The strategy's random state: ``random_state`` itself, or the journaled one.

        An int seeds the same sequence every run (and is part of the checkpoint's
        identity). None or a ``RandomState`` would not: with a checkpoint, the
        state they are in when the search first runs is journaled, and every run
        of the search (the first and each resumption) draws from a copy of it.
        """
        journal = None if isinstance(random_state, numbers.Integral) else self.journal()
        if journal is None:
            return random_state
        state = journal.state("random_state", random_state_to_json(check_random_state(random_state)))
        return random_state_from_json(state)

    # -- a round's tasks --------------------------------------------------------------------
    def _tasks(self, candidates, splits, done, contexts, journal, first, starts=None):
        """The round's tasks: engine groups (trained and scored together), then plain fits."""
        search, n_splits = self.search, len(splits)
        fit_kwargs = dict(X=self.X, y=self.y, scorer=self.scorers, fit_params=self.routed.estimator.fit,
                          score_params=self.routed.scorer.score, return_train_score=search.return_train_score,
                          return_n_test_samples=True, return_times=True, return_parameters=False,
                          error_score=search.error_score, verbose=search.verbose, caller=search)
        jobs, blocks, plain, reasons = self._plan(candidates, splits, done, contexts, starts)
        why = "; ".join(sorted(reasons))
        if search.engine == "batched" and plain and self.engine:
            warnings.warn(f"{len(plain)} of {len(candidates) * n_splits - len(done)} fits could not be "
                          f"batched and are fitted one by one: {why or 'see sknet.engine.can_batch'}.",
                          UserWarning, stacklevel=3)
        if search.verbose > 0 and reasons:
            print(f"[{type(search).__name__}] {len(plain)} fits are fitted one by one, not batched: {why}")
        scoring = Scoring(self.scorers, search.error_score, search.return_train_score, journal, first,
                          search, bool(getattr(search, "_skl_callbacks", None)), search.verbose, n_splits)
        fallback = {**fit_kwargs, "splits": splits}
        tasks = []
        for group in self._groups(jobs, blocks, journal is not None):
            used = {job.block: blocks[job.block] for job in group}
            keep = self.continued is not None or starts is not None
            tasks.append(delayed(train_and_score)(group, used, scoring, fallback, keep, self.sequential))
        for i, split in plain:
            index = i * n_splits + split
            train, test = splits[split]
            tasks.append(delayed(fit_and_score)(
                index, i, split, journal, first, estimator=clone(self.base), train=train, test=test,
                parameters=candidates[i], split_progress=(split, n_splits),
                candidate_progress=(i, len(candidates)), callback_ctx=contexts[index], **fit_kwargs))
        return tasks

    def _plan(self, candidates, splits, done, contexts, starts=None):
        """Which jobs the engine trains, on which blocks, and which are fitted as usual.

        Returns ``(jobs, blocks, plain, reasons)``: :class:`EngineJob` records, the
        :class:`Block` list they index, the ``(candidate, split)`` pairs left
        to scikit-learn's ``_fit_and_score``, and the engine's reasons for refusing
        the nets among them (a set).
        """
        pairs = [(i, split) for i in range(len(candidates)) for split in range(len(splits))
                 if (i, split) not in done]
        if not self.engine:
            return [], [], pairs, set()
        jobs, plain, blocks, block_of, folds, verdicts = [], [], [], {}, {}, {}
        estimators = {}
        for i, split in pairs:
            if i not in estimators:
                estimators[i] = clone(self.base).set_params(**clone(candidates[i], safe=False))
            estimator = estimators[i]
            net = final_net(estimator)
            b = None if net is None else self._block(estimator, split, splits, blocks, block_of, folds)
            if b is not None:
                dense = not sp.issparse(blocks[b].X_fit)
                if (i, dense) not in verdicts:
                    verdicts[i, dense] = refusal(net, {}, blocks[b].X_fit)
                if verdicts[i, dense] is not None:
                    b = None
            if b is None:
                plain.append((i, split))
            else:
                index = i * len(splits) + split
                if starts is not None:
                    start = starts.get((i, split))
                else:
                    start = self._states.get((self._continuation_key(candidates[i]), split), None) if (
                        self._states) else None
                jobs.append(EngineJob(index, i, split, candidates[i], estimator, b, contexts[index], start))
        return jobs, blocks, plain, {reason for reason in verdicts.values() if reason is not None}

    def _block(self, estimator, split, splits, blocks, block_of, folds):
        """The :class:`Block` (an index into ``blocks``) a job trains on; None if fitting its layers fails.

        The layers around the net (a pipeline's preprocessing, a target transform)
        are fitted once per fold and setting of theirs.
        """
        if split not in folds:
            train, test = splits[split]
            folds[split] = (*split_fold(self.base, self.X, self.y, train, test),
                            _check_method_params(self.X, {"w": self.sample_weight}, train)["w"],
                            _check_method_params(self.X, self.routed.scorer.score, indices=test),
                            _check_method_params(self.X, self.routed.scorer.score, indices=train))
        X_train, y_train, X_test, y_test, weight, score_params, score_params_train = folds[split]
        key = (split, layers_key(estimator))
        if key not in block_of:
            try:
                X_fit, y_fit, X_predict, layers = fit_layers(estimator, X_train, y_train, X_test)
            except Exception:  # the job's own fit will fail the same way, and say so
                block_of[key] = None
                return None
            blocks.append(Block(X_train, y_train, X_test, y_test, _dense(X_fit), y_fit, _dense(X_predict),
                                weight, layers, score_params, score_params_train))
            block_of[key] = len(blocks) - 1
        return block_of[key]

    def _groups(self, jobs, blocks, in_slices):
        """The engine's tasks: jobs of one input width and ``group_key``, shared out over the workers.

        With a checkpoint, the round is first cut into slices of whole candidates,
        each trained, scored and journaled before the next. Where several tasks can
        run at once (``n_jobs``, a Dask cluster's cores), a group is shared out into
        that many tasks of about equal arithmetic.
        """
        n_workers = effective_n_jobs(self.search.n_jobs) if jobs else 1
        if self.sequential:  # each job in its own loop: a task each
            return [[job] for job in jobs]
        tasks = []
        for part in _slices(jobs) if in_slices else [jobs]:
            groups = {}
            for job in part:
                n_features = _num_features(blocks[job.block].X_fit)
                key = (n_features, group_key(training_spec(final_net(job.estimator))))
                groups.setdefault(key, []).append(job)
            for (n_features, _), group in groups.items():
                tasks += shares(group, n_workers, n_features)
        return tasks

    def _served(self, journal, first, i, split, params, fold, context):
        """A journaled result; its task still begins and ends for scikit-learn's callbacks."""
        train, test = fold
        _report_task(context, self.search, lambda: split_fold(self.base, self.X, self.y, train, test))
        # Finished, for this fit, when it is served: the stamp of the run that scored it means nothing here.
        return {**journal.get(first + i, split, params), "finished_at": time.time()}


def _report_task(context, search, fold):
    """A (candidate, split) task begins and ends for scikit-learn's callbacks (if any): one whose
    result comes from elsewhere (the journal, a pruned stage). ``fold()`` gives its rows."""
    if context is not None:
        data = {"X": lambda: fold()[0], "y": lambda: fold()[1]}
        context.call_on_fit_task_begin(estimator=search, **data)
        context.call_on_fit_task_end(estimator=search, **data)


def engine_takes(search, X, params, sequential=False):
    """Whether the batched engine trains the sknet nets of this fit of ``search``.

    Not for ``engine="sequential"`` (unless ``sequential``: the engine's path then
    trains each net in its own loop, see :func:`~sknet.engine.train_sequential`),
    estimators other than an sknet net or a pipeline ending in one, a pipeline under
    scikit-learn callbacks (they follow each step's fit), and fit parameters other than
    ``groups`` and the net's sample weights (one per row), which would change what a job computes.
    """
    if (search.engine == "sequential" and not sequential) or final_net(search.estimator) is None:
        return False
    if isinstance(search.estimator, Pipeline) and getattr(search, "_skl_callbacks", None):
        return False
    taken = {"groups"}
    weight = weight_param(search.estimator)
    if not _routing_enabled() and _is_arraylike(params.get(weight)) and (
            _num_samples(params[weight]) == _num_samples(X)):
        taken.add(weight)
    unsupported = sorted(set(params) - taken)
    if unsupported and search.engine == "batched":
        warnings.warn(f"The batched engine does not take fit parameters {unsupported}; "
                      "fitting one by one.", UserWarning, stacklevel=4)
    return not unsupported


def weight_param(estimator):
    """The name under which a search's ``fit`` passes sample weights on to the net of ``estimator``."""
    if isinstance(estimator, Pipeline):
        return f"{estimator.steps[-1][0]}__sample_weight"
    return "sample_weight"


def _dense(X):
    """Data as the engine takes it: dense (lists and DataFrames as they are), unless sparse and large."""
    if not sp.issparse(X):
        return X
    return X.toarray() if 4 * X.shape[0] * X.shape[1] <= DENSIFY_BYTES else X


def _slices(jobs):
    """Jobs cut into runs of whole candidates (see MIN_SLICE_JOBS, MAX_SLICES)."""
    if not jobs:
        return []
    candidates = sorted({job.candidate for job in jobs})
    n_slices = max(1, min(MAX_SLICES, len(jobs) // MIN_SLICE_JOBS, len(candidates)))
    bounds = np.linspace(0, len(candidates), n_slices + 1).round().astype(int)
    position = {candidate: k for k, candidate in enumerate(candidates)}
    which = np.searchsorted(bounds, [position[job.candidate] for job in jobs], side="right") - 1
    return [part for part in ([job for job, s in zip(jobs, which, strict=True) if s == k]
                              for k in range(n_slices)) if part]
