"""The ONNX graph of a fitted sknet net's torch module, by ``torch.onnx.export``.

Only this file calls torch's exporter. It traces the module in evaluation mode on
the CPU, in the net's dtype, with a batch dimension left free. A trace that
depended on the values of its inputs (data-dependent control flow) would be
wrong for other inputs, so torch's tracer warnings are errors here.
"""

import copy
import inspect
import io
import warnings

import onnx
import onnx.version_converter
import torch


class ExportError(RuntimeError):
    """A fitted model that cannot be written as an ONNX graph, and why."""


class _KeywordInputs(torch.nn.Module):
    """A module of several named inputs (a dict ``X``) called with them in a fixed order."""

    def __init__(self, module, keys):
        super().__init__()
        self.module, self.keys = module, list(keys)

    def forward(self, *arrays):
        return self.module(**dict(zip(self.keys, arrays, strict=True)))


def module_graph(net, input_dtypes, opset):
    """The ONNX model of ``net``'s module: one input per entry of ``input_dtypes``, one output.

    Parameters
    ----------
    net : fitted sknet estimator
        Its ``net_.module_`` is exported, on a copy, on the CPU, in evaluation mode.
    input_dtypes : dict of str to torch.dtype
        The module's inputs in order: ``{"X": dtype}`` for an array ``X``, the
        keys of a dict ``X`` otherwise, each with the dtype it arrives in.
    opset : int
        The ONNX opset of the graph it joins. torch writes at most
        :func:`max_torch_opset`; a later one is reached by ONNX's version
        converter (operators such as ReduceMean changed their signature).

    Returns
    -------
    onnx.ModelProto
        Inputs named as ``input_dtypes``, output ``"outputs"``, first dimension free.
    """
    module = copy.deepcopy(net.net_.module_).to("cpu").eval()
    shapes = net._fitted_input_shape()
    if isinstance(shapes, dict):
        module = _KeywordInputs(module, input_dtypes)
    else:
        shapes = {"X": shapes}
    # Two rows, so that the trace cannot specialise on a batch of one (squeeze, broadcasting).
    sample = tuple(torch.zeros((2, *shapes[name]), dtype=dtype) for name, dtype in input_dtypes.items())
    names = list(input_dtypes)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter's
            torch.onnx.export(module, sample, buffer, input_names=names, output_names=["outputs"],
                              dynamic_axes={name: {0: "N"} for name in [*names, "outputs"]},
                              opset_version=min(opset, max_torch_opset()), do_constant_folding=True,
                              **_torchscript())
    except Exception as exc:
        cls = type(net.net_.module_)
        reason = _root_cause(exc)
        hint = ("; its forward depends on the values of its inputs, which an ONNX graph cannot follow: "
                "write it with tensor operations such as torch.where"
                if isinstance(reason, torch.jit.TracerWarning) else "")
        raise ExportError(f"The module {cls.__module__}.{cls.__qualname__} of this {type(net).__name__} "
                          f"does not export to ONNX: {type(reason).__name__}: {str(reason).strip()}{hint}."
                          ) from exc
    graph = onnx.load_from_string(buffer.getvalue())
    if opset <= max_torch_opset():
        return graph
    try:
        return onnx.version_converter.convert_version(graph, opset)
    except Exception as exc:
        raise ExportError(f"torch writes this {type(net).__name__}'s module in ONNX opset "
                          f"{max_torch_opset()}, and ONNX's converter cannot bring it to opset {opset}: "
                          f"{exc}. Pass target_opset={max_torch_opset()}.") from exc


def max_torch_opset():
    """The highest opset torch's TorchScript exporter writes (17 in torch 2.2, 20 in 2.13); later ones need
    its dynamo exporter (and onnxscript). torch asks for more with a warning only, and writes wrong nodes."""
    from torch.onnx import _constants  # the one place torch keeps it; 17 is what every torch >= 2.2 writes

    return getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 17)


def _root_cause(exc):
    """The tracer's warning behind ``exc`` where there is one (raised through torch's C++, it comes back
    as a SystemError), else ``exc``."""
    seen = exc
    while seen is not None:
        if isinstance(seen, torch.jit.TracerWarning):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _torchscript():
    """The argument that picks torch's TorchScript exporter where torch has another (2.5 on)."""
    return {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
