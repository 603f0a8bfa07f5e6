"""Type aliases of sknet's annotations: the kinds of values its public functions take.

The numpydoc docstrings say the same in words and stay the reference; these names
keep the signatures short. scikit-learn, scipy and skorch ship no type information,
so to a type checker their classes here (a sparse matrix, a splitter) are ``Any``:
they are named for the reader.
"""

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import spmatrix
from sklearn.model_selection import BaseCrossValidator
from skorch.callbacks import Callback

__all__ = ["CVParam", "Callbacks", "ClassWeight", "ErrorScore", "Features", "FilePath", "Jobs",
           "OptimizerParam", "ParamSpace", "RefitParam", "ScoringParam", "Seed"]

# X as the estimators take it: an array-like (a DataFrame too), a scipy sparse matrix (or sparse
# array: scipy's classes are Any to a type checker), or, for a module of several inputs, a dict of
# array-likes by input name (skorch's SliceDict too).
Features: TypeAlias = ArrayLike | spmatrix | Mapping[str, ArrayLike]

# A file's path: what os.fspath takes.
FilePath: TypeAlias = str | os.PathLike[str]

# random_state: a seed, a RandomState, or None (fresh entropy).
Seed: TypeAlias = int | np.random.RandomState | None

# The estimators' parameters that take several kinds of values.
OptimizerParam: TypeAlias = str | type[torch.optim.Optimizer]  # a name ("adam"), or an Optimizer subclass
ClassWeight: TypeAlias = dict[Any, float] | str | None  # {label: weight}, "balanced", or None
Callbacks: TypeAlias = list[Callback | tuple[str, Callback]] | None  # skorch callbacks, named or not

# The batched engine's jobs: (params, train_idx) pairs, each the estimator
# clone(estimator).set_params(**params) fitted on the rows train_idx.
Jobs: TypeAlias = Sequence[tuple[Mapping[str, Any], Sequence[int] | NDArray[np.integer[Any]]]]

# The searches' parameters, as scikit-learn's searches take them.
ParamSpace: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]]  # a grid, distributions, spaces
ScoringParam: TypeAlias = (str | Callable[..., Any] | Sequence[str] | Mapping[str, Callable[..., Any]]
                           | None)
RefitParam: TypeAlias = bool | str | Callable[..., Any]
CVParam: TypeAlias = int | BaseCrossValidator | Iterable[tuple[ArrayLike, ArrayLike]] | None
ErrorScore: TypeAlias = float | str  # a number, or "raise"
