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
5. Going on with a fitted MLP (``sknet.engine.train_sequential``, and the engine's continued
   jobs): :func:`resume_refusal`, :func:`refresh_training_params` (the parameters set on it
   since), :func:`continue_fit` (more epochs of its own loop, from its generators' states),
   and :func:`tracked_generators` (where a fit's generators end).

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

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from .._options import takes_weight_decay
from ..parallel import fit_threads
from ._base import BaseTorchNet, FitData, FitSetup
from ._mlp import BaseMLP
from ._seeding import seeded
from ._skorch import Generators, tracking

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from scipy.sparse import spmatrix
    from skorch.helper import SliceDict

    from .._typing import Features, OptimizerParam

__all__ = ["FitData", "FitSetup", "Generators", "TrainingSpec", "begin_fit", "build_module", "check_params",
           "continue_fit", "finish_fit", "loss_weights", "refresh_training_params", "replay_fit_callbacks",
           "respond", "resume_refusal", "tracked_generators", "training_spec", "validate_fit_data",
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


@contextmanager
def tracked_generators(shuffle_state: torch.Tensor | None = None) -> Iterator[Generators]:
    """Track the one training loop (``fit``, or :func:`continue_fit`) run in the block, in this thread.

    Its shuffles start from ``shuffle_state`` (None: from its net's seed, as ``fit``'s
    do). After the block, the ``Generators`` record yielded holds ``shuffle_state``, where
    its shuffle generator ended, and ``dropout_state``, torch's global generator where
    its training left it: where a dropout net's masks go on from (meaningless without
    dropout, whose training runs outside a seeded block). Nothing stays on the net.

    Parameters
    ----------
    shuffle_state : torch.Tensor, default=None
        The state its shuffle generator starts from.

    Yields
    ------
    generators : Generators

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> from sknet.nets import tracked_generators
    >>> X, y = load_iris(return_X_y=True)
    >>> with tracked_generators() as generators:
    ...     clf = MLPClassifier(max_epochs=2, dropout=0.1, random_state=0).fit(X, y)
    >>> generators.shuffle_state.dtype, generators.dropout_state is None
    (torch.uint8, False)
    """
    with tracking(shuffle_state) as generators:
        yield generators


def resume_refusal(estimator: BaseMLP, dropout_state: torch.Tensor | None) -> str | None:
    """Why a fitted MLP cannot train on under its parameters now from ``dropout_state``, or None.

    It cannot when its dropout rate is above 0 but its net trained without dropout: its
    module has no dropout layers, and there is no generator its masks would go on from
    (its fit's dropout generator is seeded only where dropout is on from the start).
    Training it from scratch is the defined result then.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Fitted, with the parameters it is to train on under set.
    dropout_state : torch.Tensor or None
        Where its dropout generator stopped (``TrainingState.dropout_state``).

    Returns
    -------
    reason : str or None
    """
    if estimator.dropout > 0 and (dropout_state is None or not _dropout_layers(estimator.net_.module_)):
        return "dropout is turned on for a net that trained without it (no dropout generator to go on from)"
    return None


def refresh_training_params(estimator: BaseMLP) -> None:
    """Make a fitted MLP's net train on with the parameters set on the estimator since its fit.

    Its optimizer's param groups take ``lr`` (only when changed: a schedule's current
    rate is left alone otherwise), the effective momentum and ``weight_decay``
    (weights only: a group of weights and biases is split, as a fit with decay builds
    them); its net takes ``l1`` and ``batch_size``, and its dropout layers the rate. The
    optimizer's state (momentum buffers, Adam's averages and steps) is kept. Nothing
    changes where the parameters did not.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Fitted; changed in place (its net, not its fitted attributes).
    """
    net = estimator.net_
    optimizer = net.optimizer_
    names = {id(p): name for name, p in net.module_.named_parameters()}

    def decays(params):
        return [takes_weight_decay(names[id(p)]) for p in params]

    if estimator.weight_decay:  # a net built without decay has a single group: biases would decay too
        for group in list(optimizer.param_groups):
            taken = decays(group["params"])
            if "weight_decay" in group and any(taken) and not all(taken):
                params = group["params"]
                group["params"] = [p for p, t in zip(params, taken, strict=True) if t]
                spared = [p for p, t in zip(params, taken, strict=True) if not t]
                settings = {key: value for key, value in group.items() if key != "params"}
                optimizer.add_param_group({**settings, "params": spared})
    momentum = estimator._momentum()
    for group in optimizer.param_groups:
        if estimator.lr != net.lr:
            group["lr"] = estimator.lr
        if "momentum" in group:
            group["momentum"] = momentum
            for param in group["params"] if momentum else []:
                state = optimizer.state.get(param)
                if state and "momentum_buffer" not in state:  # RMSprop makes it on its first step only
                    state["momentum_buffer"] = torch.zeros_like(param)  # as the engine's buffers start
        if "weight_decay" in group:
            group["weight_decay"] = float(estimator.weight_decay) if any(decays(group["params"])) else 0.0
    net.lr, net.l1, net.batch_size = estimator.lr, estimator.l1, estimator.batch_size
    for layer in _dropout_layers(net.module_):
        layer.p = float(estimator.dropout)


def _dropout_layers(module):
    return [layer for layer in module.modules() if isinstance(layer, torch.nn.Dropout)]


def continue_fit(estimator: BaseMLP, data: FitData, epochs: int, shuffle_state: torch.Tensor,
                 dropout_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Train a fitted MLP ``epochs`` more epochs of its own loop, in place, from its generators' states.

    What the batched engine does to a job that goes on from a
    :class:`~sknet.engine.TrainingState`, by the net's own skorch loop: the
    parameters set since its fit apply (:func:`refresh_training_params`), every row trains
    (no early stopping), the callbacks go on as they were (no new
    ``on_train_begin``), then :func:`finish_fit`.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Fitted, without early stopping, on the rows of ``data``.
    data : FitData
        Its training rows, as :func:`validate_fit_data` of the estimator's class gives them.
    epochs : int
        Epochs to train.
    shuffle_state : torch.Tensor
        Where its shuffle generator stopped (``TrainingState.shuffle_state``).
    dropout_state : torch.Tensor or None, default=None
        Where its dropout generator stopped; needed with dropout.

    Returns
    -------
    shuffle_state, dropout_state : torch.Tensor, torch.Tensor or None
        Where the generators ended (no dropout state without dropout).

    Raises
    ------
    ValueError
        Dropout without a net or a generator to go on from (:func:`resume_refusal`).
    FloatingPointError
        Training diverged.
    """
    reason = resume_refusal(estimator, dropout_state)
    if reason is not None:
        raise ValueError(f"Cannot continue this fit: {reason}.")
    refresh_training_params(estimator)
    weight = estimator._sample_weight(data.y, data.sample_weight)
    train, _ = estimator._datasets(data.X, data.y, weight, np.arange(len(data.y)), None)
    net, dropout = estimator.net_, estimator._draws_at_random()
    net.train_split = None
    # Dropout draws from torch's global generator: from its state, in a block that restores the caller's.
    with fit_threads(estimator._step_work(train), estimator.device_), tracking(shuffle_state) as generators:
        with seeded(0, estimator.device_, dropout_state) if dropout else nullcontext():
            net.train_epochs(train, epochs, begin=False)
    finish_fit(estimator)
    return generators.shuffle_state, generators.dropout_state if dropout else None
