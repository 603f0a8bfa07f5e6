"""TorchClassifier and TorchRegressor: any ``torch.nn.Module`` class as a scikit-learn estimator.

They hold what a classifier and a regressor do with targets and outputs; the
MLPs are these estimators with sknet's MLP module (see ``_mlp.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_array
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from .. import _options
from .._compat import _fit_context
from ._base import BaseTorchNet
from ._checks import SubclassOf, explain_text
from ._module import MLPModule
from ._persist import saveable

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from typing_extensions import Self

    from .._typing import Callbacks, ClassWeight, Features, OptimizerParam, Seed

TRAINING_PARAMETERS = """
    optimizer : {"sgd", "adam", "adamw", "rmsprop", "adagrad"} or \
torch.optim.Optimizer subclass, default="adam"
        The optimisation algorithm.
    lr : float > 0, default=1e-3
        Learning rate.
    momentum : float in [0, 1] or None, default=None
        Momentum of the optimizers that take one (sgd, rmsprop). None means
        the optimizer's usual default: 0.9 for "sgd" (scikit-learn's MLP
        default) and 0 for "rmsprop" (torch's); a float applies to any
        optimizer that takes a momentum.
    weight_decay : float >= 0, default=0.0
        L2 penalty on the weights (not biases nor normalisation parameters),
        applied by the optimizer; decoupled for "adamw".
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

TRAILING_PARAMETERS = """
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

FITTED_ATTRIBUTES = """
    n_features_in_ : int
        Number of features seen during ``fit`` (``X.shape[1]``).{dict_X}
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

# A dict X (several inputs) has no single feature count: scikit-learn's is for one 2-D table.
DICT_X = " Not set when\n        ``X`` is a dict of arrays."

MODULE_PARAMETERS = """
    module : torch.nn.Module subclass, default=MLPModule
        The network's class (not an instance): its ``forward`` takes a batch
        of ``X`` (for a dict ``X``, a batch of each array, as the keyword
        argument of its key) and returns {outputs}. Its constructor arguments
        are the ``module__<name>`` parameters; those it takes among
        ``n_features`` (``X.shape[1]`` for 2-D ``X``), ``input_shape``
        (``X.shape[1:]``; for a dict ``X``, a dict of each array's sample
        shape by key), ``n_outputs`` ({n_outputs}) and ``dtype`` (the torch
        dtype) are filled in from the data when not set. ``fit`` checks the
        shape of its outputs on two rows before training, and refuses any other
        with a ``ValueError``. The default, sknet's MLP module, has one hidden
        layer of 100 units (``module__hidden_sizes=(100,)``)."""

MODULE_KWARGS = """
    **module_params : dict
        ``module__<name>=value``: the argument ``<name>`` of ``module``'s
        constructor. Like the other parameters, they are returned by
        ``get_params`` and set, searched and cloned by name."""


def docstring(summary, parameters, attributes, example):
    """A numpydoc docstring from its parts."""
    return (f"{summary}\n\n    Parameters\n    ----------{parameters}\n    Attributes\n    ----------"
            f"{attributes}\n\n    Examples\n    --------{example}")


def _some(labels, shown=6):
    """Labels as plain Python values, the first few of many: ``[0, 1, 2, ..., 9]``."""
    values = labels.tolist()
    if len(values) <= shown:
        return repr(values)
    return repr(values[:shown - 1])[:-1] + f", ..., {values[-1]!r}]"


def _is_indicator_shaped(y):
    """Whether ``y`` is 2-D with several columns: a multilabel indicator matrix if anything."""
    try:
        shape = y.shape if hasattr(y, "shape") else np.asarray(y).shape
    except (ValueError, TypeError):  # ragged lists
        return False
    return len(shape) == 2 and shape[1] > 1


@saveable("classes_", "_multilabel", "_input_shape")
class TorchClassifier(ClassifierMixin, BaseTorchNet):
    _parameter_constraints = {
        **BaseTorchNet._parameter_constraints,
        "module": [SubclassOf(torch.nn.Module, "a torch.nn.Module subclass (the class, not an instance)")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    def __init__(self, module: type[torch.nn.Module] = MLPModule, *, optimizer: OptimizerParam = "adam",
                 lr: float = 1e-3, momentum: float | None = None, weight_decay: float = 0.0, l1: float = 0.0,
                 batch_size: int = 128, max_epochs: int = 100, lr_schedule: str | None = None,
                 early_stopping: bool = False, validation_fraction: float = 0.1, patience: int = 10,
                 tol: float = 1e-4, class_weight: ClassWeight = None, device: str = "auto",
                 dtype: str = "float32", random_state: Seed = None, verbose: int = 0,
                 warm_start: bool = False, callbacks: Callbacks = None, **module_params: Any) -> None:
        self.module = module
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
        self._store_module_params(module_params)

    def _is_multilabel(self):
        return getattr(self, "_multilabel", False)

    def _validate_targets(self, X, y, *, reset, classes=None):
        multilabel = _is_indicator_shaped(y) if reset else self._is_multilabel()
        with explain_text(self, X, y):
            X, y = self._validate_X_y(X, y, reset=reset, multi_output=multilabel)
        if multilabel:
            return (X, *self._encode_multilabel(y, reset))
        check_classification_targets(y)
        if reset:
            self._multilabel = False
            encoder = LabelEncoder().fit(y if classes is None else classes)
            self.classes_ = encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in the data, but the "
                    f"data contains only one class: {self.classes_.tolist()[0]!r}."
                )
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()} not among classes_ {self.classes_.tolist()}."
            )
        return X, np.searchsorted(self.classes_, y).astype(np.int64), len(self.classes_)

    def _encode_multilabel(self, y, reset):
        """A multilabel indicator ``y`` as floats (the loss's targets), and the number of labels."""
        y = y.toarray() if sp.issparse(y) else np.asarray(y)
        kind = type_of_target(y)
        if kind != "multilabel-indicator":
            raise ValueError(f"{type(self).__name__} takes a 2-D y only as a multilabel indicator matrix "
                             f"(0 or 1 for each label, one column per label); got {kind} targets.")
        if reset:
            self._multilabel = True
            self.classes_ = np.arange(y.shape[1])  # as scikit-learn's MLPClassifier sets it
        elif y.shape[1] != len(self.classes_):
            raise ValueError(f"y has {y.shape[1]} labels, but this model was fitted with "
                             f"{len(self.classes_)}.")
        return y.astype(self._float_dtype()), len(self.classes_)

    def _criterion(self):
        return torch.nn.BCEWithLogitsLoss if self._is_multilabel() else torch.nn.CrossEntropyLoss

    def _outputs_meaning(self, n_outputs):
        if self._is_multilabel():
            return f"a logit per label ({n_outputs} labels)"
        return f"a logit per class ({n_outputs} classes: {_some(self.classes_)})"

    def _sample_weight(self, y, sample_weight):
        if self.class_weight is None:
            return sample_weight
        if self._is_multilabel():
            raise ValueError("class_weight is not supported with multilabel y: weight samples instead "
                             "(sample_weight).")
        per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=self.classes_[y])
        weight = per_class[y].astype(self._float_dtype())
        return weight if sample_weight is None else weight * sample_weight

    def _stratify(self, y):
        return None if self._is_multilabel() else y

    def _validation_score(self, y_true, y_pred):
        if self._is_multilabel():  # subset accuracy, as scikit-learn's score
            return accuracy_score(y_true.cpu().numpy() > 0.5, y_pred.cpu().numpy() > 0)
        return accuracy_score(y_true.cpu().numpy(), y_pred.argmax(dim=1).cpu().numpy())

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Features, y: ArrayLike, classes: ArrayLike | None = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """Train for one epoch on ``(X, y)``, starting from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, ...) or dict of array-like
            Training data; a dict (or :class:`skorch.helper.SliceDict`) of
            arrays of ``n_samples`` rows each for a module of several inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, all among ``classes``, or a multilabel indicator matrix.
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

    def predict_proba(self, X: Features) -> NDArray[Any]:
        """Probability of each class (of each label, for multilabel targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, ...) or dict of array-like
            Samples; a dict for a model fitted on one, with the keys and
            sample shapes ``fit`` saw.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``; for
            multilabel targets, each label's probability (the sigmoid of its logit).
        """
        return self._respond("predict_proba", self._forward(X))

    def predict(self, X: Features) -> NDArray[Any]:
        """Most probable class of each sample (each label above probability 0.5, for multilabel).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, ...) or dict of array-like
            Samples; a dict for a model fitted on one, with the keys and
            sample shapes ``fit`` saw.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Predicted labels, of the same kind as those ``fit`` saw; a 0/1
            indicator matrix for multilabel targets.
        """
        return self._respond("predict", self._forward(X))

    def _respond(self, method, outputs):
        if self._is_multilabel():
            proba = torch.sigmoid(outputs).numpy()
            return proba if method == "predict_proba" else (proba > 0.5).astype(np.int64)
        if method == "predict_proba":
            return torch.softmax(outputs, dim=1).numpy()
        return self.classes_[outputs.argmax(dim=1).numpy()]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


TorchClassifier.__doc__ = docstring(
    "Classifier made of any torch module, trained with PyTorch through skorch.",
    MODULE_PARAMETERS.format(outputs="a logit per class (per label, for multilabel targets)",
                             n_outputs="the number of classes, or of labels") + TRAINING_PARAMETERS + """
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn: a dict
        ``{label: weight}`` or "balanced" for weights inversely proportional
        to class frequencies.""" + TRAILING_PARAMETERS.rstrip("\n") + MODULE_KWARGS + "\n",
    """
    classes_ : ndarray of shape (n_classes,)
        The class labels; ``arange(n_labels)`` for multilabel targets."""
    + FITTED_ATTRIBUTES.format(score="accuracy", dict_X=DICT_X),
    """
    The module returns logits: the loss is the cross-entropy of their softmax
    (of each logit's sigmoid for a multilabel indicator ``y``).

    >>> import torch
    >>> from sklearn.datasets import load_iris
    >>> from sknet import TorchClassifier
    >>> class Net(torch.nn.Module):
    ...     def __init__(self, n_features, n_outputs, width=16):
    ...         super().__init__()
    ...         self.layers = torch.nn.Sequential(
    ...             torch.nn.Linear(n_features, width), torch.nn.ReLU(), torch.nn.Linear(width, n_outputs))
    ...     def forward(self, X):
    ...         return self.layers(X)
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TorchClassifier(Net, module__width=32, lr=1e-2, max_epochs=50, random_state=0).fit(X, y)
    >>> clf.get_params()["module__width"]
    32
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
""",
)


@saveable("n_outputs_", "_y_ndim", "_input_shape")
class TorchRegressor(RegressorMixin, BaseTorchNet):
    _parameter_constraints = {
        **BaseTorchNet._parameter_constraints,
        "module": [SubclassOf(torch.nn.Module, "a torch.nn.Module subclass (the class, not an instance)")],
        "loss": [StrOptions(set(_options.REGRESSION_LOSSES))],
    }

    def __init__(self, module: type[torch.nn.Module] = MLPModule, *, optimizer: OptimizerParam = "adam",
                 lr: float = 1e-3, momentum: float | None = None, weight_decay: float = 0.0, l1: float = 0.0,
                 batch_size: int = 128, max_epochs: int = 100, lr_schedule: str | None = None,
                 early_stopping: bool = False, validation_fraction: float = 0.1, patience: int = 10,
                 tol: float = 1e-4, loss: str = "mse", device: str = "auto", dtype: str = "float32",
                 random_state: Seed = None, verbose: int = 0, warm_start: bool = False,
                 callbacks: Callbacks = None, **module_params: Any) -> None:
        self.module = module
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
        self._store_module_params(module_params)

    def _validate_targets(self, X, y, *, reset, classes=None):
        with explain_text(self, X, y):
            X, y = self._validate_X_y(X, y, reset=reset, multi_output=True, y_numeric=True)
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

    def _outputs_meaning(self, n_outputs):
        return f"one column per target ({n_outputs} target{'s' if n_outputs > 1 else ''})"

    def _takes_flat_outputs(self):
        return True

    def _validation_score(self, y_true, y_pred):
        return r2_score(y_true.cpu().numpy(), y_pred.cpu().numpy())

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Features, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Train for one epoch on ``(X, y)``, starting from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, ...) or dict of array-like
            Training data; a dict (or :class:`skorch.helper.SliceDict`) of
            arrays of ``n_samples`` rows each for a module of several inputs.
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

    def predict(self, X: Features) -> NDArray[Any]:
        """Predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, ...) or dict of array-like
            Samples; a dict for a model fitted on one, with the keys and
            sample shapes ``fit`` saw.

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


TorchRegressor.__doc__ = docstring(
    "Regressor made of any torch module, trained with PyTorch through skorch.",
    MODULE_PARAMETERS.format(outputs="one value per target column (a single target may also come flat, "
                             "of shape ``(n,)``)", n_outputs="the number of target columns")
    + TRAINING_PARAMETERS + """
    loss : {"mse", "mae", "huber"}, default="mse"
        Training loss: mean squared error, mean absolute error, or Huber
        (delta 1). With several outputs, the loss is averaged over them."""
    + TRAILING_PARAMETERS.rstrip("\n") + MODULE_KWARGS + "\n",
    """
    n_outputs_ : int
        Number of regression targets."""
    + FITTED_ATTRIBUTES.format(score="R^2", dict_X=DICT_X),
    """
    >>> import numpy as np
    >>> from sknet import TorchRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = TorchRegressor(module__hidden_sizes=(32,), lr=1e-2, random_state=0).fit(X, 2 * X[:, 0])
    >>> reg.predict(X[:2]).shape
    (2,)
""",
)
