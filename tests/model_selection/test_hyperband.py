"""Hyperband and BOHB: brackets of continuing halving, each rung one batched round."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import MLPClassifier
from sknet.model_selection import HyperbandSearchCV

# float64: a survivor that goes on training computes what a fit from scratch computes, exactly.
NET = dict(n_units=8, random_state=0, device="cpu", dtype="float64", max_epochs=9)
SPACE = {"lr": (1e-3, 1e-1, "log-uniform")}


def _search(sampler="bayes", **kwargs):
    return HyperbandSearchCV(MLPClassifier(**NET), SPACE, cv=3, sampler=sampler, random_state=0, **kwargs)


def test_brackets_follow_hyperband_and_fill_cv_results(clf_data):
    X, y = clf_data
    search = _search(factor=3).fit(X, y)  # 9 epochs from 1: s_max = 2
    assert search.bracket_resources_ == [[1, 3, 9], [3, 9], [9]]
    assert search.bracket_candidates_ == [[9, 3, 1], [5, 1], [3]]
    assert (search.min_resources_, search.max_resources_) == (1, 9)
    results = search.cv_results_
    rows = sum(map(sum, search.bracket_candidates_))
    assert len(results["params"]) == rows
    rungs = zip(search.bracket_candidates_, search.bracket_resources_, strict=True)
    expected = [(b, i, r) for b, (ns, rs) in enumerate(rungs)
                for i, (n, r) in enumerate(zip(ns, rs, strict=True)) for _ in range(n)]
    assert list(zip(results["bracket"], results["iter"], results["n_resources"], strict=True)) == expected
    assert [params["max_epochs"] for params in results["params"]] == list(results["n_resources"])
    # the best of those trained in full
    full = np.flatnonzero(np.asarray(results["n_resources"]) == 9)
    assert search.best_index_ == full[np.argmax(results["mean_test_score"][full])]
    assert search.best_score_ == results["mean_test_score"][search.best_index_]
    assert search.best_estimator_.max_epochs == 9


def test_survivors_go_on_training_and_equal_a_fit_from_scratch(clf_data):
    X, y = clf_data
    search = _search(sampler="random").fit(X, y)
    assert search.n_batched_fits_ == 3 * sum(map(sum, search.bracket_candidates_))
    results = search.cv_results_
    # a survivor of the first bracket's last rung went on from 3 epochs to 9
    last = sum(search.bracket_candidates_[0]) - 1
    params = results["params"][last]
    assert params["max_epochs"] == 9 and results["iter"][last] == 2
    scratch = cross_val_score(MLPClassifier(**{**NET, **params}), X, y, cv=3)
    assert results["mean_test_score"][last] == scratch.mean()
    # a new bracket starts afresh on 3 epochs, even a candidate the bracket before trained to 9 (the
    # engine goes on only from a state with fewer epochs than asked for)
    search = HyperbandSearchCV(MLPClassifier(**NET), {"lr": [0.01, 0.03]}, sampler="random", cv=3,
                               random_state=0).fit(X, y)
    results = search.cv_results_
    first = sum(search.bracket_candidates_[0])
    trained_before = results["params"][first - 1]["lr"]
    row = next(j for j in range(first, first + search.bracket_candidates_[1][0])
               if results["params"][j]["lr"] == trained_before)
    assert results["params"][row]["max_epochs"] == 3
    scratch = cross_val_score(MLPClassifier(**{**NET, **results["params"][row]}), X, y, cv=3)
    assert results["mean_test_score"][row] == scratch.mean()


def test_bohb_proposes_from_the_largest_resource_with_enough_results(clf_data):
    X, y = clf_data
    bayes, random = _search("bayes").fit(X, y), _search("random").fit(X, y)
    assert random.n_proposed_ == 0 and random.proposal_time_ == 0
    first = sum(bayes.bracket_candidates_[0])
    # the first bracket has no results to learn from: both draw the same candidates
    assert bayes.cv_results_["params"][:first] == random.cv_results_["params"][:first]
    # then 1 dimension needs 2 results: 3 epochs has 3; 5 - round(5 / 3) of bracket 2, 3 - 1 of bracket 3
    assert bayes.n_proposed_ == 3 + 2
    assert bayes.proposal_time_ > 0
    assert bayes.cv_results_["params"][first] != random.cv_results_["params"][first]
    only_model = _search("bayes", random_fraction=0.0).fit(X, y)
    assert only_model.n_proposed_ == 5 + 3


def test_any_estimator_and_a_pipeline(clf_data):
    X, y = clf_data
    sgd = HyperbandSearchCV(SGDClassifier(max_iter=27, tol=None, random_state=0),
                            {"alpha": (1e-5, 1e-1, "log-uniform")}, resource="max_iter", min_resources=3,
                            cv=3, random_state=0).fit(X, y)
    assert sgd.bracket_resources_[0] == [3, 9, 27] and sgd.best_params_["max_iter"] == 27
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**NET))
    search = HyperbandSearchCV(pipe, {"mlpclassifier__lr": (1e-3, 1e-1, "log-uniform")}, min_resources=3,
                               cv=3, random_state=0).fit(X, y)
    assert search.best_params_["mlpclassifier__max_epochs"] == 9
    assert search.n_batched_fits_ == 3 * sum(map(sum, search.bracket_candidates_))


@pytest.mark.parametrize("kwargs, match", [
    (dict(resource="n_samples"), "not a parameter"),
    (dict(resource="max_epochs", param_distributions={"max_epochs": [2, 4]}), "also in param_distributions"),
    (dict(max_resources=2, min_resources=3), "at least min_resources"),
    (dict(optimizer_kwargs={"n_initial_points": 3}), r"must not set \['n_initial_points'\]"),
    (dict(sampler="tpe"), "sampler"),
    (dict(factor=1.3, max_resources=4), r"factor=1.3 is too small .* \(\[1, 1, 2, 2, 3, 4\]\)"),
])
def test_bad_arguments_are_refused_by_name(clf_data, kwargs, match):
    X, y = clf_data
    space = kwargs.pop("param_distributions", SPACE)
    with pytest.raises(ValueError, match=match):
        HyperbandSearchCV(MLPClassifier(**NET), space, cv=3, **kwargs).fit(X, y)


def test_resource_auto_needs_a_net(clf_data):
    X, y = clf_data
    with pytest.raises(ValueError, match="name the resource parameter of SGDClassifier"):
        HyperbandSearchCV(SGDClassifier(), {"alpha": (1e-5, 1e-1, "log-uniform")}, cv=3).fit(X, y)


def test_max_time_stops_after_the_rung_that_passes_it(clf_data):
    X, y = clf_data
    with pytest.warns(UserWarning, match="the best is chosen among those trained on 1"):
        search = _search(max_time=1e-6).fit(X, y)
    assert search.timed_out_ and search.bracket_candidates_ == [[9]]
    assert len(search.cv_results_["params"]) == 9 and hasattr(search, "best_estimator_")


def test_a_checkpoint_replays_the_brackets(clf_data, tmp_path):
    X, y = clf_data
    path = tmp_path / "hyperband.db"
    whole = _search(checkpoint=path).fit(X, y)
    again = _search(checkpoint=path).fit(X, y)
    assert again.n_batched_fits_ == 0
    assert again.cv_results_["params"] == whole.cv_results_["params"]
    assert list(again.cv_results_["mean_test_score"]) == list(whole.cv_results_["mean_test_score"])


class _FailsAboveAlpha(SGDClassifier):
    """An SGD classifier whose fit fails for ``alpha`` above 1e-3."""

    def fit(self, X, y, **kwargs):
        if self.alpha > 1e-3:
            raise ValueError("alpha too large")
        return super().fit(X, y, **kwargs)


def test_failed_candidates_never_go_on(clf_data):
    X, y = clf_data
    search = HyperbandSearchCV(_FailsAboveAlpha(max_iter=27, tol=None, random_state=0),
                               {"alpha": (1e-5, 1e-1, "log-uniform")}, resource="max_iter", min_resources=3,
                               sampler="random", cv=3, random_state=0)
    with pytest.warns(UserWarning):  # scikit-learn's warnings about the failed fits
        search.fit(X, y)
    results = search.cv_results_
    failed = ~np.isfinite(results["mean_test_score"])
    assert failed.any() and not failed[search.best_index_]
    score_of = {}
    for params, it, bracket, score in zip(results["params"], results["iter"], results["bracket"],
                                          results["mean_test_score"], strict=True):
        if it:  # a survivor: it scored at the rung before
            assert np.isfinite(score_of[bracket, it - 1, params["alpha"]])
        score_of[bracket, it, params["alpha"]] = score


def test_a_bracket_holds_distinct_candidates(clf_data):
    X, y = clf_data
    search = HyperbandSearchCV(MLPClassifier(**NET), {"lr": [0.01, 0.03]}, sampler="random", cv=3,
                               random_state=0).fit(X, y)
    assert search.bracket_candidates_ == [[2, 2, 1], [2, 1], [2]]  # 9, 5 and 3 asked for: 2 exist
    results = search.cv_results_
    rungs = list(zip(results["bracket"], results["iter"], strict=True))
    for rung in set(rungs):
        lrs = [params["lr"] for params, at in zip(results["params"], rungs, strict=True) if at == rung]
        assert len(lrs) == len(set(lrs))


def test_a_refused_search_leaves_no_checkpoint(clf_data, tmp_path):
    X, y = clf_data
    path = tmp_path / "refused.db"
    search = _search(optimizer_kwargs={"n_initial_points": 3}, checkpoint=path)
    search.random_state = None  # its random state would be journaled
    with pytest.raises(ValueError, match="n_initial_points"):
        search.fit(X, y)
    assert not path.exists()
    clone(search).set_params(optimizer_kwargs=None).fit(X, y)  # and the corrected search runs on it
    assert path.exists()


def test_a_single_rung_warns(clf_data):
    X, y = clf_data
    with pytest.warns(UserWarning, match="one bracket of one candidate"):
        search = _search(min_resources=5).fit(X, y)
    assert search.bracket_candidates_ == [[1]]


def test_batched_equals_sequential(clf_data):
    X, y = clf_data
    runs = {engine: _search(engine=engine).fit(X, y) for engine in ("sequential", "auto")}
    seq, bat = runs["sequential"], runs["auto"]
    assert bat.bracket_candidates_ == seq.bracket_candidates_
    for key in ("params", "bracket", "iter", "n_resources", "split0_test_score", "mean_test_score"):
        assert list(bat.cv_results_[key]) == list(seq.cv_results_[key]), key
    assert bat.best_params_ == seq.best_params_


def test_told_values_count_failures_as_the_worst_and_unknown_costs_as_the_median():
    from sknet.model_selection._hyperband import told_values

    told = [((1,), 0.9, 0.5), ((2,), -np.inf, np.nan), ((3,), 0.7, 1.5)]
    assert told_values(told, per_second=False) == [-0.9, -0.7, -0.7]
    assert told_values(told, per_second=True) == [[-0.9, 0.5], [-0.7, 1.0], [-0.7, 1.5]]


def test_cost_aware_bohb_tells_each_result_with_its_seconds_per_epoch(clf_data, monkeypatch):
    from sknet.model_selection import _hyperband

    told = []
    real = _hyperband.told_values

    def recorded(results, per_second):
        told.append((list(results), per_second))
        return real(results, per_second)

    monkeypatch.setattr(_hyperband, "told_values", recorded)
    X, y = clf_data
    search = HyperbandSearchCV(MLPClassifier(**NET), {**SPACE, "batch_size": [16, 64]}, cv=3, random_state=0,
                               n_brackets=4, optimizer_kwargs={"acq_func": "EIps"}).fit(X, y)
    assert search.n_proposed_ > 0 and told and all(per_second for _, per_second in told)
    results = search.cv_results_
    per_epoch = {t / r for r, t, i in zip(results["n_resources"], results["mean_fit_time"], results["iter"],
                                          strict=True) if i == 0}
    # each told cost is a candidate's mean fit time over its epochs in its first rung (trained from scratch)
    assert all(seconds in per_epoch for entries, _ in told for _, _, seconds in entries)
