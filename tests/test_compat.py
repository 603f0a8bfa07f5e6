"""sknet._compat: what stands in for newer dependencies' APIs on older releases.

The fallbacks are used directly here, so they are tested on any release; CI's
smoke run (.ci/smoke.py) runs them for real on the lowest declared versions.
"""

from inspect import signature

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.model_selection._validation import _fit_and_score

from sknet import MLPClassifier
from sknet._compat import (
    NoCallbackContext,
    NoCallbackSupportMixin,
    OutOfMemoryError,
    fit_and_score_kwargs,
)
from sknet.model_selection import GridSearchCV


# Set, not inherited: the fallback mixin is already a base of both where scikit-learn is < 1.9.
class NoCallbackMLP(MLPClassifier):
    """The classifier as it is on scikit-learn without the callback API."""

    _init_callback_context = NoCallbackSupportMixin._init_callback_context


class NoCallbackGrid(GridSearchCV):
    """The grid search as it is on scikit-learn without the callback API."""

    _init_callback_context = NoCallbackSupportMixin._init_callback_context


def test_the_fallback_context_does_nothing_and_answers_every_call():
    estimator = MLPClassifier()
    before = dict(vars(estimator))
    root = NoCallbackSupportMixin()._init_callback_context(max_subtasks=2)
    assert isinstance(root, NoCallbackContext)
    assert root.call_on_fit_task_begin(estimator=estimator, X=None, y=None, metadata=None) is root
    sub = root.subcontext(task_name="epoch", task_id=None, max_subtasks=0, sequential_subtasks=True)
    assert isinstance(sub, NoCallbackContext)
    assert sub.call_on_fit_task_begin(estimator=estimator).call_on_fit_task_end(estimator=estimator) is False
    with root.propagate_callback_context(estimator) as value:
        assert value is None
    assert vars(estimator) == before  # nothing attached, nothing left behind


@pytest.mark.parametrize("engine", ["batched", "sequential"])
def test_a_search_of_a_net_runs_on_the_fallback_context_as_on_scikit_learns(engine):
    X, y = load_iris(return_X_y=True)
    grid = {"lr": [0.003, 0.03]}
    results = [search(MLPClassifier(max_epochs=5, random_state=0), grid, cv=2, engine=engine).fit(X, y)
               for search in (GridSearchCV, NoCallbackGrid)]
    expected, fallback = (r.cv_results_ for r in results)
    np.testing.assert_allclose(fallback["mean_test_score"], expected["mean_test_score"])
    assert fallback["params"] == expected["params"]
    np.testing.assert_array_equal(results[1].predict(X), results[0].predict(X))


def test_a_net_fits_on_the_fallback_context_as_on_scikit_learns():
    X, y = load_iris(return_X_y=True)
    expected = MLPClassifier(max_epochs=5, random_state=0).fit(X, y)
    net = NoCallbackMLP(max_epochs=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(net.predict_proba(X), expected.predict_proba(X))
    net._replay_fit_callbacks(X, y)  # what a batched search does for each net it trained


def test_fit_and_score_gets_only_what_it_takes():
    given = {"X": 1, "caller": 2, "callback_ctx": 3}
    kept = fit_and_score_kwargs(given)
    assert kept["X"] == 1
    assert set(kept) == set(given) & set(signature(_fit_and_score).parameters)


def test_out_of_memory_error_catches_cuda_s():
    assert issubclass(torch.cuda.OutOfMemoryError, OutOfMemoryError)
