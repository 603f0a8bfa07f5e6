"""How the engine and the searches talk to an sknet estimator: one documented contract.

The batched engine (:mod:`sknet.engine`) trains many estimators at once, and the searches
score them from outputs computed in one batched pass; neither knows an estimator's
insides. They read a frozen :class:`TrainingSpec` of its parameters (what decides which
models share a training loop, their per-model hyperparameters, their memory and thread
counts), and call the steps of the estimator's own ``fit`` and ``predict`` through the
functions here:

1. :func:`validate_fit_data` and :func:`begin_fit`: the data validated as ``fit`` validates
   it, and the fit set up to its training loop (the skorch net built and initialised, its
   seed drawn, its early-stopping rows held out): a :class:`FitSetup`.
2. The engine trains, writing each net's skorch history as skorch's loop would.
3. :func:`finish_fit`: the checks ``fit`` runs after training (divergence) and the fitted
   attributes it stores.
4. :func:`validate_input` and :func:`respond`: ``predict`` and ``predict_proba`` from raw
   outputs computed elsewhere; :func:`replay_fit_callbacks` tells scikit-learn's
   callbacks about a fit that ran in the engine.

Each function calls the estimator's own (private) methods, so that ``fit`` and the
engine run the very same steps.

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from sknet import MLPClassifier
>>> from sknet.nets import begin_fit, finish_fit, training_spec, validate_fit_data
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(n_units=8, max_epochs=2, random_state=0)
>>> spec = training_spec(clf)
>>> spec.hidden_sizes, spec.loss.__name__, spec.float_dtype
((8,), 'CrossEntropyLoss', dtype('float32'))
>>> setup = begin_fit(clf, validate_fit_data(clf, X, y))
>>> setup.n_outputs, len(setup.train)
(3, 150)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from ._base import BaseTorchNet, FitData, FitSetup
from ._mlp import BaseMLP

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from scipy.sparse import spmatrix
    from skorch.helper import SliceDict

    from .._typing import Features, OptimizerParam

__all__ = ["FitData", "FitSetup", "TrainingSpec", "begin_fit", "build_module", "check_params", "finish_fit",
           "loss_weights", "replay_fit_callbacks", "respond", "training_spec", "validate_fit_data",
           "validate_input"]

Net = TypeVar("Net", bound=BaseTorchNet)


@dataclass(frozen=True)
class TrainingSpec:
    """What the engine reads of an estimator to train it: its parameters, resolved.

    Models train in one loop when the fields :func:`sknet.engine.group_jobs`
    groups by are equal; the others (``lr``, ``momentum``, ``weight_decay``,
    ``l1``, ``dropout``, ``max_epochs``, the widths) are per model.
    """

    estimator: type[BaseTorchNet]  # the estimator's class
    hidden_sizes: tuple[int, ...] | None  # sknet's MLP: its hidden layers' widths; None for any other module
    activation: str | None  # sknet's MLP: its activation
    dropout: float  # sknet's MLP: its dropout rate (0 for another module: its own business)
    batch_norm: bool
    module: type[torch.nn.Module]  # the torch module class
    # the module__<name> arguments, as sorted (name, repr(value)) pairs:
    module_args: tuple[tuple[str, str], ...]
    optimizer: OptimizerParam  # a name ("adam") or a torch.optim.Optimizer subclass
    lr: float
    momentum: float  # the optimizer's effective momentum (momentum=None resolved)
    weight_decay: float
    l1: float
    batch_size: int
    max_epochs: int
    loss: type[torch.nn.Module]  # the per-sample loss module class
    early_stopping: bool
    lr_schedule: str | None
    device: str  # as given ("auto", "cpu", "cuda:0")
    dtype: str  # "float32" or "float64"
    float_dtype: np.dtype[Any]
    # score(y_true, raw outputs), higher is better: early stopping's record
    validation_score: Callable[[torch.Tensor, torch.Tensor], float]
    has_callbacks: bool  # skorch callbacks, or scikit-learn callbacks set on it
    warm_start: bool
    verbose: int


def training_spec(estimator: BaseTorchNet) -> TrainingSpec:
    """The :class:`TrainingSpec` of an sknet estimator (fitted or not; its parameters only).

    Parameters
    ----------
    estimator : BaseTorchNet
        An :class:`~sknet.MLPClassifier`, :class:`~sknet.MLPRegressor`,
        :class:`~sknet.TorchClassifier` or :class:`~sknet.TorchRegressor`. Its
        parameters are taken as they are: :func:`check_params` checks them.

    Returns
    -------
    spec : TrainingSpec

    Examples
    --------
    >>> from sknet import MLPClassifier, TorchRegressor
    >>> from sknet.nets import training_spec
    >>> training_spec(MLPClassifier(n_layers=2, n_units=16, optimizer="sgd")).hidden_sizes
    (16, 16)
    >>> training_spec(MLPClassifier(optimizer="sgd")).momentum  # momentum=None: SGD's 0.9
    0.9
    >>> training_spec(TorchRegressor(module__hidden_sizes=(8,))).module_args
    (('module__hidden_sizes', '(8,)'),)
    """
    mlp = isinstance(estimator, BaseMLP)
    return TrainingSpec(
        estimator=type(estimator),
        hidden_sizes=estimator._hidden_sizes() if mlp else None,
        activation=estimator.activation if mlp else None,
        dropout=float(estimator.dropout) if mlp else 0.0,
        batch_norm=bool(estimator.batch_norm) if mlp else False,
        module=estimator._module_class(),
        module_args=tuple(sorted((name, repr(value)) for name, value in estimator._module_params().items())),
        optimizer=estimator.optimizer,
        lr=estimator.lr,
        momentum=estimator._momentum(),
        weight_decay=estimator.weight_decay,
        l1=estimator.l1,
        batch_size=estimator.batch_size,
        max_epochs=estimator.max_epochs,
        loss=estimator._criterion(),
        early_stopping=estimator.early_stopping,
        lr_schedule=estimator.lr_schedule,
        device=estimator.device,
        dtype=estimator.dtype,
        float_dtype=estimator._float_dtype(),
        validation_score=estimator._validation_score,
        has_callbacks=bool(estimator.callbacks) or bool(getattr(estimator, "_skl_callbacks", None)),
        warm_start=estimator.warm_start,
        verbose=estimator.verbose,
    )


def check_params(estimator: BaseTorchNet) -> None:
    """Check the estimator's parameters as its ``fit`` checks them; raise what ``fit`` would raise.

    Raises
    ------
    ValueError or TypeError
        scikit-learn's ``InvalidParameterError`` (both) naming the parameter, or
        sknet's own argument checks (``hidden_layer_sizes``, ``module__`` names...).

    Examples
    --------
    >>> from sknet import MLPClassifier
    >>> from sknet.nets import check_params
    >>> check_params(MLPClassifier(lr=-1))
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'lr' parameter of MLPClassifier must be \
a float in the range (0.0, inf). Got -1 instead.
    """
    estimator._validate_params()
    estimator._check_arguments()


def validate_fit_data(estimator: BaseTorchNet, X: Features, y: ArrayLike,
                      sample_weight: ArrayLike | None = None) -> FitData:
    """``X``, ``y`` and ``sample_weight`` validated as the estimator's ``fit`` validates them.

    Returns
    -------
    data : FitData
        It depends on the data, the estimator's class and ``dtype`` only, so that
        fits of many parameter settings on the same rows may share it.
    """
    return estimator._validate_fit_data(X, y, sample_weight)


def begin_fit(estimator: BaseTorchNet, data: FitData) -> FitSetup:
    """Set ``estimator`` up as its ``fit`` would, up to the training loop.

    Sets the attributes validation gave, checks the arguments and the module's
    outputs, picks the device, draws the seed, holds out the early-stopping rows,
    and builds and initialises ``estimator.net_``.

    Parameters
    ----------
    estimator : BaseTorchNet
    data : FitData
        From :func:`validate_fit_data` of an estimator of the same class and ``dtype``.

    Returns
    -------
    setup : FitSetup
    """
    return estimator._prepare_fit(data)


def loss_weights(estimator: BaseTorchNet, data: FitData) -> NDArray[Any] | None:
    """Each row's weight in the loss (sample and class weights), or None for equal weights."""
    return estimator._sample_weight(data.y, data.sample_weight)


def finish_fit(estimator: Net, *, weights_checked: bool = False) -> Net:
    """What ``fit`` does after training: the divergence checks, then the fitted attributes.

    Parameters
    ----------
    estimator : BaseTorchNet
        Trained: its ``net_`` holds the weights and the history of its epochs.
    weights_checked : bool, default=False
        The caller already knows the weights are all finite.

    Returns
    -------
    estimator : BaseTorchNet

    Raises
    ------
    FloatingPointError
        Training diverged: what the estimator's own ``fit`` raises.

    Examples
    --------
    A fit's own steps, one by one (what ``fit`` does, and the engine with many at once):

    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.nets import begin_fit, finish_fit, validate_fit_data
    >>> from sknet.nets._data import InMemoryDataset
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(max_epochs=3, random_state=0)
    >>> setup = begin_fit(clf, validate_fit_data(clf, X, y))
    >>> _ = clf.net_.train_epochs(InMemoryDataset(setup.X, setup.y, device="cpu"), 3)
    >>> finish_fit(clf).n_iter_, len(clf.loss_curve_)
    (3, 3)
    """
    if not weights_checked:
        estimator._check_weights_finite()
    estimator._check_loss_growth()
    estimator._store_fitted_attributes()
    return estimator


def build_module(estimator: BaseTorchNet, input_shape: tuple[int, ...] | Mapping[str, tuple[int, ...]],
                 n_outputs: int) -> torch.nn.Module:
    """The torch module ``fit`` would build for samples of ``input_shape`` and ``n_outputs``
    outputs, in the estimator's dtype (initialised by torch's defaults, not seeded).

    Examples
    --------
    >>> from sknet import TorchClassifier
    >>> from sknet.nets import build_module
    >>> build_module(TorchClassifier(module__hidden_sizes=(5,)), (4,), 3).output
    Linear(in_features=5, out_features=3, bias=True)
    """
    module = estimator._module_class()(**estimator._module_kwargs(input_shape, n_outputs))
    return module.to(getattr(torch, estimator.dtype))


def validate_input(estimator: BaseTorchNet, X: Features) -> NDArray[Any] | spmatrix | SliceDict:
    """``X`` validated as the fitted estimator's ``predict`` validates it (an array, a CSR
    matrix or a SliceDict, of its dtype); raises what ``predict`` would raise."""
    return estimator._validate_input(X)


def respond(estimator: BaseTorchNet, method: str, outputs: torch.Tensor) -> NDArray[Any]:
    """What ``estimator.method`` (``"predict"`` or ``"predict_proba"``) returns for its raw
    network ``outputs`` (a tensor on the CPU); raises ``FloatingPointError`` for non-finite ones,
    as ``predict`` does.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.nets import respond, validate_input
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> rows = torch.as_tensor(validate_input(clf, X[:4]))
    >>> outputs = clf.net_.module_(rows).detach()  # computed elsewhere: in a batched pass
    >>> (respond(clf, "predict", outputs) == clf.predict(X[:4])).all()
    np.True_
    """
    return estimator._respond(method, estimator._checked_outputs(outputs))


def replay_fit_callbacks(estimator: BaseTorchNet, X: Features, y: ArrayLike) -> None:
    """Report a fit that ran in the engine to scikit-learn's callbacks, epoch by epoch."""
    estimator._replay_fit_callbacks(X, y)

