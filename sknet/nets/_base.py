"""What the sknet estimators share: parameters, validation, the fit and the prediction.

:class:`BaseTorchNet` trains any ``torch.nn.Module`` class through its skorch net
(``_skorch.py``); the checks of a fit are in ``_checks.py``, its seeding in
``_seeding.py``. :class:`~sknet.nets._mlp.BaseMLP` is this estimator with sknet's
:class:`~sknet.nets._module.MLPModule`, built from flat hyperparameters.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.helper import predefined_split

from .. import _options
from .._compat import (
    CallbackSupportMixin,  # scikit-learn's, or a no-op one before 1.9
    _fit_context,
)
from ..parallel import fit_threads, forward_work, resolve_device
from ._checks import SubclassOf, TrainingChecks
from ._data import InMemoryDataset
from ._inputs import InputsMixin
from ._persist import save
from ._seeding import MAX_SEED, first_seed, generator_state, seeded
from ._skorch import EpochTasks, SkorchNet, StopOnDivergence, ValidationScore, silent

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from typing_extensions import Self

    from .._typing import Features, FilePath


@dataclass
class FitData:
    """Training data validated by one estimator class (:func:`sknet.nets.validate_fit_data`).

    It depends on the data, the class and ``dtype`` only, so fits of many
    parameter settings on the same rows may share it.
    """

    X: object  # validated features: an array, a CSR matrix, or a SliceDict of arrays (several inputs)
    y: np.ndarray  # encoded targets (class indices, or float targets of shape (n, n_outputs))
    sample_weight: np.ndarray | None
    n_outputs: int
    attributes: dict[str, Any]  # the fitted attributes validation sets (n_features_in_, classes_, ...)


@dataclass
class FitSetup:
    """A fresh fit set up to its training loop (:func:`sknet.nets.begin_fit`).

    The estimator's ``net_`` is built and initialised; this is what it trains on.
    """

    X: object  # validated features of all the rows fit got
    y: np.ndarray  # encoded targets
    weight: np.ndarray | None  # per-row loss weights (sample and class weights), or None
    n_outputs: int
    seed: int  # seeds shuffling, initialisation and dropout
    train: np.ndarray  # positions of the rows trained on
    valid: np.ndarray | None  # positions of the early-stopping validation rows, or None
    rng_state: torch.Tensor | None  # the generator after initialisation (dropout draws go on from it)


_PARAM_NAMES: dict[type, tuple[str, ...]] = {}  # estimator class -> the names of its __init__ parameters



class BaseTorchNet(InputsMixin, TrainingChecks, CallbackSupportMixin, BaseEstimator):
    """Shared machinery of the sknet estimators (any torch module); not for direct use.

    Subclasses with a ``module`` parameter take the module's constructor
    arguments as ``module__<name>`` parameters (skorch's convention).
    """

    _parameter_constraints = {
        "optimizer": [StrOptions(set(_options.OPTIMIZERS)),
                      SubclassOf(torch.optim.Optimizer, "a torch.optim.Optimizer subclass")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [None, Interval(Real, 0, 1, closed="both")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "lr_schedule": [None, StrOptions(set(_options.LR_SCHEDULES))],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callbacks": [None, list],
    }

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads __init__'s signature anew at every get_params, set_params and
        # clone; a search makes thousands of those calls (a tenth of a short search's time).
        if cls not in _PARAM_NAMES:
            _PARAM_NAMES[cls] = tuple(super()._get_param_names())
        return list(_PARAM_NAMES[cls])

    def _takes_module(self):
        return "module" in self._get_param_names()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the parameters of this estimator, ``module__<name>`` ones included.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        # scikit-learn reads names from __init__'s signature, which **module_params hides.
        params.update(self._module_params())
        return params

    def set_params(self, **params: Any) -> Self:
        """Set the parameters of this estimator, ``module__<name>`` ones included.

        Parameters
        ----------
        **params : dict
            Estimator parameters; ``module__<name>`` sets the module's
            constructor argument ``<name>``, even one not set before.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        if self._takes_module():
            for name in [name for name in params if name.startswith("module__")]:
                setattr(self, name, params.pop(name))
            if "module_params" in params:  # what __init__'s **module_params takes, as one dict
                extra = params.pop("module_params")
                self._store_module_params(extra if isinstance(extra, dict) else {"module_params": extra})
        return super().set_params(**params) if params else self

    def _store_module_params(self, module_params):
        """Set the ``module__<name>`` arguments; keep other names for fit to refuse (init never raises)."""
        unexpected = {}
        for name, value in module_params.items():
            if name.startswith("module__"):
                setattr(self, name, value)
            else:
                unexpected[name] = value
        if unexpected:
            self._unexpected_params = unexpected

    def _module_params(self):
        """The ``module__<name>`` parameters set on this estimator."""
        return {name: value for name, value in vars(self).items() if name.startswith("module__")}

    # -- what the module and its inputs are ------------------------------------
    def _module_class(self):
        return self.module

    def _module_kwargs(self, input_shape, n_outputs):
        """The module's constructor arguments: the user's, and those the data decides."""
        kwargs = {name[len("module__"):]: value for name, value in self._module_params().items()}
        accepted = inspect.signature(self.module).parameters
        if isinstance(input_shape, dict):  # several inputs: each one's sample shape, and no n_features
            given = {"input_shape": dict(input_shape), "n_outputs": n_outputs}
        else:
            given = {"input_shape": tuple(input_shape), "n_outputs": n_outputs}
            if len(input_shape) == 1:
                given["n_features"] = input_shape[0]
        if "dtype" in accepted:
            given["dtype"] = getattr(torch, self.dtype)
        for name, value in given.items():
            if name in accepted and name not in kwargs:
                kwargs[name] = value
        self._check_required_arguments(accepted, kwargs, input_shape)
        return kwargs

    def _check_required_arguments(self, accepted, kwargs, input_shape):
        """Refuse, naming them, constructor arguments of the module that nothing fills in."""
        name = self.module.__name__
        positional = [n for n, p in accepted.items() if p.kind is p.POSITIONAL_ONLY and p.default is p.empty]
        if positional:
            raise ValueError(f"{name}'s constructor takes the argument(s) {positional} by position only, "
                             "but sknet passes a module's arguments by name (module__<name>): make them "
                             "ordinary arguments.")
        missing = [n for n, p in accepted.items() if p.default is p.empty and n not in kwargs
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not missing:
            return
        if isinstance(input_shape, dict):
            shape = f"X is a dict of arrays (sample shapes {dict(input_shape)})"
        else:
            shape = f"X has samples of shape {tuple(input_shape)}"
        instead = ("read what it needs from input_shape, which it takes too, and drop n_features"
                   if "input_shape" in accepted else "take input_shape instead")
        data = (" sknet fills in n_features (X.shape[1]) only for 2-D X, and input_shape (X.shape[1:]; "
                f"for a dict X, each array's sample shape by key) for any X; {shape}: {instead}."
                if "n_features" in missing else "")
        others = [n for n in missing if n != "n_features"]
        names = ", ".join(f"module__{n}" for n in others)
        set_them = f" Set {'it' if len(others) == 1 else 'them'} as {names}." if others else ""
        raise ValueError(f"{name}'s constructor needs the argument(s) {missing}, which are not set."
                         f"{data}{set_them}")

    def _step_work(self, train):
        """Multiply-adds of a training step's forward pass, for the thread count (counted on a row)."""
        X = train.X
        rows = {key: value[:1] for key, value in X.items()} if isinstance(X, dict) else X[:1]
        return forward_work(self.net_.module_, rows) * min(self.batch_size, len(train))

    def _draws_at_random(self):
        """Whether training draws from torch's global generator (so it runs in a seeded block).

        A user's module may draw anywhere (dropout, noise): assume it does.
        """
        return True

    def _momentum(self):
        """The momentum the optimizer gets (``momentum=None``: the optimizer's own default)."""
        return _options.effective_momentum(self.optimizer, self.momentum)

    # -- hooks the concrete estimators fill in ---------------------------------
    def _validate_targets(self, X, y, *, reset, classes=None):
        """Validate X and y; return ``(X, encoded y, n_outputs)``."""
        raise NotImplementedError

    def _criterion(self):
        """The per-sample loss module class (``reduction='none'`` is passed)."""
        raise NotImplementedError

    def _validation_score(self, y_true, y_pred):
        """Score (higher is better) of raw network outputs on encoded targets."""
        raise NotImplementedError

    def _outputs_meaning(self, n_outputs):
        """What the module's ``n_outputs`` output columns are, in words (for error messages)."""
        raise NotImplementedError

    def _takes_flat_outputs(self):
        """Whether a module of one output may return it flat, ``(n,)``, as the column ``(n, 1)``."""
        return False

    def _sample_weight(self, y, sample_weight):
        """Per-sample loss weights, or None for uniform ones."""
        return sample_weight

    def _stratify(self, y):
        """Labels to stratify the validation split on, or None."""
        return None

    # -- fitting ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Features, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Train the network on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or dict of array-like
            Training data; pandas DataFrames and scipy sparse matrices are accepted.
            TorchClassifier and TorchRegressor also take arrays of any rank, and, for a
            module of several inputs, a dict (or :class:`skorch.helper.SliceDict`) of
            arrays of ``n_samples`` rows each, passed to ``forward`` as keyword arguments.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if self.warm_start and hasattr(self, "net_"):
            return self._train_more(X, y, sample_weight, epochs=self.max_epochs)
        setup = self._prepare_fit(self._validate_fit_data(X, y, sample_weight))
        return self._train_setup(setup, self.max_epochs, X, y)

    def _validate_fit_data(self, X, y, sample_weight=None, classes=None):
        """Validate the data of a fresh fit; return its :class:`FitData` (and set its attributes)."""
        before = dict(self.__dict__)
        X, y, n_outputs = self._validate_targets(X, y, reset=True, classes=classes)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=self._float_dtype(),
                                                 ensure_non_negative=True)
        attributes = {name: value for name, value in self.__dict__.items()
                      if name not in before or value is not before[name]}
        return FitData(X, y, sample_weight, n_outputs, attributes)

    def _prepare_fit(self, data):
        """Set up a fresh fit of validated ``data`` up to its training loop; return its :class:`FitSetup`.

        Sets the attributes validation gave, checks the arguments, picks the
        device, draws the seed, holds out the early-stopping rows, and builds
        and initialises ``net_``. ``fit`` and the batched engine both start
        here; ``data`` (from :meth:`_validate_fit_data`) may come from another
        estimator of the same class and ``dtype``, validated on the same rows.
        """
        self.__dict__.update(data.attributes)
        weight = self._sample_weight(data.y, data.sample_weight)
        self._check_arguments()
        self.device_ = resolve_device(self.device)
        self._seed_rng = np.random.RandomState(first_seed(self.random_state))
        seed = int(self._seed_rng.randint(MAX_SEED))
        train, valid = self._split_rows(data.y, seed)
        self._check_training_size(len(train))
        self.net_ = self._build_net(self._fitted_input_shape(), data.n_outputs,
                                    math.ceil(len(train) / self.batch_size))
        self.net_.shuffle_seed = seed
        with seeded(seed, self.device_):
            self.net_.initialize()
            rng_state = generator_state(self.device_) if self._draws_at_random() else None
            self._check_outputs(data.X, train, data.n_outputs)  # its draws, if any, are undone
        return FitSetup(data.X, data.y, weight, data.n_outputs, seed, train, valid, rng_state)

    def _train_setup(self, setup, epochs, X, y):
        """Run a prepared fit's training loop; ``X`` and ``y`` as the caller gave them (callbacks)."""
        train, valid = self._datasets(setup.X, setup.y, setup.weight, setup.train, setup.valid)
        self._train_epochs(train, valid, epochs, setup.seed, X, y, state=setup.rng_state)
        return self

    def _train_more(self, X, y, sample_weight, *, epochs):
        """Continue training the fitted net on ``(X, y)`` (``warm_start``, ``partial_fit``)."""
        X_valid, y_encoded, _ = self._validate_targets(X, y, reset=False)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X_valid, dtype=self._float_dtype(),
                                                 ensure_non_negative=True)
        weight = self._sample_weight(y_encoded, sample_weight)
        seed = int(self._seed_rng.randint(MAX_SEED))
        train, valid = self._datasets(X_valid, y_encoded, weight, *self._split_rows(y_encoded, seed))
        self._check_training_size(len(train))
        self.net_.shuffle_seed = seed
        self._train_epochs(train, valid, epochs, seed, X, y)
        return self

    def _train_epochs(self, train, valid, epochs, seed, X, y, state=None):
        """Train ``epochs`` epochs, then check the weights and store the fitted attributes.

        Dropout draws from torch's global generator, so a dropout net trains in a
        seeded block (from ``state`` when given); others, side by side in
        threads, outside it. Training runs on the thread count
        :func:`sknet.parallel.fit_threads` chooses for its steps' work, restored after.
        """
        self.net_.train_split = None if valid is None else predefined_split(valid)
        with fit_threads(self._step_work(train), self.device_):  # a small net on one thread: docs/threads.md
            if self._draws_at_random():
                with seeded(seed, self.device_, state):
                    self._train_reporting_epochs(train, epochs, X, y)
            else:
                self._train_reporting_epochs(train, epochs, X, y)
        self._check_weights_finite()
        self._check_loss_growth()
        self._store_fitted_attributes()

    def _replay_fit_callbacks(self, X, y):
        """Report a fit that already ran (in the batched engine) to scikit-learn callbacks, epoch by epoch."""
        context = self._init_callback_context(max_subtasks=self.n_iter_)
        context.call_on_fit_task_begin(estimator=self, X=X, y=y)
        for _ in range(self.n_iter_):
            context.subcontext(task_name="epoch").call_on_fit_task_begin(
                estimator=self).call_on_fit_task_end(estimator=self)
        context.call_on_fit_task_end(estimator=self, X=X, y=y)

    def _train_reporting_epochs(self, train, epochs, X, y):
        """Train, telling scikit-learn callbacks (if any are set) about each epoch."""
        context = self._init_callback_context(max_subtasks=epochs)
        context.call_on_fit_task_begin(estimator=self, X=X, y=y)
        if not getattr(self, "_skl_callbacks", None):
            self.net_.train_epochs(train, epochs)
        else:
            # Attached for this call only: the context must not be pickled with the net.
            self.net_.callbacks_.append(("sklearn_epochs", EpochTasks(self, context)))
            try:
                self.net_.train_epochs(train, epochs)
            finally:
                self.net_.callbacks_.pop()
        context.call_on_fit_task_end(estimator=self, X=X, y=y)

    def _check_arguments(self):
        """Check what the parameter constraints cannot express."""
        if self._takes_module():
            self._check_module_params()
        for callback in self.callbacks or []:
            if not isinstance(callback, (Callback, tuple)):
                raise TypeError(
                    "The 'callbacks' parameter must be a list of skorch callbacks or "
                    f"(name, callback) tuples. Got {callback!r} in it."
                )

    def _check_module_params(self):
        """Every ``module__<name>`` must be an argument of the module's constructor."""
        unexpected = sorted(getattr(self, "_unexpected_params", {}))
        if unexpected:
            raise TypeError(f"{type(self).__name__} got unexpected keyword argument(s) {unexpected}; the "
                            "module's arguments are given as 'module__<name>'.")
        accepted = inspect.signature(self.module).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            return
        unknown = sorted(name for name in self._module_params() if name[len("module__"):] not in accepted)
        if unknown:
            raise ValueError(f"{self.module.__name__} takes no argument(s) "
                             f"{[name[len('module__'):] for name in unknown]} (set as {unknown}); its "
                             f"constructor takes {list(accepted)}.")

    def _split_rows(self, y, seed):
        """Positions of the rows trained on and of the early-stopping validation rows (or None)."""
        if not self.early_stopping:
            return np.arange(len(y)), None
        return self._validation_split(y, seed)

    def _datasets(self, X, y, weight, train, valid):
        """In-memory datasets of the training rows and of the validation rows (None without)."""
        dtype = self._float_dtype()
        if valid is None:  # every row: no copy
            return InMemoryDataset(X, y, weight, self.device_, dtype), None
        return tuple(InMemoryDataset(X[rows], y[rows], None if weight is None else weight[rows],
                                     device=self.device_, dtype=dtype) for rows in (train, valid))

    def _float_dtype(self):
        """The numpy floating-point type the network computes in."""
        return np.dtype(self.dtype)

    def _check_training_size(self, n_train):
        """Refuse a training set the module cannot train on (nothing to check for any module)."""

    def _validation_split(self, y, seed):
        """Row indices of the training part and of the early-stopping validation part."""
        n_valid = math.ceil(self.validation_fraction * len(y))  # as train_test_split counts
        if n_valid < 2 or n_valid >= len(y):
            raise ValueError(
                f"The validation set is too small: early_stopping holds out validation_fraction="
                f"{self.validation_fraction} of {len(y)} samples, that is {n_valid}, and needs at least 2 "
                "for validation and 1 for training. Increase 'validation_fraction' or the size of your "
                "dataset, or set early_stopping=False."
            )
        split = dict(test_size=self.validation_fraction, random_state=seed)
        rows = np.arange(len(y))
        try:
            return train_test_split(rows, stratify=self._stratify(y), **split)
        except ValueError:  # too few samples of some class to stratify
            return train_test_split(rows, **split)

    def _build_net(self, input_shape, n_outputs, steps_per_epoch):
        """The skorch net, not initialised, for samples of ``input_shape`` and ``n_outputs`` outputs."""
        optimizer = _options.optimizer_class(self.optimizer)
        optimizer_kwargs = _options.optimizer_kwargs(optimizer, self._momentum(), self.weight_decay)
        if optimizer_kwargs.get("weight_decay"):  # like scikit-learn's alpha: weights only
            optimizer_kwargs["param_groups"] = [(pattern, {"weight_decay": 0.0})
                                                for pattern in _options.NO_DECAY_PATTERNS]
        return SkorchNet(
            module=self._module_class(),
            **{f"module__{k}": v for k, v in self._module_kwargs(input_shape, n_outputs).items()},
            module_dtype=getattr(torch, self.dtype),
            criterion=self._criterion(),
            criterion__reduction="none",
            optimizer=optimizer,
            lr=self.lr,
            **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
            l1=self.l1,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=self._callbacks(steps_per_epoch),
            # skorch formats the epoch table even when verbose=0: about 5% of a small fit. And
            # without validation data, its valid_loss callback only looks for one every epoch.
            **({} if self.verbose else {"callbacks__print_log": None}),
            **({} if self.early_stopping else {"callbacks__valid_loss": None}),
            device=self.device_,
            verbose=self.verbose,
        )

    def _callbacks(self, steps_per_epoch):
        callbacks = [("divergence", StopOnDivergence())]
        if self.early_stopping:
            callbacks.append(("valid_score", ValidationScore(self._validation_score)))
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.patience, threshold=self.tol,
                threshold_mode="abs", load_best=True, sink=silent)))
        if self.lr_schedule is not None:
            policy, kwargs, step_every = _options.lr_scheduler(
                self.lr_schedule, lr=self.lr, max_epochs=self.max_epochs,
                steps_per_epoch=steps_per_epoch, patience=self.patience,
                monitor="valid_loss" if self.early_stopping else "train_loss")
            callbacks.append(("lr_schedule", LRScheduler(policy, step_every=step_every, **kwargs)))
        return callbacks + list(self.callbacks or [])

    def _store_fitted_attributes(self):
        history = self.net_.history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"])
        self.best_epoch_ = self._kept_epoch()
        if self.early_stopping:
            self.validation_scores_ = list(history[:, "valid_score"])
            self.validation_loss_curve_ = list(history[:, "valid_loss"])
            self.best_validation_score_ = self.validation_scores_[self.best_epoch_ - 1]

    # -- prediction ------------------------------------------------------------
    def _forward(self, X):
        """Raw network outputs for X, as a float64 tensor (checked finite)."""
        check_is_fitted(self)
        X = self._validate_input(X)
        dataset = InMemoryDataset(X, device=self.device_, dtype=self._float_dtype())
        with torch.no_grad():
            out = self.net_.forward(dataset, training=False, device="cpu")
        return self._checked_outputs(out)

    def _checked_outputs(self, out):
        """Raw outputs (on the CPU) as float64, refusing NaN and infinite ones."""
        broken = ~torch.isfinite(out).reshape(len(out), -1).all(dim=1)
        if broken.any():
            # A NaN logit would otherwise become an arbitrary class, an inf a meaningless score.
            raise FloatingPointError(
                f"The network's outputs are NaN or infinite for {int(broken.sum())} of {len(out)} "
                f"samples: its weights are too large for these inputs ({self.dtype}), typically after "
                "training diverged. Retrain with a smaller lr or scaled inputs."
            )
        return out.double()

    def _respond(self, method, outputs):
        """What ``method`` (``"predict"``, ``"predict_proba"``) returns for these raw outputs."""
        raise NotImplementedError

    def save(self, path: FilePath) -> None:
        """Store the fitted model in a file that loads without unpickling anything.

        Weights go through ``torch.save`` (read back with
        ``weights_only=True``) and parameters as JSON; use :func:`sknet.load`
        to read the file. A module class of your own is stored by its import
        path; :func:`sknet.load` imports it only when its module is imported
        already or the class is listed in its ``trusted``. The optimizer state is not stored: a loaded model
        predicts, and further training starts a fresh optimizer.

        The file is written next to ``path`` under a temporary name and then
        renamed onto it, so an interrupted save leaves the previous file (or
        none), never a partial one.

        Parameters
        ----------
        path : str or path-like
            Destination file.

        Raises
        ------
        FileNotFoundError
            The folder of ``path`` does not exist.
        IsADirectoryError
            ``path`` is a folder.
        TypeError
            A parameter cannot be stored (e.g. skorch ``callbacks``): pickle
            such a model instead.
        """
        save(self, path)

    def __setstate__(self, state):
        super().__setstate__(state)
        if "net_" in state:
            # skorch maps a CUDA-trained net onto the CPU when no GPU is present.
            self.device_ = str(self.net_.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags


