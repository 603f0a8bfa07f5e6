"""The batched engine inside the four searches: same results as sequential fits, less time."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
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


@pytest.fixture
def engine_tasks(monkeypatch):
    """The engine's tasks, as lists of their jobs' (candidate, split), in the order they ran."""
    from sknet.model_selection import _evaluate

    tasks, real = [], _evaluate.train_and_score

    def train_and_score(jobs, *args):
        tasks.append([(job.candidate, job.split) for job in jobs])
        return real(jobs, *args)

    monkeypatch.setattr(_evaluate, "train_and_score", train_and_score)
    return tasks


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_widths_train_as_one_task_or_spread_over_the_workers(clf_data, engine_tasks, dropout):
    from joblib import parallel_config

    X, y = clf_data
    grid = {"lr": [1e-3, 1e-2], "n_units": [4, 8, 32]}
    counts = []
    one = GridSearchCV(MLPClassifier(dropout=dropout, **NET), grid, cv=2).fit(X, y)
    counts.append(len(engine_tasks))
    with parallel_config(backend="threading"):
        two = GridSearchCV(MLPClassifier(dropout=dropout, **NET), grid, cv=2, n_jobs=2).fit(X, y)
        counts.append(len(engine_tasks) - sum(counts))
        many = GridSearchCV(MLPClassifier(dropout=dropout, **NET), grid, cv=2, n_jobs=8).fit(X, y)
        counts.append(len(engine_tasks) - sum(counts))
    # One worker: the three widths share one loop. Two: the widest alone, the other two
    # together. Eight: a width per task, never less (a width's models share tensors). The
    # results are the same: each model draws its own dropout masks.
    assert counts == [1, 2, 3]
    for search in (two, many):
        np.testing.assert_allclose(search.cv_results_["mean_test_score"], one.cv_results_["mean_test_score"],
                                   atol=1e-6)


@pytest.mark.parametrize("dropout", [0.0, 0.2])  # with dropout a fit draws from torch's generator
def test_sequential_fits_in_threads_get_the_results_of_one_thread(clf_data, dropout):
    from joblib import parallel_config

    X, y = clf_data
    grid = {"lr": [1e-3, 1e-2], "n_units": [4, 8]}
    make = lambda **kw: GridSearchCV(MLPClassifier(dropout=dropout, **NET), grid, cv=2,  # noqa: E731
                                     engine="sequential", **kw)
    one = make().fit(X, y)
    with parallel_config(backend="threading"):
        four = make(n_jobs=4).fit(X, y)
    np.testing.assert_allclose(four.cv_results_["mean_test_score"], one.cv_results_["mean_test_score"],
                               atol=1e-6)


@pytest.fixture
def sequential_fits(monkeypatch):
    """Counts the fits trained by ``BaseMLP._train_epochs``, sknet's sequential training loop."""
    from sknet.nets._mlp import BaseMLP

    calls, train = [], BaseMLP._train_epochs
    monkeypatch.setattr(BaseMLP, "_train_epochs",
                        lambda self, *a, **k: calls.append(self) or train(self, *a, **k))
    return calls


def test_pandas_input_is_batched_and_trained_once(clf_data, sequential_fits):
    pd = pytest.importorskip("pandas")
    X, y = clf_data
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    labels = pd.Series(np.array(["cat", "dog", "eel"])[y % 3], name="animal")  # object dtype
    runs = {kind: GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=3).fit(*data)
            for kind, data in {"pandas": (frame, labels), "numpy": (X, labels.to_numpy(str))}.items()}
    assert runs["pandas"].n_batched_fits_ == 2 * 3
    assert sequential_fits == []  # no fit trained twice, and the refit by the engine too
    np.testing.assert_allclose(runs["pandas"].cv_results_["mean_test_score"],
                               runs["numpy"].cv_results_["mean_test_score"], atol=1e-6)
    best = runs["pandas"].best_estimator_
    assert list(best.feature_names_in_) == list(frame.columns)
    assert not hasattr(runs["numpy"].best_estimator_, "feature_names_in_")
    np.testing.assert_array_equal(best.predict(frame), runs["numpy"].best_estimator_.predict(X))


def test_only_the_refit_net_is_trained_alone_by_the_engine(clf_data, sequential_fits):
    from sklearn.ensemble import StackingClassifier
    from sklearn.pipeline import Pipeline

    X, y = clf_data
    inner = StackingClassifier([("m", MLPClassifier(n_units=5, **NET))], final_estimator=LogisticRegression(),
                               cv=2)
    pipe = Pipeline([("stack", inner), ("net", MLPClassifier(n_units=7, **NET))])
    runs = _both(lambda engine: GridSearchCV(pipe, {"net__lr": [1e-3, 1e-2]}, cv=3, engine=engine), X, y)
    _assert_same_results(runs)
    final_nets = [est for est in sequential_fits if est.n_units == 7]
    assert runs["batched"].n_batched_fits_ == 6 and len(final_nets) == 6 + 1  # the sequential run's
    assert any(est.n_units == 5 for est in sequential_fits)  # the inner nets fit as usual


def test_a_dropout_refit_is_trained_by_the_engine_as_its_plain_fit(clf_data, sequential_fits):
    X, y = clf_data
    net = MLPClassifier(dropout=0.2, dtype="float64", **NET)  # float64: equal on any CPU's BLAS
    search = GridSearchCV(net, {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert sequential_fits == []  # each model draws the masks its own fit draws
    alone = clone(net).set_params(**search.best_params_).fit(X, y)
    np.testing.assert_allclose(search.best_estimator_.predict_proba(X), alone.predict_proba(X), atol=1e-9)


def test_an_engine_failure_on_the_refit_falls_back_to_its_fit(clf_data, sequential_fits, monkeypatch):
    from sknet.model_selection import _refit

    X, y = clf_data

    def fail(estimator, jobs, *args):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(_refit, "train_batched", fail)  # the refit's, not the search tasks' engine
    with pytest.warns(UserWarning, match="failed on the refit.*engine bug"):
        search = GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert search.n_batched_fits_ == 4 and len(sequential_fits) == 1
    assert search.best_estimator_.n_iter_ == NET["max_epochs"]


def test_weights_that_are_not_one_per_row_are_left_to_scikit_learn(clf_data):
    X, y = clf_data
    runs = _both(lambda engine: GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=2,
                                             engine=engine), X, y, sample_weight=2.0)
    np.testing.assert_array_equal(runs["batched"].cv_results_["mean_test_score"],
                                  runs["sequential"].cv_results_["mean_test_score"])
    assert not hasattr(runs["batched"], "n_batched_fits_")  # the engine was off for this search


def test_lists_are_batched_and_trained_once(clf_data, sequential_fits):
    X, y = clf_data
    search = GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=3).fit(X.tolist(), y.tolist())
    assert search.n_batched_fits_ == 2 * 3 and sequential_fits == []
    arrays = GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=3).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], arrays.cv_results_["mean_test_score"])


def test_the_heap_is_frozen_for_the_cycle_collector_during_a_batched_search(clf_data, monkeypatch):
    import gc

    from sknet.model_selection import _tasks

    X, y = clf_data
    counts, train = [], _tasks.train_batched

    def counting_train(*args, **kwargs):
        counts.append(gc.get_freeze_count())
        return train(*args, **kwargs)

    monkeypatch.setattr(_tasks, "train_batched", counting_train)
    assert gc.get_freeze_count() == 0
    GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert counts and all(count > 1000 for count in counts) and gc.get_freeze_count() == 0
    gc.freeze()  # a caller's own freeze is left as it was
    try:
        frozen = gc.get_freeze_count()
        GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
        assert gc.get_freeze_count() > 0.9 * frozen  # not unfrozen (objects that died left it)
    finally:
        gc.unfreeze()


def test_the_refit_is_trained_by_the_engine_as_its_sequential_fit(clf_data, sequential_fits):
    X, y = clf_data
    search = GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=3).fit(X, y)
    assert sequential_fits == []
    alone = MLPClassifier(**NET).set_params(**search.best_params_).fit(X, y)
    assert len(sequential_fits) == 1
    np.testing.assert_allclose(search.best_estimator_.predict_proba(X), alone.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(search.best_estimator_.loss_curve_, alone.loss_curve_, rtol=1e-4)
    GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=3, engine="sequential").fit(X, y)
    assert len(sequential_fits) == 1 + 2 * 3 + 1


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
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**NET))
    with pytest.warns(UserWarning, match=r"does not take fit parameters \['standardscaler__sample_weight'\]"):
        GridSearchCV(pipe, {"mlpclassifier__lr": [1e-3]}, cv=2, engine="batched").fit(
            X, y, standardscaler__sample_weight=np.ones(len(y)))


@pytest.mark.parametrize("in_pipeline", [False, True])
def test_sample_weights_are_batched_and_match_sequential(clf_data, sequential_fits, in_pipeline):
    X, y = clf_data
    weight = np.random.RandomState(0).uniform(0.0, 3.0, len(y))
    net = MLPClassifier(**NET)
    estimator, grid, fit_params = net, {"lr": [1e-3, 3e-2]}, {"sample_weight": weight}
    if in_pipeline:
        estimator = make_pipeline(StandardScaler(), net)
        grid, fit_params = {"mlpclassifier__lr": [1e-3, 3e-2]}, {"mlpclassifier__sample_weight": weight}
    runs = _both(lambda engine: GridSearchCV(estimator, grid, cv=3, engine=engine), X, y, **fit_params)
    _assert_same_results(runs)
    assert runs["batched"].n_batched_fits_ == 2 * 3
    assert len(sequential_fits) == 2 * 3 + 1  # the sequential search's fits and refit only
    unweighted = GridSearchCV(estimator, grid, cv=3).fit(X, y).cv_results_["mean_test_score"]
    assert not np.allclose(unweighted, runs["batched"].cv_results_["mean_test_score"])  # the weights count


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


def test_each_folds_test_rows_go_through_its_models_in_one_batched_pass(clf_data, monkeypatch):
    from sknet.model_selection import _tasks
    from sknet.nets._mlp import BaseMLP

    X, y = clf_data
    passes, forwards = [], []
    batched, forward = _tasks.predict_batched, BaseMLP._forward
    monkeypatch.setattr(_tasks, "predict_batched",
                        lambda nets, X: passes.append(len(nets)) or batched(nets, X))
    monkeypatch.setattr(BaseMLP, "_forward", lambda self, X: forwards.append(1) or forward(self, X))
    # float64: batched and sequential scores agree on any CPU's BLAS.
    grid, scoring = {"lr": [1e-3, 1e-2], "n_units": [4, 8]}, ["accuracy", "neg_log_loss", "f1_macro"]
    net = MLPClassifier(**NET, dtype="float64")
    search = GridSearchCV(net, grid, cv=3, scoring=scoring, refit="accuracy").fit(X, y)
    assert passes == [4, 4, 4] and forwards == []  # three folds, four models each; no net predicted alone
    monkeypatch.undo()
    reference = GridSearchCV(net, grid, cv=3, scoring=scoring, refit="accuracy", engine="sequential")
    reference.fit(X, y)
    for metric in scoring:
        np.testing.assert_allclose(search.cv_results_[f"mean_test_{metric}"],
                                   reference.cv_results_[f"mean_test_{metric}"], atol=1e-6)


def test_custom_scorers_see_the_fitted_estimator_they_would_see(clf_data):
    from sklearn.pipeline import Pipeline

    X, y = clf_data
    seen = {}

    def scorer(estimator, X_test, y_test):
        net = estimator[-1]  # a pipeline, indexed as usual
        seen.setdefault(type(estimator), []).append(net.n_iter_)
        proba = estimator.predict_proba(X_test)
        return float(proba[np.arange(len(y_test)), y_test].mean() + estimator.score(X_test, y_test))

    pipe = make_pipeline(StandardScaler(), MLPClassifier(**NET, dtype="float64"))  # any CPU: equal
    runs = _both(lambda engine: GridSearchCV(pipe, {"mlpclassifier__lr": [1e-3, 1e-2]}, cv=3, scoring=scorer,
                                             engine=engine), X, y)
    assert runs["batched"].n_batched_fits_ == 6 and list(seen) == [Pipeline]
    assert seen[Pipeline] == [NET["max_epochs"]] * 12
    np.testing.assert_allclose(runs["batched"].cv_results_["mean_test_score"],
                               runs["sequential"].cv_results_["mean_test_score"], atol=1e-6)


def test_a_search_trains_nothing_through_the_estimators_fit(clf_data, monkeypatch):
    # The engine's jobs are set up by the estimator's own _prepare_fit and trained by the engine:
    # fit itself is never asked to adopt a result (nothing in sknet.nets knows of searches).
    from sknet.nets._base import BaseTorchNet  # where every sknet net's fit is defined

    X, y = clf_data
    calls = []
    fit = BaseTorchNet.fit
    monkeypatch.setattr(BaseTorchNet, "fit", lambda self, *a, **k: calls.append(self) or fit(self, *a, **k))
    search = GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=3).fit(X, y)
    assert search.n_batched_fits_ == 6 and calls == []


def test_the_nets_import_nothing_from_the_searches():
    import ast
    from pathlib import Path

    import sknet.nets

    searches = ("model_selection", "engine", "checkpoint")
    for path in Path(sknet.nets.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):  # sknet's own modules: relative, or named sknet.*
                module = node.module or ""
                own = node.level > 1 or module.startswith("sknet")
                assert not (own and module.removeprefix("sknet.").startswith(searches)), (path, module)


@pytest.mark.parametrize("options", [
    {"optimizer": "adam", "weight_decay": 1e-3}, {"optimizer": "sgd", "batch_norm": True},
    {"optimizer": "rmsprop", "l1": 1e-3},
    {"optimizer": "adamw", "lr_schedule": "cosine"}, {"optimizer": "adagrad", "class_weight": "balanced"},
    {"early_stopping": True, "patience": 2, "max_epochs": 12}, {"dropout": 0.3, "n_layers": 2}], ids=str)
def test_in_float64_batched_and_sequential_searches_agree_on_any_cpu(clf_data, options):
    # float64 rounding (1e-16) stays far below what could flip a prediction, whatever BLAS kernel
    # sums the products: the accuracies are equal, and probabilities agree to 1e-9.
    X, y = clf_data
    net = MLPClassifier(**{**NET, "dtype": "float64", "max_epochs": 8, **options})
    grid, scoring = {"lr": [1e-3, 3e-2], "n_units": [4, 16]}, ["accuracy", "neg_log_loss"]
    runs = _both(lambda engine: GridSearchCV(net, grid, cv=3, engine=engine, scoring=scoring,
                                             refit="accuracy"), X, y)
    batched, sequential = runs["batched"], runs["sequential"]
    assert batched.n_batched_fits_ == 4 * 3
    for key in ("split0_test_accuracy", "split1_test_accuracy", "split2_test_accuracy", "rank_test_accuracy"):
        np.testing.assert_array_equal(batched.cv_results_[key], sequential.cv_results_[key], err_msg=key)
    np.testing.assert_allclose(batched.cv_results_["mean_test_neg_log_loss"],
                               sequential.cv_results_["mean_test_neg_log_loss"], rtol=1e-9)
    assert batched.best_params_ == sequential.best_params_
    np.testing.assert_allclose(batched.best_estimator_.predict_proba(X),
                               sequential.best_estimator_.predict_proba(X), rtol=0, atol=1e-9)


def test_verbose_searches_print_a_line_per_batched_fit(clf_data, capsys):
    X, y = clf_data
    GridSearchCV(MLPClassifier(**NET), {"lr": [1e-3, 1e-2]}, cv=2, verbose=2).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if "END" in line]
    assert len(lines) == 4 and all(line.startswith("[CV ") and "score=" in line for line in lines)


def test_with_error_score_raise_a_diverging_batched_fit_raises_its_error(clf_data):
    X, y = clf_data
    net = MLPClassifier(optimizer="sgd", max_epochs=20, random_state=0, device="cpu")
    with pytest.raises(FloatingPointError, match="diverged"):
        GridSearchCV(net, {"lr": [1e-2, 1e12]}, cv=2, error_score="raise").fit(X, y)


def _target_wrapped(kind):
    net = MLPRegressor(**{**NET, "dtype": "float64"})  # float64: batched equals sequential on any CPU
    if kind == "net in a target transform":
        return TransformedTargetRegressor(net, transformer=StandardScaler())
    if kind == "pipeline in a target transform":
        return TransformedTargetRegressor(make_pipeline(StandardScaler(), net), func=np.arcsinh,
                                          inverse_func=np.sinh)
    return make_pipeline(StandardScaler(), TransformedTargetRegressor(net, transformer=StandardScaler()))


@pytest.mark.parametrize("kind", ["net in a target transform", "pipeline in a target transform",
                                  "target transform in a pipeline"])
def test_the_engine_sees_through_a_transformed_target_regressor(reg_data, kind):
    X, y = reg_data
    y = 50 + 30 * y  # far from standard: the transform matters
    model = _target_wrapped(kind)
    prefix = {"net in a target transform": "regressor__", "pipeline in a target transform":
              "regressor__mlpregressor__"}.get(kind, "transformedtargetregressor__regressor__")
    grid = {f"{prefix}lr": [1e-3, 1e-2], f"{prefix}n_units": [4, 8]}
    runs = _both(lambda engine: GridSearchCV(model, grid, cv=3, engine=engine, return_train_score=True), X, y)
    assert runs["batched"].n_batched_fits_ == 4 * 3
    for key in ("mean_test_score", "mean_train_score", "split0_test_score"):
        np.testing.assert_allclose(runs["batched"].cv_results_[key], runs["sequential"].cv_results_[key],
                                   rtol=1e-9)
    assert runs["batched"].best_params_ == runs["sequential"].best_params_
    np.testing.assert_allclose(runs["batched"].predict(X), runs["sequential"].predict(X), rtol=1e-9)
