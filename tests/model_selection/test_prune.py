"""Pruning Bayes and genetic searches: a candidate below the median at an epoch checkpoint stops there."""

import sqlite3

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier
from sknet.model_selection import BayesSearchCV, GeneticSearchCV, GridSearchCV

# float64: continued and fresh fits agree far below what could flip a prediction, on any CPU.
NET = dict(n_units=8, random_state=0, device="cpu", dtype="float64", max_epochs=8)
SPACE = {"lr": (1e-4, 3e-1, "log-uniform"), "weight_decay": (1e-5, 1e-1, "log-uniform")}
PRUNE = [2, 4]


def _genetic(estimator, **kwargs):
    prefix = "" if isinstance(estimator, MLPClassifier) else "mlpclassifier__"
    return GeneticSearchCV(estimator, {prefix + name: value for name, value in SPACE.items()},
                           population_size=6, generations=3, cv=3, random_state=0, **kwargs)


def _bayes(estimator, **kwargs):
    return BayesSearchCV(estimator, SPACE, n_iter=8, n_points=2, cv=3, random_state=0,
                         optimizer_kwargs={"n_initial_points": 4}, **kwargs)


def _scores_at(candidates, epochs, X, y, prefix=""):
    """Each candidate's mean CV score after ``epochs`` epochs, each trained on its own."""
    grid = [{k: [v] for k, v in {**params, f"{prefix}max_epochs": epochs}.items()} for params in candidates]
    estimator = MLPClassifier(**NET)
    if prefix:
        estimator = make_pipeline(StandardScaler(), estimator)
    search = GridSearchCV(estimator, grid, cv=3, engine="sequential", refit=False).fit(X, y)
    return np.asarray(search.cv_results_["mean_test_score"])


@pytest.mark.parametrize("make", [_genetic, _bayes])
@pytest.mark.parametrize("pipeline", [False, True])
def test_pruned_candidates_hold_their_partial_scores_and_the_rest_their_full_ones(clf_data, make, pipeline):
    X, y = clf_data
    if pipeline and make is _bayes:
        pytest.skip("one pipeline case is enough")
    estimator = make_pipeline(StandardScaler(), MLPClassifier(**NET)) if pipeline else MLPClassifier(**NET)
    prefix = "mlpclassifier__" if pipeline else ""
    search = make(estimator, prune=PRUNE).fit(X, y)
    results = search.cv_results_
    candidates = list(results["params"])
    pruned, epochs = np.asarray(results["pruned"]), np.asarray(results["epochs_trained"])
    assert pruned.any() and (~pruned).any()
    assert set(epochs[pruned]) <= set(PRUNE) and set(epochs[~pruned]) == {8}
    # Each row's score is that of the candidate trained, on its own, for the epochs it trained.
    for count in (*PRUNE, 8):
        rows = np.flatnonzero(epochs == count)
        if len(rows):
            expected = _scores_at([candidates[i] for i in rows], count, X, y, prefix)
            np.testing.assert_allclose(results["mean_test_score"][rows], expected, rtol=1e-12)
    # The rule: below the median of every score seen so far at the checkpoint, round by round.
    rounds = np.asarray(results["generation"]) if make is _genetic else np.arange(len(candidates)) // 2
    seen = {count: [] for count in PRUNE}
    alive = np.ones(len(candidates), dtype=bool)
    for r in np.unique(rounds):
        members = np.flatnonzero(rounds == r)
        for count in PRUNE:
            stage = members[alive[members]]
            scores = _scores_at([candidates[i] for i in stage], count, X, y, prefix)
            seen[count].extend(scores)
            stopped = stage[scores < np.median(seen[count])]
            assert list(np.flatnonzero(pruned[members] & (epochs[members] == count))) == list(
                np.searchsorted(members, stopped)), (r, count)
            alive[stopped] = False
    assert not pruned[search.best_index_]
    assert search.best_score_ == results["mean_test_score"][~pruned].max()


def test_pruning_continues_the_survivors(clf_data, monkeypatch):
    from sknet.engine import _train

    X, y = clf_data
    resumed, init = [], _train.GroupTrainer.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        resumed.append((len(self.jobs), int(self.resumed.sum())))

    monkeypatch.setattr(_train.GroupTrainer, "__init__", spy)
    search = _genetic(MLPClassifier(**NET), prune=PRUNE, refit=False).fit(X, y)
    # The first stage of each candidate x fold trains from scratch; every later one goes on.
    fresh = sum(n for n, _ in resumed) - sum(r for _, r in resumed)
    assert fresh == 3 * len(search.cv_results_["params"]) and sum(r for _, r in resumed) > 0


@pytest.mark.parametrize("prune, estimator, kwargs, match", [
    ([0, 2], MLPClassifier(), {}, "prune must be None or a list of epoch counts"),
    (["2"], MLPClassifier(), {}, "prune must be None or a list of epoch counts"),
    ([2], LogisticRegression(), {}, "prune needs an sknet net"),
])
def test_bad_prune_settings_are_refused_by_name(clf_data, prune, estimator, kwargs, match):
    X, y = clf_data
    space = {"C": [0.1, 1.0]} if isinstance(estimator, LogisticRegression) else {"lr": [1e-3, 1e-2]}
    with pytest.raises(ValueError, match=match):
        GeneticSearchCV(estimator, space, population_size=2, generations=1, cv=2, prune=prune,
                        **kwargs).fit(X, y)


@pytest.mark.parametrize("keep_results", [False, True])
def test_a_pruned_search_resumes_from_its_checkpoint(clf_data, tmp_path, keep_results):
    X, y = clf_data
    path = tmp_path / "pruned.db"
    whole = _genetic(MLPClassifier(**NET), prune=PRUNE, checkpoint=path).fit(X, y)
    served = _genetic(MLPClassifier(**NET), prune=PRUNE, checkpoint=path).fit(X, y)
    assert served.n_batched_fits_ == 0  # every round comes from the journal, pruning included
    with sqlite3.connect(path) as conn:  # as if killed while the last round was being journaled
        last = conn.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
        first = conn.execute("SELECT first FROM rounds WHERE round = ?", (last,)).fetchone()[0]
        conn.execute("DELETE FROM state WHERE key = ?", (f"pruning of round {last}",))
        conn.execute("DELETE FROM state WHERE key = 'finished'")
        if not keep_results:
            conn.execute("DELETE FROM results WHERE candidate >= ?", (first,))
    resumed = _genetic(MLPClassifier(**NET), prune=PRUNE, checkpoint=path).fit(X, y)
    assert resumed.n_batched_fits_ > 0  # the last round was trained again, and only it
    for search in (served, resumed):
        for key in ("params", "mean_test_score", "split1_test_score", "pruned", "epochs_trained"):
            assert list(search.cv_results_[key]) == list(whole.cv_results_[key]), key
        assert search.best_params_ == whole.best_params_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.FitFailedWarning")
@pytest.mark.parametrize("error_score", [np.nan, 0.0])
def test_failed_candidates_are_pruned_at_once_and_the_median_is_taken_over_finite_scores(clf_data,
                                                                                         error_score):
    X, y = clf_data
    # Half the space diverges (lr >= 1e6 explodes the loss): a failure must neither survive a
    # checkpoint nor count in the median (as -inf it would drag it down so that nothing is pruned;
    # as a numeric error_score it would pass for a result).
    space = {"lr": [1e7, 2e7, 5e7, 1e-3, 1e-2, 1e-1]}
    search = BayesSearchCV(MLPClassifier(**NET), space, n_iter=6, n_points=6, cv=3, random_state=6,
                           prune=PRUNE, refit=False, error_score=error_score).fit(X, y)
    results = search.cv_results_
    lr = np.array([params["lr"] for params in results["params"]])
    pruned, epochs = np.asarray(results["pruned"]), np.asarray(results["epochs_trained"])
    failed = lr > 1
    assert failed.sum() >= len(lr) / 2 and (~failed).any()  # the case: failures dominate
    assert pruned[failed].all() and set(epochs[failed]) == {PRUNE[0]}
    np.testing.assert_array_equal(results["mean_test_score"][failed], error_score)
    # The others follow the rule over the finite scores alone.
    scores = _scores_at([results["params"][i] for i in np.flatnonzero(~failed)], PRUNE[0], X, y)
    expected = scores < np.median(scores)
    assert list(pruned[~failed] & (epochs[~failed] == PRUNE[0])) == list(expected)
