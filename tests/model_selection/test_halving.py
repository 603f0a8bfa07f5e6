"""Successive halving, each rung a batched round: same results as one-by-one fits, resumable."""

import sqlite3

import numpy as np
import pytest

from sknet import MLPClassifier
from sknet.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV

# float64: batched and sequential fits agree far below what could flip a prediction, on any CPU.
NET = dict(n_units=8, random_state=0, device="cpu", dtype="float64")
GRID = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "weight_decay": [0.0, 1e-3]}


def _make(kind, engine, **kwargs):
    if kind == "grid":
        return HalvingGridSearchCV(MLPClassifier(**NET), GRID, cv=3, engine=engine, random_state=0, **kwargs)
    return HalvingRandomSearchCV(MLPClassifier(**NET), {"lr": (1e-3, 1e-1, "log-uniform")}, n_candidates=6,
                                 cv=3, engine=engine, random_state=0, **kwargs)


RESOURCES = {"max_epochs": dict(resource="max_epochs", min_resources=2, max_resources=18),
             "n_samples": dict(min_resources=60)}


@pytest.mark.parametrize("resource", list(RESOURCES))
@pytest.mark.parametrize("kind", ["grid", "random"])
def test_each_rung_is_batched_and_equals_one_by_one_fits(clf_data, kind, resource):
    X, y = clf_data
    runs = {engine: _make(kind, engine, **RESOURCES[resource]).fit(X, y) for engine in ("sequential", "auto")}
    seq, bat = runs["sequential"], runs["auto"]
    assert bat.n_candidates_ == seq.n_candidates_ and len(bat.n_candidates_) >= 2
    assert bat.n_resources_ == seq.n_resources_
    assert bat.n_batched_fits_ == 3 * sum(bat.n_candidates_)  # every fit of every rung
    for key in ("iter", "n_resources", "params", "split0_test_score", "split2_test_score", "mean_test_score"):
        assert list(bat.cv_results_[key]) == list(seq.cv_results_[key]), key
    assert bat.best_params_ == seq.best_params_ and bat.best_score_ == seq.best_score_
    np.testing.assert_allclose(bat.predict_proba(X), seq.predict_proba(X), rtol=0, atol=1e-12)


def test_a_checkpoint_resumes_a_halving_search_mid_rung(clf_data, tmp_path):
    X, y = clf_data
    path = tmp_path / "halving.db"
    whole = _make("grid", "auto", checkpoint=path, **RESOURCES["max_epochs"]).fit(X, y)
    with sqlite3.connect(path) as conn:  # as if killed in the middle of the second rung
        first_of_rung_2 = whole.n_candidates_[0]
        conn.execute("DELETE FROM results WHERE candidate >= ?", (first_of_rung_2 + 1,))
        conn.execute("DELETE FROM state WHERE key = 'finished'")
    missing = 3 * (sum(whole.n_candidates_) - first_of_rung_2 - 1)
    resumed = _make("grid", "auto", checkpoint=path, **RESOURCES["max_epochs"]).fit(X, y)
    assert resumed.n_batched_fits_ == missing  # only what the journal lacked was trained
    for key in ("params", "mean_test_score", "split1_test_score", "mean_fit_time"):
        assert list(resumed.cv_results_[key])[:first_of_rung_2 + 1] == list(whole.cv_results_[key])[
            :first_of_rung_2 + 1], key
    assert list(resumed.cv_results_["mean_test_score"]) == list(whole.cv_results_["mean_test_score"])
    again = _make("grid", "auto", checkpoint=path, **RESOURCES["max_epochs"]).fit(X, y)
    assert again.n_batched_fits_ == 0


def test_a_checkpoint_needs_an_int_random_state_where_halving_draws(clf_data, tmp_path):
    X, y = clf_data
    search = HalvingGridSearchCV(MLPClassifier(**NET), GRID, cv=3, checkpoint=tmp_path / "c.db")
    with pytest.raises(ValueError, match="needs an int random_state.*Got random_state=None"):
        search.fit(X, y)
    assert not (tmp_path / "c.db").exists()
    # max_epochs as the resource, a grid: nothing is drawn, any random_state will do
    HalvingGridSearchCV(MLPClassifier(**NET), GRID, cv=3, checkpoint=tmp_path / "c.db",
                        **RESOURCES["max_epochs"]).fit(X, y)


def _spy_on_groups(monkeypatch):
    """Record each batched group's (models, of which resumed) as the engine builds it."""
    from sknet.engine import _train

    seen, init = [], _train.GroupTrainer.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append((len(self.jobs), int(self.resumed.sum())))

    monkeypatch.setattr(_train.GroupTrainer, "__init__", spy)
    return seen


@pytest.mark.parametrize("pipeline", [False, True])
def test_survivors_continue_training_and_equal_scikit_learns_restarts(clf_data, monkeypatch, pipeline):
    from sklearn.model_selection._search_successive_halving import HalvingGridSearchCV as SklearnHalving
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = clf_data
    estimator = MLPClassifier(**NET, dropout=0.2)  # dropout: the masks go on from where they were
    resource = "max_epochs"
    if pipeline:
        estimator, resource = make_pipeline(StandardScaler(), estimator), "mlpclassifier__max_epochs"
    grid = {f"{'mlpclassifier__' * pipeline}{name}": values for name, values in GRID.items()}
    settings = dict(resource=resource, min_resources=2, max_resources=18, cv=3, random_state=0)
    seen = _spy_on_groups(monkeypatch)
    ours = HalvingGridSearchCV(estimator, grid, **settings).fit(X, y)
    theirs = SklearnHalving(estimator, grid, **settings).fit(X, y)  # each survivor trained from scratch
    assert seen[0] == (24, 0) and seen[1] == (9, 9)  # rung 2: every fit goes on from rung 1
    for key in ("iter", "n_resources", "params", "split0_test_score", "mean_test_score", "mean_train_score"):
        assert list(ours.cv_results_[key]) == list(theirs.cv_results_[key]), key
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("extra", [{"lr_schedule": "cosine"},
                                   {"early_stopping": True, "validation_fraction": 0.2}])
def test_survivors_restart_where_continuing_would_differ(clf_data, monkeypatch, extra):
    X, y = clf_data
    seen = _spy_on_groups(monkeypatch)
    runs = {engine: HalvingGridSearchCV(MLPClassifier(**NET, **extra), GRID, engine=engine, cv=3,
                                        **RESOURCES["max_epochs"]).fit(X, y)
            for engine in ("sequential", "auto")}
    assert [resumed for _, resumed in seen] == [0] * len(seen) and len(seen) >= 2
    assert list(runs["auto"].cv_results_["mean_test_score"]) == list(runs["sequential"].cv_results_[
        "mean_test_score"])
