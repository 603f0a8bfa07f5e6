"""skorch's bookkeeping of each net's epochs, done from outside its loop as its loop would.

The batched model does the arithmetic; each job's skorch net keeps the records. Each function
stands for steps of skorch's ``NeuralNet.partial_fit``, ``fit_loop`` and ``run_single_epoch``:

- :func:`begin_training`, :func:`begin_epoch`, :func:`end_batch` and :func:`end_training`: the
  notifications of ``partial_fit``, ``fit_loop`` and ``run_single_epoch``; before
  ``on_train_begin``, :func:`_allow_schedule_steps` leaves the mark torch's optimizer leaves
  when it steps (the engine steps for it), so that schedules step without a warning;
- :func:`record_validation`: a validation epoch's batches and scores;
- :func:`_steps_every_batch`: whether a callback acts at ``notify("on_batch_end")`` (a batch
  schedule), so that the loop must notify each batch;
- :func:`_close_epoch`: the end of ``run_single_epoch`` (``history.record_batch`` of each
  batch's ``train_loss`` and ``train_batch_size``, ``history.record("train_batch_count")``),
  the validation epoch, then ``notify("on_epoch_end")`` through :func:`_notify_epoch_end`,
  whose ``PassthroughScoring`` callbacks are fed the losses in hand (:func:`_pass_through`);
- :func:`_plain_callbacks` and :func:`_write_plain_epoch`: for nets whose callbacks are only the
  plain ones (the epoch timer, ``train_loss`` and the divergence check), a whole epoch
  (``on_epoch_begin``, ``run_single_epoch``, ``on_epoch_end``) written at once as one history
  record and the callback states those callbacks leave; :func:`_mean_losses` is their
  ``PassthroughScoring`` arithmetic for all the models of a group at once; :func:`_copy_plain_epochs`
  gives a net with plain callbacks the epochs another such net went through, as if it had followed them.
"""

import math

import numpy as np
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PassthroughScoring

from ..nets._skorch import StopOnDivergence


def begin_training(net):
    """``partial_fit``'s ``notify("on_train_begin")``, once torch's optimizer may step (see
    :func:`_allow_schedule_steps`)."""
    _allow_schedule_steps(net)
    net.notify("on_train_begin", X=None, y=None)


def begin_epoch(net):
    """``fit_loop``'s ``notify("on_epoch_begin")``."""
    net.notify("on_epoch_begin", dataset_train=None, dataset_valid=None)


def end_batch(net):
    """``run_single_epoch``'s new batch record and ``notify("on_batch_end")`` of a training batch
    (for a schedule that steps every batch; the loss is recorded with the epoch)."""
    net.history.new_batch()
    net.notify("on_batch_end", batch=None, training=True)


def record_validation(net, losses, sizes, score):
    """The validation part of ``run_single_epoch``: each batch's ``valid_loss`` and
    ``valid_batch_size``, ``valid_batch_count``, and sknet's ``valid_score``."""
    batches = list.__getitem__(net.history, -1)["batches"]
    batches.extend({"valid_loss": float(loss), "valid_batch_size": size}
                   for loss, size in zip(losses, sizes, strict=False))
    net.history.record("valid_batch_count", len(sizes))
    net.history.record("valid_score", float(score))


def end_training(net):
    """``partial_fit``'s ``notify("on_train_end")`` (early stopping restores its best weights here)."""
    net.notify("on_train_end", X=None, y=None)


def _allow_schedule_steps(net):
    # Each net's own optimizer carries its schedule's learning rate but never steps;
    # tell torch so, or every scheduler warns that it stepped before its optimizer.
    net.optimizer_._opt_called = True


def _steps_every_batch(net):
    return any(getattr(cb, "step_every", None) == "batch" for _, cb in net.callbacks_)


def _close_epoch(net, losses, sizes, extra, record_validation=None, opened=False):
    """Write an epoch's batch losses into ``net``'s history and run its epoch-end callbacks.

    ``extra`` may map "valid_loss" to the arguments of ``record_validation``, which
    writes the validation batches. ``opened``: the epoch's batch records exist (a
    batch schedule opened them step by step). Returns the divergence error, or None.
    """
    batches = list.__getitem__(net.history, -1)["batches"]
    if not opened:
        batches.extend({} for _ in sizes)
    for record, loss, size in zip(batches, losses, sizes, strict=True):
        record.update(train_loss=float(loss), train_batch_size=size)
    net.history.record("train_batch_count", len(sizes))
    batch_losses = {"train_loss": (losses, sizes)}
    if "valid_loss" in extra:
        batch_losses["valid_loss"] = record_validation(*extra["valid_loss"])
    try:
        # The net's own callbacks: the timer, the losses, the divergence check, early
        # stopping, the schedule.
        _notify_epoch_end(net, batch_losses)
    except FloatingPointError as exc:
        return exc
    return None


def _notify_epoch_end(net, batch_losses):
    """``net.notify("on_epoch_end")``, its loss callbacks fed the batch losses in hand.

    ``batch_losses`` maps a ``PassthroughScoring`` callback's name to the epoch's
    batch losses and sizes, which it would otherwise search the history for:
    most of the bookkeeping of a model's epoch.
    """
    net.on_epoch_end(net, dataset_train=None, dataset_valid=None)
    for _, callback in net.callbacks_:
        if type(callback) is PassthroughScoring and callback.name in batch_losses:
            _pass_through(callback, net.history, *batch_losses[callback.name])
        else:
            callback.on_epoch_end(net, dataset_train=None, dataset_valid=None)


def _pass_through(callback, history, losses, sizes):
    """``PassthroughScoring.on_epoch_end``: the batch-size weighted mean loss and whether it is the best."""
    weights = np.asarray(sizes, dtype=np.float64)
    score = np.multiply(losses, weights).sum() / weights.sum()  # np.average's arithmetic, without its checks
    is_best = callback._is_best_score(score)
    if is_best:
        callback.best_score_ = score
    history.record(callback.name, score)
    if is_best is not None:
        history.record(callback.name + "_best", bool(is_best))


def _plain_callbacks(net):
    """``(epoch timer, train_loss scoring, [divergence checks])`` when these, in skorch's order,
    are all the net's callbacks (and the net's own epoch hooks are skorch's); else None."""
    if (type(net).on_epoch_begin is not NeuralNet.on_epoch_begin
            or type(net).on_epoch_end is not NeuralNet.on_epoch_end):
        return None
    callbacks = [callback for _, callback in net.callbacks_]
    if len(callbacks) < 2 or type(callbacks[0]) is not EpochTimer:
        return None
    scoring, checks = callbacks[1], callbacks[2:]
    if (type(scoring) is not PassthroughScoring or scoring.name != "train_loss" or not scoring.on_train
            or scoring.lower_is_better is not True
            or not all(type(check) is StopOnDivergence for check in checks)):
        return None
    return callbacks[0], scoring, checks


def _write_plain_epoch(net, callbacks, batch_losses, size, score, started, ended):
    """An epoch's record and callback states in ``net``, as its plain ``callbacks`` leave them.

    Returns the divergence check's error (it runs only on a non-finite ``score``), or None.
    """
    timer, scoring, checks = callbacks
    timer.epoch_start_time_ = started
    record = {"batches": [{"train_loss": loss, "train_batch_size": n}
                          for loss, n in zip(batch_losses, size, strict=False)],
              "epoch": len(net.history) + 1, "train_batch_count": len(size), "dur": ended - started}
    is_best = score < scoring.best_score_
    if is_best:
        scoring.best_score_ = score
    record.update(train_loss=score, train_loss_best=bool(is_best))
    list.append(net.history, record)
    if not math.isfinite(score):
        try:
            for check in checks:
                check.on_epoch_end(net, dataset_train=None, dataset_valid=None)
        except FloatingPointError as exc:
            return exc
    return None


def _copy_plain_epochs(net, source, source_callbacks):
    """``source``'s epoch records, and its plain ``source_callbacks``' states, in ``net``.

    ``net`` (its callbacks plain too, its training begun, no epoch yet) then holds what
    it would hold had it gone through the same epochs: the records are the same values
    (the batch records copied: each net's history is its own), and so are the epoch
    timer's start and the best loss so far; the divergence checks keep no state.
    """
    timer, scoring, _ = _plain_callbacks(net)
    timer.epoch_start_time_ = source_callbacks[0].epoch_start_time_
    scoring.best_score_ = source_callbacks[1].best_score_
    list.extend(net.history, [{**record, "batches": [dict(batch) for batch in record["batches"]]}
                              for record in source.history])


def _mean_losses(losses, sizes):
    """Each model's batch-size weighted mean of its epoch's batch losses (a float64 array).

    :func:`_pass_through`'s arithmetic, for the models of each batch count at once: numpy sums
    each row of a contiguous array as it sums the row alone.
    """
    scores = np.empty(len(sizes))
    counts = {}
    for k, size in enumerate(sizes):
        counts.setdefault(len(size), []).append(k)
    for n, models in counts.items():
        weights = np.stack([sizes[k] for k in models]).astype(np.float64)
        scores[models] = np.multiply(losses[models, :n], weights).sum(axis=1) / weights.sum(axis=1)
    return scores
