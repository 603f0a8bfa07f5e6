"""MLPClassifier and MLPRegressor: their hyperparameters, targets and outputs."""

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_array
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from .. import _options
from ._base import BaseMLP, explain_text

_COMMON_PARAMETERS = """
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
        Batch normalisation after each hidden linear layer.
    optimizer : {"sgd", "adam", "adamw", "rmsprop", "adagrad"} or \
torch.optim.Optimizer subclass, default="adam"
        The optimisation algorithm.
    lr : float > 0, default=1e-3
        Learning rate.
    momentum : float in [0, 1], default=0.9
        Momentum, used by optimizers that take one (sgd, rmsprop).
    weight_decay : float >= 0, default=0.0
        L2 penalty on the weight matrices (not biases nor batch-norm
        parameters), applied by the optimizer; decoupled for "adamw".
    l1 : float >= 0, default=0.0
        L1 penalty on the weight matrices, added to the training loss.
    batch_size : int >= 1, default=128
        Samples per mini-batch; a data set smaller than this is one batch.
    max_epochs : int >= 1, default=100
        Passes over the training data (each ``fit`` call, or each
        ``warm_start`` continuation).
    lr_schedule : {None, "step", "exponential", "cosine", "plateau", \
"onecycle"}, default=None
        Learning-rate schedule: "step" divides the rate by 10 at each third
        of ``max_epochs``; "exponential" multiplies it by 0.95 per epoch;
        "cosine" anneals it to 0 over ``max_epochs``; "plateau" divides it by
        10 after ``patience // 2`` epochs without improvement of the
        validation loss (the training loss without early stopping);
        "onecycle" is PyTorch's one-cycle policy peaking at ``lr``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for
        classifiers), stop when the validation loss has not improved by
        ``tol`` for ``patience`` epochs, and restore the best weights.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out for early stopping.
    patience : int >= 1, default=10
        Epochs without improvement before early stopping.
    tol : float >= 0, default=1e-4
        Smallest decrease of the validation loss counted as an improvement."""

_TRAILING_PARAMETERS = """
    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    dtype : {"float32", "float64"}, default="float32"
        Floating-point type of the network, its inputs and its training.
        "float64" is slower; it makes results reproducible to within double
        rounding across CPUs (whose BLAS kernels round float32 differently).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation
        split; an int gives identical predictions on CPU fit after fit.
    verbose : int, default=0
        Print skorch's per-epoch table when > 0.
    warm_start : bool, default=False
        When True, ``fit`` continues from the previous solution for another
        ``max_epochs`` epochs instead of starting again.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (or ``(name, callback)`` tuples) added to the net.
"""

_FITTED_ATTRIBUTES = """
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` had string column names.
    n_iter_ : int
        Epochs run in total.
    loss_curve_ : list of float
        Training loss at each epoch (penalties included).
    validation_scores_ : list of float
        Validation {score} at each epoch; only with ``early_stopping``.
    validation_loss_curve_ : list of float
        Validation loss at each epoch; only with ``early_stopping``.
    best_validation_score_ : float
        Validation {score} of the restored weights; only with ``early_stopping``.
    best_epoch_ : int
        Epoch (1-based) whose weights the model holds: the best validation
        loss with ``early_stopping``, otherwise the last epoch.
    device_ : str
        The device the network lives on.
    net_ : skorch.NeuralNet
        The trained skorch net (its ``module_`` is the torch module and its
        ``history`` the full training history)."""


def _docstring(summary, specific_parameters, attributes, example):
    return (f"{summary}\n\n    Parameters\n    ----------{_COMMON_PARAMETERS}{specific_parameters}"
            f"{_TRAILING_PARAMETERS}\n    Attributes\n    ----------{attributes}\n\n"
            f"    Examples\n    --------{example}")


class MLPClassifier(ClassifierMixin, BaseMLP):
    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    def __init__(self, *, n_layers=1, n_units=100, hidden_layer_sizes=None, activation="relu",
                 weight_init="default", dropout=0.0, batch_norm=False, optimizer="adam", lr=1e-3,
                 momentum=0.9, weight_decay=0.0, l1=0.0, batch_size=128, max_epochs=100,
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

    def _validate_targets(self, X, y, *, reset, classes=None):
        with explain_text(self, X, y):
            X, y = validate_data(self, X, y, reset=reset, accept_sparse="csr", dtype=self._float_dtype())
        check_classification_targets(y)
        if reset:
            encoder = LabelEncoder().fit(y if classes is None else classes)
            self.classes_ = encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    "MLPClassifier needs samples of at least 2 classes in the data, but the "
                    f"data contains only one class: {self.classes_[0]!r}."
                )
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()} not among classes_ {self.classes_.tolist()}."
            )
        return X, np.searchsorted(self.classes_, y).astype(np.int64), len(self.classes_)

    def _criterion(self):
        return torch.nn.CrossEntropyLoss

    def _sample_weight(self, y, sample_weight):
        if self.class_weight is None:
            return sample_weight
        per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=self.classes_[y])
        weight = per_class[y].astype(self._float_dtype())
        return weight if sample_weight is None else weight * sample_weight

    def _stratify(self, y):
        return y

    def _validation_score(self, y_true, y_pred):
        return accuracy_score(y_true.cpu().numpy(), y_pred.argmax(dim=1).cpu().numpy())

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``(X, y)``, starting from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Labels, all among ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every label the model will ever see; required on the first call
            (``y`` of that call may hold only some of them), ignored later.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        first_call = not hasattr(self, "net_")
        if first_call and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported by partial_fit: the class "
                             "frequencies of the whole data are unknown. Pass a dict instead.")
        if first_call:
            setup = self._prepare_fit(self._validate_fit_data(X, y, sample_weight, classes))
            return self._train_setup(setup, 1, X, y)
        return self._train_more(X, y, sample_weight, epochs=1)

    def predict_proba(self, X):
        """Probability of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        return self._respond("predict_proba", self._forward(X))

    def predict(self, X):
        """Most probable class of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, of the same kind as those ``fit`` saw.
        """
        return self._respond("predict", self._forward(X))

    def _respond(self, method, outputs):
        if method == "predict_proba":
            return torch.softmax(outputs, dim=1).numpy()
        return self.classes_[outputs.argmax(dim=1).numpy()]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


MLPClassifier.__doc__ = _docstring(
    "Multi-layer perceptron classifier, trained with PyTorch through skorch.",
    """
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn: a dict
        ``{label: weight}`` or "balanced" for weights inversely proportional
        to class frequencies.""",
    """
    classes_ : ndarray of shape (n_classes,)
        The class labels."""
    + _FITTED_ATTRIBUTES.format(score="accuracy"),
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


class MLPRegressor(RegressorMixin, BaseMLP):
    _parameter_constraints = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_options.REGRESSION_LOSSES))],
    }

    def __init__(self, *, n_layers=1, n_units=100, hidden_layer_sizes=None, activation="relu",
                 weight_init="default", dropout=0.0, batch_norm=False, optimizer="adam", lr=1e-3,
                 momentum=0.9, weight_decay=0.0, l1=0.0, batch_size=128, max_epochs=100,
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

    def _validate_targets(self, X, y, *, reset, classes=None):
        with explain_text(self, X, y):
            X, y = validate_data(self, X, y, reset=reset, accept_sparse="csr", dtype=self._float_dtype(),
                                 multi_output=True, y_numeric=True)
            # Training is in dtype: a target beyond its range (float32's) would become inf there.
            y = check_array(y, dtype=self._float_dtype(), ensure_2d=False, input_name="y")
        if reset:
            self._y_ndim = y.ndim
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        y = y.reshape(len(y), -1)
        if y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} outputs, but this model was fitted with {self.n_outputs_}.")
        return X, y, self.n_outputs_

    def _criterion(self):
        return _options.REGRESSION_LOSSES[self.loss]

    def _validation_score(self, y_true, y_pred):
        return r2_score(y_true.cpu().numpy(), y_pred.cpu().numpy())

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch on ``(X, y)``, starting from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        if not hasattr(self, "net_"):
            return self._train_setup(self._prepare_fit(self._validate_fit_data(X, y, sample_weight)), 1, X, y)
        return self._train_more(X, y, sample_weight, epochs=1)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions, 1-D when ``fit`` got a 1-D ``y``.
        """
        return self._respond("predict", self._forward(X))

    def _respond(self, method, outputs):
        out = outputs.numpy()
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


MLPRegressor.__doc__ = _docstring(
    "Multi-layer perceptron regressor, trained with PyTorch through skorch.",
    """
    loss : {"mse", "mae", "huber"}, default="mse"
        Training loss: mean squared error, mean absolute error, or Huber
        (delta 1). With several outputs, the loss is averaged over them.""",
    """
    n_outputs_ : int
        Number of regression targets."""
    + _FITTED_ATTRIBUTES.format(score="R^2"),
    """
    >>> import numpy as np
    >>> from sknet import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor(n_units=32, lr=1e-2, max_epochs=100, random_state=0).fit(X, 2 * X[:, 0])
    >>> reg.predict(X[:2]).shape
    (2,)
""",
)
