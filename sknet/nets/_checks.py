"""What a fit checks beyond its parameter constraints, and how it explains what it refuses.

The divergence policy (a training loss that became non-finite or exploded), the
words for text where numbers were expected, and the constraint for parameters
that take a class.
"""

from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import HasMethods

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
