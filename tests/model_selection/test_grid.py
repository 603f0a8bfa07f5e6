import warnings

import numpy as np
import pytest
import sklearn.model_selection as skms
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier
from sknet.model_selection import GridSearchCV

NET = dict(max_epochs=5, random_state=0, device="cpu")


def _comparable(cv_results):
    return {k: v for k, v in cv_results.items() if "time" not in k}


@pytest.mark.parametrize("scoring, refit", [(None, True), (["accuracy", "f1_macro"], "f1_macro")])
def test_same_results_as_scikit_learn(clf_data, scoring, refit):
    X, y = clf_data
    grid = {"C": [0.01, 1.0], "fit_intercept": [True, False]}
    kw = dict(cv=3, scoring=scoring, refit=refit, return_train_score=True)
    ours = GridSearchCV(LogisticRegression(), grid, **kw).fit(X, y)
    theirs = skms.GridSearchCV(LogisticRegression(), grid, **kw).fit(X, y)
    a, b = _comparable(ours.cv_results_), _comparable(theirs.cv_results_)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
    assert ours.best_params_ == theirs.best_params_ and ours.best_index_ == theirs.best_index_


def test_pipeline_ending_in_an_sknet_net(clf_data):
    X, y = clf_data
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**NET))
    search = GridSearchCV(pipe, {"mlpclassifier__lr": [1e-5, 1e-2]}, cv=3).fit(X, y)
    assert search.best_params_ == {"mlpclassifier__lr": 1e-2}
    assert search.best_estimator_[-1].n_iter_ == 5


def test_diverging_candidate_gets_error_score_and_the_search_goes_on(clf_data):
    X, y = clf_data
    net = MLPClassifier(optimizer="sgd", max_epochs=20, random_state=0, device="cpu")
    search = GridSearchCV(net, {"lr": [1e-2, 1e12]}, cv=2)
    with pytest.warns(FitFailedWarning, match="diverged"):
        search.fit(X, y)
    assert search.n_batched_fits_ == 4  # the diverging member fails alone in its batched group
    assert np.isnan(search.cv_results_["mean_test_score"][1])
    assert np.isfinite(search.cv_results_["mean_test_score"][0]) and search.best_params_ == {"lr": 1e-2}
    with pytest.raises(FloatingPointError, match="diverged"):
        GridSearchCV(net, {"lr": [1e12]}, cv=2, error_score="raise").fit(X, y)


def test_parallel_results_equal_sequential(clf_data):
    X, y = clf_data
    grid = {"lr": [1e-3, 1e-2], "n_units": [8, 16]}
    one = GridSearchCV(MLPClassifier(**NET), grid, cv=2, n_jobs=1).fit(X, y)
    two = GridSearchCV(MLPClassifier(**NET), grid, cv=2, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"])


def test_progress_reaches_the_epochs_of_each_candidate(clf_data, task_counter):
    X, y = clf_data
    counter = task_counter
    search = GridSearchCV(MLPClassifier(max_epochs=3, device="cpu"), {"lr": [1e-3, 1e-2]}, cv=2)
    search.set_callbacks(counter).fit(X, y)
    # The search's fit, then 4 fits and the refit, whose tasks merge with the search's
    # candidate tasks; each ran 3 epochs.
    assert counter.begun["fit"] == 1 + 4 + 1
    assert counter.begun["epoch"] == (4 + 1) * 3


def test_rich_progress_bar_runs(clf_data):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    X, y = clf_data
    search = GridSearchCV(MLPClassifier(max_epochs=2, device="cpu"), {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitFailedWarning)
        search.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
