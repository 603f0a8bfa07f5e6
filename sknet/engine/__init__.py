"""Batched training: many jobs of an sknet net (any torch module) trained as a few stacked models.

A job is ``(params, train_idx)``. Jobs that share a training loop (see
:func:`group_jobs`) train together, and each model keeps its own learning rate,
momentum, weight decay, L1 penalty, initialisation, shuffling and rows. Each trained
job comes back as an ordinary fitted estimator, equal (up to float rounding, without
dropout) to the one its own ``fit`` would give. :func:`predict_batched` runs
many fitted nets on the same rows in one forward pass.

sknet's MLPs are stacked by hand (``BatchedMLP``): the weights of those of equal
widths as ``(K, in, out)`` tensors, every step one ``baddbmm`` per layer and width
for all their K models and the rest of the step once for the whole group, with a
hand-written backward pass. Any other module (a ``TorchClassifier``'s or
``TorchRegressor``'s) is stacked with ``torch.func`` (``BatchedModule``) and trained
with ``vmap`` and autograd; :func:`vmap_refusal` says whether a module can be.

Jobs that differ only in ``max_epochs`` train once, and a job can go on from the
:class:`TrainingState` an earlier call left it in, where a shorter fit is the start
of a longer one (:func:`continuation_refusal`): halving on epochs and pruning rely on it.
:func:`train_sequential` trains the same jobs, from the same states, one at a time by each
estimator's own skorch loop, and leaves states either function goes on from.
"""

from ._functional import vmap_refusal
from ._jobs import TrainingState, can_batch, continuation_refusal, group_jobs
from ._predict import predict_batched
from ._sequential import train_sequential
from ._train import train_batched

__all__ = ["TrainingState", "can_batch", "continuation_refusal", "group_jobs", "predict_batched",
           "train_batched", "train_sequential", "vmap_refusal"]
