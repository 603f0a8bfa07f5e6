"""max_time: every strategy stops cleanly at the end of the round that passes it, with its results."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from sknet import MLPClassifier
from sknet.model_selection import (
    BayesSearchCV,
    GeneticSearchCV,
    GridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)

NET = MLPClassifier(max_epochs=2, random_state=0, device="cpu", dtype="float64")
# One width: rounds of other sizes then stack models of the same shapes, so float64 results compare
# exactly on any BLAS (other padded widths could sum in another order).
SPACE = {"lr": (1e-3, 1e-1, "log-uniform"), "weight_decay": [0.0, 1e-4]}
GRID = {"lr": list(np.logspace(-3, -1, 10)), "weight_decay": [0.0, 1e-4]}


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=120, n_features=6, random_state=0)


SEARCHES = {
    # name: (make(max_time), candidates of the first round, of the whole search)
    "grid": (lambda t: GridSearchCV(NET, GRID, cv=3, max_time=t), 11, 20),
    "random": (lambda t: RandomizedSearchCV(NET, SPACE, n_iter=15, cv=3, random_state=0, max_time=t), 11, 15),
    "halving": (lambda t: HalvingRandomSearchCV(NET, SPACE, n_candidates=9, factor=3, resource="max_epochs",
                                                min_resources=1, max_resources=9, cv=3, random_state=0,
                                                max_time=t), 9, 9 + 3 + 1),
    "bayes": (lambda t: BayesSearchCV(NET, SPACE, n_iter=8, n_points=4, cv=3, random_state=0, max_time=t),
              4, 8),
    "genetic": (lambda t: GeneticSearchCV(NET, SPACE, population_size=4, generations=3, cv=3, random_state=0,
                                          max_time=t), 4, None),
}


@pytest.mark.parametrize("name", SEARCHES)
def test_a_passed_deadline_stops_the_search_after_its_first_round_with_its_results(data, name):
    make, first, _ = SEARCHES[name]
    search = make(1e-9).fit(*data)  # passed as soon as the first round ends
    assert search.timed_out_ is True
    assert len(search.cv_results_["params"]) == first
    assert np.isfinite(search.best_score_) and hasattr(search, "best_estimator_")
    search.predict(data[0][:3])
    if name == "halving":  # scikit-learn's rung attributes count the rungs trained
        assert (search.n_iterations_, search.n_candidates_, search.n_remaining_candidates_) == (1, [9], 9)
        assert len(search.n_resources_) == 1


@pytest.mark.parametrize("name", SEARCHES)
def test_a_deadline_not_reached_changes_nothing(data, name):
    make, _, whole = SEARCHES[name]
    timed, free = make(1e9).fit(*data), make(None).fit(*data)
    assert timed.timed_out_ is False and not hasattr(free, "timed_out_")
    if whole is not None:
        assert len(timed.cv_results_["params"]) == whole
    np.testing.assert_array_equal(timed.cv_results_["mean_test_score"], free.cv_results_["mean_test_score"])


def test_max_time_is_validated_by_scikit_learn(data):
    with pytest.raises(ValueError, match="max_time"):
        RandomizedSearchCV(NET, SPACE, n_iter=2, max_time=0).fit(*data)
