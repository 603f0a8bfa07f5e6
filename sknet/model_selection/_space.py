"""Search spaces: one notation understood by the random, Bayesian and genetic searches.

A space is a dict mapping a parameter name to one of:

- an skopt dimension: ``Real``, ``Integer`` or ``Categorical``;
- a tuple ``(low, high)`` or ``(low, high, prior)`` with ``prior`` "uniform" or
  "log-uniform": an ``Integer`` when both bounds are integers, else a ``Real``;
- a list of choices: a ``Categorical``;
- for ``RandomizedSearchCV`` only, anything with an ``rvs`` method (scipy.stats).

``RandomizedSearchCV`` is a drop-in for scikit-learn's, where a tuple is a
sequence of choices: there a range needs its prior, ``(low, high, "uniform")``.
"""

import difflib
import math
import warnings
from numbers import Integral, Real

import numpy as np
from skopt.space import Categorical, Dimension
from skopt.space import Integer as IntegerDim
from skopt.space import Real as RealDim

PRIORS = ("uniform", "log-uniform")


def to_dimension(name, spec):
    """Return the skopt dimension that ``spec`` stands for; ``name`` is for errors."""
    if isinstance(spec, Dimension):
        dim = spec
    elif isinstance(spec, tuple):
        dim = _range_dimension(name, spec)
    elif isinstance(spec, (list, np.ndarray)):
        if len(spec) == 0:
            raise ValueError(f"The search space of {name!r} is an empty list; give at least one choice.")
        dim = Categorical(list(spec))
    else:  # ValueError, as scikit-optimize raises for an invalid dimension
        raise ValueError(
            f"The search space of {name!r} must be an skopt dimension (Real, Integer, Categorical), "
            f"a (low, high) or (low, high, prior) tuple, or a list of choices. Got {spec!r}."
        )
    dim.name = name
    return dim


def _range_dimension(name, spec):
    if len(spec) not in (2, 3):
        raise ValueError(
            f"The search space of {name!r} must be (low, high) or (low, high, prior). Got {spec!r}."
        )
    low, high = spec[:2]
    prior = spec[2] if len(spec) == 3 else "uniform"
    if prior not in PRIORS:
        raise ValueError(f"The prior of {name!r} must be one of {PRIORS}. Got {prior!r}.")
    if not all(isinstance(b, Real) and not isinstance(b, bool) for b in (low, high)):
        raise TypeError(f"The bounds of {name!r} must be numbers. Got {spec!r}.")
    if not all(math.isfinite(b) for b in (low, high)):
        raise ValueError(f"The bounds of {name!r} must be finite numbers. Got {spec!r}.")
    if not low < high:
        raise ValueError(
            f"The range of {name!r} is empty or inverted: low={low} must be below high={high}. "
            f"For a single value write [{low!r}]."
        )
    if prior == "log-uniform" and low <= 0:
        raise ValueError(f"A log-uniform range for {name!r} needs low > 0. Got low={low}.")
    if isinstance(low, Integral) and isinstance(high, Integral):
        return IntegerDim(int(low), int(high), prior=prior)
    return RealDim(float(low), float(high), prior=prior)


def check_space(space):
    """Validate a space dict; return ``{name: skopt dimension}`` in a fixed order."""
    if not isinstance(space, dict) or not space:
        raise ValueError(
            f"A search space must be a non-empty dict of parameter name -> range. Got {space!r}."
        )
    return {name: to_dimension(name, spec) for name, spec in sorted(space.items())}


def python_value(value):
    """numpy scalars -> Python scalars, so parameters print and compare plainly."""
    return value.item() if isinstance(value, np.generic) else value


def sample_value(dim, rng):
    """One value drawn from the skopt dimension ``dim`` with ``rng`` (a ``RandomState``)."""
    if isinstance(dim, Categorical):
        # index, not dim.rvs: keeps the user's objects (None, estimators) as they are
        return python_value(dim.categories[rng.choice(len(dim.categories), p=dim.prior_)])
    return python_value(dim.rvs(n_samples=1, random_state=rng)[0])


class DimensionDistribution:
    """Wrap an skopt dimension in the ``rvs`` interface scikit-learn's sampler expects."""

    def __init__(self, dimension):
        self.dimension = dimension

    def rvs(self, random_state=None):
        return python_value(self.dimension.rvs(n_samples=1, random_state=random_state)[0])

    def __repr__(self):
        return f"DimensionDistribution({self.dimension!r})"


def to_distributions(param_distributions):
    """Translate skopt dimensions and prior-tagged ranges for ``RandomizedSearchCV``.

    A bare ``(low, high)`` tuple is a sequence of two choices to scikit-learn's
    random search; sknet's keeps that meaning (existing code must not change
    behaviour) and warns. ``(low, high, "uniform")`` or a ``Real``/``Integer``
    dimension says "range" unambiguously.
    """
    many = param_distributions if isinstance(param_distributions, list) else [param_distributions]
    out = []
    for space in many:
        if not isinstance(space, dict):
            return param_distributions  # let scikit-learn raise its own error
        out.append({name: _distribution(name, spec) for name, spec in space.items()})
    return out if isinstance(param_distributions, list) else out[0]


def _distribution(name, spec):
    if isinstance(spec, Dimension) or (isinstance(spec, tuple) and len(spec) == 3 and spec[2] in PRIORS):
        return DimensionDistribution(to_dimension(name, spec))
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(b, Real) for b in spec):
        warnings.warn(
            f"RandomizedSearchCV treats {name}={spec!r} as two choices, as scikit-learn does. "
            f"For a range write {(*spec, 'uniform')!r} or use skopt's Real/Integer.",
            UserWarning, stacklevel=4,
        )
    elif isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[2], str):
        near = difflib.get_close_matches(spec[2], PRIORS, n=1, cutoff=0.7)
        if near and all(isinstance(b, Real) for b in spec[:2]):  # a misspelt prior, most likely
            warnings.warn(
                f"RandomizedSearchCV treats {name}={spec!r} as three choices, as scikit-learn does, "
                f"since {spec[2]!r} is not a prior; did you mean {near[0]!r}? Priors: {PRIORS}.",
                UserWarning, stacklevel=4,
            )
    return spec
