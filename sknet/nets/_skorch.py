"""The skorch net inside every sknet estimator, and the callbacks sknet adds to it."""

import contextvars
import math
from contextlib import contextmanager

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping

from ._checks import divergence_hint
from ._data import DeviceBatches, InMemoryDataset, predict_batch_size
from ._seeding import generator_state

# The Generators of the training loop running in this thread's ``tracking`` block, if any: a
# context variable, not an attribute, so that nothing of it stays on (or pickles with) the net.
_TRACKED = contextvars.ContextVar("sknet_tracked_generators", default=None)


class Generators:
    """Where a training loop's shuffles start (``shuffle_state``, None: the net's seed), and, after
    its :func:`tracking` block, where its shuffle and torch's global (dropout) generators ended."""

    def __init__(self, shuffle_state=None):
        self.shuffle_state = shuffle_state
        self.dropout_state = None
        self._batches = None

    def started(self, batches):
        """The training batches of the loop: they shuffle from the start state (if any) on."""
        if self.shuffle_state is not None:
            batches.generator.set_state(self.shuffle_state)
        self._batches = batches

    def close(self):
        """Read where the shuffles ended, and let go of the batches (and the data they hold)."""
        if self._batches is not None:
            self.shuffle_state = self._batches.generator.get_state()
        self._batches = None


@contextmanager
def tracking(shuffle_state=None):
    """Track the training loop run in the block (one ``train_epochs``): yield its :class:`Generators`."""
    generators = Generators(shuffle_state)
    token = _TRACKED.set(generators)
    try:
        yield generators
    finally:
        _TRACKED.reset(token)
        generators.close()


class SkorchNet(NeuralNet):
    """The skorch net inside an sknet estimator.

    It differs from a plain :class:`skorch.NeuralNet` in four ways: batches are
    sliced from tensors already on the device, the loss is weighted per sample
    and carries an L1 penalty, shuffling is seeded, and ``train_epochs`` lets a
    user's ``KeyboardInterrupt`` through (skorch's ``partial_fit`` swallows it,
    which would leave a search running after the user asked it to stop).
    """

    def __init__(self, *args, l1=0.0, shuffle_seed=None, module_dtype=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.l1 = l1
        self.shuffle_seed = shuffle_seed
        self.module_dtype = module_dtype

    def initialize_module(self):
        super().initialize_module()
        if self.module_dtype is not None:  # a user's module may not take a dtype: cast its floats
            self.module_.to(self.module_dtype)
        return self

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, InMemoryDataset):
            return super().get_iterator(dataset, training=training)
        if training:
            batches = DeviceBatches(dataset, self.batch_size, shuffle=True, seed=self.shuffle_seed)
            if _TRACKED.get() is not None:  # created once per fit_loop: each epoch draws the next order
                _TRACKED.get().started(batches)
            return batches
        return DeviceBatches(dataset, predict_batch_size(dataset, self.batch_size))

    def infer(self, x, **fit_params):
        out = super().infer(x, **fit_params)
        # A single regression target returned flat, (n,) (``.squeeze(-1)``), is the column (n, 1)
        # the targets are: left flat, the loss would broadcast it against them to (n, n).
        # fit has checked that only a module of one output returns so (check_outputs).
        return out.reshape(-1, 1) if torch.is_tensor(out) and out.dim() < 2 else out

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking the module tree each
        # time is a measurable share of a small MLP's step, so skip no-ops.
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y, weight = y_true if isinstance(y_true, tuple) else (y_true, None)
        # torch's fused mean reduction is ~20% faster than reducing per-sample
        # losses ourselves, so only ask for those when samples are weighted.
        self.criterion_.reduction = "mean" if weight is None else "none"
        if weight is None:
            loss = self.criterion_(y_pred, y)
        else:
            losses = self.criterion_(y_pred, y)
            if losses.ndim > 1:  # several regression outputs: average them per sample
                losses = losses.mean(dim=1)
            loss = (losses * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)
        if training and self.l1:
            loss = loss + self.l1 * sum(w.abs().sum() for w in penalized_weights(self.module_))
        return loss

    def train_epochs(self, dataset, epochs, *, begin=True):
        """Run ``epochs`` epochs on ``dataset`` from the current state.

        ``begin=False`` goes on with a training begun before (its callbacks' states, a
        schedule's included, carry on), as the batched engine continues a net.
        """
        if begin:
            self.notify("on_train_begin", X=dataset, y=None)
        try:
            self.fit_loop(dataset, epochs=epochs)
        except KeyboardInterrupt:
            # skorch's EarlyStopping stops training by raising KeyboardInterrupt;
            # anything else is the user's Ctrl-C and must reach them.
            if not self.early_stopped():
                raise
        if _TRACKED.get() is not None:  # where the dropout draws left the generator (in a seeded block)
            _TRACKED.get().dropout_state = generator_state(self.device)
        self.notify("on_train_end", X=dataset, y=None)
        return self


    def early_stopped(self):
        """Whether training stopped early: skorch's early stopping, or a scikit-learn callback's request."""
        return any(getattr(cb, "stop_requested_", False)
                   or (isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience)
                   for _, cb in self.callbacks_)


def penalized_weights(module):
    """The weights L1 penalises: ``module.penalized_weights()``, else every parameter of 2+ dimensions.

    Parameters of one dimension are biases and normalisation scales, which a
    penalty would only pull towards an arbitrary point.
    """
    if hasattr(module, "penalized_weights"):
        return module.penalized_weights()
    return [p for p in module.parameters() if p.ndim >= 2]


class StopOnDivergence(Callback):
    """Raise as soon as an epoch's training loss is NaN or infinite."""

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"Training diverged: the training loss is {loss} at epoch {len(net.history)}. "
                + divergence_hint(net.lr)
            )


class ValidationScore(Callback):
    """Record ``valid_score`` (accuracy or R^2, higher is better) each epoch."""

    def __init__(self, score):
        self.score = score

    def on_epoch_begin(self, net, **kwargs):
        self.y_true_, self.y_pred_ = [], []

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        if not training:
            y = batch[1][0] if isinstance(batch[1], tuple) else batch[1]
            self.y_true_.append(y)
            self.y_pred_.append(y_pred)

    def on_epoch_end(self, net, **kwargs):
        if self.y_true_:
            score = self.score(torch.cat(self.y_true_), torch.cat(self.y_pred_))
            net.history.record("valid_score", float(score))


class EpochTasks(Callback):
    """Report each epoch to scikit-learn callbacks as a subtask of the fit task.

    This is what lets ``sklearn.callback.ProgressBar`` on a search show the
    epochs of each candidate's fit. A callback that asks to stop (its
    ``on_fit_task_end`` returns True) ends training after that epoch.
    """

    def __init__(self, estimator, context):
        self.estimator = estimator
        self.context = context
        self.stop_requested_ = False

    def on_epoch_begin(self, net, **kwargs):
        self.epoch_context_ = self.context.subcontext(task_name="epoch")
        self.epoch_context_.call_on_fit_task_begin(estimator=self.estimator)

    def on_epoch_end(self, net, **kwargs):
        if self.epoch_context_.call_on_fit_task_end(estimator=self.estimator):
            self.stop_requested_ = True
            raise KeyboardInterrupt  # skorch's way to end fit_loop; train_epochs knows it is ours


def silent(*args, **kwargs):
    """Sink for skorch messages we do not want printed."""
