"""save/load: weights through torch's ``weights_only`` format, parameters as JSON.

Unpickling can run arbitrary code, so a model file holds only tensors and
strings: ``torch.load(weights_only=True)`` refuses anything else.
"""

import contextlib
import errno
import json
import os
import stat
import tempfile
import warnings

import numpy as np
import torch

from ._base import resolve_device

_FORMAT = "sknet-model"
_FORMAT_VERSION = 1
_FITTED = ("n_features_in_", "feature_names_in_", "classes_", "n_outputs_", "_y_ndim", "n_iter_",
           "loss_curve_", "best_epoch_", "validation_scores_", "validation_loss_curve_",
           "best_validation_score_")


def _estimator_classes():
    from ._mlp import MLPClassifier, MLPRegressor

    return {cls.__name__: cls for cls in (MLPClassifier, MLPRegressor)}


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
        dtype = np.dtype(value["dtype"])
        return np.array(_decode(value["__array__"]), dtype=dtype)
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


def save(estimator, path):
    """Write a fitted sknet estimator to ``path`` (see ``BaseMLP.save``)."""
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
    _write_atomically(path, lambda file: torch.save(payload, file))


def _steps_per_epoch(estimator):
    """Training steps per epoch (learning-rate schedules count them), kept across save and load."""
    history = estimator.net_.history
    if history:
        return history[-1, "train_batch_count"]
    return estimator._loaded_steps_per_epoch  # a loaded model has no history


def _write_atomically(path, write):
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it onto ``path``.

    A rename within one folder is atomic, so a crash or a kill at any moment
    leaves either the old file or the new one, never a partial file (at worst a
    hidden ``.NAME.*.tmp`` file next to it).
    """
    path = os.path.realpath(os.fspath(path))  # like open(), write through a symlink to its target
    folder, name = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "Cannot save the model: the path is a folder", path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "Cannot save the model: the folder does not exist", folder)
    mode = _new_file_mode(path)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="." + name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the rename can be
        os.chmod(temporary, mode)  # mkstemp creates the file readable by its owner only
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _new_file_mode(path):
    """The permission bits ``open(path, "w")`` would leave: the old file's, or 0o666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask():
    # Linux shows the umask in /proc; os.umask can only read it by setting it, and a
    # thread creating a file in between would get the temporary value.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder):
    """Make the rename durable (POSIX); where a folder cannot be opened or synced, skip it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path):
    """Load a model written by ``save``, without unpickling any object.

    Parameters
    ----------
    path : str or path-like
        File written by :meth:`MLPClassifier.save` or :meth:`MLPRegressor.save`.

    Returns
    -------
    estimator : MLPClassifier or MLPRegressor
        The fitted estimator. A model trained on a GPU loads onto the CPU
        when no GPU is available.

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
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError and others for foreign files
        raise ValueError(f"{path!s} is not a valid sknet model file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path!s} is not an sknet model file (written by estimator.save()).")
    if payload.get("format_version") != _FORMAT_VERSION:
        raise ValueError(f"{path!s} has model format version {payload.get('format_version')}; "
                         f"this sknet reads version {_FORMAT_VERSION}.")
    classes = _estimator_classes()
    if payload.get("estimator") not in classes:
        raise ValueError(f"Unknown estimator {payload.get('estimator')!r} in {path!s}.")
    params = {k: _decode(v) for k, v in json.loads(payload["params"]).items()}
    fitted = {k: _decode(v) for k, v in json.loads(payload["fitted"]).items()}
    estimator = classes[payload["estimator"]](**params)
    device = fitted.pop("device_")
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"The model was trained on {device}, which is not available: loading on cpu.",
                      stacklevel=2)
        device = "cpu"
    estimator.device_ = resolve_device(device)
    steps_per_epoch = fitted.pop("steps_per_epoch")
    for name, value in fitted.items():
        setattr(estimator, name, value)
    n_outputs = len(estimator.classes_) if hasattr(estimator, "classes_") else estimator.n_outputs_
    estimator._seed_rng = np.random.RandomState(0)
    estimator.net_ = estimator._build_net(estimator.n_features_in_, n_outputs, steps_per_epoch)
    estimator._loaded_steps_per_epoch = steps_per_epoch
    estimator.net_.initialize()
    estimator.net_.module_.load_state_dict(payload["state_dict"])
    return estimator
