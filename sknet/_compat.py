"""What differs between the releases of sknet's dependencies that it supports.

scikit-learn's callback API (``sklearn.callback``: ``set_callbacks``, ``ProgressBar``)
is new in scikit-learn 1.9. sknet's estimators and searches report their tasks to it
through :class:`CallbackSupportMixin`; on older scikit-learn, the mixin here gives them
a context that does nothing, so the same code runs and no callback is ever called.
The ``caller`` and ``callback_ctx`` arguments of scikit-learn's ``_fit_and_score``
are new in 1.9 too. ``torch.OutOfMemoryError`` is new in torch 2.5.

It is also the one place where the searches take scikit-learn's private names (its
per-fit function, its scorers, its validation helpers): they are what a drop-in search
builds on, scikit-learn may change them in any release, and its own search tests, run
against sknet's searches (``tests/model_selection/test_upstream.py``), guard them.
"""

from collections.abc import Callable
from contextlib import nullcontext
from inspect import signature
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from sklearn.metrics._scorer import _MultimetricScorer, _PassthroughScorer, _Scorer
from sklearn.model_selection._search import BaseSearchCV
from sklearn.model_selection._search_successive_halving import (
    HalvingGridSearchCV as SklearnHalvingGridSearchCV,
)
from sklearn.model_selection._search_successive_halving import (
    HalvingRandomSearchCV as SklearnHalvingRandomSearchCV,
)
from sklearn.model_selection._validation import (
    _fit_and_score,
    _insert_error_scores,
    _score,
    _warn_or_raise_about_fit_failures,
)
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.validation import _check_method_params, _is_arraylike, _num_features, _num_samples

if TYPE_CHECKING:  # scikit-learn's decorator of fit, typed: the methods it wraps keep their signatures
    _Method = TypeVar("_Method", bound=Callable[..., Any])

    def _fit_context(*, prefer_skip_nested_validation: bool) -> Callable[[_Method], _Method]: ...
else:
    from sklearn.base import _fit_context

__all__ = ["CallbackSupportMixin", "NoCallbackContext", "NoCallbackSupportMixin", "OutOfMemoryError",
           "fit_and_score_kwargs",
           # scikit-learn's private names:
           "BaseSearchCV", "SklearnHalvingGridSearchCV", "SklearnHalvingRandomSearchCV", "_MultimetricScorer",
           "_PassthroughScorer", "_Scorer",
           "_check_method_params", "_fit_and_score", "_fit_context", "_insert_error_scores", "_is_arraylike",
           "_num_features", "_num_samples", "_routing_enabled", "_safe_split", "_score",
           "_warn_or_raise_about_fit_failures"]


class NoCallbackContext:
    """A callback context with no callbacks: every call does nothing.

    It answers the calls sknet makes on scikit-learn's ``CallbackContext``, with
    the same arguments (all ignored) and the same kind of return value.
    """

    def subcontext(self, task_name="", task_id=None, max_subtasks=0, sequential_subtasks=True):
        """The context of a subtask: another one that does nothing."""
        return NoCallbackContext()

    def call_on_fit_task_begin(self, *, estimator, X=None, y=None, metadata=None,
                               reconstruction_attributes=None):
        """Call no callback; return ``self``, as scikit-learn's does, so that an end call can be chained."""
        return self

    def call_on_fit_task_end(self, *, estimator, X=None, y=None, metadata=None,
                             reconstruction_attributes=None):
        """Call no callback; return False: no callback asks to stop."""
        return False

    def propagate_callback_context(self, sub_estimator):
        """Propagate nothing to ``sub_estimator``: a context manager that does nothing."""
        return nullcontext()


class NoCallbackSupportMixin:
    """Stands in for scikit-learn's ``CallbackSupportMixin`` where scikit-learn has none (< 1.9).

    It has no ``set_callbacks``: without scikit-learn's callback API there is
    nothing to set.
    """

    def _init_callback_context(self, task_name="fit", task_id=0, max_subtasks=0, sequential_subtasks=True):
        """Return the root context of a fit: one that does nothing.

        Parameters
        ----------
        task_name, task_id, max_subtasks, sequential_subtasks : object
            As scikit-learn's ``CallbackSupportMixin._init_callback_context`` takes them; ignored.

        Returns
        -------
        context : NoCallbackContext
        """
        return NoCallbackContext()


try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9
    CallbackSupportMixin = NoCallbackSupportMixin

# Any device's (torch >= 2.5; torch.cuda's is the same class there), or CUDA's before.
OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

# What scikit-learn's _fit_and_score does not take of what sknet passes it (before 1.9).
_NOT_TAKEN = frozenset({"caller", "callback_ctx"}) - set(signature(_fit_and_score).parameters)


def fit_and_score_kwargs(kwargs):
    """``kwargs`` for scikit-learn's ``_fit_and_score``, less what this release of it does not take.

    ``caller`` and ``callback_ctx`` are new in scikit-learn 1.9.

    Parameters
    ----------
    kwargs : dict
        Keyword arguments for scikit-learn 1.9's ``_fit_and_score``.

    Returns
    -------
    kwargs : dict
    """
    return {k: v for k, v in kwargs.items() if k not in _NOT_TAKEN}
