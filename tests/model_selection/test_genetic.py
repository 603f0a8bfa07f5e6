import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skopt.space import Categorical, Integer, Real

from sknet import MLPClassifier
from sknet.model_selection import GeneticSearchCV
from sknet.model_selection._random import RandomizedSearchCV

X_TINY = np.zeros((4, 1))  # Landscape ignores the data: cv=2 splits it in two


class Landscape(BaseEstimator):
    """A known score: the peak, 0.5, is at x=10**1.3, y=2.1, n=37, c="c". Fit does nothing
    (or fails for c="fail") and counts its calls."""

    fits = 0

    def __init__(self, x=1.0, y=0.0, n=37, c="a"):
        self.x, self.y, self.n, self.c = x, y, n, c

    def fit(self, X, y=None):
        type(self).fits += 1
        if self.c == "fail":
            raise ValueError("this candidate always fails")
        return self

    def score(self, X, y=None):
        distance = (np.log10(self.x) - 1.3) ** 2 + (self.y - 2.1) ** 2 + ((self.n - 37) / 20) ** 2
        return 0.5 * (self.c == "c") - distance


class Flat(Landscape):
    def score(self, X, y=None):
        return 0.0


SPACE = {"x": Real(1e-3, 1e3, prior="log-uniform"), "y": Real(-5.0, 5.0), "c": Categorical(list("abcd"))}


def _search(space=SPACE, estimator=None, **kw):
    kw = {"population_size": 6, "generations": 4, "cv": 2, "refit": False, "random_state": 0, **kw}
    return GeneticSearchCV(estimator or Landscape(), space, **kw)


def _fits_counted(search):
    Landscape.fits = 0
    search.fit(X_TINY)
    return Landscape.fits


def test_beats_random_search_at_the_same_budget():
    genetic, random = [], []
    for seed in range(10):
        search = _search(population_size=10, generations=8, random_state=seed).fit(X_TINY)
        budget = len(search.cv_results_["params"])
        baseline = RandomizedSearchCV(Landscape(), SPACE, n_iter=budget, cv=2, refit=False,
                                      random_state=seed).fit(X_TINY)
        genetic.append(search.cv_results_["mean_test_score"].max())
        random.append(baseline.cv_results_["mean_test_score"].max())
    assert np.mean(genetic) > np.mean(random) + 0.1, (np.mean(genetic), np.mean(random))


@pytest.mark.parametrize("population_size, generations, elitism", [(4, 3, 1), (6, 2, 0), (5, 4, 2)])
def test_population_and_generations_set_the_budget(population_size, generations, elitism):
    search = _search(population_size=population_size, generations=generations, elitism=elitism)
    n_fits = _fits_counted(search)
    # elites are served from the cache: every other individual is new in a continuous space
    expected = population_size + (generations - 1) * (population_size - elitism)
    assert len(search.cv_results_["params"]) == expected and n_fits == 2 * expected
    assert search.n_generations_ == generations
    per_generation = np.bincount(search.cv_results_["generation"]).tolist()
    assert per_generation == [h["n_evaluated"] for h in search.history_]


def test_history_reports_each_generation():
    search = _search(generations=5).fit(X_TINY)
    scores, generation = search.cv_results_["mean_test_score"], search.cv_results_["generation"]
    assert [h["generation"] for h in search.history_] == list(range(5))
    for h in search.history_:
        assert set(h) == {"generation", "best_score", "best_score_so_far", "mean_score", "std_score",
                          "n_evaluated", "wall_time"}
        assert h["best_score_so_far"] == scores[generation <= h["generation"]].max()
        assert h["mean_score"] <= h["best_score"] <= h["best_score_so_far"] and h["std_score"] >= 0
        assert h["wall_time"] >= 0
    so_far = [h["best_score_so_far"] for h in search.history_]
    assert so_far == sorted(so_far)


def test_elitism_keeps_the_best():
    kept = _search(elitism=1, mutation_prob=1.0, generations=6).fit(X_TINY).history_
    assert all(h["best_score"] == h["best_score_so_far"] for h in kept)
    lost = _search(elitism=0, mutation_prob=1.0, generations=6).fit(X_TINY).history_
    assert any(h["best_score"] < h["best_score_so_far"] for h in lost)


@pytest.mark.parametrize("patience, n_generations", [(2, 3), (4, 5), (None, 8)])
def test_patience_stops_after_generations_without_improvement(patience, n_generations):
    search = _search(estimator=Flat(), generations=8, patience=patience).fit(X_TINY)
    assert search.n_generations_ == len(search.history_) == n_generations


def test_without_crossover_and_mutation_children_come_from_the_cache():
    search = _search(crossover_prob=0.0, mutation_prob=0.0, generations=5)
    n_fits = _fits_counted(search)
    assert [h["n_evaluated"] for h in search.history_] == [6, 0, 0, 0, 0]
    assert len(search.cv_results_["params"]) == 6 and n_fits == 6 * 2


def test_small_space_never_trains_a_candidate_twice():
    space = {"c": list("abcd"), "y": [0.0, 1.0]}  # 8 candidates in all
    search = _search(space, population_size=6, generations=10)
    n_fits = _fits_counted(search)
    params = [tuple(sorted(p.items())) for p in search.cv_results_["params"]]
    assert len(set(params)) == len(params) <= 8 and n_fits == 2 * len(params)
    assert search.n_generations_ == 10


def test_bounds_and_types_are_respected():
    space = {"x": (1e-3, 1e3, "log-uniform"), "y": (-5.0, 5.0), "n": Integer(1, 100, prior="log-uniform"),
             "c": ["a", "b"]}
    search = _search(space, crossover_prob=1.0, mutation_prob=1.0, population_size=8, generations=6)
    for p in search.fit(X_TINY).cv_results_["params"]:
        assert 1e-3 <= p["x"] <= 1e3 and -5 <= p["y"] <= 5 and 1 <= p["n"] <= 100 and p["c"] in "ab"
        assert type(p["x"]) is float and type(p["y"]) is float and type(p["n"]) is int
    # a log-uniform gene mutates on the log scale: small values are reached too
    assert min(p["x"] for p in search.cv_results_["params"]) < 1e-1


def test_reproducible_with_random_state():
    first, second, other = (_search(random_state=s).fit(X_TINY).cv_results_["params"] for s in (3, 3, 4))
    assert first == second and first != other


def test_multimetric_optimises_the_refit_metric(clf_data):
    X, y = clf_data
    search = GeneticSearchCV(LogisticRegression(), {"C": (1e-3, 1e2, "log-uniform")}, population_size=4,
                             generations=2, scoring=["accuracy", "f1_macro"], refit="f1_macro", cv=2,
                             random_state=0).fit(X, y)
    assert search.best_score_ == search.cv_results_["mean_test_f1_macro"].max()
    assert search.history_[-1]["best_score_so_far"] == search.best_score_
    with pytest.raises(ValueError, match="refit=<metric name>"):
        search.set_params(refit=False).fit(X, y)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_failing_candidates_score_error_score_and_the_search_goes_on():
    space = {**SPACE, "c": ["c", "fail"]}
    with pytest.warns(FitFailedWarning, match="always fails"):
        search = _search(space, population_size=8).fit(X_TINY)
    failed = np.array([p["c"] == "fail" for p in search.cv_results_["params"]])
    assert failed.any() and np.isnan(search.cv_results_["mean_test_score"][failed]).all()
    assert search.n_generations_ == 4 and search.cv_results_["params"][np.nanargmax(
        search.cv_results_["mean_test_score"])]["c"] == "c"
    with pytest.raises(ValueError, match="always fails"):
        _search(space, population_size=8, error_score="raise").fit(X_TINY)


def test_a_generation_whose_fits_all_fail_is_skipped_with_a_warning():
    # every first individual is "ok"; the one child, mutated, must be "fail"
    space = {"c": Categorical(["ok", "fail"], prior=[1.0, 0.0])}
    search = _search(space, population_size=2, tournament_size=2, crossover_prob=0.0, mutation_prob=1.0,
                     generations=3)
    with pytest.warns(FitFailedWarning, match="generation 1 failed"):
        n_fits = _fits_counted(search)
    assert search.cv_results_["params"] == [{"c": "ok"}] and n_fits == 2 * 2  # "fail" is not retried
    assert [h["n_evaluated"] for h in search.history_] == [1, 1, 0]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"population_size": 1}, InvalidParameterError, "population_size"),
    ({"generations": 0}, InvalidParameterError, "generations"),
    ({"crossover_prob": 1.5}, InvalidParameterError, "crossover_prob"),
    ({"mutation_prob": -0.1}, InvalidParameterError, "mutation_prob"),
    ({"tournament_size": 0}, InvalidParameterError, "tournament_size"),
    ({"elitism": -1}, InvalidParameterError, "elitism"),
    ({"patience": 0}, InvalidParameterError, "patience"),
    ({"elitism": 6}, ValueError, "elitism=6 must be below population_size=6"),
    ({"tournament_size": 7}, ValueError, "tournament_size=7 must be at most population_size=6"),
    ({"space": [SPACE]}, InvalidParameterError, "param_distributions"),
    ({"space": {}}, ValueError, "non-empty dict"),
    ({"space": {"x": (5.0, 1.0)}}, ValueError, "'x' is empty or inverted"),
])
def test_invalid_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        _search(**kwargs).fit(X_TINY)


def test_pipeline_ending_in_an_sknet_net():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=5, device="cpu", random_state=0))
    space = {"mlpclassifier__lr": (1e-3, 1e-1, "log-uniform"), "mlpclassifier__n_units": Integer(4, 32),
             "mlpclassifier__activation": ["relu", "tanh"]}
    search = GeneticSearchCV(pipe, space, population_size=3, generations=2, cv=2, random_state=0).fit(X, y)
    assert type(search.best_params_["mlpclassifier__n_units"]) is int
    assert search.best_estimator_[-1].n_iter_ == 5 and search.score(X, y) > 0.5


def test_parallel_results_equal_sequential(clf_data):
    X, y = clf_data
    space = {"C": (1e-3, 1e2, "log-uniform"), "fit_intercept": [True, False]}
    one, two = (GeneticSearchCV(LogisticRegression(), space, population_size=4, generations=2, cv=2,
                                n_jobs=n_jobs, random_state=0).fit(X, y) for n_jobs in (1, 2))
    assert one.cv_results_["params"] == two.cv_results_["params"]
    np.testing.assert_array_equal(one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"])
    assert two.predict(X).shape == y.shape


def test_callbacks_see_one_task_per_generation(clf_data, task_counter):
    X, y = clf_data
    counter = task_counter
    search = GeneticSearchCV(MLPClassifier(max_epochs=1, device="cpu"), {"lr": (1e-3, 1e-1, "log-uniform")},
                             population_size=3, generations=3, cv=2, random_state=0)
    search.set_callbacks(counter).fit(X, y)
    assert counter.begun["search"] == 1 and counter.begun["generation"] == 3
    # the search's fit, then each candidate's fits (merged with their split tasks) and the refit
    assert counter.begun["fit"] == 1 + 2 * len(search.cv_results_["params"]) + 1


def test_rich_progress_bar_runs():
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    search = _search(generations=3, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitFailedWarning)
        search.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X_TINY)
    assert search.n_generations_ == 3


def test_verbose_prints_a_line_per_generation(capsys):
    _search(generations=3, verbose=1).fit(X_TINY)
    assert capsys.readouterr().out.count("[GeneticSearchCV] generation") == 3
