"""MLPClassifier and MLPRegressor: TorchClassifier and TorchRegressor with sknet's MLP module.

Their flat hyperparameters (``n_layers``, ``n_units``, ``activation``...) build the module;
targets, outputs and training are the Torch estimators'.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _options
from ..parallel import step_work
from ._base import BaseTorchNet
from ._module import MLPModule
from ._persist import saveable
from ._torch import (
    FITTED_ATTRIBUTES,
    TRAILING_PARAMETERS,
    TRAINING_PARAMETERS,
    TorchClassifier,
    TorchRegressor,
    docstring,
)

if TYPE_CHECKING:
    from .._typing import Callbacks, ClassWeight, OptimizerParam, Seed


class BaseMLP(BaseTorchNet):
    """:class:`BaseTorchNet` with sknet's MLP module, built from flat hyperparameters; not for direct use."""

    _parameter_constraints = {
        **BaseTorchNet._parameter_constraints,
        "n_layers": [Interval(Integral, 0, None, closed="left")],
        "n_units": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [None, "array-like"],
        "activation": [StrOptions(set(_options.ACTIVATIONS))],
        "weight_init": [StrOptions(set(_options.WEIGHT_INITS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
    }

    def _module_class(self):
        return MLPModule

    def _module_kwargs(self, input_shape, n_outputs):
        return dict(n_features=input_shape[0], hidden_sizes=self._hidden_sizes(), n_outputs=n_outputs,
                    activation=self.activation, dropout=self.dropout, batch_norm=self.batch_norm,
                    weight_init=self.weight_init, dtype=getattr(torch, self.dtype))

    def _X_options(self):
        return dict(accept_sparse="csr", dtype=self._float_dtype())

    def _check_input_shape(self, X, reset):
        """validate_data's feature count check is the whole check for 2-D input."""

    def _fitted_input_shape(self):
        return (self.n_features_in_,)

    def _takes_dict(self):
        return False  # an MLP's X is one 2-D table

    def _step_work(self, train):
        return step_work(train.X.shape[1], self._hidden_sizes(), self.net_.module_.output.out_features,
                         min(self.batch_size, len(train)))

    def _draws_at_random(self):
        return self.dropout > 0

    def _hidden_sizes(self):
        if self.hidden_layer_sizes is not None:
            return tuple(int(s) for s in self.hidden_layer_sizes)
        return (self.n_units,) * self.n_layers

    def _check_arguments(self):
        if self.hidden_layer_sizes is not None:
            sizes = self.hidden_layer_sizes
            if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
                raise ValueError(
                    "The 'hidden_layer_sizes' parameter must be None or a sequence of positive "
                    f"integers. Got {sizes!r} instead."
                )
        if self.batch_norm and self.batch_size < 2:
            raise ValueError(
                "batch_norm=True needs batch_size >= 2: batch normalisation of a single sample is "
                f"undefined. Got batch_size={self.batch_size}."
            )
        super()._check_arguments()

    def _check_training_size(self, n_train):
        """Batch normalisation needs two rows to normalise (torch fails obscurely with one)."""
        if self.batch_norm and n_train < 2:
            held_out = " after the early-stopping validation split" if self.early_stopping else ""
            raise ValueError(f"batch_norm=True needs at least 2 training samples{held_out}. Got {n_train}.")


_MLP_PARAMETERS = """
    n_layers : int, default=1
        Number of hidden layers (0 gives a linear model).
    n_units : int, default=100
        Units in each hidden layer.
    hidden_layer_sizes : tuple of int, default=None
        Explicit width of each hidden layer; overrides ``n_layers`` and
        ``n_units`` when given.
    activation : {"relu", "leaky_relu", "elu", "gelu", "selu", "tanh", \
"sigmoid", "logistic", "identity"}, default="relu"
        Activation after each hidden layer; "logistic" is an alias of "sigmoid".
    weight_init : {"default", "xavier_uniform", "xavier_normal", "he_uniform", \
"he_normal", "normal", "orthogonal"}, default="default"
        Initialisation of the linear layers' weights. "default" keeps torch's;
        the others use the activation's gain where it applies, N(0, 0.01) for
        "normal", and zero biases.
    dropout : float in [0, 1), default=0.0
        Dropout rate after each hidden activation.
    batch_norm : bool, default=False
        Batch normalisation after each hidden linear layer."""

def _docstring(summary, specific_parameters, attributes, example):
    parameters = _MLP_PARAMETERS + TRAINING_PARAMETERS + specific_parameters + TRAILING_PARAMETERS
    return docstring(summary, parameters, attributes, example)


@saveable("classes_", "_multilabel")
class MLPClassifier(BaseMLP, TorchClassifier):
    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    def __init__(self, *, n_layers: int = 1, n_units: int = 100,
                 hidden_layer_sizes: Sequence[int] | None = None, activation: str = "relu",
                 weight_init: str = "default", dropout: float = 0.0, batch_norm: bool = False,
                 optimizer: OptimizerParam = "adam", lr: float = 1e-3, momentum: float | None = None,
                 weight_decay: float = 0.0, l1: float = 0.0, batch_size: int = 128, max_epochs: int = 100,
                 lr_schedule: str | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, patience: int = 10, tol: float = 1e-4,
                 class_weight: ClassWeight = None, device: str = "auto", dtype: str = "float32",
                 random_state: Seed = None, verbose: int = 0, warm_start: bool = False,
                 callbacks: Callbacks = None) -> None:
        self.n_layers = n_layers
        self.n_units = n_units
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.weight_init = weight_init
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.l1 = l1
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.class_weight = class_weight
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks


MLPClassifier.__doc__ = _docstring(
    "Multi-layer perceptron classifier, trained with PyTorch through skorch.",
    """
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn: a dict
        ``{label: weight}`` or "balanced" for weights inversely proportional
        to class frequencies.""",
    """
    classes_ : ndarray of shape (n_classes,)
        The class labels; ``arange(n_labels)`` for a multilabel indicator ``y``."""
    + FITTED_ATTRIBUTES.format(score="accuracy", dict_X=""),
    """
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(n_units=32, lr=1e-2, max_epochs=50, random_state=0).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
""",
)


@saveable("n_outputs_", "_y_ndim")
class MLPRegressor(BaseMLP, TorchRegressor):
    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_options.REGRESSION_LOSSES))],
    }

    def __init__(self, *, n_layers: int = 1, n_units: int = 100,
                 hidden_layer_sizes: Sequence[int] | None = None, activation: str = "relu",
                 weight_init: str = "default", dropout: float = 0.0, batch_norm: bool = False,
                 optimizer: OptimizerParam = "adam", lr: float = 1e-3, momentum: float | None = None,
                 weight_decay: float = 0.0, l1: float = 0.0, batch_size: int = 128, max_epochs: int = 100,
                 lr_schedule: str | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, patience: int = 10, tol: float = 1e-4,
                 loss: str = "mse", device: str = "auto", dtype: str = "float32",
                 random_state: Seed = None, verbose: int = 0, warm_start: bool = False,
                 callbacks: Callbacks = None) -> None:
        self.n_layers = n_layers
        self.n_units = n_units
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.weight_init = weight_init
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.l1 = l1
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.loss = loss
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks


MLPRegressor.__doc__ = _docstring(
    "Multi-layer perceptron regressor, trained with PyTorch through skorch.",
    """
    loss : {"mse", "mae", "huber"}, default="mse"
        Training loss: mean squared error, mean absolute error, or Huber
        (delta 1). With several outputs, the loss is averaged over them.""",
    """
    n_outputs_ : int
        Number of regression targets."""
    + FITTED_ATTRIBUTES.format(score="R^2", dict_X=""),
    """
    >>> import numpy as np
    >>> from sknet import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor(n_units=32, lr=1e-2, max_epochs=100, random_state=0).fit(X, 2 * X[:, 0])
    >>> reg.predict(X[:2]).shape
    (2,)
""",
)
