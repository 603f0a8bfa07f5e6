"""What a fit checks beyond its parameter constraints, and how it explains what it refuses.

The shape of a module's outputs (:class:`TrainingChecks`, before training), the
divergence policy (a training loss that became non-finite or exploded, after), the
words for text where numbers were expected, and the constraint for parameters that
take a class.
"""

from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import HasMethods

from ._data import InMemoryDataset
from ._module import MLPModule

# A fit whose training loss ends this many times above the untrained network's has diverged
# even when the loss stayed finite: lr=1e6 on iris ends near 5e5 from 1.1, a useless model.
# Healthy training ends below where it began; three orders of magnitude leave room for noise.
DIVERGENCE_FACTOR = 1000.0


# The untrained network's loss is averaged over the first epoch's leading batches up to this
# many rows, so that a first batch of one lucky sample (batch_size=1) does not set it.
_INITIAL_LOSS_ROWS = 32


def initial_loss(history):
    """The untrained network's training loss: the first epoch's leading batches, at least 32 rows."""
    total = rows = 0.0
    for batch in history[0, "batches"]:
        if "train_loss" not in batch:  # a validation batch (early stopping)
            continue
        total += batch["train_loss"] * batch["train_batch_size"]
        rows += batch["train_batch_size"]
        if rows >= _INITIAL_LOSS_ROWS:
            break
    return total / rows


def divergence_hint(lr):
    return f"Try a smaller lr (now {lr}), scaled inputs, or gradient-friendlier settings."


@contextmanager
def explain_text(estimator, X, y="no_validation"):
    """Within the block, a failed string-to-float conversion says whether X or y holds text."""
    try:
        yield
    except ValueError as exc:
        if "could not convert string to float" not in str(exc):
            raise
        name = type(estimator).__name__
        columns = _text_columns(X)
        if columns or not _is_text(y):
            where = f"column(s) {columns} of X hold" if columns else "X holds"
            raise ValueError(
                f"{name} needs numeric features, but {where} text ({exc}). Encode text and "
                "categorical columns first, e.g. with OneHotEncoder or OrdinalEncoder in a "
                "ColumnTransformer."
            ) from exc
        raise ValueError(
            f"{name} needs numeric targets, but y holds text ({exc}). Class labels are for "
            "MLPClassifier."
        ) from exc


def _is_text(y):
    """Whether targets ``y`` (not "no_validation") fail to convert to numbers."""
    if isinstance(y, str):
        return False
    try:
        np.asarray(y, dtype=np.float64)
    except (ValueError, TypeError):
        return True
    return False


def _text_columns(X):
    """Names (DataFrame) or indices (array) of the columns of X that do not convert to numbers."""
    if sp.issparse(X):
        return []
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # a DataFrame, without importing pandas
        columns = [(name, X.iloc[:, j]) for j, name in enumerate(X.columns)]
    else:
        array = np.asarray(X, dtype=object)
        if array.ndim != 2:
            return []
        columns = [(j, array[:, j]) for j in range(array.shape[1])]
    bad = []
    for name, column in columns:
        try:
            np.asarray(column, dtype=np.float64)
        except (ValueError, TypeError):
            bad.append(name.item() if isinstance(name, np.generic) else name)
    return bad


class SubclassOf(HasMethods):
    """Parameter constraint: a subclass (the class, not an instance) of ``base``, named in words.

    scikit-learn's ``type`` constraint would accept any class and describe itself
    as "an instance of 'type'".
    """

    def __init__(self, base, words):
        super().__init__([])
        self.base, self.words = base, words

    def is_satisfied_by(self, val):
        return isinstance(val, type) and issubclass(val, self.base)

    def __str__(self):
        return self.words


class TrainingChecks:
    """The checks of :class:`~sknet.nets._base.BaseTorchNet`'s fit: its module's outputs before
    training, divergence after; not for direct use."""

    def _check_outputs(self, X, train, n_outputs):
        """Refuse a module whose outputs for a batch of ``X[train]`` are not ``(n_rows, n_outputs)``.

        Run at fit on the first two training rows (three for two outputs, so that outputs
        transposed to ``(n_outputs, n_rows)`` cannot pass), before any training: a wrong
        shape would otherwise train silently on a broadcast loss, or fail later with torch's
        words. A single target may come flat, ``(n_rows,)`` (see :meth:`SkorchNet.infer`).
        """
        rows = train[:3 if n_outputs == 2 else 2]
        module = self.net_.module_
        if type(module) is MLPModule:  # sknet's own: its output layer's width is its outputs'
            shape, kind = (len(rows), module.output.out_features), "tensor"
        else:
            shape, kind = _output_shape(module, X, rows, self.device_, self._float_dtype())
        expected = (len(rows), n_outputs)
        flat = n_outputs == 1 and self._takes_flat_outputs()
        flat_shapes = [(len(rows),)] + [()] * (len(rows) == 1)  # (n,), or a scalar for one row
        if kind == "tensor" and (shape == expected or (flat and shape in flat_shapes)):
            return
        got = f"outputs of shape {shape}" if kind == "tensor" else f"a {kind}"
        flat = f" (or {expected[:1]})" if flat else ""
        raise ValueError(
            f"{type(self).__name__}'s module {type(module).__name__} returns {got} for a batch of "
            f"{len(rows)} row{'s' * (len(rows) > 1)}, but a tensor of shape {expected}{flat} is expected: "
            f"{self._outputs_meaning(n_outputs)}.{self._n_outputs_hint(n_outputs)}"
        )

    def _n_outputs_hint(self, n_outputs):
        """What the module's ``n_outputs`` argument has to do with a wrong output shape."""
        built = self.net_.get_params_for("module").get("n_outputs")
        if built is None:
            return (f" sknet fills in n_outputs={n_outputs} when the module's constructor takes an "
                    "n_outputs argument.")
        if built != n_outputs:
            return (f" It was built with n_outputs={built}, set as module__n_outputs; leave that unset "
                    f"for sknet to fill in {n_outputs}.")
        return f" It was built with n_outputs={n_outputs}: look at what its forward returns."

    def _check_weights_finite(self):
        """Raise ``FloatingPointError`` when training left NaN or infinite weights.

        The loss of an epoch is measured before its last steps, so a run can
        end with a finite loss curve but broken weights (scikit-learn's MLP
        checks its weights after training for the same reason).
        """
        params = list(self.net_.module_.parameters())
        if params and not torch.stack([torch.isfinite(p).all() for p in params]).all():
            raise FloatingPointError(
                f"Training diverged: the network's weights are NaN or infinite after epoch "
                f"{len(self.net_.history)}. " + divergence_hint(self.lr)
            )

    def _check_loss_growth(self):
        """Raise ``FloatingPointError`` when training ended far above the untrained network's loss.

        The loss compared is that of the epoch whose weights the model keeps (the
        best one under early stopping). See ``DIVERGENCE_FACTOR``.
        """
        history = self.net_.history
        final, start = history[self._kept_epoch() - 1, "train_loss"], initial_loss(history)
        if final > DIVERGENCE_FACTOR * start:
            raise FloatingPointError(
                f"Training diverged: the training loss is {final:.3g} after epoch {self._kept_epoch()}, "
                f"over {DIVERGENCE_FACTOR:.0f} times the untrained network's {start:.3g}. "
                + divergence_hint(self.lr)
            )

    def _kept_epoch(self):
        """The epoch (from 1) whose weights training leaves: the last, or the best under early stopping."""
        history = self.net_.history
        if self.early_stopping:
            return int(np.argmin(history[:, "valid_loss"])) + 1
        return len(history)


def _output_shape(module, X, rows, device, dtype):
    """The shape of ``module``'s output for ``X[rows]`` as training gets them, and ``"tensor"``; or
    ``(None, the type's name)`` for an output that is not a tensor.

    The module runs in evaluation mode (batch statistics are not updated, dropout is off),
    without gradients.
    """
    batch, _ = InMemoryDataset(X[rows], device=device, dtype=dtype).batch(np.arange(len(rows)))
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(**batch) if isinstance(batch, dict) else module(batch)
    finally:
        module.train(training)
    return (tuple(out.shape), "tensor") if torch.is_tensor(out) else (None, type(out).__name__)
