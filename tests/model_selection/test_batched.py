"""The batched engine inside the four searches: same results as sequential fits, less time."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import FitFailedWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier, MLPRegressor
from sknet.model_selection import BayesSearchCV, GeneticSearchCV, GridSearchCV, RandomizedSearchCV

NET = dict(max_epochs=5, random_state=0, device="cpu")
SPACE = {"lr": (1e-3, 1e-1, "log-uniform"), "weight_decay": (0.0, 1e-2, "uniform")}


def _both(make, X, y, **fit_params):
    return {engine: make(engine).fit(X, y, **fit_params) for engine in ("sequential", "batched")}


def _assert_same_results(runs):
    seq, bat = runs["sequential"], runs["batched"]
    assert seq.cv_results_["params"] == bat.cv_results_["params"]
    np.testing.assert_allclose(bat.cv_results_["mean_test_score"], seq.cv_results_["mean_test_score"],
                               atol=1e-6)
    assert seq.best_params_ == bat.best_params_


def test_grid_search_batched_equals_sequential(clf_data):
    X, y = clf_data
    grid = {"lr": [1e-3, 1e-2], "optimizer": ["adam", "sgd"], "n_units": [8, 16]}
    runs = _both(lambda engine: GridSearchCV(MLPClassifier(**NET), grid, cv=3, engine=engine), X, y)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 8 * 3
    assert runs["batched"].engine_time_ > 0
    assert not hasattr(runs["sequential"], "n_batched_fits_")


def test_batch_norm_nets_batch_and_match_sequential(clf_data):
    X, y = clf_data
    net = MLPClassifier(batch_norm=True, optimizer="sgd", **NET)
    runs = _both(lambda engine: GridSearchCV(net, {"lr": [1e-2, 1e-1], "n_units": [8, 16]}, cv=3,
                                             engine=engine), X, y)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 4 * 3


def test_early_stopping_nets_stop_on_their_own_inside_a_batched_search(clf_data):
    X, y = clf_data
    net = MLPClassifier(early_stopping=True, patience=2, **dict(NET, max_epochs=30))
    grid = {"lr": [1e-3, 3e-2], "validation_fraction": [0.1, 0.3]}
    runs = _both(lambda engine: GridSearchCV(net, grid, cv=3, engine=engine), X, y)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 4 * 3


def test_folds_whose_preprocessing_gives_different_widths_batch_apart(clf_data):
    X, y = clf_data
    X = X.copy()
    X[:100, 0] = 0.0  # constant in the first half: VarianceThreshold drops it when fitted there
    pipe = make_pipeline(VarianceThreshold(), MLPClassifier(**NET))
    runs = _both(lambda engine: GridSearchCV(pipe, {"mlpclassifier__lr": [1e-3, 1e-2]}, cv=KFold(2),
                                             engine=engine), X, y)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 4


def test_sparse_text_features_are_densified_for_the_engine():
    words = np.array(["red", "green", "blue", "cat", "dog", "fish", "sun", "rain"])
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, 60)
    docs = [" ".join(rng.choice(words[4 * c:4 * c + 4], 5)) + " " + " ".join(rng.choice(words, 2))
            for c in labels]
    pipe = make_pipeline(TfidfVectorizer(), MLPClassifier(**NET))  # sparse input to the net
    runs = _both(lambda engine: GridSearchCV(pipe, {"mlpclassifier__lr": [1e-3, 3e-2]}, cv=3,
                                             engine=engine), docs, labels)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 6 and runs["batched"].best_score_ > 0.8


def test_with_n_jobs_the_groups_train_in_worker_processes(clf_data):
    X, y = clf_data
    grid = {"lr": [1e-3, 1e-2], "n_units": [8, 16]}
    one, two = (GridSearchCV(MLPClassifier(**NET), grid, cv=2, n_jobs=n).fit(X, y) for n in (1, 2))
    np.testing.assert_allclose(two.cv_results_["mean_test_score"], one.cv_results_["mean_test_score"],
                               atol=1e-6)
    assert two.n_batched_fits_ == one.n_batched_fits_ == 8


def test_pipeline_preprocessing_is_fitted_per_fold_then_nets_batched(reg_data):
    X, y = reg_data
    pipe = make_pipeline(StandardScaler(), MLPRegressor(**NET))
    grid = {"mlpregressor__lr": [1e-3, 1e-2], "standardscaler__with_mean": [True, False]}
    runs = _both(lambda engine: GridSearchCV(pipe, grid, cv=2, engine=engine), X * 5 + 3, y)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 4 * 2


@pytest.mark.parametrize("make", [
    lambda engine: RandomizedSearchCV(MLPClassifier(**NET), SPACE, n_iter=4, cv=2, random_state=0,
                                      engine=engine),
    lambda engine: BayesSearchCV(MLPClassifier(**NET), SPACE, n_iter=4, n_points=2, cv=2, random_state=0,
                                 engine=engine),
    lambda engine: GeneticSearchCV(MLPClassifier(**NET), SPACE, population_size=4, generations=2, cv=2,
                                   random_state=0, engine=engine),
], ids=["random", "bayes", "genetic"])
def test_every_search_batches_its_rounds(clf_data, make):
    X, y = clf_data
    runs = _both(make, X, y)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 2 * len(runs["batched"].cv_results_["params"])


def test_what_the_engine_cannot_take_trains_sequentially(clf_data):
    X, y = clf_data
    net = MLPClassifier(optimizer=torch.optim.NAdam, **NET)  # not one of the engine's optimizers
    auto = GridSearchCV(net, {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert auto.n_batched_fits_ == 0 and np.isfinite(auto.cv_results_["mean_test_score"]).all()
    with pytest.warns(UserWarning, match="4 of 4 fits could not be batched"):
        GridSearchCV(net, {"lr": [1e-3, 1e-2]}, cv=2, engine="batched").fit(X, y)
    with pytest.warns(UserWarning, match="does not take fit parameters"):
        GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3]}, cv=2, engine="batched").fit(
            X, y, sample_weight=np.ones(len(y)))


def test_diverging_member_gets_error_score_and_the_others_survive(clf_data):
    X, y = clf_data
    net = MLPClassifier(optimizer="sgd", max_epochs=20, random_state=0, device="cpu")
    search = GridSearchCV(net, {"lr": [1e-2, 1e12]}, cv=2)
    with pytest.warns(FitFailedWarning, match="diverged"):
        search.fit(X, y)
    assert search.n_batched_fits_ == 4
    assert np.isnan(search.cv_results_["mean_test_score"][1]) and search.best_params_ == {"lr": 1e-2}


def test_callbacks_still_see_every_fit_and_epoch(clf_data, task_counter):
    X, y = clf_data
    search = GridSearchCV(MLPClassifier(max_epochs=3, device="cpu"), {"lr": [1e-3, 1e-2]}, cv=2)
    search.set_callbacks(task_counter).fit(X, y)
    assert search.n_batched_fits_ == 4
    assert task_counter.begun["fit"] == 1 + 4 + 1 and task_counter.begun["epoch"] == 5 * 3


def test_other_estimators_are_untouched(clf_data):
    X, y = clf_data
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    assert not hasattr(search, "engine_time_")


def test_engine_argument_is_validated(clf_data):
    X, y = clf_data
    with pytest.raises(ValueError, match="'engine' parameter"):
        GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3]}, engine="turbo").fit(X, y)


def test_sparse_training_sets_are_keyed_by_their_content():
    from scipy import sparse

    from sknet._prefit import fingerprint

    X = sparse.random(20, 5, density=0.3, format="csr", random_state=0)
    other = X.copy()
    other.data[0] += 1.0
    assert fingerprint(X) == fingerprint(X.copy()) != fingerprint(other)
    assert fingerprint(X) != fingerprint(X.toarray())
    assert fingerprint(X.tocsc()) is None  # other formats are not keyed: their jobs train one by one
