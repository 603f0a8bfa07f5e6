"""finish_time_: when each candidate's last split was scored, for every sknet search."""

import time

import numpy as np
import pytest
from sklearn.datasets import load_iris

from sknet import MLPClassifier
from sknet.model_selection import (
    BayesSearchCV,
    GeneticSearchCV,
    GridSearchCV,
    HalvingRandomSearchCV,
    PopulationSearchCV,
    RandomizedSearchCV,
)

NET = dict(max_epochs=4, random_state=0)
SPACE = {"lr": (1e-3, 1e-1, "log-uniform")}
# Each search's rounds, in cv_results_ order: a round's candidates finish before the next round's start.
SEARCHES = {
    "grid": (lambda **kw: GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, **kw), [2]),
    "random": (lambda **kw: RandomizedSearchCV(MLPClassifier(**NET), SPACE, n_iter=3, random_state=0, **kw),
               [3]),
    "halving": (lambda **kw: HalvingRandomSearchCV(MLPClassifier(**NET), SPACE, n_candidates=6, factor=3,
                                                   resource="max_epochs", min_resources=2, max_resources=6,
                                                   random_state=0, **kw), [6, 2]),
    "bayes": (lambda **kw: BayesSearchCV(MLPClassifier(**NET), SPACE, n_iter=4, n_points=2, random_state=0,
                                         **kw), [2, 2]),
    "genetic": (lambda **kw: GeneticSearchCV(MLPClassifier(**NET), SPACE, population_size=3, generations=2,
                                             random_state=0, **kw), [3, 2]),
    "population": (lambda **kw: PopulationSearchCV(MLPClassifier(**NET), SPACE, population_size=4,
                                                   perturbation_interval=2, random_state=0, **kw), [4]),
}


@pytest.mark.parametrize("engine", ["auto", "sequential"])
@pytest.mark.parametrize("name", list(SEARCHES))
def test_each_candidate_finishes_within_the_fit_and_after_the_rounds_before_it(name, engine):
    X, y = load_iris(return_X_y=True)
    make, rounds = SEARCHES[name]
    start = time.time()
    search = make(cv=3, engine=engine).fit(X, y)
    wall = time.time() - start
    finish = search.finish_time_
    assert finish.shape == (sum(rounds),) == (len(search.cv_results_["params"]),)
    assert "finish_time" not in search.cv_results_  # scikit-learn's keys only
    assert np.isfinite(finish).all() and (finish > 0).all() and (finish <= wall).all()
    bounds = np.cumsum([0, *rounds])
    for a, b, c in zip(bounds[:-2], bounds[1:-1], bounds[2:], strict=True):
        assert finish[a:b].max() <= finish[b:c].min()


def test_served_results_finish_when_the_resumed_fit_serves_them(tmp_path):
    X, y = load_iris(return_X_y=True)
    path = str(tmp_path / "search.db")
    make, _ = SEARCHES["random"]
    make(cv=3, checkpoint=path).fit(X, y)
    time.sleep(0.2)
    start = time.time()
    resumed = make(cv=3, checkpoint=path).fit(X, y)  # every result comes from the journal
    finish = resumed.finish_time_
    assert (finish >= 0).all() and (finish <= time.time() - start).all()  # not the first run's times


def test_a_search_of_another_estimator_keeps_scikit_learns_attributes():
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert not hasattr(search, "finish_time_")  # as scikit-learn's own suite checks
