"""Seeds and torch's global generators for a fit: reproducible fits that leave the caller's state alone."""

import functools
import os
import threading
from contextlib import contextmanager
from numbers import Integral

import numpy as np
import torch
from sklearn.utils import check_random_state

MAX_SEED = np.iinfo(np.int32).max


def first_seed(random_state):
    """``check_random_state(random_state).randint(MAX_SEED)``: the seed of a fit's seed generator.

    For an int it is the same every time, and a RandomState costs ~0.1 ms to create (a
    search's fits share their random_state): drawn once per int.
    """
    if isinstance(random_state, Integral):
        return _first_seed_of_int(int(random_state))
    return check_random_state(random_state).randint(MAX_SEED)


@functools.lru_cache(maxsize=256)
def _first_seed_of_int(random_state):
    return check_random_state(random_state).randint(MAX_SEED)


_SEEDED = threading.RLock()  # held by the thread in a seeded block


def _new_seeded_lock():
    global _SEEDED
    _SEEDED = threading.RLock()  # a forked child has no other thread that could release it


os.register_at_fork(after_in_child=_new_seeded_lock)


@contextmanager
def seeded(seed, device, state=None):
    """Seed torch's global generator of ``device`` for a block, restoring it afterwards.

    Weight initialisation and dropout draw from the global generators; forking
    keeps a fit reproducible without disturbing the caller's random state.
    ``state`` (from :func:`generator_state`), when given, is set instead of
    seeding: a fit's dropout draws go on from where its initialisation left the
    generator. One thread at a time holds such a block: fits in threads
    (joblib's threading backend) would otherwise draw from each other's seeds.
    So a fit keeps only what draws from them in the block: initialisation, and
    training with dropout.
    """
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with _SEEDED, torch.random.fork_rng(devices=cuda):
        # Only the generators the fit uses (and fork_rng restores): torch.manual_seed would also
        # reseed every other GPU for good, and costs more than a small fit's initialisation.
        if not cuda:
            if state is None:
                torch.random.default_generator.manual_seed(seed)
            else:
                torch.random.default_generator.set_state(state)
        else:
            with torch.cuda.device(cuda[0]):
                if state is None:
                    torch.random.default_generator.manual_seed(seed)
                    torch.cuda.manual_seed(seed)
                else:
                    torch.cuda.set_rng_state(state)
        yield


def generator_state(device):
    """The state of torch's global generator that a fit on ``device`` draws from."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device.index or 0)
    return torch.random.default_generator.get_state()
