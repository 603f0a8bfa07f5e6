"""K torch modules of one class as one batched model, through ``torch.func``.

Any module whose parameters have the same names and shapes in all K copies
can be stacked (``torch.func.stack_module_state``) and run as one model with
``vmap(functional_call)``, each copy on its own batch. Autograd computes the
gradients: slower than :class:`~sknet.engine._model.BatchedMLP`'s hand-written
pass, but it takes any architecture that vmap can trace. :func:`vmap_refusal`
says beforehand whether a module is one of them.

Each parameter is kept as a ``(K, 1, numel)`` leaf tensor: the batched
optimizers broadcast per-model ``(K, 1, 1)`` columns over their tensors, and
the module sees a view of it in its own shape.
"""

import copy

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from .._options import takes_weight_decay
from ..parallel import torch_threads


def tensor_layout(module):
    """Names, shapes and dtypes of a module's parameters and buffers: what stacking needs equal."""
    return tuple((name, tuple(t.shape), t.dtype) for name, t in module.state_dict().items())


def has_hand_written_backward(estimator):
    """Whether the fitted or prepared ``estimator`` is one of sknet's MLPs (their flat arguments
    describe its ``MLPModule``), which :class:`BatchedMLP` trains (faster, and with dropout masks
    equal to its sequential fit's); any other module goes through :class:`BatchedModule`."""
    from ..nets._mlp import BaseMLP
    from ..nets._module import MLPModule

    return isinstance(estimator, BaseMLP) and type(estimator.net_.module_) is MLPModule


class BatchedModule:
    """K modules of one class trained as one model with ``vmap(functional_call)`` and autograd.

    The interface is :class:`~sknet.engine._model.BatchedMLP`'s, so that
    ``GroupTrainer`` and ``predict_batched`` drive either.

    Parameters
    ----------
    modules : list of torch.nn.Module
        Initialised modules whose parameters and buffers have the same names, shapes
        and dtypes. They are copied (stacked), not modified, until :meth:`write_module`.
    seed : int, default=0
        Seed of the random draws (dropout) in training: vmap draws different masks for
        each model (``randomness="different"``) from one generator of the group,
        reproducible but not the masks of each module's own fit.

    Notes
    -----
    Rows that pad a model's shorter batch run through the model with the others
    (their loss weighs 0): a module whose output for one row depends on other rows
    in training (batch statistics) would see them. :func:`vmap_refusal` refuses
    modules that update buffers in training, and those whose rows mix.
    """

    def __init__(self, modules, seed=0):
        params, buffers = stack_module_state(modules)
        self.names = list(params)
        self.shapes = [tuple(params[name].shape[1:]) for name in self.names]
        self.params = [params[name].detach().reshape(len(modules), 1, -1).requires_grad_()
                       for name in self.names]
        self.buffers = {name: tensor.detach() for name, tensor in buffers.items()}
        penalized = getattr(modules[0], "penalized_weights", None)
        ids = {id(p) for p in penalized()} if penalized is not None else None
        self.penalized = [(id(p) in ids) if ids is not None else p.dim() >= 2
                          for p in modules[0].parameters()]
        self.decays = [takes_weight_decay(name) for name in self.names]
        self.template = copy.deepcopy(modules[0]).to("meta")  # its code only; tensors come stacked
        device = self.params[0].device
        self.generator = torch.Generator(device=device).manual_seed(int(seed))
        self.grads = [torch.zeros_like(p) for p in self.params]  # zero: a batch of several steps adds to them
        self._out = None

    def _call(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def _batched(self, training):
        """The function of (parameter views, buffers, inputs) that computes the ``(K, n, ...)``
        outputs: vmap over the models (subclasses compute them otherwise)."""
        return vmap(self._call, randomness="different")

    def parameters(self):
        """Stacked ``(K, 1, numel)`` tensors to optimise, and whether each takes weight decay."""
        return self.params, self.decays

    def spans(self):
        """The models each tensor of :meth:`parameters` stacks: all of them."""
        return [slice(0, len(self.params[0]))] * len(self.params)

    def _views(self):
        return {name: p.view(len(p), *shape) for name, p, shape in zip(self.names, self.params, self.shapes,
                                                                         strict=True)}

    def forward(self, X, training=False, rows=None, counts=None, batches=None):
        """Outputs ``(K, n, n_outputs)`` of inputs ``(K, n, ...)``, model k on ``X[k]``.

        With ``training=True`` the modules run in training mode (dropout on, buffers
        updated) and autograd records the pass for :meth:`backward`. ``rows`` and
        ``counts`` (the real rows of each batch) are not needed: padding rows weigh 0
        in the loss; nor are ``batches`` (vmap draws its own dropout masks).
        """
        self.template.train(training)
        batched = self._batched(training)
        if not training:
            with torch.no_grad():
                return _columns(batched(self._views(), self.buffers, X), X)
        with torch.enable_grad(), _rng_from(self.generator):
            self._out = batched(self._views(), self.buffers, X)
        return _columns(self._out.detach(), X)  # the losses compute their own gradient: no graph through them

    def backward(self, grad_out, accumulate=False):
        """Gradients of the loss for every tensor of :meth:`parameters`, in its order.

        Written into the same tensors (``grads``) at every call (the optimizers may keep
        views), or added to them with ``accumulate``.

        Parameters
        ----------
        grad_out : torch.Tensor of shape (K, n, n_outputs)
            Gradient of the loss with respect to the last training :meth:`forward`'s output.
        accumulate : bool, default=False
            Add the gradients to ``grads`` instead of overwriting them.
        """
        grads = torch.autograd.grad(self._out, self.params, grad_out.reshape(self._out.shape))
        self._out = None
        (torch._foreach_add_ if accumulate else torch._foreach_copy_)(self.grads, list(grads))
        return self.grads

    def zero_grads(self, stepped):
        """Zero the gradients of the models ``stepped`` (a ``(K,)`` bool array)."""
        index = torch.as_tensor(np.flatnonzero(stepped), device=self.grads[0].device)
        for grad in self.grads:
            grad.index_fill_(0, index, 0)

    def l1_norms(self):
        """Sum of the absolute penalised weights of each model, shape ``(K,)``."""
        with torch.no_grad():
            return sum(p.abs().sum(dim=(1, 2))
                       for p, on in zip(self.params, self.penalized, strict=True) if on)

    def add_l1_grads(self, l1):
        """Add the gradient of ``l1 * l1_norms()`` (``l1`` of shape ``(K, 1, 1)``) to the gradients."""
        with torch.no_grad():
            for grad, p, on in zip(self.grads, self.params, self.penalized, strict=True):
                if on:
                    grad.addcmul_(p.sign(), l1)

    def keep_models(self, index):
        """Keep only the models ``index`` (ascending positions, a tensor), in that order."""
        with torch.no_grad():
            self.params = [p[index].requires_grad_() for p in self.params]
            self.buffers = {name: b[index] for name, b in self.buffers.items()}
        self.grads = [torch.zeros_like(p) for p in self.params]  # zero: a batch of several steps adds to them

    def unstack(self, k, tensors):
        """Model ``k``'s slices of ``tensors`` (laid out as :meth:`parameters`), by parameter name,
        in the parameters' shapes."""
        return {name: tensor[k].detach().reshape(shape).clone()
                for name, tensor, shape in zip(self.names, tensors, self.shapes, strict=True)}

    def state_dict(self, k):
        """Parameters and buffers of model ``k`` under the module's names."""
        state = self.unstack(k, self.params)
        state.update({name: b[k].clone() for name, b in self.buffers.items()})
        return state

    def write_module(self, k, module):
        """Write model ``k``'s parameters and buffers into ``module``, a module of its class."""
        tensors = module.state_dict(keep_vars=True)
        expected = sorted([*self.names, *self.buffers])
        if sorted(tensors) != expected:
            raise KeyError(f"The module's tensors {sorted(tensors)} are not the model's {expected}.")
        with torch.no_grad():
            for name, p, shape in zip(self.names, self.params, self.shapes, strict=True):
                tensors[name].copy_(p[k].view(shape))
            for name, b in self.buffers.items():
                tensors[name].copy_(b[k])

    def finite(self):
        """Whether each model's parameters are all finite: a ``(K,)`` bool array on the host."""
        with torch.no_grad():
            finite = torch.stack([torch.isfinite(p).flatten(1).all(dim=1) for p in self.params])
        return finite.all(dim=0).cpu().numpy()


def _columns(out, X):
    """Outputs ``(K, n, n_outputs)``: a module's single output returned flat, ``(n,)`` per model,
    as the column its targets are (as ``SkorchNet.infer`` takes it)."""
    flat = out.dim() < 3 and out.numel() == X.shape[0] * X.shape[1]
    return out.reshape(*X.shape[:2], 1) if flat else out


class _rng_from:
    """Run a block with torch's default generator (of the device of ``generator``) in the state of
    ``generator``, then keep the state it reached there and restore the default one: vmap draws
    from the default generator, and a model's training must neither depend on nor move it."""

    def __init__(self, generator):
        self.generator = generator
        self.cuda = generator.device.type == "cuda"

    def _get(self):
        return torch.cuda.get_rng_state(self.generator.device) if self.cuda else torch.get_rng_state()

    def _set(self, state):
        if self.cuda:
            torch.cuda.set_rng_state(state, self.generator.device)
        else:
            torch.set_rng_state(state)

    def __enter__(self):
        self.saved = self._get()
        self._set(self.generator.get_state())

    def __exit__(self, *exc):
        self.generator.set_state(self._get())
        self._set(self.saved)
        return False


def vmap_refusal(module: torch.nn.Module, example_input: torch.Tensor) -> str | None:
    """Why ``module`` cannot be trained as a ``BatchedModule`` (vmap), or None when it can.

    Two copies of the module (on its device) run a vmapped forward and backward on
    two rows of ``example_input`` each, in training mode, then a forward in
    evaluation mode. It refuses modules that vmap cannot trace (control flow on
    tensor values, ``.item()``, ...), that update their buffers in training (batch
    statistics, which would include the rows padding shorter batches), and whose
    output for one row depends on the other rows.

    Parameters
    ----------
    module : torch.nn.Module
        An initialised module (it is copied, not modified).
    example_input : torch.Tensor of shape (n, ...)
        Rows as the module takes them (at least one; the first two are used), of the
        dtype and on the device the module trains with.

    Returns
    -------
    reason : str or None

    Examples
    --------
    >>> import torch
    >>> from sknet.engine import vmap_refusal
    >>> print(vmap_refusal(torch.nn.Linear(3, 2), torch.randn(4, 3)))
    None
    """
    with torch_threads(1):  # two rows: a second thread only waits (seconds on a busy machine)
        return _refusal(module, example_input)


def _refusal(module, example_input):
    rows = example_input[:2]
    if len(rows) == 1:
        rows = rows.expand(2, *rows.shape[1:])
    name = type(module).__name__
    try:
        model = BatchedModule([copy.deepcopy(module), copy.deepcopy(module)])
        buffers = {key: b.clone() for key, b in model.buffers.items()}
        out = model.forward(rows.expand(2, *rows.shape), training=True)
        if out.dim() != 3:
            return f"{name} returns outputs of shape {tuple(out.shape[1:])}, not (n_rows, n_outputs)"
        model.backward(torch.ones_like(out))
        if any(not torch.equal(b, model.buffers[key]) for key, b in buffers.items()):
            return f"{name} updates its buffers in training (batch statistics would include padding rows)"
        together = model.forward(rows.expand(2, *rows.shape))
    except Exception as exc:  # vmap's own message says what it cannot trace
        return f"{name} cannot be vmapped ({type(exc).__name__}: {_first_line(exc)})"
    mixed = f"{name}'s output for a row depends on the other rows of its batch"
    try:
        alone = model.forward(rows[:1].expand(2, 1, *rows.shape[1:]))
    except Exception:  # a module that needs several rows (batch statistics in evaluation)
        return mixed
    return mixed if not torch.allclose(together[:, :1], alone, rtol=1e-4, atol=1e-6) else None


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


__all__ = ["BatchedModule", "has_hand_written_backward", "tensor_layout", "vmap_refusal"]
