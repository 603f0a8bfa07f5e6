"""The ONNX graph of a fitted ``TransformedTargetRegressor``: its regressor, then the inverse transform.

skl2onnx has no converter for it. Those written here take the scalers whose inverse
is affine, with the same operations in the same order as their ``inverse_transform``
(so float64 results agree to the last bits), and the identity (no ``transformer``
nor ``func``); any other transform is refused by name.
"""

import numpy as np
from onnx import TensorProto
from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxCast, OnnxDiv, OnnxIdentity, OnnxMul, OnnxSub
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)

from ._module_graph import ExportError


def inverse_steps(transformer):
    """The inverse of a fitted target transformer as ``(operation, constant)`` steps, or an ExportError."""
    if isinstance(transformer, StandardScaler | RobustScaler):
        offset = transformer.mean_ if isinstance(transformer, StandardScaler) else transformer.center_
        return [(OnnxMul, transformer.scale_), (OnnxAdd, offset)]
    if isinstance(transformer, MinMaxScaler):
        return [(OnnxSub, transformer.min_), (OnnxDiv, transformer.scale_)]
    if isinstance(transformer, MaxAbsScaler):
        return [(OnnxMul, transformer.scale_)]
    if isinstance(transformer, FunctionTransformer) and transformer.inverse_func is None:
        return []
    raise ExportError(
        f"TransformedTargetRegressor's transformer {type(transformer).__name__} does not export: sknet "
        "exports the inverse of StandardScaler, RobustScaler, MinMaxScaler and MaxAbsScaler, or no "
        "transform. "
        "Export the regressor alone (regressor_) and invert the transform where the model is served."
    )


def target_shapes(operator):
    n_targets = getattr(operator.raw_operator.transformer_, "n_features_in_", None)  # y's columns
    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), n_targets])


def convert_target(scope, operator, container):
    model = operator.raw_operator
    version = container.target_opset
    steps = inverse_steps(model.transformer_)
    # The inverse runs in float64, as scikit-learn's inverse_transform does on the regressor's predictions.
    predicted = OnnxSubEstimator(model.regressor_, *operator.inputs, op_version=version)
    values = OnnxCast(predicted, to=TensorProto.DOUBLE, op_version=version)
    for operation, constant in steps:
        if constant is not None:  # a scaler that was not centred (with_mean=False) has no offset
            values = operation(values, np.asarray(constant, dtype=np.float64), op_version=version)
    out = OnnxIdentity(values, op_version=version, output_names=operator.outputs[:1])
    out.add_to(scope, container)
