"""``to_onnx`` and ``save_onnx``: a fitted model holding sknet nets as one ONNX graph, and its inputs.

skl2onnx converts the scikit-learn steps; the sknet estimators' converters
(``_converters.py``) and ``TransformedTargetRegressor``'s (``_target.py``) are
given to it. The graph's inputs follow ``X_sample``: one array ``X``, one input
per key of a dict, or one per column of a DataFrame that a ``ColumnTransformer``
takes by name. :func:`onnx_inputs` turns data into what they take.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

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
    UInt8TensorType,
)
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..nets._atomic import write_atomically
from ..nets._base import BaseTorchNet
from ..nets._torch import TorchClassifier
from ._converters import register
from ._module_graph import ExportError, max_torch_opset
from ._target import convert_target, target_shapes

if TYPE_CHECKING:
    from .._typing import FilePath

_TENSOR_TYPES = {"f4": FloatTensorType, "f8": DoubleTensorType, "i8": Int64TensorType, "i4": Int32TensorType,
                 "b1": BooleanTensorType, "u1": UInt8TensorType}
COLUMNS_KEY = "sknet.input_columns"  # metadata of a graph with one input per DataFrame column
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8,
                "tensor(string)": np.object_}


def to_onnx(model: BaseEstimator, X_sample: Any, *, target_opset: int | None = None,
            options: dict[Any, dict[str, Any]] | None = None) -> onnx.ModelProto:
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
        skl2onnx's conversion options, by estimator class or ``id``; a class's
        apply to its subclasses. sknet classifiers take ``{"zipmap": False}``
        (the default here, whatever other options are given: a
        ``probabilities`` tensor), ``True`` (float32 ``{class: probability}``
        dicts) or ``"columns"``, and ``"output_class_labels"``, as
        scikit-learn's classifiers do in skl2onnx.

    Returns
    -------
    onnx.ModelProto
        A classifier's graph outputs ``label`` and ``probabilities``
        (``predict`` and ``predict_proba``); a regressor's ``variable``, of
        shape ``(n_samples, n_targets)``. Their floats are of the input's type
        (the net's for integer inputs), labels int64 or strings, as skl2onnx
        writes those of scikit-learn's estimators.

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
    options = _with_defaults(options or {}, nets)
    if target_opset is None:
        target_opset = min(max_torch_opset(), get_latest_tested_opset_version())
    inputs = input_types(model, X_sample)
    graph = convert_sklearn(model, name=type(model).__name__, initial_types=inputs, target_opset=target_opset,
                            options=options or None,
                            custom_shape_calculators={TransformedTargetRegressor: target_shapes},
                            custom_conversion_functions={TransformedTargetRegressor: convert_target})
    if hasattr(X_sample, "columns") and len(inputs) > 1:
        # skl2onnx renames inputs that are not identifiers ("colour name" -> colour_name, 0 -> _0):
        # the columns behind them, in order, for onnx_inputs.
        graph.metadata_props.add(key=COLUMNS_KEY, value=json.dumps(X_sample.columns.tolist(), default=str))
    return graph


def save_onnx(model: BaseEstimator, path: FilePath, X_sample: Any, **kwargs: Any) -> None:
    """Write :func:`to_onnx`'s graph of ``model`` to ``path``.

    The file is written as an sknet net's ``save`` writes its own: under a
    temporary name next to ``path``, synced, then renamed onto it, so a failed
    export or an interrupted write leaves the previous file (or none), never a
    partial one; it gets the permissions ``open()`` would give it, and a
    symbolic link is written through.

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
    write_atomically(path, lambda file: file.write(graph.SerializeToString()))


def onnx_inputs(session: Any, X: Any) -> dict[str, np.ndarray]:
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
    declared, columns = _declared_inputs(session)
    if isinstance(X, dict):
        return {name: np.asarray(X[name], dtype=dtype) for name, dtype in declared.items()}
    if hasattr(X, "columns") and len(declared) > 1:
        return {name: X[[column]].to_numpy().astype(dtype)
                for (name, dtype), column in zip(declared.items(), columns or declared, strict=True)}
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


def _with_defaults(options, nets):
    """skl2onnx's options, with sknet's defaults: a net's class takes the options given for a class it
    derives from (skl2onnx matches classes exactly), and a classifier's ``zipmap`` is off unless set."""
    options = {key: dict(value or {}) for key, value in options.items()}
    for net in nets:
        cls = type(net)
        parents = [key for key in options if isinstance(key, type) and isinstance(net, key)]
        if cls not in options and parents:
            options[cls] = dict(options[parents[0]])
        if isinstance(net, TorchClassifier):
            mine = [options[key] for key in (cls, id(net)) if key in options]
            if not any("zipmap" in entry for entry in mine):
                options.setdefault(cls, {})["zipmap"] = False
    return options


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
    """The sknet nets inside a fitted model (pipeline steps, a target transform's regressor, ...);
    an ExportError for a target transform inside another's regressor, which sknet cannot write."""
    found = []
    for part in _parts(model):
        if isinstance(part, BaseTorchNet):
            found.append(part)
        elif isinstance(part, TransformedTargetRegressor) and any(
                isinstance(inner, TransformedTargetRegressor) for inner in _parts(part.regressor_)):
            raise ExportError("A TransformedTargetRegressor inside another's regressor does not export: "
                              "sknet writes one target transform around a regressor.")
    return found


def _parts(model):
    """``model`` and every estimator inside it, fitted ones included (``regressor_``, ``transformers_``)."""
    stack = [model]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, BaseEstimator):
            yield item
            if isinstance(item, BaseTorchNet):
                continue
            params = item.get_params(deep=False)
            stack.extend(v for v in params.values() if isinstance(v, BaseEstimator | list | tuple))
            stack.extend(getattr(item, name) for name in ("regressor_", "transformers_", "estimators_")
                         if hasattr(item, name))


def _declared_inputs(session):
    """Each input's name and numpy dtype, and the DataFrame columns behind them (or None), for an
    onnxruntime session or an ONNX model."""
    if isinstance(session, onnx.ModelProto):
        declared = {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
                    for i in session.graph.input}
        metadata = {entry.key: entry.value for entry in session.metadata_props}
    else:
        declared = {i.name: _NUMPY_TYPES[i.type] for i in session.get_inputs()}
        metadata = session.get_modelmeta().custom_metadata_map
    columns = json.loads(metadata[COLUMNS_KEY]) if COLUMNS_KEY in metadata else None
    return declared, columns
