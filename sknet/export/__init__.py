"""Export a fitted model holding sknet nets, preprocessing included, as one ONNX graph.

Needs the ``onnx`` extra (``pip install "sknet[onnx]"``: onnx, onnxruntime and
skl2onnx). Importing this module lets skl2onnx convert sknet estimators.
"""

try:
    import onnx  # noqa: F401
    import skl2onnx  # noqa: F401
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError('sknet.export needs the onnx extra: pip install "sknet[onnx]" (onnx, onnxruntime, '
                      f"skl2onnx). {exc}") from exc

from .. import MLPClassifier, MLPRegressor, TorchClassifier, TorchRegressor
from ._converters import register
from ._module_graph import ExportError
from ._onnx import onnx_inputs, save_onnx, to_onnx

for _estimator_class in (MLPClassifier, MLPRegressor, TorchClassifier, TorchRegressor):
    register(_estimator_class)  # skl2onnx's own to_onnx converts them too; to_onnx adds subclasses

__all__ = ["ExportError", "onnx_inputs", "save_onnx", "to_onnx"]
