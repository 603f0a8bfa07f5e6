"""Shadows: jobs that follow a model of a group for its first ``max_epochs`` epochs.

Jobs that differ only in ``max_epochs`` train once, as the one with the most epochs (see
:func:`~sknet.engine.continuation_refusal`); the others are its shadows, and each one's
result is that model as it stands at the shadow's last epoch. A shadow whose model's
callbacks are the plain ones (the epoch timer, the loss and the divergence check) waits as
a :class:`Follower`: no net of its own while its model trains, so nothing is written for it
epoch by epoch, and none is ever built for a shadow whose model diverges before its epoch
(it shares that error). Its estimator is set up when it finishes, as its fit would set it
up, then given its model's records, callbacks' states, weights and optimizer state. Any
other shadow is a prepared :class:`~._jobs.Job` whose callbacks (a schedule's) run every
epoch in its own net, as they would in its fit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._bookkeeping import _copy_plain_epochs, _plain_callbacks, begin_training

if TYPE_CHECKING:
    from ..nets._base import BaseTorchNet
    from ._jobs import Job


@dataclass(frozen=True)
class Follower:
    """A shadow without a net: what it takes to build its estimator once it finishes.

    Attributes
    ----------
    max_epochs : int
        The epoch at which it leaves its model.
    build : callable
        Returns its estimator, set up as its own ``fit`` sets it up (as
        :func:`~._jobs.set_up` does), or raises what that setup raises.
    """

    max_epochs: int
    build: Callable[[], BaseTorchNet]


def waits(job: Job) -> bool:
    """Whether the shadows of ``job`` may wait as :class:`Follower`: its callbacks are the plain ones.

    Those write nothing a shadow's net would not get from its model's at the end; other
    callbacks (a schedule) change a net's state as they run, so its shadows keep nets
    that run them every epoch.
    """
    return _plain_callbacks(job.estimator.net_) is not None


class _Shadow:
    """A shadow in a group's trainer, at ``position`` among its model's shadows.

    From a :class:`~._jobs.Job`, it has its net from the start: its model's epoch
    records and callbacks are written into it, and its ``error`` is its own. From a
    :class:`Follower`, ``net`` is None until it finishes (see :meth:`finished`).
    """

    build: Callable[[], BaseTorchNet] | None

    def __init__(self, position: int, follower: Job | Follower):
        self.position, self.error = position, None
        if isinstance(follower, Follower):
            self.max_epochs, self.build = follower.max_epochs, follower.build
            self.estimator, self.net, self.callbacks = None, None, None
        else:
            self.max_epochs, self.build = follower.spec.max_epochs, None
            self.estimator, self.net = follower.estimator, follower.estimator.net_
            self.callbacks = _plain_callbacks(self.net)

    def finished(self, epochs, model_error, net, callbacks):
        """``(estimator, error)`` of the shadow leaving its model, which stands at ``epochs`` epochs
        with ``model_error`` (or None) and whose net and plain callbacks are ``net`` and ``callbacks``.

        A shadow with a net: its own error, or, left as its model stops early, its model's.
        A waiting one went through its model's epochs, up to the model's first error: it
        shares that error, or is built now and given its model's records.
        """
        if self.net is not None:
            return self.estimator, self.error if self.max_epochs <= epochs else self.error or model_error
        if model_error is not None:
            return None, _twin(model_error)
        try:
            estimator = self.build()
        except (ValueError, TypeError) as exc:  # its fit would raise the same: its result
            return None, exc
        begin_training(estimator.net_)
        _copy_plain_epochs(estimator.net_, net, callbacks)
        return estimator, None


def _twin(error):
    """An error of the same type and arguments as ``error``, with its traceback (so that a report of
    it reads the same): each job's result is an object of its own."""
    twin = copy.copy(error).with_traceback(error.__traceback__)
    twin.__cause__, twin.__context__ = error.__cause__, error.__context__
    twin.__suppress_context__ = error.__suppress_context__
    return twin
