"""MLPClassifier and MLPRegressor: TorchClassifier and TorchRegressor with sknet's MLP module.

Their flat hyperparameters (``n_layers``, ``n_units``, ``activation``...) build the module;
targets, outputs and training are the Torch estimators'.
"""

from sklearn.utils._param_validation import StrOptions

from .. import _options
from ._base import BaseMLP
from ._torch import (
    FITTED_ATTRIBUTES,
    TRAILING_PARAMETERS,
    TRAINING_PARAMETERS,
    TorchClassifier,
    TorchRegressor,
    docstring,
)

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


class MLPClassifier(BaseMLP, TorchClassifier):
    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    def __init__(self, *, n_layers=1, n_units=100, hidden_layer_sizes=None, activation="relu",
                 weight_init="default", dropout=0.0, batch_norm=False, optimizer="adam", lr=1e-3,
                 momentum=None, weight_decay=0.0, l1=0.0, batch_size=128, max_epochs=100,
                 lr_schedule=None, early_stopping=False, validation_fraction=0.1, patience=10,
                 tol=1e-4, class_weight=None, device="auto", dtype="float32", random_state=None,
                 verbose=0, warm_start=False, callbacks=None):
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


class MLPRegressor(BaseMLP, TorchRegressor):
    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_options.REGRESSION_LOSSES))],
    }

    def __init__(self, *, n_layers=1, n_units=100, hidden_layer_sizes=None, activation="relu",
                 weight_init="default", dropout=0.0, batch_norm=False, optimizer="adam", lr=1e-3,
                 momentum=None, weight_decay=0.0, l1=0.0, batch_size=128, max_epochs=100,
                 lr_schedule=None, early_stopping=False, validation_fraction=0.1, patience=10,
                 tol=1e-4, loss="mse", device="auto", dtype="float32", random_state=None,
                 verbose=0, warm_start=False, callbacks=None):
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
