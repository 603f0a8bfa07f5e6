import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.callback import ProgressBar
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skopt.learning import ExtraTreesRegressor, GaussianProcessRegressor, RandomForestRegressor
from skopt.space import Categorical, Integer, Real

from sknet import MLPClassifier
from sknet.model_selection import BayesSearchCV

X_DUMMY = np.zeros((12, 1))
NO_CALLBACK_SUPPORT = pytest.mark.filterwarnings("ignore:The estimator Peak does not support callbacks")
FAST = {"n_initial_points": 3, "acq_optimizer": "sampling"}  # cheap acquisition: tests stay quick


class Peak(BaseEstimator):
    """An estimator whose score is a known function of its parameters, best at x=0.3, n=7, kind="b"."""

    def __init__(self, x=0.0, n=1, kind="a", shape=None, fail=False):
        self.x, self.n, self.kind, self.shape, self.fail = x, n, kind, shape, fail

    def fit(self, X, y=None, **fit_params):
        if self.fail:
            raise ValueError("this candidate cannot be fitted")
        self.fit_params_ = fit_params
        return self

    def score(self, X, y=None):
        return -((self.x - 0.3) ** 2) - ((self.n - 7) / 20) ** 2 - 0.5 * (self.kind != "b")

    def predict(self, X):
        return np.full(len(X), self.x)


SPACE = {"x": (0.0, 1.0), "n": (1, 64, "log-uniform"), "kind": ["a", "b", "c"]}


def _search(space=SPACE, **kwargs):
    kwargs = {"n_iter": 6, "cv": 2, "random_state": 0, "optimizer_kwargs": FAST, **kwargs}
    return BayesSearchCV(Peak(), space, **kwargs)


class RoundCounter:
    """A scikit-learn callback recording the candidates of each round; can ask to stop."""

    def __init__(self, stop_after=None):
        self.rounds, self.stop_after = [], stop_after

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        if context.task_name == "round":
            self.rounds.append(context.max_subtasks // estimator.n_splits_)

    def on_fit_task_end(self, estimator, context):
        return context.task_name == "round" and len(self.rounds) == self.stop_after


def test_dict_space_evaluates_n_iter_plain_values_within_bounds():
    search = _search(n_iter=8).fit(X_DUMMY)
    params = search.cv_results_["params"]
    assert search.total_iterations == len(params) == 8
    for p in params:
        assert type(p["x"]) is float and 0.0 <= p["x"] <= 1.0
        assert type(p["n"]) is int and 1 <= p["n"] <= 64
        assert type(p["kind"]) is str and p["kind"] in ("a", "b", "c")
    assert search.best_params_ == params[int(np.argmax(search.cv_results_["mean_test_score"]))]
    assert search.best_estimator_.get_params()["x"] == search.best_params_["x"]


def test_skopt_dimensions_are_accepted_like_the_other_notations():
    space = {"x": Real(0.0, 1.0), "n": Integer(1, 64, prior="log-uniform"), "kind": Categorical(["a", "b"])}
    ours = _search(space).fit(X_DUMMY).cv_results_["params"]
    same = _search({"x": (0.0, 1.0), "n": (1, 64, "log-uniform"), "kind": ["a", "b"]}).fit(X_DUMMY)
    assert ours == same.cv_results_["params"]


def test_categories_reach_the_estimator_as_the_objects_of_the_space():
    # skopt's own conversions break on tuples; the search hands skopt indices instead
    scaler = StandardScaler()
    shapes = [(8,), (8, 4), None, scaler]
    search = _search({"shape": shapes, "x": (0.0, 1.0)}, n_iter=8).fit(X_DUMMY)
    for p in search.cv_results_["params"]:
        assert any(p["shape"] is s for s in shapes)
    assert all(any(x[0] is s for s in shapes) for x in search.optimizer_results_[0].x_iters)


def test_list_of_subspaces_with_their_own_n_iter():
    spaces = [({"x": (0.0, 1.0)}, 3), {"kind": ["a", "b"], "n": (1, 10)}]
    search = _search(spaces, n_iter=2)
    assert search.total_iterations == 5
    search.fit(X_DUMMY)
    assert search.cv_results_["subspace"].tolist() == [0, 0, 0, 1, 1]
    assert [set(p) for p in search.cv_results_["params"]] == [{"x"}] * 3 + [{"kind", "n"}] * 2
    assert [len(r.x_iters) for r in search.optimizer_results_] == [3, 2]


def test_list_of_dicts_uses_n_iter_each():
    search = _search([{"x": (0.0, 1.0)}, {"n": (1, 10)}], n_iter=3).fit(X_DUMMY)
    assert search.total_iterations == len(search.cv_results_["params"]) == 6


@NO_CALLBACK_SUPPORT
@pytest.mark.parametrize("n_iter, n_points, rounds", [(5, 2, [2, 2, 1]), (4, 4, [4]), (3, 1, [1, 1, 1])])
def test_n_points_candidates_per_round(n_iter, n_points, rounds):
    counter = RoundCounter()
    search = _search(n_iter=n_iter, n_points=n_points).set_callbacks(counter).fit(X_DUMMY)
    assert counter.rounds == rounds and len(search.cv_results_["params"]) == n_iter


@pytest.mark.parametrize("base_estimator, model_type", [
    ("GP", GaussianProcessRegressor), ("RF", RandomForestRegressor), ("ET", ExtraTreesRegressor),
])
def test_optimizer_kwargs_are_forwarded(base_estimator, model_type):
    kwargs = {"base_estimator": base_estimator, "n_initial_points": 2, "acq_func": "EI"}
    result = _search(n_iter=4, optimizer_kwargs=kwargs).fit(X_DUMMY).optimizer_results_[0]
    assert result.specs["args"]["acq_func"] == "EI"
    assert len(result.models) == 3 and all(isinstance(m, model_type) for m in result.models)


def test_optimizer_kwargs_cannot_override_what_the_search_sets():
    with pytest.raises(ValueError, match=r"must not set \['random_state'\]"):
        _search(optimizer_kwargs={"random_state": 1}).fit(X_DUMMY)


@pytest.mark.parametrize("acq_func", ["EIps", "PIps"])
def test_per_second_acquisitions_are_refused_by_name(acq_func):
    with pytest.raises(ValueError, match=rf"acq_func='{acq_func}' is per second of cost.*HyperbandSearchCV"):
        _search(optimizer_kwargs={"acq_func": acq_func}).fit(X_DUMMY)


def test_reproducible_with_random_state():
    runs = [_search(random_state=seed).fit(X_DUMMY).cv_results_["params"] for seed in (3, 3, 4)]
    assert runs[0] == runs[1] != runs[2]


def test_optimizer_results_mirror_cv_results():
    search = _search([{"x": (0.0, 1.0), "kind": ["a", "b"]}, ({"n": (1, 64)}, 3)]).fit(X_DUMMY)
    assert len(search.optimizer_results_) == 2
    first = search.optimizer_results_[0]
    scores = search.cv_results_["mean_test_score"][search.cv_results_["subspace"] == 0]
    np.testing.assert_allclose(first.func_vals, -scores)
    # points in the order of the sorted names, in the search's own values
    params = search.cv_results_["params"][:6]
    assert first.x_iters == [[p["kind"], p["x"]] for p in params]
    assert first.x == first.x_iters[int(np.argmin(first.func_vals))]
    assert [d.name for d in first.space.dimensions] == ["kind", "x"]


def test_finds_the_optimum_better_than_random_on_average():
    space = {"x": (0.0, 1.0), "n": (1, 13), "kind": ["b"]}

    def best(seed, n_initial_points):  # only initial points: a random search
        kwargs = {**FAST, "n_initial_points": n_initial_points}
        return _search(space, n_iter=10, random_state=seed, optimizer_kwargs=kwargs).fit(X_DUMMY).best_score_

    bayes = np.mean([best(seed, 4) for seed in range(3)])
    random = np.mean([best(seed, 10) for seed in range(3)])
    assert bayes > random and bayes > -0.02  # the peak scores 0


def test_callback_stops_the_subspace_like_skopt():
    seen = []

    def stop_after_two(result):
        seen.append(len(result.x_iters))
        return len(result.x_iters) >= 2

    spaces = [({"x": (0.0, 1.0)}, 5), ({"n": (1, 9)}, 5)]
    search = _search(spaces).fit(X_DUMMY, callback=[stop_after_two])
    assert seen == [1, 2, 1, 2]
    assert search.cv_results_["subspace"].tolist() == [0, 0, 1, 1]
    assert not hasattr(search, "_skopt_callbacks")
    pickle.dumps(search)  # the callback (a closure) is not kept


def test_a_single_callable_callback_and_a_bad_one():
    search = _search(n_iter=5).fit(X_DUMMY, callback=lambda result: True)
    assert len(search.cv_results_["params"]) == 1
    with pytest.raises(ValueError, match="callback should be"):
        _search().fit(X_DUMMY, callback="stop")


@NO_CALLBACK_SUPPORT
def test_scikit_learn_callback_can_stop_the_search():
    counter = RoundCounter(stop_after=2)
    search = _search([{"x": (0.0, 1.0)}, {"n": (1, 9)}], n_iter=4).set_callbacks(counter).fit(X_DUMMY)
    assert len(search.cv_results_["params"]) == 2 and len(search.optimizer_results_) == 1


@NO_CALLBACK_SUPPORT
def test_progress_bar_does_not_crash(capsys):
    pytest.importorskip("rich")
    search = _search([({"x": (0.0, 1.0)}, 3), {"kind": ["a", "b"]}], n_iter=2, n_points=2)
    search.set_callbacks(ProgressBar()).fit(X_DUMMY)
    assert len(search.cv_results_["params"]) == 5


def test_verbose_prints_a_line_per_round(capsys):
    _search(n_iter=3, verbose=1).fit(X_DUMMY)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[BayesSearchCV]")]
    assert len(lines) == 3 and "round 3/3" in lines[-1]


@pytest.mark.parametrize("scoring", [["accuracy", "f1_macro"], {"acc": "accuracy", "f1_macro": "f1_macro"}])
def test_multi_metric_optimises_the_metric_refit_names(clf_data, scoring):
    X, y = clf_data
    search = BayesSearchCV(LogisticRegression(), {"C": (1e-3, 1e2, "log-uniform")}, n_iter=4, cv=2,
                           scoring=scoring, refit="f1_macro", random_state=0).fit(X, y)
    f1 = search.cv_results_["mean_test_f1_macro"]
    np.testing.assert_allclose(search.optimizer_results_[0].func_vals, -f1)
    assert search.best_score_ == f1.max()


@pytest.mark.parametrize("refit, match", [
    (lambda results: 0, "needs refit=<metric name>"), (True, "refit must be set to a scorer key"),
])
def test_multi_metric_without_a_named_refit_is_refused_before_training(clf_data, refit, match):
    X, y = clf_data
    search = BayesSearchCV(LogisticRegression(), {"C": (1e-3, 1e2)}, n_iter=2,
                           scoring=["accuracy", "f1_macro"], refit=refit)
    with pytest.raises(ValueError, match=match):
        search.fit(X, y)
    assert not hasattr(search, "optimizer_results_")


def test_single_metric_callable_refit_picks_the_best_index():
    search = _search(refit=lambda results: 0).fit(X_DUMMY)
    assert search.best_index_ == 0 and search.best_params_ == search.cv_results_["params"][0]


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_failed_candidates_score_error_score_and_the_search_goes_on():
    space = {"x": (0.0, 1.0), "fail": [False, True]}
    # a batch mixing failed and good candidates keeps the failed ones with error_score
    with pytest.warns(FitFailedWarning, match="cannot be fitted"):
        search = _search(space, n_iter=8, n_points=4).fit(X_DUMMY)
    failed = np.array([p["fail"] for p in search.cv_results_["params"]])
    assert failed.any() and np.isnan(search.cv_results_["mean_test_score"][failed]).all()
    assert search.best_params_["fail"] is False
    # skopt is told the worst real score so far instead of NaN
    func_vals = search.optimizer_results_[0].func_vals
    for batch in range(2):
        told, seen = func_vals[4 * batch: 4 * batch + 4], func_vals[: 4 * batch + 4][~failed[: 4 * batch + 4]]
        assert np.allclose(told[failed[4 * batch: 4 * batch + 4]], seen.max())


def test_a_round_whose_fits_all_fail_is_skipped_with_a_warning():
    space = {"x": (0.0, 1.0), "fail": [False, True]}
    with pytest.warns(FitFailedWarning, match="Every fit of the 1 candidate"):
        search = _search(space, n_iter=8).fit(X_DUMMY)
    assert not any(p["fail"] for p in search.cv_results_["params"])
    x_iters = search.optimizer_results_[0].x_iters
    assert len(x_iters) == 8 and len(search.cv_results_["params"]) == sum(not x[0] for x in x_iters) < 8


def test_every_candidate_failing_raises():
    with pytest.raises(ValueError, match="Every round of the search failed"):
        with pytest.warns(FitFailedWarning):
            _search({"fail": [True], "x": (0.0, 1.0)}, n_iter=2).fit(X_DUMMY)


def test_error_score_raise_raises():
    with pytest.raises(ValueError, match="cannot be fitted"):
        _search({"fail": [True, False]}, n_iter=4, n_points=4, error_score="raise").fit(X_DUMMY)


@pytest.mark.parametrize("spaces, error, match", [
    ([], ValueError, "non-empty list"),
    ({}, ValueError, "non-empty dict"),
    ({"x": (1.0, 0.0)}, ValueError, "'x' is empty or inverted"),
    ({"kind": []}, ValueError, "'kind' is an empty list"),
    ([({"x": (0.0, 1.0)}, 0)], ValueError, "positive int"),
    ([({"x": (0.0, 1.0)}, 2, 3)], TypeError, "dict or a \\(dict, n_iter\\) tuple"),
    (["x"], TypeError, "dict or a \\(dict, n_iter\\) tuple"),
    ("x", ValueError, "search_spaces.* must be"),
])
def test_bad_spaces_are_named(spaces, error, match):
    # Refused on construction, as scikit-optimize does...
    with pytest.raises(error, match=match):
        _search(spaces)
    # ...and at fit when set_params brought them in afterwards.
    search = _search({"x": (0.0, 1.0)}).set_params(search_spaces=spaces)
    with pytest.raises(error, match=match):
        search.fit(X_DUMMY)


def test_pipeline_ending_in_an_sknet_net():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=5, random_state=0, device="cpu"))
    space = {"mlpclassifier__lr": (1e-3, 1e-1, "log-uniform"), "mlpclassifier__n_units": (4, 16)}
    search = BayesSearchCV(pipe, space, n_iter=3, cv=2, random_state=0).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert search.best_estimator_[-1].n_iter_ == 5 and search.score(X, y) > 0.5


def test_plain_scikit_learn_estimator_in_parallel(clf_data):
    X, y = clf_data
    space = {"C": (1e-3, 1e2, "log-uniform"), "fit_intercept": [True, False]}
    kw = dict(n_iter=4, n_points=2, cv=3, random_state=0)
    two = BayesSearchCV(LogisticRegression(), space, n_jobs=2, **kw).fit(X, y)
    one = BayesSearchCV(LogisticRegression(), space, **kw).fit(X, y)
    assert two.cv_results_["params"] == one.cv_results_["params"]
    np.testing.assert_allclose(two.cv_results_["mean_test_score"], one.cv_results_["mean_test_score"])


def test_fit_params_and_groups_reach_the_estimator_and_splitter():
    groups = np.repeat([0, 1, 2], 4)
    search = _search(n_iter=2, cv=GroupKFold(n_splits=3)).fit(X_DUMMY, groups=groups, extra="value")
    assert search.n_splits_ == 3 and search.best_estimator_.fit_params_ == {"extra": "value"}
    with pytest.raises(ValueError, match="groups"):
        _search(n_iter=2, cv=GroupKFold(n_splits=3)).fit(X_DUMMY)


# Behaviours scikit-optimize documents for its BayesSearchCV
def test_best_params_lie_in_the_space_and_results_have_one_row_per_evaluation():
    search = _search(n_iter=5).fit(X_DUMMY)
    assert 0.0 <= search.best_params_["x"] <= 1.0 and search.best_params_["kind"] in "abc"
    assert all(len(v) == 5 for v in search.cv_results_.values())
    assert search.best_score_ == search.cv_results_["mean_test_score"].max()


def test_refit_false_has_no_best_estimator():
    search = _search(n_iter=3, refit=False).fit(X_DUMMY)
    assert not hasattr(search, "best_estimator_") and "x" in search.best_params_
    with pytest.raises(AttributeError, match="predict"):
        search.predict(X_DUMMY)


def test_score_and_predict_delegate_to_the_best_estimator():
    search = _search(n_iter=3).fit(X_DUMMY)
    assert search.score(X_DUMMY) == search.best_estimator_.score(X_DUMMY) == search.best_score_
    np.testing.assert_array_equal(search.predict(X_DUMMY), search.best_estimator_.predict(X_DUMMY))


def test_total_iterations_before_fit_and_unfitted_attributes():
    assert _search(n_iter=7).total_iterations == 7
    assert _search([{"x": (0.0, 1.0)}, ({"n": (1, 3)}, 4)], n_iter=7).total_iterations == 11
    with pytest.raises(NotFittedError):
        _search().predict(X_DUMMY)


def test_clone_keeps_the_parameters():
    search = _search([({"x": (0.0, 1.0)}, 2)], n_points=2, optimizer_kwargs={"base_estimator": "RF"})
    assert clone(search).get_params(deep=False).keys() == search.get_params(deep=False).keys()
    assert clone(search).fit(X_DUMMY).total_iterations == 2


def test_skopt_positional_signature_fails_loudly():
    with pytest.raises(TypeError):
        BayesSearchCV(Peak(), SPACE, None, 10)
