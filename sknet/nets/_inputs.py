"""How an sknet estimator validates ``X`` and ``y``: arrays of any rank, sparse tables, dicts of arrays.

:class:`InputsMixin` holds what ``fit``, ``partial_fit`` and ``predict`` share: scikit-learn's
``validate_data`` (an MLP's 2-D table; other modules' arrays of any rank, integer token ids kept
as integers), the sample shape ``fit`` saw and its check at ``predict``, and a dict of arrays
for a module of several inputs.
"""

from contextlib import contextmanager, nullcontext

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import _check_y, validate_data
from skorch.helper import SliceDict

from ._checks import explain_text
from ._data import is_dict_of_arrays


class InputsMixin:
    """Validation of the inputs of :class:`~sknet.nets._base.BaseTorchNet`; not for direct use."""

    def _X_options(self):
        """How ``validate_data`` checks X: any rank, and integer inputs (token ids) stay integer."""
        return dict(accept_sparse="csr", allow_nd=True, dtype=[self._float_dtype(), np.int64, np.int32])

    def _check_input_shape(self, X, reset):
        """Remember (``reset``) or check the shape of a sample: ``X.shape[1:]``, each array's for a dict X."""
        shape = _sample_shape(X)
        if reset:
            self._input_shape = shape
            return
        name, fitted = type(self).__name__, self._input_shape
        if isinstance(shape, dict) != isinstance(fitted, dict):
            got, was = (("a dict of arrays", "an array") if isinstance(shape, dict)
                        else ("an array", "a dict of arrays"))
            raise ValueError(f"X is {got}, but {name} was fitted on {was}"
                             + (f" with keys {sorted(fitted)}." if isinstance(fitted, dict) else "."))
        if isinstance(shape, dict):
            self._check_dict_shapes(shape)
        elif shape != fitted:
            raise ValueError(f"X has samples of shape {shape}, but {name} was fitted on samples of "
                             f"shape {fitted}.")

    def _check_dict_shapes(self, shape):
        """Check the keys and sample shapes of a dict X (``shape``, by key) against those fit saw."""
        name, fitted = type(self).__name__, self._input_shape
        if set(shape) != set(fitted):
            raise ValueError(f"X has keys {sorted(shape)}, but {name} was fitted on keys {sorted(fitted)} "
                             f"(missing: {sorted(set(fitted) - set(shape))}, unexpected: "
                             f"{sorted(set(shape) - set(fitted))}).")
        for key in fitted:
            if shape[key] != fitted[key]:
                raise ValueError(f"X[{key!r}] has samples of shape {shape[key]}, but {name} was fitted "
                                 f"on samples of shape {fitted[key]} there.")

    def _takes_dict(self):
        """Whether X may be a dict of arrays, passed to ``forward`` as keyword arguments."""
        return True

    def _validate_X_y(self, X, y, *, reset, **y_options):
        """X and y validated (``validate_data``), and the sample shape remembered or checked.

        A dict X is validated array by array (:meth:`_validate_dict`), and y on
        its own with ``y_options`` (``multi_output``, ``y_numeric``) as
        ``validate_data`` would.
        """
        if not (self._takes_dict() and is_dict_of_arrays(X)):
            with nullcontext() if reset else self._explain_sample_shape(X):
                X, y = validate_data(self, X, y, reset=reset, **y_options, **self._X_options())
            self._check_input_shape(X, reset)
            return X, y
        X = self._validate_dict(X, reset)
        y = _check_y(y, estimator=self, **y_options)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples (rows of each array), but y has {len(y)}.")
        return X, y

    def _validate_dict(self, X, reset):
        """A dict X as a :class:`skorch.helper.SliceDict` of arrays, each validated like an array X.

        A SliceDict is a dict that indexes rows (``X[rows]``), which the
        validation split, sample weights and scikit-learn's helpers need.
        scikit-learn's feature counts and names are for one 2-D table: a dict
        X sets neither ``n_features_in_`` nor ``feature_names_in_``.
        """
        if not X or not all(isinstance(key, str) for key in X):
            raise ValueError("A dict X maps the names of the module's forward arguments to arrays: its keys "
                             f"must be strings, and there must be at least one. Got keys {list(X)}.")
        options = {**self._X_options(), "accept_sparse": False, "ensure_2d": False}
        arrays = {key: check_array(value, input_name=f"X[{key!r}]", estimator=self, **options)
                  for key, value in X.items()}
        first, n_rows = next(iter(arrays)), len(next(iter(arrays.values())))
        for key, array in arrays.items():
            if len(array) != n_rows:
                raise ValueError(f"X[{key!r}] has {len(array)} rows, but X[{first!r}] has {n_rows}: each "
                                 "array of a dict X holds one row per sample.")
        if reset:
            for name in ("n_features_in_", "feature_names_in_"):  # those of an earlier fit on an array
                self.__dict__.pop(name, None)
        X = SliceDict(**arrays)
        self._check_input_shape(X, reset)
        return X

    def _fitted_input_shape(self):
        return self._input_shape

    def _validate_input(self, X):
        """``X`` validated for prediction: an array or CSR matrix of the network's dtype, or a SliceDict."""
        with explain_text(self, X):
            if self._takes_dict() and is_dict_of_arrays(X):
                return self._validate_dict(X, reset=False)
            with self._explain_sample_shape(X):
                X = validate_data(self, X, reset=False, **self._X_options())
        self._check_input_shape(X, reset=False)
        return X

    @contextmanager
    def _explain_sample_shape(self, X):
        """Within the block, scikit-learn's feature count error for X of another sample shape than
        ``fit`` saw (flat rows for images: "X has 64 features, but ... expecting 1") says so.
        Between two tables, and for a single 1-D sample, scikit-learn's message is the right one."""
        try:
            yield
        except ValueError as exc:
            fitted, shape = getattr(self, "_input_shape", None), _shape_of(X)
            # Rows of samples (not one 1-D sample: scikit-learn says to reshape it), not two tables.
            rows = isinstance(fitted, tuple) and shape is not None and len(shape) >= 2
            if rows and shape[1:] != fitted and not (len(fitted) == 1 and len(shape) == 2):
                raise ValueError(f"X has samples of shape {shape[1:]}, but {type(self).__name__} was "
                                 f"fitted on samples of shape {fitted}.") from exc
            raise


def _sample_shape(X):
    """The shape of one sample of X: ``X.shape[1:]``, or for a dict X each array's, by key."""
    if is_dict_of_arrays(X):
        return {key: tuple(int(n) for n in value.shape[1:]) for key, value in X.items()}
    return tuple(int(n) for n in X.shape[1:])


def _shape_of(X):
    """The shape of an array-like X as a tuple of ints, or None when it has none (ragged lists)."""
    try:
        shape = X.shape if hasattr(X, "shape") else np.shape(X)
        return tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        return None
