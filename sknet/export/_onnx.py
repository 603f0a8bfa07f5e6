"""``to_onnx`` and ``save_onnx``: a fitted model holding sknet nets as one ONNX graph, and its inputs.

skl2onnx converts the scikit-learn steps; the sknet estimators' converters
(``_converters.py``) and ``TransformedTargetRegressor``'s (``_target.py``) are
given to it. The graph's inputs follow ``X_sample``: one array ``X``, one input
per key of a dict, or one per column of a DataFrame that a ``ColumnTransformer``
takes by name. :func:`onnx_inputs` turns data into what they take.
"""

import os
import tempfile

import numpy as np
import onnx
import scipy.sparse as sp
from skl2onnx import convert_sklearn, get_latest_tested_opset_version
from skl2onnx.common.data_types import (
    BooleanTensorType,
    DoubleTensorType,
    FloatTensorType,
    Int32TensorType,
    Int64TensorType,
    StringTensorType,
)
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..nets._base import BaseTorchNet
from ..nets._torch import TorchClassifier
from ._converters import register
from ._module_graph import ExportError, max_torch_opset
from ._target import convert_target, target_shapes

_TENSOR_TYPES = {"f4": FloatTensorType, "f8": DoubleTensorType, "i8": Int64TensorType, "i4": Int32TensorType,
                 "b1": BooleanTensorType}
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_}


def to_onnx(model, X_sample, *, target_opset=None, options=None):
    """Convert a fitted model holding sknet nets into one ONNX graph.

    Parameters
    ----------
    model : fitted estimator
        An sknet estimator, or a scikit-learn pipeline, ``ColumnTransformer``
        or ``TransformedTargetRegressor`` holding one; a fitted search stands
        for its ``best_estimator_``.
    X_sample : array-like, DataFrame or dict of arrays
        A few rows of the data the model will be given. Their types and
        sample shapes make the graph's inputs: one array ``"X"`` of
        ``X_sample``'s dtype (float32, float64, or integer token ids), one input
        per key of a dict, or, when the model begins with a ``ColumnTransformer``,
        one input per column of a DataFrame, named after it.
    target_opset : int, default=None
        The ONNX opset of the graph (of its main domain). None is the highest
        that torch's TorchScript exporter writes (20 with torch 2.13, 17 with
        torch 2.2), or skl2onnx's latest tested where that is lower; a later
        one converts the nets' graphs with ONNX's version converter.
    options : dict, default=None
        skl2onnx's conversion options, by estimator class or ``id``. sknet
        classifiers take ``{"zipmap": False}`` (the default here: a
        ``probabilities`` tensor), ``True`` or ``"columns"``, as scikit-learn's
        classifiers do in skl2onnx.

    Returns
    -------
    onnx.ModelProto
        A classifier's graph outputs ``label`` and ``probabilities``
        (``predict`` and ``predict_proba``); a regressor's ``variable``, of
        shape ``(n_samples, n_targets)``.

    Raises
    ------
    sknet.export.ExportError
        A net whose module does not export (torch's reason is given), or a
        step sknet cannot write (a target transform that is not affine).

    Examples
    --------
    >>> import onnxruntime as ort
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sknet import MLPClassifier
    >>> from sknet.export import onnx_inputs, to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=20, random_state=0)).fit(X, y)
    >>> graph = to_onnx(model, X[:5])
    >>> session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    >>> label, proba = session.run(None, onnx_inputs(session, X[:3]))
    >>> bool((label == model.predict(X[:3])).all())
    True
    """
    model = _fitted(model)
    nets = _nets(model)
    for cls in {type(net) for net in nets}:
        register(cls)
    options = dict(options or {})
    for net in nets:  # a probabilities tensor unless the user chose otherwise for this net or its class
        if isinstance(net, TorchClassifier) and type(net) not in options and id(net) not in options:
            options[type(net)] = {"zipmap": False}
        _check_zipmap(net, {**options.get(type(net), {}), **options.get(id(net), {})})
    if target_opset is None:
        target_opset = min(max_torch_opset(), get_latest_tested_opset_version())
    return convert_sklearn(model, name=type(model).__name__, initial_types=input_types(model, X_sample),
                           target_opset=target_opset, options=options or None,
                           custom_shape_calculators={TransformedTargetRegressor: target_shapes},
                           custom_conversion_functions={TransformedTargetRegressor: convert_target})


def save_onnx(model, path, X_sample, **kwargs):
    """Write :func:`to_onnx`'s graph of ``model`` to ``path``.

    The file is written next to ``path`` under a temporary name and renamed
    onto it, so a failed export or an interrupted write leaves the previous
    file (or none), never a partial one.

    Parameters
    ----------
    model : fitted estimator
        As for :func:`to_onnx`.
    path : str or path-like
        Destination file, conventionally ``*.onnx``.
    X_sample : array-like, DataFrame or dict of arrays
        As for :func:`to_onnx`.
    **kwargs : dict
        ``target_opset`` and ``options`` of :func:`to_onnx`.
    """
    graph = to_onnx(model, X_sample, **kwargs)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".sknet-", suffix=".onnx.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(graph.SerializeToString())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def onnx_inputs(session, X):
    """The inputs of an ONNX graph from :func:`to_onnx`, for ``X``: a dict of arrays by input name.

    Parameters
    ----------
    session : onnxruntime.InferenceSession or onnx.ModelProto
        The graph, as onnxruntime runs it or as :func:`to_onnx` returns it.
    X : array-like, DataFrame or dict of arrays
        Rows of the kind ``X_sample`` was: each array is cast to its input's
        element type; a DataFrame's columns go to the inputs of their names; a
        1-D array (one text per row, say) becomes a column.

    Returns
    -------
    dict of str to ndarray
    """
    declared = _declared_inputs(session)
    if isinstance(X, dict):
        return {name: np.asarray(X[name], dtype=dtype) for name, dtype in declared.items()}
    if hasattr(X, "columns") and len(declared) > 1:
        return {name: X[[name]].to_numpy().astype(dtype) for name, dtype in declared.items()}
    (name, dtype), = declared.items()
    values = X.toarray() if sp.issparse(X) else np.asarray(X)
    return {name: (values.reshape(-1, 1) if values.ndim == 1 else values).astype(dtype)}


def input_types(model, X_sample):
    """skl2onnx's initial types for ``X_sample``: ``(name, tensor type)`` of each input of the graph."""
    if isinstance(X_sample, dict):
        return [(key, _tensor_type(np.asarray(values), key)) for key, values in X_sample.items()]
    if hasattr(X_sample, "columns") and _takes_columns(model):
        return [(str(column), _tensor_type(X_sample[[column]].to_numpy(), column))
                for column in X_sample.columns]
    values = X_sample if sp.issparse(X_sample) else np.asarray(X_sample)
    # One value per row (texts for a TfidfVectorizer) is a column, as skl2onnx's converters take it.
    return [("X", _tensor_type(values.reshape(-1, 1) if values.ndim == 1 else values, "X"))]


def _tensor_type(values, name):
    shape = [None, *values.shape[1:]]
    if values.dtype.kind in "OUS" or str(values.dtype) == "str":
        return StringTensorType(shape)
    kind = f"{values.dtype.kind}{values.dtype.itemsize}"
    if kind not in _TENSOR_TYPES:
        raise TypeError(f"X_sample's {name!r} is of dtype {values.dtype}: the ONNX graph takes float32, "
                        "float64, int64, int32, bool or string inputs. Cast it to the type the model will be "
                        "given.")
    return _TENSOR_TYPES[kind](shape)


def _takes_columns(model):
    """Whether ``model`` begins with a ColumnTransformer (which takes a DataFrame's columns by name)."""
    while isinstance(model, Pipeline | TransformedTargetRegressor):
        model = model.steps[0][1] if isinstance(model, Pipeline) else model.regressor_
    return isinstance(model, ColumnTransformer)


def _check_zipmap(net, options):
    """Refuse a ZipMap of float64 probabilities: ONNX's ZipMap takes float32 ones only."""
    if options.get("zipmap", False) is not False and net.dtype == "float64":
        raise ExportError(f"The zipmap option needs float32 probabilities, but this {type(net).__name__} has "
                          "dtype='float64': pass options={...: {'zipmap': False}} (a probabilities tensor) "
                          "or export a float32 net.")


def _fitted(model):
    """The estimator to convert: a search's ``best_estimator_``, checked fitted."""
    if hasattr(model, "cv_results_") and hasattr(model, "refit"):
        if not hasattr(model, "best_estimator_"):
            raise ValueError(f"This {type(model).__name__} has no best_estimator_ (refit=False): export one "
                             "of the models it tuned, fitted.")
        model = model.best_estimator_
    if not isinstance(model, BaseEstimator):
        raise TypeError(f"to_onnx converts a fitted scikit-learn estimator; got {type(model).__name__}.")
    check_is_fitted(model)
    return model


def _nets(model):
    """The sknet nets inside a fitted model (pipeline steps, a target transform's regressor, ...)."""
    found, stack = [], [model]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseTorchNet):
            found.append(item)
        elif isinstance(item, BaseEstimator):
            params = item.get_params(deep=False)
            stack.extend(v for v in params.values() if isinstance(v, BaseEstimator | list | tuple))
            stack.extend(getattr(item, name) for name in ("regressor_", "transformers_", "estimators_")
                         if hasattr(item, name))
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def _declared_inputs(session):
    """Each input's name and numpy dtype, for an onnxruntime session or an ONNX model."""
    if isinstance(session, onnx.ModelProto):
        return {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
                for i in session.graph.input}
    return {i.name: _NUMPY_TYPES[i.type] for i in session.get_inputs()}
