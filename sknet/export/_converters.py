"""skl2onnx converters for the sknet estimators: the module's graph, then what the estimator does with it.

A classifier's graph is its module's logits, then ``predict_proba``'s softmax (the
sigmoid of each label, for multilabel targets) and ``predict``'s labels: the index
of the largest logit looked up in ``classes_`` (each label's probability above 0.5).
A regressor's is its module's outputs, as columns. Outputs are named as skl2onnx
names those of scikit-learn's estimators (``label`` and ``probabilities``;
``variable``), so code that serves a converted ``MLPClassifier`` serves these.
"""

import numpy as np
import torch
from onnx import TensorProto, helper
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
    guess_proto_type,
)

from ..nets._torch import TorchClassifier
from ._module_graph import ExportError, module_graph

# The options a classifier takes, as scikit-learn's do in skl2onnx (its classifier parser reads them);
# "nocl" (class indices for labels) is read by its ZipMap, and only its default is written here.
CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                      "nocl": [False]}

_FLOAT_TYPES = {"float32": (FloatTensorType, TensorProto.FLOAT),
                "float64": (DoubleTensorType, TensorProto.DOUBLE)}
# Integer inputs (token ids) stay integer, as fit keeps them; others are cast to the net's dtype.
_INTEGER_INPUTS = {TensorProto.INT64: torch.int64, TensorProto.INT32: torch.int32}


def register(estimator_class):
    """Let skl2onnx convert ``estimator_class`` (an sknet classifier or regressor class) and its instances."""
    if issubclass(estimator_class, TorchClassifier):
        update_registered_converter(estimator_class, f"Sknet{estimator_class.__name__}", classifier_shapes,
                                    convert_classifier, options=CLASSIFIER_OPTIONS)
    else:
        update_registered_converter(estimator_class, f"Sknet{estimator_class.__name__}", regressor_shapes,
                                    convert_regressor)


# -- shapes and types of the outputs ------------------------------------------------------------------
def label_values(classes):
    """``classes_`` as an ONNX label output holds them, and its element type, as skl2onnx writes those of
    scikit-learn's classifiers: int64 for integer, boolean and (whole) float labels, else strings."""
    kind = classes.dtype.kind
    if kind in "biuf":
        values = classes.astype(np.int64)
        if not np.array_equal(values, classes):  # labels beyond int64, which skl2onnx's outputs hold
            raise ExportError(f"classes_ {classes.tolist()!r} do not fit an int64 label output.")
        return values, TensorProto.INT64
    if kind in "US" or (kind == "O" and all(isinstance(label, str) for label in classes)):
        return np.array([str(label).encode() for label in classes]), TensorProto.STRING
    raise ExportError(f"classes_ {classes.tolist()!r} mix types: an ONNX label output holds one type "
                      "(integers or strings). Fit on labels of one type to export.")


def output_type(operator, zipmap=False):
    """The float type of the outputs, as skl2onnx gives scikit-learn's: the input's (float64 rows give
    float64 probabilities), the net's for integer inputs, float32 for a ZipMap (which takes only that)."""
    first = operator.inputs[0].type
    if zipmap is True:
        return FloatTensorType, TensorProto.FLOAT
    if isinstance(first, DoubleTensorType | FloatTensorType):
        return type(first), guess_proto_type(first)
    return _FLOAT_TYPES[operator.raw_operator.dtype]


def _zipmap(scope, net):
    return scope.get_options(net, {"zipmap": True})["zipmap"]  # skl2onnx's default for classifiers


def classifier_shapes(operator):
    net = operator.raw_operator
    rows, n_classes = operator.inputs[0].get_first_dimension(), len(net.classes_)
    if net._is_multilabel():
        operator.outputs[0].type = Int64TensorType([rows, n_classes])
    else:
        kind = label_values(net.classes_)[1]
        label_type = Int64TensorType if kind == TensorProto.INT64 else StringTensorType
        operator.outputs[0].type = label_type([rows])
    operator.outputs[1].type = output_type(operator, _zipmap(operator.scope_inst, net))[0]([rows, n_classes])


def regressor_shapes(operator):
    net = operator.raw_operator
    operator.outputs[0].type = output_type(operator)[0]([operator.inputs[0].get_first_dimension(),
                                                         net.n_outputs_])


# -- converters -----------------------------------------------------------------------------------------
def convert_classifier(scope, operator, container):
    net = operator.raw_operator
    logits = _module_outputs(scope, operator, container)
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    # predict_proba works on float64 logits (the module's, cast), as the estimator does; cast even from
    # a float64 net, whose module may return another dtype.
    wide = _cast(scope, container, logits, TensorProto.DOUBLE)
    squash = "Sigmoid" if net._is_multilabel() else "Softmax"
    proba64 = _node(scope, container, squash, [wide], **({} if net._is_multilabel() else {"axis": 1}))
    _cast(scope, container, proba64, output_type(operator, _zipmap(scope, net))[1], out=proba)
    if net._is_multilabel():
        half = _constant(scope, container, "half", TensorProto.DOUBLE, np.array(0.5))
        above = _node(scope, container, "Greater", [proba64, half])
        _cast(scope, container, above, TensorProto.INT64, out=label)
        return
    index = _node(scope, container, "ArgMax", [logits], axis=1, keepdims=0)
    values, onnx_type = label_values(net.classes_)
    classes = _constant(scope, container, "classes", onnx_type, values)
    container.add_node("Gather", [classes, index], label, axis=0,
                       name=scope.get_unique_operator_name("Gather"))


def convert_regressor(scope, operator, container):
    net = operator.raw_operator
    outputs = _module_outputs(scope, operator, container)
    shape = _constant(scope, container, "shape", TensorProto.INT64, np.array([-1, net.n_outputs_]))
    # A module of one output may return it flat, (n,): the estimator takes it as the column (n, 1).
    columns = _node(scope, container, "Reshape", [outputs, shape])
    _cast(scope, container, columns, output_type(operator)[1], out=operator.outputs[0].full_name)


def _module_outputs(scope, operator, container):
    """Put the module's graph into the container, fed by the operator's inputs; return its output's name.

    A dict ``X``'s arrays are matched to the graph's inputs by name; integer inputs
    (token ids) stay integer, others are cast to the net's dtype, as ``fit`` does.
    """
    net = operator.raw_operator
    fitted = net._fitted_input_shape()
    given = {variable.raw_name: variable for variable in operator.inputs}
    if isinstance(fitted, dict):
        if set(given) != set(fitted):
            raise ExportError(f"{type(net).__name__} was fitted on a dict X of keys {sorted(fitted)}, but "
                              f"the graph's inputs here are {sorted(given)}: give X_sample those keys.")
    elif len(given) == 1:
        given = {"X": operator.inputs[0]}
    else:
        raise ExportError(f"{type(net).__name__} takes one array, but gets {len(given)} inputs here "
                          f"({sorted(given)}).")
    dtypes, names = {}, {}
    for key in (fitted if isinstance(fitted, dict) else ["X"]):
        variable = given[key]
        kind = guess_proto_type(variable.type)
        if kind == TensorProto.STRING:
            raise ExportError(f"{type(net).__name__} gets strings here ({key!r}): it takes numbers.")
        if kind in _INTEGER_INPUTS:
            dtypes[key], names[key] = _INTEGER_INPUTS[kind], variable.full_name
        else:
            dtypes[key] = getattr(torch, net.dtype)
            names[key] = _cast(scope, container, variable.full_name, _FLOAT_TYPES[net.dtype][1], given=kind)
    graph = module_graph(net, dtypes, container.target_opset)
    return _inline(scope, container, graph, names)


def _inline(scope, container, model, inputs):
    """Copy the nodes and weights of ``model`` into the container under fresh names; return its output's.

    ``inputs`` maps the names of the graph's inputs to the variables that feed them (torch leaves
    out an input the module does not use). skl2onnx's own helper for whole graphs binds their
    outputs to the operator's; here the module's output feeds the estimator's own steps first.
    """
    graph = model.graph
    if model.functions or any(attr.type in (attr.GRAPH, attr.GRAPHS) for node in graph.node
                              for attr in node.attribute):
        raise ExportError("The module's ONNX graph has subgraphs or functions, which sknet does not inline.")
    renamed = {given.name: inputs[given.name] for given in graph.input if given.name in inputs}
    for tensor in graph.initializer:
        renamed[tensor.name] = scope.get_unique_variable_name(f"net_{tensor.name}")
        copied = TensorProto()
        copied.CopyFrom(tensor)
        copied.name = renamed[tensor.name]
        container.initializers.append(copied)
    for node in graph.node:
        renamed.update({out: scope.get_unique_variable_name(f"net_{out}") for out in node.output})
        copied = helper.make_node(node.op_type, [renamed[i] if i else "" for i in node.input],
                                  [renamed[o] for o in node.output], domain=node.domain or None,
                                  name=scope.get_unique_operator_name(f"net_{node.op_type}"))
        copied.attribute.extend(node.attribute)
        container.nodes.append(copied)
    for opset in model.opset_import:
        container.node_domain_version_pair_sets.add((opset.domain, opset.version))
    return renamed[graph.output[0].name]


def _node(scope, container, op_type, inputs, **attributes):
    """Add one node of one output; return the output's name."""
    out = scope.get_unique_variable_name(op_type.lower())
    container.add_node(op_type, inputs, out, name=scope.get_unique_operator_name(op_type), **attributes)
    return out


def _cast(scope, container, name, to, given=None, out=None):
    """``name`` as element type ``to``: itself when it is one already (``given``), else a Cast's output."""
    if given == to and out is None:
        return name
    out = out or scope.get_unique_variable_name("cast")
    container.add_node("Cast", name, out, to=to, name=scope.get_unique_operator_name("Cast"))
    return out


def _constant(scope, container, stem, onnx_type, values):
    name = scope.get_unique_variable_name(stem)
    container.add_initializer(name, onnx_type, list(values.shape), values.ravel().tolist())
    return name
