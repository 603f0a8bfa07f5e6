import numpy as np
import pytest
import sklearn.model_selection as skms
from scipy.stats import loguniform
from sklearn.linear_model import LogisticRegression
from skopt.space import Categorical, Integer, Real

from sknet import MLPClassifier
from sknet.model_selection import RandomizedSearchCV

SPACE = {"lr": Real(1e-4, 1e-1, prior="log-uniform"), "n_units": Integer(4, 32),
         "activation": Categorical(["relu", "tanh"]), "dropout": (0.0, 0.5, "uniform")}


def test_skopt_dimensions_and_ranges_are_sampled_within_bounds(clf_data):
    X, y = clf_data
    search = RandomizedSearchCV(MLPClassifier(max_epochs=2, device="cpu"), SPACE, n_iter=6, cv=2,
                                random_state=0).fit(X, y)
    for p in search.cv_results_["params"]:
        assert 1e-4 <= p["lr"] <= 1e-1 and 4 <= p["n_units"] <= 32 and 0 <= p["dropout"] <= 0.5
        assert p["activation"] in ("relu", "tanh") and type(p["n_units"]) is int
    assert len({p["lr"] for p in search.cv_results_["params"]}) == 6


def test_reproducible_with_random_state(clf_data):
    X, y = clf_data
    runs = [RandomizedSearchCV(LogisticRegression(), {"C": (1e-3, 1e3, "log-uniform")}, n_iter=4,
                               cv=2, random_state=3).fit(X, y).cv_results_["params"] for _ in range(2)]
    assert runs[0] == runs[1]


def test_same_results_as_scikit_learn_on_its_own_spaces(clf_data):
    X, y = clf_data
    space = {"C": loguniform(1e-3, 1e2), "fit_intercept": [True, False]}
    ours = RandomizedSearchCV(LogisticRegression(), space, n_iter=5, cv=3, random_state=0).fit(X, y)
    theirs = skms.RandomizedSearchCV(LogisticRegression(), space, n_iter=5, cv=3, random_state=0).fit(X, y)
    assert ours.cv_results_["params"] == theirs.cv_results_["params"]
    np.testing.assert_array_equal(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"])


def test_bare_tuple_keeps_scikit_learn_meaning(clf_data):
    X, y = clf_data
    with pytest.warns(UserWarning, match="two choices"):
        search = RandomizedSearchCV(LogisticRegression(), {"C": (0.1, 10.0)}, n_iter=2, cv=2,
                                    random_state=0).fit(X, y)
    assert {p["C"] for p in search.cv_results_["params"]} <= {0.1, 10.0}


def test_bad_space_is_named(clf_data):
    X, y = clf_data
    with pytest.raises(ValueError, match="'C' is empty or inverted"):
        RandomizedSearchCV(LogisticRegression(), {"C": (10.0, 1.0, "uniform")}, n_iter=2).fit(X, y)
