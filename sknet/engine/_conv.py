"""Groups of small convolutional modules on a CPU: each module's graph run once for all K models.

:class:`~sknet.engine._functional.BatchedModule` runs K modules with ``vmap(functional_call)``.
On a CPU, vmap turns a ``Conv2d`` into one convolution of ``K`` groups and a max pool into an
NCHW pool over ``K * C`` channels, and PyTorch runs both little faster than a loop over the models.
:func:`graph_plans` traces a module with ``torch.fx``; where every node of its graph is one
listed here, :class:`BatchedGraph` runs that graph itself on the rows of all models stacked
along the batch dimension, ``(K * n, ...)``:

- nodes that treat each row on its own (activations, pooling, flatten, dropout, arithmetic
  between a row's own values) run as written, once for all models: a row is a row of one model;
- ``Linear`` runs as one batched product (``baddbmm``) of each model's rows by its weights;
- ``Conv2d`` runs as one batched product too where it reads the module's input and that input
  has few values per output pixel (im2col: cheap columns, and no ``fold`` in the backward since
  the input needs no gradient), its output channels-last (the faster layout of the pooling after
  it); as a loop of one convolution per model on the module's input otherwise (PyTorch's own
  kernel, no grouping); and deeper in the network as vmap runs it, one grouped convolution
  (its output then copied back to the models' rows channels-last).

A max pool of a ReLU's output (its only use) runs as a ReLU of the max pool's output: the same
values and gradients (the ReLU keeps the order of values, and the gradient of a non-positive
window is zero either way) on a quarter of the elements for a 2x2 pool.

Parameters stay :class:`BatchedModule`'s ``(K, 1, numel)`` leaves and autograd computes the
backward. Anything else (a node not listed, a module the tracer cannot follow, a GPU) is left to
:class:`BatchedModule`'s vmap.
"""

import copy
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from ._functional import BatchedModule

IM2COL_MAX_COLUMNS = 16
"""A first convolution whose ``in_channels * kernel height * kernel width`` is at most this runs as
im2col and one batched product; a wider one as a loop over the models. Measured on one thread, 20
models of 128 rows, forward and backward of a 3x3 convolution: 1 -> 16 channels on 8x8, 17.5 ms
im2col, 25.9 ms loop, 39.0 ms vmap; 3 -> 16 channels on 16x16, 146 ms im2col, 53 ms loop, 200 ms
vmap. Deeper (the input needs its gradient, im2col's backward a ``fold``), 8 -> 16 channels on 8x8:
272 ms im2col, 46 ms loop, 26 ms grouped, 28 ms vmap."""

_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
                nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Identity)
_ROW_MODULES = (*_ELEMENTWISE, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
                nn.Flatten)
_ROW_FUNCTIONS = {torch.relu, F.relu, F.relu6, torch.tanh, F.tanh, torch.sigmoid, F.sigmoid, F.gelu,
                  F.leaky_relu, F.elu, F.selu, F.silu, F.mish, F.softplus, F.hardtanh, F.max_pool2d,
                  F.avg_pool2d, F.adaptive_avg_pool2d, operator.add, operator.sub, operator.mul,
                  operator.truediv, operator.neg, torch.add, torch.sub, torch.mul}
_ROW_METHODS = {"relu", "tanh", "sigmoid", "contiguous", "add", "sub", "mul", "div"}
_RELUS = (torch.relu, F.relu, "relu")


def graph_plans(template):
    """The plans of :class:`BatchedGraph` for ``template``'s class, in training and evaluation
    mode, or None where its graph holds anything not listed (the vmap path then).

    Parameters
    ----------
    template : torch.nn.Module
        A module of the group (its tensors may be on the meta device). Traced in both modes,
        since a forward may read ``self.training``.

    Returns
    -------
    plans : dict or None
        ``{training: (input node, list of (node, function), output node)}``.
    """
    plans = {}
    names = {name for name, _ in template.named_parameters()}
    for training in (True, False):
        template.train(training)
        try:
            graph = fx.Tracer().trace(template)
        except Exception:  # control flow on values, unsupported Python: vmap's business
            return None
        plan = _plan(graph, template, names, training)
        if plan is None:
            return None
        plans[training] = plan
    return plans


def _plan(graph, template, names, training):
    """The steps of ``graph``: each node with the function computing it on the merged rows."""
    nodes = list(graph.nodes)
    inputs = [node for node in nodes if node.op == "placeholder"]
    out = nodes[-1].args[0]
    if len(inputs) != 1 or not isinstance(out, fx.Node) or nodes[0] is not inputs[0]:
        return None  # one input, one tensor out: what BatchedModule's callers pass and take
    swapped = {node for node in nodes if _relu_before_max_pool(node, template)}
    steps = []
    for node in nodes[1:-1]:
        if node in swapped:
            steps.append((node, _same))  # the max pool after it applies it
            continue
        step = _step(node, template, names, training, reads_input=node.args[:1] == (inputs[0],))
        if step is None:
            return None
        steps.append((node, _relu_after(step) if node.args[:1] and node.args[0] in swapped else step))
    return inputs[0], steps, out


def _step(node, template, names, training, reads_input):
    """The function computing ``node`` as ``f(views, k, *args, **kwargs)``, or None."""
    if node.op == "call_module":
        module = template.get_submodule(node.target)
        if type(module) in (nn.Conv2d, nn.Linear):
            params = [f"{node.target}.weight"] + [f"{node.target}.bias"] * (module.bias is not None)
            if not names.issuperset(params):
                return None  # a parametrization (weight norm, ...): its tensors are elsewhere
            if isinstance(module, nn.Linear):
                return _linear(module, node.target)
            return _conv(module, node.target, reads_input) if module.padding_mode == "zeros" else None
        if type(module) is nn.Dropout:
            # the plan's mode, not the module's flag: the group sets its own template's
            return _plain(lambda x: F.dropout(x, module.p, training, module.inplace))
        if type(module) in _ROW_MODULES and _rowwise_module(module):
            return _plain(module)
        return None
    if node.op == "call_function" and node.target in _ROW_FUNCTIONS:
        return None if node.target is F.max_pool2d and _returns_indices(node) else _plain(node.target)
    if node.op == "call_function" and node.target is torch.flatten:
        return _plain(torch.flatten) if _start_dim(node) >= 1 else None
    if node.op == "call_method":
        if node.target in _ROW_METHODS or (node.target == "flatten" and _start_dim(node) >= 1):
            return _method(node.target)
        if node.target == "size" and node.args[1:] == (0,) and all(_reshape_by_rows(user, node)
                                                                    for user in node.users):
            return _rows
        if node.target in ("view", "reshape") and len(node.args) > 1 and _rows_size(node.args[1]):
            return _method(node.target)
    return None


def _returns_indices(node):
    return node.kwargs.get("return_indices", node.args[6] if len(node.args) > 6 else False) is not False


def _rowwise_module(module):
    """Whether a parameter-free module of the list treats each row on its own as configured."""
    if isinstance(module, nn.Flatten):
        return module.start_dim >= 1
    return not getattr(module, "return_indices", False)


def _start_dim(node):
    start = node.kwargs.get("start_dim", node.args[1] if len(node.args) > 1 else 0)
    return start if isinstance(start, int) else -1


def _rows_size(arg):
    """Whether a view's first size is ``x.size(0)``: the number of rows, all models' together."""
    first = arg[0] if isinstance(arg, tuple | list) and arg else arg
    return isinstance(first, fx.Node) and first.op == "call_method" and first.target == "size"


def _reshape_by_rows(user, size):
    """Whether ``user`` is a view or reshape whose first size, and only that, is ``size``."""
    if user.op != "call_method" or user.target not in ("view", "reshape"):
        return False
    sizes = user.args[1] if len(user.args) == 2 and isinstance(user.args[1], tuple | list) else user.args[1:]
    return (bool(sizes) and sizes[0] is size and all(s is not size for s in sizes[1:])
            and user.args[0] is not size)


def _relu_before_max_pool(node, template):
    """Whether ``node`` is a ReLU whose output is used by one max pool only (without indices), and
    if it works in place, its input by nothing else (which would see the ReLU's values)."""
    if node.op == "call_module":
        relu = template.get_submodule(node.target)
        is_relu, inplace = type(relu) is nn.ReLU, getattr(relu, "inplace", False)
    else:
        is_relu = node.op in ("call_function", "call_method") and node.target in _RELUS
        inplace = node.kwargs.get("inplace", False)
    if not is_relu or len(node.users) != 1 or len(node.args) != 1:
        return False
    if inplace and (not isinstance(node.args[0], fx.Node) or len(node.args[0].users) != 1):
        return False
    (user,) = node.users
    if user.args[:1] != (node,):
        return False
    if user.op == "call_module":
        pool = template.get_submodule(user.target)
        return type(pool) is nn.MaxPool2d and not pool.return_indices
    return user.op == "call_function" and user.target is F.max_pool2d and not _returns_indices(user)


def _same(views, k, x, *args, **kwargs):
    return x


def _rows(views, k, x, dim):
    return x.size(dim)


def _plain(function):
    def step(views, k, *args, **kwargs):
        return function(*args, **kwargs)
    return step


def _method(name):
    def step(views, k, x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    return step


def _relu_after(step):
    def swapped(views, k, *args, **kwargs):
        return torch.relu(step(views, k, *args, **kwargs))
    return swapped


def _linear(module, name):
    def step(views, k, x):
        weight, bias = views[f"{name}.weight"], views.get(f"{name}.bias")
        rows = x.reshape(k, -1, x.shape[-1])  # model by model: its rows (and any middle dimensions)
        if bias is None:
            out = torch.bmm(rows, weight.transpose(1, 2))
        else:
            out = torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))
        return out.view(*x.shape[:-1], module.out_features)
    return step


def _conv(module, name, reads_input):
    """A convolution of K models on their merged rows: im2col, a loop, or a grouped convolution."""
    numeric = not isinstance(module.padding, str)
    columns = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
    if reads_input and numeric and module.groups == 1 and columns <= IM2COL_MAX_COLUMNS:
        run = _im2col_conv
    else:
        run = _looped_conv if reads_input else _grouped_conv

    def step(views, k, x):
        return run(module, x, views[f"{name}.weight"], views.get(f"{name}.bias"), k)
    return step


def _im2col_conv(conv, x, weight, bias, k):
    """One batched product of each model's weights (and bias) by its input's columns: for each
    model a plane of ``rows * pixels`` values per weight, and a plane of ones for the bias. The
    output is a channels-last view of the product, ``(K * rows, C_out, H, W)``."""
    (ph, pw), (sh, sw), (dh, dw) = conv.padding, conv.stride, conv.dilation
    kh, kw = conv.kernel_size
    x = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    windows = x.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)[..., ::dh, ::dw]
    n, c, height, width = windows.shape[:4]
    # Planes, not rows of c * kh * kw values: the copy runs along rows of pixels, and the bias is
    # one more weight (measured, forward of 1 -> 16 channels on 8x8, 20 models of 128 rows: 3.3 ms
    # against 14 ms for rows of 9 values and the bias broadcast by baddbmm).
    size = c * kh * kw
    cols = x.new_empty(k, size + (bias is not None), n // k * height * width)
    cols[:, :size].view(k, c, kh, kw, n // k, height, width).copy_(
        windows.reshape(k, n // k, c, height, width, kh, kw).permute(0, 2, 5, 6, 1, 3, 4))
    w = weight.reshape(k, conv.out_channels, size)
    if bias is not None:
        cols[:, size] = 1
        w = torch.cat([w, bias.unsqueeze(2)], dim=2)
    out = torch.bmm(cols.transpose(1, 2), w.transpose(1, 2))
    return out.view(n, height, width, conv.out_channels).permute(0, 3, 1, 2)


def _looped_conv(conv, x, weight, bias, k):
    """PyTorch's own convolution of each model's rows, one call per model."""
    rows = x.reshape(k, -1, *x.shape[1:])
    return torch.cat([F.conv2d(rows[i], weight[i], None if bias is None else bias[i], conv.stride,
                               conv.padding, conv.dilation, conv.groups) for i in range(k)])


def _grouped_conv(conv, x, weight, bias, k):
    """The models as groups of one convolution, rows ``(n, K * C, H, W)``: what vmap runs. Its
    output goes back to the models' rows channels-last, where the pooling after it is faster (two
    convolutions 1 -> 8 -> 16 on 8x8, a max pool, 20 models of 128 rows, one thread, a training
    step: 51 ms against 62 ms copied back as NCHW)."""
    n = len(x) // k
    grouped = x.reshape(k, n, *x.shape[1:]).transpose(0, 1).reshape(n, -1, *x.shape[2:])
    out = F.conv2d(grouped, weight.reshape(-1, *weight.shape[2:]),
                   None if bias is None else bias.reshape(-1), conv.stride, conv.padding, conv.dilation,
                   conv.groups * k)
    height, width = out.shape[2:]
    rows = out.view(n, k, -1, height, width).permute(1, 0, 3, 4, 2).reshape(k * n, height, width, -1)
    return rows.permute(0, 3, 1, 2)


class BatchedGraph(BatchedModule):
    """K modules of one class run by their traced graph on all models' rows at once.

    :class:`BatchedModule` in all but how the forward computes (see the module's docstring):
    the same ``(K, 1, numel)`` parameters, the same interface.

    Parameters
    ----------
    modules : list of torch.nn.Module
        Initialised modules of one class whose graph :func:`graph_plans` accepts.
    plans : dict
        :func:`graph_plans`'s answer for them.
    seed : int, default=0
        Seed of the dropout masks in training: one generator for the group, each model's rows
        their own masks (reproducible, not those of each module's own fit).
    """

    def __init__(self, modules, plans, seed=0):
        super().__init__(modules, seed=seed)
        self.plans = plans

    def _batched(self, training):
        first, steps, out = self.plans[training]

        def run(views, buffers, X):
            k, n = X.shape[:2]
            env = {first: X.reshape(k * n, *X.shape[2:])}
            for node, step in steps:
                args, kwargs = fx.node.map_arg((node.args, node.kwargs), env.__getitem__)
                env[node] = step(views, k, *args, **kwargs)
            return env[out].reshape(k, n, *env[out].shape[1:])
        return run


def stack_conv_modules(modules, seed=0):
    """:class:`BatchedGraph` of ``modules`` where they are on a CPU and their graph allows it,
    else None."""
    if any(p.device.type != "cpu" for p in modules[0].parameters()):
        return None  # on a GPU the grouped convolution is cuDNN's: vmap is not slow there
    plans = graph_plans(copy.deepcopy(modules[0]).to("meta"))
    return None if plans is None else BatchedGraph(modules, plans, seed=seed)


def stack_modules(modules, seed=0):
    """K initialised modules of one class as one batched model with :class:`BatchedMLP`'s interface:
    a :class:`BatchedGraph` where :func:`stack_conv_modules` gives one, else the vmap path,
    :class:`~sknet.engine._functional.BatchedModule`."""
    return stack_conv_modules(modules, seed=seed) or BatchedModule(modules, seed=seed)


__all__ = ["BatchedGraph", "graph_plans", "stack_conv_modules", "stack_modules"]
