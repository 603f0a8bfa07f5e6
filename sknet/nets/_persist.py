"""save/load: weights through torch's ``weights_only`` format, parameters as JSON.

Unpickling can run arbitrary code, so a model file holds only tensors and
strings: ``torch.load(weights_only=True)`` refuses anything else. A file may
still have been edited by hand, so ``load`` checks every field against what
``save`` writes before it builds a network from it. A file names the class of a
user's module; importing a Python module runs its code, so ``load`` imports one
only when told to trust it (``trusted=``, as in skops; see ``_trust.py``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..parallel import resolve_device
from ._atomic import write_atomically
from ._trust import (
    ModuleClassName,
    cause,
    checked_trusted,
    import_path,
    qualified_name,
    resolve_module_class,
    untrusted,
    valid_class_name,
)

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

    from .._typing import FilePath

_FORMAT = "sknet-model"
_FORMAT_VERSION = 1
_FIELDS = ("format", "format_version", "estimator", "params", "fitted", "state_dict")


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _labels(value):
    return (isinstance(value, np.ndarray) and value.ndim == 1 and len(value) >= 2
            and len(set(value.tolist())) == len(value))


def _sample_shape(value):
    """Whether ``value`` is the shape of an array X's sample: a tuple of positive ints."""
    return isinstance(value, tuple) and len(value) >= 1 and all(map(_positive_int, value))


def _device(value):
    try:
        return isinstance(value, str) and torch.device(value).type in ("cpu", "cuda", "mps")
    except (RuntimeError, TypeError):
        return False


# What load accepts of each fitted attribute: a check and its words for the error message.
_FITTED_CHECKS = {
    "n_features_in_": (_positive_int, "a positive int"),
    "feature_names_in_": (lambda v: isinstance(v, np.ndarray) and v.ndim == 1
                          and all(isinstance(n, str) for n in v.tolist()), "a 1-D array of str"),
    "classes_": (_labels, "a 1-D array of at least 2 distinct labels"),
    "n_outputs_": (_positive_int, "a positive int"),
    "_y_ndim": (lambda v: type(v) is int and v in (1, 2), "1 or 2"),
    "n_iter_": (_positive_int, "a positive int"),
    "loss_curve_": (lambda v: isinstance(v, list) and all(map(_number, v)), "a list of numbers"),
    "best_epoch_": (_positive_int, "a positive int"),
    "validation_scores_": (lambda v: isinstance(v, list) and all(map(_number, v)), "a list of numbers"),
    "validation_loss_curve_": (lambda v: isinstance(v, list) and all(map(_number, v)), "a list of numbers"),
    "best_validation_score_": (_number, "a number"),
    "_multilabel": (lambda v: isinstance(v, bool), "True or False"),
    "_input_shape": (lambda v: _sample_shape(v) or (isinstance(v, dict) and len(v) >= 1 and all(
                         isinstance(k, str) and (s == () or _sample_shape(s)) for k, s in v.items())),
                     "a tuple of positive ints, or a dict of them by str key (a dict X)"),
    "steps_per_epoch": (_positive_int, "a positive int"),
    "device_": (_device, "a torch device such as 'cpu' or 'cuda:0'"),
}
_FITTED = tuple(name for name in _FITTED_CHECKS if name not in ("steps_per_epoch", "device_"))
# The estimator classes save writes and load reads, by name: (the class, the fitted attributes of
# _FITTED_CHECKS that are its own). Each class declares itself with @saveable where it is defined.
_SAVEABLE: dict[str, tuple[type, frozenset[str]]] = {}
_OPTIONAL_FITTED = {"feature_names_in_", "validation_scores_", "validation_loss_curve_",
                    "best_validation_score_", "_multilabel"}  # files of sknet before multilabel lack it
_ARRAY_KINDS = "biufUO"  # bool, integers, floats, text, objects (mixed labels): what fit stores


def saveable(*own_fitted):
    """Class decorator: ``save`` writes estimators of this class, and ``load`` reads them by its name.

    ``own_fitted`` names the fitted attributes (of those ``load`` checks) that this
    class has and the other saveable classes may not, e.g. ``classes_``.
    """
    unknown = set(own_fitted) - set(_FITTED_CHECKS)
    if unknown:
        raise ValueError(f"load has no check for the fitted attribute(s) {sorted(unknown)}")

    def register(cls):
        _SAVEABLE[cls.__name__] = (cls, frozenset(own_fitted))
        return cls

    return register


def _encode(value, name):
    """Turn a parameter or attribute into JSON-able data, tagging what JSON lacks."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__array__": [_encode(v, name) for v in value.tolist()], "dtype": value.dtype.str}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, name) for v in value]}
    if isinstance(value, list):
        return [_encode(v, name) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, name), _encode(v, name)] for k, v in value.items()]}
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        if getattr(torch.optim, value.__name__, None) is value:
            return {"__optimizer__": value.__name__}
    if name == "module" and isinstance(value, type) and issubclass(value, torch.nn.Module):
        return {"__module_class__": import_path(value)}
    if isinstance(value, np.random.RandomState) and name == "random_state":
        return None  # only matters for refitting; documented in save()
    raise TypeError(
        f"Cannot save {name}={value!r}: save() stores plain values, arrays and torch.optim "
        "optimizers only. Use pickle for models with custom callbacks or objects."
    )


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return _decode_array(_decode(value["__array__"]), np.dtype(value["dtype"]))
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_decode(k): _decode(v) for k, v in value["__dict__"]}
    if "__optimizer__" in value:
        optimizer = getattr(torch.optim, value["__optimizer__"], None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise ValueError(f"Unknown optimizer {value['__optimizer__']!r} in the model file.")
        return optimizer
    raise ValueError(f"Unexpected entry {value!r} in the model file.")


def _decode_param(name, value):
    """A decoded parameter; the module class (``module``) as a name, looked up later by ``load``."""
    if name != "module" or not (isinstance(value, dict) and "__module_class__" in value):
        return _decode(value)
    class_name = value["__module_class__"]
    if set(value) != {"__module_class__"} or not isinstance(class_name, str):
        raise ValueError(f"Unexpected entry {value!r} in the model file.")
    if not valid_class_name(class_name):
        raise ValueError(f"the module class {class_name!r} is not named 'package.module:Qualified.Name'")
    return ModuleClassName(class_name)


def _decode_array(items, dtype):
    if dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"an array of dtype {dtype}, which save() never writes")
    if dtype.kind == "U":
        # The text is in the file, but its width is only declared: a hand-made width
        # (U2000000000) would allocate gigabytes. Values never change, only the width.
        text = np.array(items, dtype=str)
        return text.astype(dtype) if dtype.itemsize <= max(text.dtype.itemsize, 256) else text
    return np.array(items, dtype=dtype)


def save(estimator: BaseEstimator, path: FilePath) -> None:
    """Write a fitted sknet estimator to ``path`` (see the estimators' ``save``)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    fitted = {k: getattr(estimator, k) for k in _FITTED if hasattr(estimator, k)}
    fitted["steps_per_epoch"] = _steps_per_epoch(estimator)
    fitted["device_"] = estimator.device_
    payload = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "estimator": type(estimator).__name__,
        "params": json.dumps({k: _encode(v, k) for k, v in params.items()}),
        "fitted": json.dumps({k: _encode(v, k) for k, v in fitted.items()}),
        "state_dict": {k: v.detach().cpu() for k, v in estimator.net_.module_.state_dict().items()},
    }
    write_atomically(path, lambda file: torch.save(payload, file))


def _steps_per_epoch(estimator):
    """Training steps per epoch (learning-rate schedules count them), kept across save and load."""
    history = estimator.net_.history
    if history:
        return history[-1, "train_batch_count"]
    return estimator._loaded_steps_per_epoch  # a loaded model has no history


def load(path: FilePath, *, trusted: Sequence[str] | None = None) -> BaseEstimator:
    """Load a model written by ``save``, without unpickling any object.

    A file names the class of its network's module (``"package.module:Class"``,
    the ``module`` parameter of :class:`TorchClassifier` and
    :class:`TorchRegressor`). Importing a Python module runs its code, so
    ``load`` takes the class from its module only when that module is imported
    already (sknet's own, or one you imported), or when ``trusted`` lists the
    class: then it imports the module.

    Parameters
    ----------
    path : str or path-like
        File written by the ``save`` method of an sknet estimator.
    trusted : list (or tuple) of str, default=None
        Module classes, named ``"package.module:Class"``, whose modules
        ``load`` may import, and which it may build for real (on the CPU)
        where they cannot be built on torch's ``meta`` device to check the
        file's sizes. List only classes whose code you have checked, in files
        you trust: :func:`get_untrusted_types` lists the classes a file names
        whose modules are not imported.

    Returns
    -------
    estimator : MLPClassifier, MLPRegressor, TorchClassifier or TorchRegressor
        The fitted estimator. A model trained on a GPU loads onto the CPU
        when no GPU is available.

    Raises
    ------
    FileNotFoundError
        There is no file at ``path``.
    IsADirectoryError
        ``path`` is a folder.
    TypeError
        ``trusted`` is not None or a list of str.
    ValueError
        The file is empty, truncated or corrupted, holds pickled objects, is
        not an sknet model, or holds a parameter, fitted attribute or weight
        that ``save`` would not have written; it names a module class whose
        module is neither imported nor trusted; or its module class cannot
        be imported or built any more, or cannot be built on torch's ``meta``
        device and is not trusted. The message names the file and the field
        or class. Nothing is imported but what is trusted, and nothing is
        allocated beyond what the file holds before it has been checked (but
        for a trusted module that cannot be built on ``meta``).

    See Also
    --------
    get_untrusted_types : The module classes a file names that ``load`` would not import.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import sknet
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = sknet.MLPClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> clf.save(path)
    >>> (sknet.load(path).predict(X) == clf.predict(X)).all()
    np.True_

    A model of your own module class loads once you have imported that
    class's module, or with ``trusted=["your.module:YourNet"]``.
    """
    trusted = checked_trusted(trusted)
    payload = _read_payload(path)
    cls = _check_header(payload, path)
    params = _decoded_field(payload, "params", path)
    named = params.get("module")
    estimator = _estimator_from_params(cls, params, path, trusted)
    # Errors name the class as the file does, which an alias in the code may not.
    class_name = (named.name if isinstance(named, ModuleClassName)
                  else qualified_name(estimator._module_class()))
    fitted = _checked_fitted(payload["estimator"], _decoded_field(payload, "fitted", path), path)
    device = fitted.pop("device_")
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"The model was trained on {device}, which is not available: loading on cpu.",
                      stacklevel=2)
        device = "cpu"
    estimator.device_ = resolve_device(device)
    steps_per_epoch = fitted.pop("steps_per_epoch")
    estimator.__dict__.update(fitted)  # every name and value checked above
    n_outputs = len(estimator.classes_) if hasattr(estimator, "classes_") else estimator.n_outputs_
    estimator._seed_rng = np.random.RandomState(0)
    with _building(estimator, class_name, path):
        estimator.net_ = estimator._build_net(estimator._fitted_input_shape(), n_outputs, steps_per_epoch)
    estimator._loaded_steps_per_epoch = steps_per_epoch
    _check_state_dict(estimator, class_name, payload["state_dict"], path, trusted)
    with _building(estimator, class_name, path):
        estimator.net_.initialize()
    estimator.net_.module_.load_state_dict(payload["state_dict"])
    return estimator


def get_untrusted_types(path: FilePath) -> list[str]:
    """The module classes a model file names that :func:`load` would not import unless trusted.

    A class counts as untrusted when the Python module defining it is not
    imported (``sys.modules``). Nothing is imported: the file is read and
    checked as far as its header and parameters.

    Parameters
    ----------
    path : str or path-like
        File written by the ``save`` method of an sknet estimator.

    Returns
    -------
    names : list of str
        The classes, sorted, each named ``"package.module:Class"``. Check
        their code, then pass them as ``load(path, trusted=names)``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, ValueError
        As :func:`load` for a missing path, a folder, or a file that is not
        a valid sknet model file.

    See Also
    --------
    load : Load a model file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import sknet
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = sknet.TorchClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> clf.save(path)
    >>> sknet.get_untrusted_types(path)  # sknet's own MLP module is imported with sknet
    []
    >>> clf2 = sknet.load(path)
    """
    payload = _read_payload(path)
    _check_header(payload, path)
    return untrusted(_decoded_field(payload, "params", path))


@contextlib.contextmanager
def _building(estimator, class_name, path):
    """Within the block, a failure to build the network raises a ValueError naming the file and class."""
    try:
        yield
    except Exception as exc:  # the module's own code raises what it likes
        raise ValueError(
            f"{path!s} holds a {type(estimator).__name__} whose module class {class_name!r} cannot be "
            f"built with the arguments it was saved with ({cause(exc)}). If the class has "
            "changed since the model was saved, restore the code it was saved with, or fit and save the "
            "model again.") from exc


def _invalid(path, problem):
    return ValueError(f"{path!s} is not a valid sknet model file: {problem}")


def _read_payload(path):
    """The object ``torch.load(weights_only=True)`` reads from ``path``, or a clear error."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "Cannot load a model: the path is a folder", os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "Cannot load a model: no such file", os.fspath(path))
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            raise _invalid(path, "the file is empty (0 bytes).")
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
                return torch.load(file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "Weights only load failed" in str(exc):  # torch read a pickle, and refused its objects
                found = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
                named = f" (it names {found.group(1)})" if found else ""
                # torch's message suggests unpickling anyway, which can run code: not repeated.
                raise _invalid(path, f"it holds pickled Python objects{named}, and sknet does not "
                               "unpickle objects (unpickling can run code). Only files written by "
                               "estimator.save() load; load pickled estimators with pickle, and only "
                               "from sources you trust.") from None
            raise _corrupted(path, size) from None
        except Exception:  # torch raises RuntimeError, EOFError, KeyError... for broken archives
            raise _corrupted(path, size) from None


def _corrupted(path, size):
    return _invalid(path, f"it is truncated or corrupted ({size} bytes that torch cannot read as a model "
                    "archive). Save the model again, or copy the file again from where it was saved.")


def _differences(kind, unknown, missing):
    """E.g. "unknown entries ['a'], missing entries ['b']", leaving out an empty part."""
    parts = [f"unknown {kind} {sorted(map(str, unknown))}"] if unknown else []
    return ", ".join(parts + ([f"missing {kind} {sorted(map(str, missing))}"] if missing else []))


def _check_header(payload, path):
    """The estimator class a payload names, after checking its format, version and fields."""
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path!s} is not an sknet model file (written by estimator.save()).")
    if payload.get("format_version") != _FORMAT_VERSION:
        raise ValueError(f"{path!s} has model format version {payload.get('format_version')}; "
                         f"this sknet reads version {_FORMAT_VERSION}.")
    unknown, missing = set(payload) - set(_FIELDS), set(_FIELDS) - set(payload)
    if unknown or missing:
        raise _invalid(path, f"{_differences('fields', unknown, missing)}; a model file has the fields "
                       f"{list(_FIELDS)}.")
    if payload["estimator"] not in _SAVEABLE:
        raise ValueError(f"Unknown estimator {payload['estimator']!r} in {path!s}.")
    return _SAVEABLE[payload["estimator"]][0]


def _decoded_field(payload, field, path):
    """The JSON field ``field`` of a payload, decoded into a dict of values."""
    try:
        if not isinstance(payload[field], str):
            raise TypeError(f"it is a {type(payload[field]).__name__}, not JSON text")
        values = json.loads(payload[field])
        if not isinstance(values, dict):
            raise TypeError("it is not a JSON object")
        decode = _decode_param if field == "params" else lambda name, value: _decode(value)
        return {name: decode(name, value) for name, value in values.items()}
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise _invalid(path, f"its {field!r} field cannot be read: {exc}") from None


def _estimator_from_params(cls, params, path, trusted):
    """An unfitted ``cls`` with ``params``, each checked as ``fit`` checks it."""
    names = set(cls._get_param_names())
    unknown = sorted(name for name in set(params) - names
                     if not ("module" in names and name.startswith("module__")))
    if unknown:
        raise _invalid(path, f"{cls.__name__} has no parameter(s) {unknown}.")
    named = params.get("module")
    if isinstance(named, ModuleClassName):  # only once the names are known good
        params["module"] = resolve_module_class(named, cls.__name__, path, trusted)
    estimator = cls(**params)
    if isinstance(named, ModuleClassName):
        with _building(estimator, named.name, path):  # the file is valid: the class lost an argument
            estimator._check_module_params()
    try:
        estimator._validate_params()  # scikit-learn's InvalidParameterError names the parameter
        estimator._check_arguments()
        if estimator.device != "auto" and not _device(estimator.device):
            raise ValueError(f"The 'device' parameter must be 'auto' or a torch device. "
                             f"Got {estimator.device!r} instead.")
    except (ValueError, TypeError) as exc:
        raise _invalid(path, f"a parameter is invalid. {exc}") from None
    return estimator


def _checked_fitted(estimator_name, fitted, path):
    """The fitted attributes of a payload, each name known and each value of its kind."""
    own = _SAVEABLE[estimator_name][1]
    others = set().union(*(theirs for name, (_, theirs) in _SAVEABLE.items() if name != estimator_name)) - own
    allowed = set(_FITTED_CHECKS) - others
    unknown = sorted(set(fitted) - allowed)
    if unknown:
        raise _invalid(path, f"unknown fitted attribute(s) {unknown}; an {estimator_name} file holds "
                       f"{sorted(allowed)}.")
    # A model fitted on a dict X has no feature count (its sample shapes are in _input_shape).
    dict_X = isinstance(fitted.get("_input_shape"), dict)
    optional = _OPTIONAL_FITTED | ({"n_features_in_"} if dict_X else set())
    missing = sorted(allowed - optional - set(fitted))
    if missing:
        raise _invalid(path, f"the fitted attribute(s) {missing} are missing.")
    for name, value in fitted.items():
        check, kind = _FITTED_CHECKS[name]
        try:
            valid = check(value)
        except (TypeError, ValueError):  # e.g. unhashable labels
            valid = False
        if not valid:
            raise _invalid(path, f"the fitted attribute {name} must be {kind}. Got {value!r:.200}.")
    if len(fitted.get("feature_names_in_", ())) not in (0, fitted.get("n_features_in_")):
        raise _invalid(path, f"feature_names_in_ names {len(fitted['feature_names_in_'])} features, "
                       f"but n_features_in_ is {fitted.get('n_features_in_')}.")
    if fitted.get("_y_ndim") == 1 and fitted["n_outputs_"] != 1:
        raise _invalid(path, "a 1-D target (_y_ndim=1) has one output, but n_outputs_ is "
                       f"{fitted['n_outputs_']}.")
    return fitted


def _check_state_dict(estimator, class_name, state_dict, path, trusted):
    """Compare the weights in a file with the network ``estimator.net_`` will build, before building it.

    The expected network is built on torch's "meta" device, which has shapes and
    dtypes but no memory: sizes read from a file cannot make ``load`` allocate
    more than the file itself holds. A module that cannot be built there (its
    constructor reads a tensor's value, which meta tensors lack) is built on the
    CPU instead, with the arguments the file gives it, when ``trusted`` lists its
    class. Weights are not cast:
    ``save`` writes them in the model's dtype, so another dtype means the file was edited.
    """
    if not isinstance(state_dict, dict):
        raise _invalid(path, f"its 'state_dict' field is a {type(state_dict).__name__}, not a dict of "
                       "tensors.")
    expected = _expected_state_dict(estimator, class_name, path, trusted)
    unknown, missing = set(state_dict) - set(expected), set(expected) - set(state_dict)
    if unknown or missing:
        raise _invalid(path, "the network's weights do not match its parameters: "
                       f"{_differences('entries', unknown, missing)}.")
    for name, want in expected.items():
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided:
            raise _invalid(path, f"the weights entry {name!r} is a {type(tensor).__name__}, not a dense "
                           "tensor.")
        if tensor.shape != want.shape:
            raise _invalid(path, f"the weights entry {name!r} has shape {tuple(tensor.shape)}, but the "
                           f"parameters give the network the shape {tuple(want.shape)}.")
        if tensor.dtype != want.dtype:
            raise _invalid(path, f"the weights entry {name!r} has dtype {tensor.dtype}, but the model's "
                           f"dtype makes it {want.dtype}.")


def _expected_state_dict(estimator, class_name, path, trusted):
    """The state_dict of the network the parameters describe: built on "meta"; where it cannot be,
    and ``trusted`` lists its class, built on the CPU."""
    net = estimator.net_

    def build():
        return net.module(**net.get_params_for("module")).to(net.module_dtype).state_dict()

    try:
        with torch.device("meta"):
            return build()
    except Exception as exc:  # e.g. Tensor.item() in __init__
        on_meta = exc
    if class_name not in trusted:
        # A real build allocates what the file's arguments ask for, before any check: only on trust.
        raise ValueError(
            f"{path!s} holds a {type(estimator).__name__} whose module class {class_name!r} cannot be "
            "built on torch's meta device, where load checks the file's sizes without allocating memory "
            f"({cause(on_meta)}). Built for real, it allocates what the file's arguments ask for before "
            f"they can be checked: if you trust the file, load it with sknet.load({os.fspath(path)!r}, "
            f"trusted=[{class_name!r}]).") from on_meta
    with _building(estimator, class_name, path), torch.device("cpu"):
        return build()
