"""Bad input, faults and limits: one test per row of docs/bad_input.md.

Each case gets an error that names what is wrong and what is allowed, or a
documented recovery. Rows owned elsewhere are referenced from the table:
out-of-memory in a batched group (tests/engine/test_engine.py) and the
checkpoint rows (tests/model_selection/test_checkpoint.py).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import make_column_transformer
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils._param_validation import InvalidParameterError
from skopt.space import Categorical, Integer, Real
from skorch.callbacks import Callback

from sknet import MLPClassifier, MLPRegressor, TorchClassifier
from sknet.model_selection import BayesSearchCV, GeneticSearchCV, GridSearchCV, RandomizedSearchCV

FAST = dict(max_epochs=2, n_units=4, device="cpu", random_state=0)
TORCH_FAST = dict(max_epochs=2, device="cpu", random_state=0)
NETS = [MLPClassifier, MLPRegressor]


def _data(n=30):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 4).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int), X[:, 0] + 0.1 * rng.randn(n)


X, Y_CLF, Y_REG = _data()


def xy(net):
    return X, (Y_CLF if net is MLPClassifier else Y_REG)


# -- NaN / inf in X or y ---------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("value, match", [
    (np.nan, "Input X contains NaN"),
    (np.inf, r"Input X contains infinity or a value too large for dtype\('float32'\)"),
    (1e39, r"Input X contains infinity or a value too large for dtype\('float32'\)"),  # finite in float64
])
def test_nan_or_inf_in_x_is_refused_at_fit_and_predict(net, value, match):
    X_bad = X.astype(np.float64)
    X_bad[3, 1] = value
    with pytest.raises(ValueError, match=match):
        net(**FAST).fit(X_bad, xy(net)[1])
    fitted = net(**FAST).fit(*xy(net))
    with pytest.raises(ValueError, match=match):
        fitted.predict(X_bad)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("value, match", [
    (np.nan, "Input y contains NaN"),
    (np.inf, "Input y contains infinity"),
])
def test_nan_or_inf_in_y_is_refused(net, value, match):
    y = xy(net)[1].astype(np.float64)
    y[3] = value
    with pytest.raises(ValueError, match=match):
        net(**FAST).fit(X, y)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning",
                            "ignore:invalid value encountered in reduce:RuntimeWarning")
def test_regression_target_beyond_float32_is_refused_not_reported_as_divergence():
    # Finite in float64 but inf once in float32, where training happens.
    match = r"Input y contains infinity or a value too large for dtype\('float32'\)"
    with pytest.raises(ValueError, match=match):
        MLPRegressor(**FAST).fit(X, Y_REG * 1e300)


# -- empty X ---------------------------------------------------------------------------------
@pytest.mark.parametrize("net", NETS)
def test_empty_x_is_refused(net):
    X, y = xy(net)
    name = net.__name__
    match = rf"Found array with 0 sample\(s\) \(shape=\(0, 4\)\) while a minimum of 1 is required by {name}"
    with pytest.raises(ValueError, match=match):
        net(**FAST).fit(X[:0], y[:0])
    match = rf"Found array with 0 feature\(s\) .* minimum of 1 is required by {name}"
    with pytest.raises(ValueError, match=match):
        net(**FAST).fit(X[:, :0], y)
    with pytest.raises(ValueError, match="0 sample"):
        net(**FAST).fit(X, y).predict(X[:0])


# -- one sample, tiny data -------------------------------------------------------------------
def test_one_sample_classifier_needs_two_classes():
    with pytest.raises(ValueError, match="MLPClassifier needs samples of at least 2 classes"):
        MLPClassifier(**FAST).fit(X[:1], Y_CLF[:1])


def test_one_sample_regressor_fits_and_predicts():
    reg = MLPRegressor(**FAST).fit(X[:1], Y_REG[:1])
    assert reg.predict(X[:5]).shape == (5,) and np.isfinite(reg.predict(X[:5])).all()


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("n", [2, 5, 19])
def test_early_stopping_validation_set_too_small(net, n):
    # validation_fraction=0.1 of 19 samples is 2 (enough); of 5 or 2 it is 1.
    X, y = xy(net)
    X, y = X[:n], np.arange(n) % 2 if net is MLPClassifier else y[:n]
    model = net(early_stopping=True, **FAST)
    if n == 19:
        assert model.fit(X, y).n_iter_ == 2
        return
    with pytest.raises(ValueError, match=r"validation set is too small.*validation_fraction=0.1 of "
                                         rf"{n} samples.*at least 2.*Increase 'validation_fraction'"):
        model.fit(X, y)


@pytest.mark.parametrize("net", NETS)
def test_batch_norm_needs_two_samples_per_batch(net):
    X, y = xy(net)
    with pytest.raises(ValueError, match=r"batch_norm=True needs batch_size >= 2.*Got batch_size=1"):
        net(batch_norm=True, batch_size=1, **FAST).fit(X, y)
    if net is MLPRegressor:  # a classifier's single sample fails on its single class first
        with pytest.raises(ValueError, match="batch_norm=True needs at least 2 training samples. Got 1"):
            net(batch_norm=True, **FAST).fit(X[:1], y[:1])


# -- one class -------------------------------------------------------------------------------
def test_one_class_is_refused_by_fit_and_partial_fit():
    # The label as the user wrote it, not numpy's repr (np.str_('a'), np.int64(0)).
    with pytest.raises(ValueError, match=r"needs samples of at least 2 classes.*only one class: 'a'\.$"):
        MLPClassifier(**FAST).fit(X, np.array(["a"] * len(X)))
    with pytest.raises(ValueError, match=r"only one class: 0\.$"):
        MLPClassifier(**FAST).fit(X, np.zeros(len(X), int))
    with pytest.raises(ValueError, match="needs samples of at least 2 classes"):
        MLPClassifier(**FAST).partial_fit(X, np.zeros(len(X), int), classes=[0])
    # partial_fit may see one class per call, as long as classes names them all
    clf = MLPClassifier(**FAST).partial_fit(X, np.zeros(len(X), int), classes=[0, 1])
    assert list(clf.classes_) == [0, 1]


@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_fold_with_one_class_scores_error_score(engine):
    # The first fold trains on the second half, which holds class 0 only.
    y = np.r_[np.arange(10) % 2, np.zeros(10, int)]
    search = GridSearchCV(MLPClassifier(**FAST), {"lr": [1e-2]}, cv=KFold(2), engine=engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X[:20], y)
    assert any(issubclass(w.category, FitFailedWarning) and "at least 2 classes" in str(w.message)
               for w in caught)
    assert np.isnan(search.cv_results_["split0_test_score"][0])
    assert np.isfinite(search.cv_results_["split1_test_score"][0])


# -- wrong number of features at predict -----------------------------------------------------
@pytest.mark.parametrize("net", NETS)
def test_wrong_number_of_features_is_refused(net):
    X, y = xy(net)
    model = net(**FAST).fit(X, y)
    msg = f"X has 3 features, but {net.__name__} is expecting 4 features as input"
    methods = [model.predict, model.score] + ([model.predict_proba] if net is MLPClassifier else [])
    for method in methods:
        with pytest.raises(ValueError, match=msg):
            method(X[:, :3], *([y] if method == model.score else []))
    with pytest.raises(ValueError, match=msg):
        model.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match=r"(?s)Expected 2D array, got 1D array instead.*reshape"):
        model.predict(X[0])


class _Images(torch.nn.Module):
    """A convolution over (1, 2, 2) images."""

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.conv = torch.nn.Conv2d(input_shape[0], 2, kernel_size=1)
        self.head = torch.nn.Linear(2 * input_shape[1] * input_shape[2], n_outputs)

    def forward(self, X):
        return self.head(self.conv(X).flatten(1))


class _Table(torch.nn.Module):
    """A linear layer over flat rows: its constructor needs n_features, and a width."""

    def __init__(self, n_features, n_outputs, width):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X.flatten(1))


class _Both(torch.nn.Module):
    """Takes input_shape, and n_features too."""

    def __init__(self, n_features, input_shape, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)


class _ByPosition(torch.nn.Module):
    """Arguments by position only, which skorch's module__<name> parameters cannot pass."""

    def __init__(self, n_features, n_outputs, /):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)


def test_flat_rows_for_a_model_fitted_on_images_are_refused_naming_both_sample_shapes():
    images = X.reshape(-1, 1, 2, 2)
    model = TorchClassifier(_Images, **TORCH_FAST).fit(images, Y_CLF)
    match = r"X has samples of shape \(4,\), but TorchClassifier was fitted on samples of shape \(1, 2, 2\)"
    for method in (model.predict, model.predict_proba):  # not scikit-learn's "expecting 1 features"
        with pytest.raises(ValueError, match=match):
            method(X)
    with pytest.raises(ValueError, match=match):
        model.partial_fit(X, Y_CLF)


def test_a_module_asking_for_n_features_of_images_is_told_which_arguments_are_filled_in():
    images = X.reshape(-1, 1, 2, 2)
    match = (r"_Table's constructor needs the argument\(s\) \['n_features', 'width'\], which are not set\. "
             r"sknet fills in n_features \(X\.shape\[1\]\) only for 2-D X.*X has samples of shape "
             r"\(1, 2, 2\): take input_shape instead\. Set it as module__width\.")
    with pytest.raises(ValueError, match=match):
        TorchClassifier(_Table, **TORCH_FAST).fit(images, Y_CLF)
    match = r"needs the argument\(s\) \['width'\], which are not set\. Set it as module__width\.$"
    with pytest.raises(ValueError, match=match):
        TorchClassifier(_Table, **TORCH_FAST).fit(X, Y_CLF)
    assert TorchClassifier(_Table, module__width=3, **TORCH_FAST).fit(X, Y_CLF).n_iter_ == 2
    with pytest.raises(ValueError, match=r"X has samples of shape \(1, 2, 2\): read what it needs from "
                                         r"input_shape, which it takes too, and drop n_features\.$"):
        TorchClassifier(_Both, **TORCH_FAST).fit(images, Y_CLF)
    with pytest.raises(ValueError, match=r"_ByPosition's constructor takes the argument\(s\) \['n_features', "
                                         r"'n_outputs'\] by position only, but sknet passes a module's "
                                         r"arguments by name"):
        TorchClassifier(_ByPosition, **TORCH_FAST).fit(X, Y_CLF)


def test_other_feature_names_at_predict_are_refused():
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = MLPClassifier(**FAST).fit(df, Y_CLF)
    with pytest.raises(ValueError, match="feature names should match those that were passed during fit"):
        clf.predict(df.rename(columns={"d": "e"}))


# -- mismatched X / y lengths ----------------------------------------------------------------
@pytest.mark.parametrize("net", NETS)
def test_mismatched_lengths_are_refused(net):
    X, y = xy(net)
    match = r"Found input variables with inconsistent numbers of samples: \[30, 29\]"
    with pytest.raises(ValueError, match=match):
        net(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(29,\), expected \(30,\)"):
        net(**FAST).fit(X, y, sample_weight=np.ones(29))


# -- object / string columns without an encoder ----------------------------------------------
@pytest.mark.parametrize("net", NETS)
def test_text_columns_are_named_and_an_encoder_is_suggested(net):
    X, y = xy(net)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(city=["Oslo", "Lima"] * 15)
    msg = (rf"{net.__name__} needs numeric features, but column\(s\) \['city'\] of X hold text "
           r"\(could not convert string to float: 'Oslo'\)\. Encode .* OneHotEncoder")
    with pytest.raises(ValueError, match=msg):
        net(**FAST).fit(df, y)
    objects = X.astype(object)
    objects[:, 2] = "n/a"
    with pytest.raises(ValueError, match=r"column\(s\) \[2\] of X hold text"):
        net(**FAST).fit(objects, y)
    with pytest.raises(ValueError, match=r"column\(s\) \[2\] of X hold text"):
        net(**FAST).fit(X, y).predict(objects)
    # The remedy in the message works.
    encode = make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough")
    assert make_pipeline(encode, net(**FAST)).fit(df, y).predict(df).shape == (30,)


def test_text_regression_target_is_named():
    match = r"MLPRegressor needs numeric targets, but y holds text.*MLPClassifier"
    with pytest.raises(ValueError, match=match):
        MLPRegressor(**FAST).fit(X, np.array(["low", "high"] * 15))


def test_numeric_strings_convert_as_in_scikit_learn():
    assert MLPClassifier(**FAST).fit(X.astype(str), Y_CLF).predict(X.astype(str)).shape == (30,)


# -- unknown option names --------------------------------------------------------------------
@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("param, value, allowed", [
    ("activation", "swish", "'relu'"),
    ("optimizer", "lbfgs", "'adam'"),
    ("optimizer", dict, r"torch\.optim\.Optimizer subclass"),
    ("lr_schedule", "linear", "'cosine'"),
    ("weight_init", "kaiming", "'he_normal'"),
])
def test_unknown_option_names_list_the_allowed_ones(net, param, value, allowed):
    match = rf"The '{param}' parameter of {net.__name__} must be .*{allowed}.* Got .* instead"
    with pytest.raises(InvalidParameterError, match=match):
        net(**{**FAST, param: value}).fit(*xy(net))


def test_unknown_regression_loss_lists_the_allowed_ones():
    match = r"The 'loss' parameter of MLPRegressor must be a str among .*'huber'.* Got 'l2' instead"
    with pytest.raises(InvalidParameterError, match=match):
        MLPRegressor(loss="l2", **FAST).fit(X, Y_REG)


def test_unknown_device_is_named():
    match = r"The 'device' parameter must be 'auto', 'cpu', 'cuda' or 'cuda:N'\. Got 'tpu' instead"
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**{**FAST, "device": "tpu"}).fit(X, Y_CLF)


# -- zero, negative or mistyped lr, batch_size, max_epochs -----------------------------------
@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("param, value, allowed", [
    ("lr", 0.0, r"a float in the range \(0\.0, inf\)"),
    ("lr", -1e-3, r"a float in the range \(0\.0, inf\)"),
    ("lr", float("nan"), r"a float in the range \(0\.0, inf\)"),
    ("lr", "1e-3", r"a float in the range \(0\.0, inf\)"),
    ("batch_size", 0, r"an int in the range \[1, inf\)"),
    ("batch_size", -32, r"an int in the range \[1, inf\)"),
    ("batch_size", 2.5, r"an int in the range \[1, inf\)"),
    ("max_epochs", 0, r"an int in the range \[1, inf\)"),
    ("max_epochs", -1, r"an int in the range \[1, inf\)"),
])
def test_out_of_range_numbers_name_the_allowed_range(net, param, value, allowed):
    match = rf"The '{param}' parameter of {net.__name__} must be {allowed}\. Got .* instead"
    with pytest.raises(InvalidParameterError, match=match):
        net(**{**FAST, param: value}).fit(*xy(net))


@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_invalid_candidate_in_a_search_scores_error_score(engine):
    search = GridSearchCV(MLPClassifier(**FAST), {"lr": [-1.0, 1e-2]}, cv=2, engine=engine)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        warnings.filterwarnings("ignore", ".*could not be batched")
        with pytest.warns(FitFailedWarning, match=r"The 'lr' parameter of MLPClassifier must be a float in"):
            search.fit(X, Y_CLF)
    scores = search.cv_results_["mean_test_score"]
    assert np.isnan(scores[0]) and np.isfinite(scores[1]) and search.best_params_ == {"lr": 1e-2}


# -- lr so large that training diverges -------------------------------------------------------
@pytest.mark.parametrize("net", NETS)
def test_diverging_fit_raises_naming_lr(net):
    with pytest.raises(FloatingPointError, match=r"Training diverged: the training loss is nan at epoch 2\. "
                                                 r"Try a smaller lr \(now 1e\+30\)"):
        net(**{**FAST, "lr": 1e30, "max_epochs": 3}).fit(*xy(net))


@pytest.mark.parametrize("net", NETS)
def test_finite_but_exploded_loss_raises_naming_lr(net):
    # lr=1e6 keeps the loss finite (3e11 from 1 at the start, with Adam) but leaves a useless model.
    match = (r"Training diverged: the training loss is \S+ after epoch 5, over 1000 times the untrained "
             r"network's \S+\. Try a smaller lr \(now 1000000\.0\)")
    model = net(**{**FAST, "lr": 1e6, "max_epochs": 5})
    with pytest.raises(FloatingPointError, match=match):
        model.fit(*xy(net))
    loss = model.net_.history[:, "train_loss"]
    assert np.isfinite(loss).all() and loss[-1] > 1000 * model.net_.history[0, "batches", 0, "train_loss"]


@pytest.mark.parametrize("batch_size", [1, 30])
def test_a_healthy_fit_on_tiny_targets_is_not_called_diverged(batch_size):
    # Targets of size 1e-3: the loss is tiny from the start and stays so; it does not grow.
    model = MLPRegressor(**{**FAST, "max_epochs": 5}, batch_size=batch_size).fit(X, 1e-3 * Y_REG)
    assert model.n_iter_ == 5


@pytest.mark.parametrize("engine", ["batched", "sequential"])
def test_exploded_candidate_scores_error_score_in_a_search(engine):
    search = GridSearchCV(MLPClassifier(**{**FAST, "max_epochs": 5}),
                          {"lr": [1e-2, 1e6]}, cv=2, engine=engine)
    with pytest.warns(FitFailedWarning, match="over 1000 times the untrained network's"):
        search.fit(X, Y_CLF)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert search.best_params_ == {"lr": 1e-2}
    if engine == "batched":
        assert search.n_batched_fits_ == 4


class PoisonWeights(Callback):
    """Turn a weight into NaN after each epoch, as a last overflowing step would."""

    def on_epoch_end(self, net, **kwargs):
        with torch.no_grad():
            next(net.module_.parameters())[0, 0] = float("nan")


@pytest.mark.parametrize("net", NETS)
def test_non_finite_weights_after_training_raise(net):
    # The loss of the last epoch was measured before its last step: the weights are checked too.
    match = r"weights are NaN or infinite after epoch 1\. Try a smaller lr"
    with pytest.raises(FloatingPointError, match=match):
        net(**{**FAST, "max_epochs": 1}, callbacks=[PoisonWeights()]).fit(*xy(net))


@pytest.mark.parametrize("net", NETS)
def test_non_finite_outputs_raise_instead_of_meaningless_predictions(net):
    # One Adam step of lr=1e30 leaves finite weights (~1e30) whose outputs overflow float32.
    model = net(**{**FAST, "lr": 1e30, "max_epochs": 1}).fit(*xy(net))
    match = r"outputs are NaN or infinite for \d+ of 30 samples.*smaller lr"
    with pytest.raises(FloatingPointError, match=match):
        model.predict(X)


SPACE = {"lr": [1e-2, 1e30], "n_units": [3, 4]}
SEARCHES = {
    "grid": lambda net, **kw: GridSearchCV(net, SPACE, **kw),
    "random": lambda net, **kw: RandomizedSearchCV(net, SPACE, n_iter=4, random_state=0, **kw),
    "bayes": lambda net, **kw: BayesSearchCV(net, SPACE, n_iter=4, n_points=4, random_state=0,
                                             optimizer_kwargs={"n_initial_points": 4}, **kw),
    "genetic": lambda net, **kw: GeneticSearchCV(net, SPACE, population_size=4, generations=2,
                                                 tournament_size=2, random_state=0, **kw),
}


@pytest.mark.parametrize("engine", ["batched", "sequential"])
@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize("net", NETS)
def test_diverging_candidate_scores_error_score_and_the_search_goes_on(net, search, engine):
    model = SEARCHES[search](net(**{**FAST, "max_epochs": 3}), cv=2, engine=engine)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        warnings.filterwarnings("ignore", "The objective has been evaluated at point")  # skopt repeats
        warnings.filterwarnings("ignore", ".*could not be batched")
        with pytest.warns(FitFailedWarning, match="Training diverged"):
            model.fit(*xy(net))
    results = model.cv_results_
    diverged = np.array([p["lr"] == 1e30 for p in results["params"]])
    assert diverged.any() and (~diverged).any()
    assert np.isnan(results["mean_test_score"][diverged]).all()
    assert np.isfinite(results["mean_test_score"][~diverged]).all()
    assert model.best_params_["lr"] == 1e-2 and np.isfinite(model.best_score_)
    if engine == "batched":
        assert model.n_batched_fits_ > 0
    with pytest.raises(FloatingPointError, match="Training diverged"):
        GridSearchCV(net(**{**FAST, "max_epochs": 3}), {"lr": [1e30]}, cv=2, engine=engine,
                     error_score="raise").fit(*xy(net))


# -- search spaces with an empty or inverted range -------------------------------------------
def _space_search(kind, space):
    net = MLPClassifier(**FAST)
    if kind == "random":
        return RandomizedSearchCV(net, space, n_iter=2, cv=2, random_state=0)
    if kind == "bayes":
        return BayesSearchCV(net, space, n_iter=2, cv=2, random_state=0)
    return GeneticSearchCV(net, space, population_size=3, generations=1, tournament_size=2, cv=2,
                           random_state=0)


@pytest.mark.parametrize("kind", ["random", "bayes", "genetic"])
@pytest.mark.parametrize("spec, match", [
    ((1e-1, 1e-4, "log-uniform"), r"The range of 'lr' is empty or inverted: low=0\.1 must be below "
                                  r"high=0\.0001"),
    ((0.1, 0.1, "uniform"), r"empty or inverted: low=0\.1 must be below high=0\.1\. For a single value write "
                            r"\[0\.1\]"),
    ((10, 1, "uniform"), "empty or inverted: low=10 must be below high=1"),
    ((0.0, 1.0, "log-uniform"), r"A log-uniform range for 'lr' needs low > 0\. Got low=0\.0"),
    ((1e-3, float("inf"), "log-uniform"), "The bounds of 'lr' must be finite numbers"),
    ((float("nan"), 1.0, "uniform"), "The bounds of 'lr' must be finite numbers"),
])
def test_empty_or_inverted_ranges_are_refused_before_training(kind, spec, match):
    with pytest.raises(ValueError, match=match):
        _space_search(kind, {"lr": spec}).fit(X, Y_CLF)


@pytest.mark.parametrize("kind", ["bayes", "genetic"])
@pytest.mark.parametrize("spec, error, match", [
    ((0.1, 0.01), ValueError, "empty or inverted: low=0.1 must be below high=0.01"),
    ((1e-4, 1e-1, "loguniform"), ValueError,
     r"The prior of 'lr' must be one of \('uniform', 'log-uniform'\)"),
    ([], ValueError, "The search space of 'lr' is an empty list; give at least one choice"),
    ((), ValueError, r"must be \(low, high\) or \(low, high, prior\)"),
    (("a", "b"), TypeError, "The bounds of 'lr' must be numbers"),
])
def test_bad_ranges_in_bayes_and_genetic_spaces(kind, spec, error, match):
    with pytest.raises(error, match=match):
        _space_search(kind, {"lr": spec}).fit(X, Y_CLF)


def test_random_search_keeps_scikit_learns_tuples_of_choices_but_warns():
    # In RandomizedSearchCV (a drop-in) a bare tuple is a sequence of choices, as in scikit-learn.
    match = r"treats lr=\(0\.1, 0\.01\) as two choices.*\(0\.1, 0\.01, 'uniform'\)"
    with pytest.warns(UserWarning, match=match):
        _space_search("random", {"lr": (0.1, 0.01)}).fit(X, Y_CLF)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FitFailedWarning)
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        with pytest.warns(UserWarning, match=r"three choices.*did you mean 'log-uniform'"):
            _space_search("random", {"lr": (1e-4, 1e-1, "loguniform")}).fit(X, Y_CLF)
    with pytest.raises(ValueError, match="Parameter grid for parameter 'lr' need to be a non-empty sequence"):
        _space_search("random", {"lr": []}).fit(X, Y_CLF)


@pytest.mark.parametrize("make, match", [
    (lambda: Real(1e-1, 1e-4, prior="log-uniform"), "the lower bound 0.1 has to be less than the upper"),
    (lambda: Real(0.1, 0.1), "the lower bound 0.1 has to be less than the upper bound 0.1"),
    (lambda: Integer(10, 1), "the lower bound 10 has to be less than the upper bound 1"),
])
def test_inverted_skopt_dimensions_fail_where_they_are_written(make, match):
    # scikit-optimize refuses them on construction, before any search sees them.
    with pytest.raises(ValueError, match=match):
        make()


def test_empty_skopt_categorical_fails_where_it_is_written():
    # scikit-optimize's own error (a division by zero); write [] for sknet's clear one.
    with pytest.raises(ZeroDivisionError):
        Categorical([])


@pytest.mark.parametrize("grid, match", [
    ({"lr": []}, r"Parameter grid for parameter 'lr' need to be a non-empty sequence, got: \[\]"),
    ([], "No fits were performed.*Were there no candidates"),
])
def test_empty_grids_are_refused(grid, match):
    with pytest.raises(ValueError, match=match):
        GridSearchCV(MLPClassifier(**FAST), grid, cv=2).fit(X, Y_CLF)


@pytest.mark.parametrize("kind", ["bayes", "genetic"])
def test_empty_space_dict_is_refused(kind):
    with pytest.raises(ValueError, match="A search space must be a non-empty dict of parameter name"):
        _space_search(kind, {}).fit(X, Y_CLF)


def test_a_space_naming_an_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Invalid parameter 'learning_rate' for estimator MLPClassifier.*"
                                         r"Valid parameters are: \[.*'lr'"):
        _space_search("genetic", {"learning_rate": [0.1, 0.2]}).fit(X, Y_CLF)


# -- other misuse worth a clear message --------------------------------------------------------
@pytest.mark.parametrize("net", NETS)
def test_predict_before_fit(net):
    with pytest.raises(NotFittedError, match=f"This {net.__name__} instance is not fitted yet"):
        net(**FAST).predict(X)


@pytest.mark.parametrize("net", NETS)
def test_missing_y_is_refused(net):
    with pytest.raises(ValueError, match=f"This {net.__name__} estimator requires y to be passed"):
        net(**FAST).fit(X, None)


def test_continuous_labels_for_the_classifier_are_refused():
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        MLPClassifier(**FAST).fit(X, Y_REG)


@pytest.mark.parametrize("weight, match", [
    (-np.ones(30), "Negative values in data passed to `sample_weight`"),
    (np.zeros(30), "Sample weights must contain at least one non-zero number"),
    (np.full(30, np.nan), "Input sample_weight contains NaN"),
])
def test_bad_sample_weights_are_refused(weight, match):
    with pytest.raises(ValueError, match=match):
        MLPRegressor(**FAST).fit(X, Y_REG, sample_weight=weight)
