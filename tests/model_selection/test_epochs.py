"""Epoch curves for free: candidates differing only in max_epochs train once, scored at each count."""

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier, MLPRegressor
from sknet.engine import _train
from sknet.model_selection import GridSearchCV, RandomizedSearchCV

NET = dict(n_units=8, random_state=0, device="cpu", dtype="float64")


@pytest.fixture
def group_sizes(monkeypatch):
    """The number of models of each batched group the engine builds."""
    seen, init = [], _train.GroupTrainer.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append(len(self.jobs))

    monkeypatch.setattr(_train.GroupTrainer, "__init__", spy)
    return seen


@pytest.mark.parametrize("estimator, data, prefix", [
    (MLPClassifier(**NET), "clf_data", ""),
    (MLPRegressor(**NET, lr_schedule="exponential"), "reg_data", ""),
    (make_pipeline(StandardScaler(), MLPClassifier(**NET, dropout=0.2)), "clf_data", "mlpclassifier__"),
])
def test_a_grid_over_epochs_trains_each_setting_once_and_equals_separate_fits(
        request, group_sizes, estimator, data, prefix):
    X, y = request.getfixturevalue(data)
    grid = {f"{prefix}max_epochs": [2, 5, 9], f"{prefix}lr": [1e-3, 1e-2]}
    runs = {engine: GridSearchCV(estimator, grid, cv=3, engine=engine, refit=False,
                                 return_train_score=True).fit(X, y)
            for engine in ("sequential", "auto")}
    assert group_sizes == [2 * 3]  # 2 rates x 3 folds, trained once to 9 epochs
    ours, theirs = runs["auto"].cv_results_, runs["sequential"].cv_results_
    assert list(ours["params"]) == list(theirs["params"])
    for key in ("split0_test_score", "split2_test_score", "mean_test_score", "mean_train_score"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, err_msg=key)


def test_epochs_of_a_random_space_share_training_where_the_rest_repeats(clf_data, group_sizes):
    X, y = clf_data
    space = {"max_epochs": [2, 4, 8], "lr": [1e-3, 1e-2]}
    runs = {engine: RandomizedSearchCV(MLPClassifier(**NET), space, n_iter=5, cv=3, engine=engine,
                                       random_state=0, refit=False).fit(X, y)
            for engine in ("sequential", "auto")}
    distinct = {params["lr"] for params in runs["auto"].cv_results_["params"]}
    assert group_sizes == [len(distinct) * 3]
    assert list(runs["auto"].cv_results_["mean_test_score"]) == list(runs["sequential"].cv_results_[
        "mean_test_score"])


def test_where_a_shorter_fit_is_not_the_start_of_a_longer_one_each_trains(clf_data, group_sizes):
    X, y = clf_data
    grid = {"max_epochs": [2, 5], "lr": [1e-3, 1e-2]}
    runs = {engine: GridSearchCV(MLPClassifier(**NET, lr_schedule="cosine"), grid, cv=3, engine=engine,
                                 refit=False).fit(X, y)
            for engine in ("sequential", "auto")}
    assert group_sizes == [4 * 3]
    assert list(runs["auto"].cv_results_["mean_test_score"]) == list(runs["sequential"].cv_results_[
        "mean_test_score"])
