"""sknet.plot: the figures show the fitted attributes they claim to (checked on the drawn data)."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.exceptions import FitFailedWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV as SklearnGridSearchCV  # noqa: E402
from sklearn.model_selection import RandomizedSearchCV as SklearnRandomizedSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sknet import MLPClassifier, TorchRegressor  # noqa: E402
from sknet.model_selection import (  # noqa: E402
    BayesSearchCV,
    GeneticSearchCV,
    GridSearchCV,
    RandomizedSearchCV,
)
from sknet.plot import (  # noqa: E402
    plot_best_so_far,
    plot_epoch_curves,
    plot_generations,
    plot_loss_curve,
    plot_param_scores,
)

LR = [1e-4, 1e-3, 1e-2, 1e-1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    return X[:200], y[:200]


def net(**params):
    return MLPClassifier(**{"max_epochs": 3, "n_units": 16, "random_state": 0, **params})


@pytest.fixture(scope="module")
def multimetric_search(small):
    """A pipeline search with a numeric (log-spaced) and a categorical hyperparameter, two metrics."""
    grid = {"mlpclassifier__lr": LR, "mlpclassifier__activation": ["relu", "tanh"]}
    search = GridSearchCV(make_pipeline(StandardScaler(), net()), grid, cv=2,
                          scoring=["accuracy", "neg_log_loss"], refit="accuracy")
    return search.fit(*small)


@pytest.fixture(scope="module")
def genetic_search(small):
    space = {"lr": (1e-4, 1e-1, "log-uniform"), "activation": ["relu", "tanh"]}
    # no elitism: a generation's best may fall below the best so far, so the two lines differ
    search = GeneticSearchCV(net(), space, population_size=4, generations=3, elitism=0, cv=2,
                             random_state=0)
    return search.fit(*small)


def errorbar_data(ax):
    """x, y and (low, high) of each error bar of the first errorbar drawn on ax."""
    container = ax.containers[0]
    data_line, _, (bars,) = container.lines
    segments = np.array(bars.get_segments())
    return data_line.get_xdata(), data_line.get_ydata(), segments[:, 0, 1], segments[:, 1, 1]


def line_labelled(ax, label):
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    return line


# -- plot_loss_curve ----------------------------------------------------------------------------
def test_loss_curve_draws_both_losses_and_marks_best_epoch(small):
    fitted = net(early_stopping=True, max_epochs=5).fit(*small)
    ax = plot_loss_curve(fitted)
    training = line_labelled(ax, "training loss")
    validation = line_labelled(ax, "validation loss")
    np.testing.assert_array_equal(training.get_xdata(), np.arange(1, 6))
    np.testing.assert_allclose(training.get_ydata(), fitted.loss_curve_)
    np.testing.assert_allclose(validation.get_ydata(), fitted.validation_loss_curve_)
    best = line_labelled(ax, f"best epoch ({fitted.best_epoch_})")
    assert list(best.get_xdata()) == [fitted.best_epoch_] * 2
    assert ax.get_xlabel() == "epoch"


def test_loss_curve_without_early_stopping_draws_only_the_training_loss(small):
    fitted = net(max_epochs=4).fit(*small)
    ax = plot_loss_curve(fitted)
    (line,) = ax.get_lines()
    assert line.get_label() == "training loss"
    np.testing.assert_allclose(line.get_ydata(), fitted.loss_curve_)


def test_loss_curve_of_a_pipeline_is_that_of_its_last_step_on_the_given_axes(small):
    pipe = make_pipeline(StandardScaler(), net(max_epochs=4)).fit(*small)
    _, ax = plt.subplots()
    assert plot_loss_curve(pipe, ax=ax) is ax
    np.testing.assert_allclose(line_labelled(ax, "training loss").get_ydata(), pipe[-1].loss_curve_)


def test_loss_curve_of_a_torch_regressor_inside_a_target_transform(small):
    X, y = small
    model = TransformedTargetRegressor(TorchRegressor(max_epochs=4, random_state=0, device="cpu"),
                                       transformer=StandardScaler()).fit(X, y.astype(float))
    ax = plot_loss_curve(model)
    np.testing.assert_allclose(line_labelled(ax, "training loss").get_ydata(), model.regressor_.loss_curve_)


@pytest.mark.parametrize("estimator, error, match", [
    (net(), NotFittedError, "not fitted"),
    (make_pipeline(StandardScaler(), net()), NotFittedError, "not fitted"),
    (LogisticRegression(), TypeError, "MLPClassifier, MLPRegressor, TorchClassifier or TorchRegressor.*got "
                                      "LogisticRegression"),
    (make_pipeline(StandardScaler(), LogisticRegression()), TypeError,
     "Pipeline ending in LogisticRegression"),
])
def test_loss_curve_refuses_what_it_cannot_plot(estimator, error, match):
    with pytest.raises(error, match=match):
        plot_loss_curve(estimator)


# -- plot_param_scores --------------------------------------------------------------------------
@pytest.mark.parametrize("param", ["lr", "mlpclassifier__lr", "param_mlpclassifier__lr"])
def test_param_scores_numeric_points_with_std_error_bars_on_a_log_axis(multimetric_search, param):
    results = multimetric_search.cv_results_
    ax = plot_param_scores(multimetric_search, param)
    x, y, low, high = errorbar_data(ax)
    mean, std = results["mean_test_accuracy"], results["std_test_accuracy"]  # refit's metric
    np.testing.assert_allclose(x, [p["mlpclassifier__lr"] for p in results["params"]])
    np.testing.assert_allclose(y, mean)
    np.testing.assert_allclose(low, mean - std)
    np.testing.assert_allclose(high, mean + std)
    assert ax.get_xscale() == "log"  # 1e-4 .. 1e-1 spans three decades
    assert ax.get_xlabel() == "mlpclassifier__lr"
    assert ax.get_ylabel() == "mean test accuracy"
    best = line_labelled(ax, "best")
    assert best.get_xdata()[0] == results["params"][multimetric_search.best_index_]["mlpclassifier__lr"]
    assert best.get_ydata()[0] == multimetric_search.best_score_


def test_param_scores_categories_are_ticks_in_order_of_appearance(multimetric_search):
    results = multimetric_search.cv_results_
    ax = plot_param_scores(multimetric_search, "activation", metric="neg_log_loss")
    x, y, _, _ = errorbar_data(ax)
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == ["relu", "tanh"]
    assert [labels[int(i)] for i in x] == [p["mlpclassifier__activation"] for p in results["params"]]
    np.testing.assert_allclose(y, results["mean_test_neg_log_loss"])
    assert ax.get_ylabel() == "mean test neg_log_loss"


@pytest.mark.parametrize("values, scale", [
    ([1.0, 5.0, 50.0], "linear"),  # under two decades
    ([-1e-3, 0.0, 1.0], "linear"),
    ([0.0, 1e-4, 1e-1], "symlog"),
    ([1e-3, 1e-1, 1.0], "log"),
])
def test_param_scores_log_axis_only_for_positive_values_spanning_two_decades(values, scale):
    X, y = np.random.RandomState(0).randn(60, 3), np.arange(60) % 2
    with warnings.catch_warnings():  # a negative tol fails: scored NaN, drawn as no point
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        search = SklearnGridSearchCV(LogisticRegression(), {"tol": values}, cv=2).fit(X, y)
    ax = plot_param_scores(search, "tol")
    assert ax.get_xscale() == scale
    finite = np.isfinite(search.cv_results_["mean_test_score"])
    np.testing.assert_allclose(errorbar_data(ax)[0], np.array(values)[finite])
    np.testing.assert_allclose(errorbar_data(ax)[1], search.cv_results_["mean_test_score"][finite])


def test_param_scores_skips_candidates_without_the_param():
    X, y = np.random.RandomState(0).randn(60, 3), np.arange(60) % 2
    grid = [{"C": [0.1, 1.0]}, {"fit_intercept": [True, False]}]
    search = SklearnGridSearchCV(LogisticRegression(), grid, cv=2).fit(X, y)
    ax = plot_param_scores(search, "fit_intercept")
    x, y_drawn, _, _ = errorbar_data(ax)
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["True", "False"]
    np.testing.assert_allclose(y_drawn, search.cv_results_["mean_test_score"][2:])
    assert list(x) == [0, 1]


def test_param_scores_errors_name_what_is_available(multimetric_search):
    with pytest.raises(ValueError, match=r"'momentum'.*available.*mlpclassifier__activation"):
        plot_param_scores(multimetric_search, "momentum")
    with pytest.raises(ValueError, match=r"metric='f1'.*available.*'accuracy', 'neg_log_loss'"):
        plot_param_scores(multimetric_search, "lr", metric="f1")
    with pytest.raises(NotFittedError):
        plot_param_scores(GridSearchCV(net(), {"lr": LR}), "lr")
    with pytest.raises(TypeError, match="fitted search.*got MLPClassifier"):
        plot_param_scores(net(), "lr")


def test_param_scores_refuses_an_ambiguous_name():
    X, y = np.random.RandomState(0).randn(60, 3), np.arange(60) % 2
    pipe = Pipeline([("a", StandardScaler()), ("b", StandardScaler()), ("clf", LogisticRegression())])
    search = SklearnGridSearchCV(pipe, {"a__with_std": [True, False], "b__with_std": [True]}, cv=2)
    search.fit(X, y)
    with pytest.raises(ValueError, match=r"ambiguous.*'a__with_std', 'b__with_std'"):
        plot_param_scores(search, "with_std")
    assert plot_param_scores(search, "a__with_std").get_xlabel() == "a__with_std"


def test_multimetric_search_without_refit_metric_needs_metric(small):
    search = GridSearchCV(net(), {"lr": LR[:2]}, cv=2, scoring=["accuracy", "f1_macro"], refit=False)
    search.fit(*small)
    with pytest.raises(ValueError, match=r"pass metric=, one of \['accuracy', 'f1_macro'\]"):
        plot_best_so_far(search)
    ax = plot_best_so_far(search, metric="f1_macro")
    np.testing.assert_allclose(line_labelled(ax, "GridSearchCV").get_ydata(),
                               np.maximum.accumulate(search.cv_results_["mean_test_f1_macro"]))


# -- plot_best_so_far ---------------------------------------------------------------------------
SEARCHES = {
    "grid": lambda: GridSearchCV(net(), {"lr": LR}, cv=2),
    "random": lambda: RandomizedSearchCV(net(), {"lr": (1e-4, 1e-1, "log-uniform")}, n_iter=4, cv=2,
                                         random_state=0),
    "bayes": lambda: BayesSearchCV(net(), {"lr": (1e-4, 1e-1, "log-uniform")}, n_iter=4,
                                   optimizer_kwargs={"n_initial_points": 2},
                                   cv=2, random_state=0),
    "genetic": lambda: GeneticSearchCV(net(), {"lr": (1e-4, 1e-1, "log-uniform")}, population_size=2,
                                       tournament_size=2, generations=2, cv=2, random_state=0),
    "sklearn grid": lambda: SklearnGridSearchCV(net(), {"lr": LR}, cv=2),
    "sklearn random": lambda: SklearnRandomizedSearchCV(net(), {"lr": LR}, n_iter=3, cv=2, random_state=0),
}


@pytest.mark.parametrize("make_search", SEARCHES.values(), ids=SEARCHES.keys())
def test_best_so_far_is_the_running_max_of_mean_test_scores(make_search, small):
    search = make_search().fit(*small)
    scores = search.cv_results_["mean_test_score"]
    ax = plot_best_so_far(search)
    line = line_labelled(ax, type(search).__name__)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(scores) + 1))
    np.testing.assert_allclose(line.get_ydata(), np.maximum.accumulate(scores))
    assert line.get_ydata()[-1] == search.best_score_
    points = [other for other in ax.get_lines() if other is not line]
    np.testing.assert_allclose(points[0].get_ydata(), scores)


def test_best_so_far_against_time_steps_at_each_candidates_finish_time(small):
    search = SEARCHES["bayes"]().fit(*small)
    finish, scores = search.finish_time_, search.cv_results_["mean_test_score"]
    ax = plot_best_so_far(search, x="time", label="bayes")
    line = line_labelled(ax, "bayes")
    order = np.argsort(finish, kind="stable")
    np.testing.assert_array_equal(line.get_xdata(), finish[order])
    np.testing.assert_allclose(line.get_ydata(), np.maximum.accumulate(scores[order]))
    assert ax.get_xlabel() == "seconds since fit began"
    with pytest.raises(ValueError, match="x must be 'candidates' or 'time'"):
        plot_best_so_far(search, x="epochs")
    with pytest.raises(ValueError, match="needs the search's finish_time_"):
        plot_best_so_far(SEARCHES["sklearn grid"]().fit(*small), x="time")


def test_best_so_far_skips_failed_candidates_and_compares_searches_on_one_axes():
    X, y = np.random.RandomState(0).randn(60, 3), np.arange(60) % 2
    grid = {"C": [-1.0, 0.01, -2.0, 1.0]}  # a negative C fails: scored NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        failing = SklearnGridSearchCV(LogisticRegression(), grid, cv=2).fit(X, y)
        scores = failing.cv_results_["mean_test_score"]
    other = SklearnGridSearchCV(LogisticRegression(), {"C": [1.0, 0.01]}, cv=2).fit(X, y)
    _, ax = plt.subplots()
    assert plot_best_so_far(failing, label="with failures", ax=ax) is ax
    assert plot_best_so_far(other, label="other", ax=ax) is ax
    drawn = line_labelled(ax, "with failures").get_ydata()
    assert np.isnan(drawn[0])
    np.testing.assert_allclose(drawn[1:], [scores[1], scores[1], max(scores[1], scores[3])])
    np.testing.assert_allclose(line_labelled(ax, "other").get_ydata(),
                               np.maximum.accumulate(other.cv_results_["mean_test_score"]))
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["with failures", "other"]


# -- plot_generations ---------------------------------------------------------------------------
def test_generations_lines_and_band_are_the_history(genetic_search):
    history = genetic_search.history_
    ax = plot_generations(genetic_search)
    generations = [record["generation"] for record in history]
    assert generations == [0, 1, 2]
    # the fixture tells the lines apart: some generation's best is below the best so far
    assert any(record["best_score"] < record["best_score_so_far"] for record in history)
    for label, key in [("best of generation", "best_score"), ("mean of generation", "mean_score"),
                       ("best so far", "best_score_so_far")]:
        line = line_labelled(ax, label)
        assert line.get_xdata().tolist() == generations
        np.testing.assert_allclose(line.get_ydata(), [record[key] for record in history])
    (band,) = ax.collections
    vertices = band.get_paths()[0].vertices
    for record in history:
        at = vertices[np.isclose(vertices[:, 0], record["generation"]), 1]
        assert at.min() == pytest.approx(record["mean_score"] - record["std_score"])
        assert at.max() == pytest.approx(record["mean_score"] + record["std_score"])
    assert ax.get_xlabel() == "generation"


def test_generations_needs_a_fitted_genetic_search(small):
    with pytest.raises(TypeError, match="GeneticSearchCV, got GridSearchCV.*plot_best_so_far"):
        plot_generations(GridSearchCV(net(), {"lr": LR}))
    with pytest.raises(NotFittedError):
        plot_generations(GeneticSearchCV(net(), {"lr": LR}))


# -- matplotlib is optional ---------------------------------------------------------------------
@pytest.mark.parametrize("plot, args", [
    (plot_loss_curve, ()), (plot_param_scores, ("lr",)), (plot_best_so_far, ()), (plot_generations, ()),
])
def test_without_matplotlib_each_plot_says_how_to_install_it(plot, args, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "sknet\[plot\]"'):
        plot(object(), *args)


def test_importing_sknet_plot_does_not_import_matplotlib():
    code = "import sys; sys.modules['matplotlib'] = None; import sknet.plot; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- plot_epoch_curves --------------------------------------------------------------------------
def test_epoch_curves_draw_one_line_per_setting_through_its_scores(small):
    grid = {"mlpclassifier__max_epochs": [2, 4, 6], "mlpclassifier__lr": [1e-3, 1e-2]}
    search = GridSearchCV(make_pipeline(StandardScaler(), net()), grid, cv=2).fit(*small)
    ax = plot_epoch_curves(search)  # "max_epochs" finds the pipeline's name
    results = search.cv_results_
    for lr in (1e-3, 1e-2):
        line = line_labelled(ax, f"lr={lr}")
        rows = [i for i, p in enumerate(results["params"]) if p["mlpclassifier__lr"] == lr]
        assert list(line.get_xdata()) == [2, 4, 6]
        np.testing.assert_array_equal(line.get_ydata(), results["mean_test_score"][rows])
    best = line_labelled(ax, "best")
    assert best.get_ydata()[0] == search.best_score_
    assert ax.get_xlabel() == "mlpclassifier__max_epochs"


def test_epoch_curves_name_a_missing_param(small):
    search = GridSearchCV(net(), {"lr": LR[:2]}, cv=2).fit(*small)
    with pytest.raises(ValueError, match="param='max_epochs' is not a hyperparameter"):
        plot_epoch_curves(search)
