"""What the engine's plan weighs: which widths share a block, and whether batch sizes share ticks.

**Widths.**
Models of one depth whose layers are padded to the same widths share a block of stacked
tensors: one product per layer and step for all of them (see :class:`~._model.BatchedMLP`).
Each block costs a fixed time per layer and step besides its arithmetic (the calls of its
products, bias sums and slices), so a block per distinct width wastes time on a continuous
width range, and one block padded to the widest wastes arithmetic on a wide one.
:func:`padded_widths` merges blocks while the arithmetic the padding adds costs less than the
fixed costs it saves.

The fixed cost is counted in the floating-point operations the device does in that time: on
a 2-core CPU a forward and backward pass measured about 23 us per block and layer, at about
140 GFLOP/s, some 3 MFLOP; with the optimizer's and the loop's share, an end-to-end sweep
of 1e6 to 3e7 on ``benchmarks/bench_search.py --part space`` found 1e7 as good as any. On
a GPU a launch costs about as long while the arithmetic runs a hundred times faster.

**Batch sizes.** Models of different batch sizes can step together in ticks of the smallest
(:class:`~._group.GroupTrainer`): one group, one loop, but a larger batch's products run on
a fraction of its rows each, and its gradients make a pass through memory at every tick. On a
2-core CPU that costs more than separate loops: 48 random candidates on digits trained in
20.8 s as one group against 16.3 s as one group per batch size (``--part space`` of
``benchmarks/bench_search.py``). On a GPU, where a group of a dozen models leaves the device
idle between launches, one group is what the hardware is for.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..parallel import _run_under, forward_work, resolve_device, step_work

# Floating-point operations a block's fixed costs per layer and step are worth, per device type.
FIXED_FLOPS = {"cpu": 1e7, "cuda": 3e8}

# Multiply-adds one element written by an operation is worth, in a module's step work (what its
# thread count follows): MLPs are products, where a thread's share is the arithmetic, but a
# convolutional module's pooling, activations and im2col move many elements per multiply-add.
# About 75 multiply-adds at one thread's 150 GFLOP/s take a nanosecond, what an element of an
# operation's output costs through memory; on bench_cnn.py's grid (4 to 16 channels, whose
# multiply-adds alone put the smaller two on one thread) two threads trained 25 % faster.
ELEMENT_WORK = 64

# Whether models of different batch sizes share a group (stepping in ticks of the smallest), per
# device type.
TICKS_ACROSS_BATCH_SIZES = {"cpu": False, "cuda": True}


def shares_ticks(device):
    """Whether MLPs of different batch sizes train in one group on ``device`` (as given: "auto" too)."""
    kind = str(resolve_device(device)).split(":")[0]
    return TICKS_ACROSS_BATCH_SIZES.get(kind, True)


def padded_widths(hidden, n_features, n_outputs, rows, device="cpu"):
    """The hidden widths each model is padded to, so that models of equal padded widths share a block.

    Models of one depth are sorted by their widths; neighbouring blocks merge (padded
    layer by layer to the wider of the two) while that lowers the modelled time of a
    step: each block's arithmetic (``rows`` rows, forward and backward passes) plus a
    fixed cost per layer (:data:`FIXED_FLOPS`). Deterministic: the same models give
    the same widths.

    Parameters
    ----------
    hidden : list of tuple of int
        Each model's hidden widths (any depths).
    n_features, n_outputs : int
        The widths of the input and output layers, shared by all models.
    rows : int
        Rows per step.
    device : str or torch.device, default="cpu"
        Where the models train (the fixed cost differs).

    Returns
    -------
    padded : list of tuple of int
        For each model, widths at least its own.

    Examples
    --------
    >>> from sknet.engine._costs import padded_widths
    >>> hidden = [(60,)] * 20 + [(64,)] * 20 + [(250,)] * 20 + [(64, 64)]
    >>> sorted(set(padded_widths(hidden, 64, 10, 32)))
    [(64,), (64, 64), (250,)]
    """
    fixed = FIXED_FLOPS.get(str(device).split(":")[0], FIXED_FLOPS["cuda"])  # other accelerators: as CUDA

    def cost(widths, n_models):
        return 6 * rows * n_models * _weights(n_features, widths, n_outputs) + fixed * (len(widths) + 1)

    padded = {}
    for depth in sorted({len(h) for h in hidden}):
        counts = {}
        for h in hidden:
            if len(h) == depth:
                counts[tuple(h)] = counts.get(tuple(h), 0) + 1
        # Blocks as [padded widths, members' widths, number of models], neighbours by width.
        blocks = [[widths, [widths], n] for widths, n in sorted(counts.items())]
        while len(blocks) > 1:
            gains = []
            for left, right in zip(blocks[:-1], blocks[1:], strict=False):
                merged = tuple(map(max, left[0], right[0]))
                apart = cost(left[0], left[2]) + cost(right[0], right[2])
                gains.append(apart - cost(merged, left[2] + right[2]))
            best = max(range(len(gains)), key=gains.__getitem__)
            if gains[best] <= 0:
                break
            left, right = blocks[best], blocks.pop(best + 1)
            blocks[best] = [tuple(map(max, left[0], right[0])), left[1] + right[1], left[2] + right[2]]
        for widths, members, _ in blocks:
            padded.update(dict.fromkeys(members, widths))
    return [padded[tuple(h)] for h in hidden]


def padding_waste(hidden, padded, n_features, n_outputs):
    """The share of a step's products that padding adds: 0 without padding."""
    own = sum(_weights(n_features, h, n_outputs) for h in hidden)
    return sum(_weights(n_features, p, n_outputs) for p in padded) / own - 1 if own else 0.0


def _weights(n_features, hidden, n_outputs):
    """Multiply-adds of one row through an MLP of these widths (its number of weights)."""
    return step_work(n_features, hidden, n_outputs, 1)


def module_work(module, rows):
    """Work of a forward pass of ``module`` per row of ``rows``, for its thread count: its
    multiply-adds (:func:`~sknet.parallel.forward_work`) plus :data:`ELEMENT_WORK` for each
    element its operations write (views excepted)."""
    counter = _ElementCounter()
    try:
        n_rows = _run_under(counter, module, rows)
    except Exception:  # a module that cannot run on these rows alone: its multiply-adds only
        return forward_work(module, rows)
    return forward_work(module, rows) + ELEMENT_WORK * counter.elements / n_rows


class _ElementCounter(TorchDispatchMode):
    """Counts the elements torch's operations write under it (views write none)."""

    def __init__(self):
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.elements += sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        return out
