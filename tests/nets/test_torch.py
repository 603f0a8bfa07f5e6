"""TorchClassifier and TorchRegressor: any torch module as an estimator."""

import pickle

import numpy as np
import pytest
import torch
from shared_modules import BagOfEmbeddings
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_multilabel_classification
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from sknet import MLPClassifier, MLPRegressor, TorchClassifier, TorchRegressor, load
from sknet.engine._jobs import group_key, refusal
from sknet.engine._loss import binary_cross_entropy
from sknet.model_selection import GridSearchCV
from sknet.nets import training_spec
from sknet.nets._module import MLPModule
from sknet.nets._skorch import penalized_weights

# The MLPs' expected failures, for the same reason (tests/nets/test_estimator_checks.py): weighted and
# repeated samples agree only to float32 rounding, below the check's rtol=1e-7.
_FLOAT32 = "weighted and repeated samples agree only to float32 rounding, below the check's rtol=1e-7"
EXPECTED_FAILURES = {"check_sample_weight_equivalence_on_dense_data": _FLOAT32,
                     "check_sample_weight_equivalence_on_sparse_data": _FLOAT32}


class SmallCNN(nn.Module):
    """A convolution over (channels, height, width) images, then a linear layer to the logits."""

    def __init__(self, input_shape, n_outputs, channels=4):
        super().__init__()
        in_channels, height, width = input_shape
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(channels)
        self.head = nn.Linear(channels * height * width, n_outputs)

    def forward(self, X):
        return self.head(torch.relu(self.norm(self.conv(X))).flatten(1))


@parametrize_with_checks(
    [TorchClassifier(max_epochs=30, lr=1e-2, random_state=0, device="cpu"),
     TorchRegressor(max_epochs=30, lr=1e-2, random_state=0, device="cpu")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digit_images():
    X, y = load_digits(return_X_y=True)
    return (X[:400] / 16).reshape(-1, 1, 8, 8), y[:400]


def test_a_cnn_learns_digit_images_and_a_search_tunes_its_channels(digit_images):
    X, y = digit_images
    net = TorchClassifier(SmallCNN, lr=1e-2, max_epochs=5, batch_size=32, random_state=0, device="cpu")
    search = GridSearchCV(net, {"module__channels": [2, 6]}, cv=2).fit(X, y)
    assert list(search.cv_results_["param_module__channels"]) == [2, 6]
    assert search.best_estimator_.net_.module_.conv.out_channels == search.best_params_["module__channels"]
    assert search.best_estimator_.score(X, y) > 0.8
    assert search.best_estimator_.n_features_in_ == 1


def test_a_sample_of_another_shape_is_refused_at_predict(digit_images):
    X, y = digit_images
    clf = TorchClassifier(SmallCNN, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(1, 4, 16\).*fitted on samples of shape \(1, 8, 8\)"):
        clf.predict(X.reshape(-1, 1, 4, 16))


def test_an_embedding_module_gets_integer_token_ids():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 20, size=(300, 6))
    y = (X == 3).any(axis=1).astype(int)
    clf = TorchClassifier(BagOfEmbeddings, module__width=16, lr=3e-2, max_epochs=40, random_state=0,
                          device="cpu").fit(X, y)
    assert clf.score(X, y) > 0.9


def test_the_data_fills_in_n_features_and_n_outputs_but_not_what_the_user_set():
    X, y = load_iris(return_X_y=True)
    clf = TorchClassifier(module__hidden_sizes=(5,), max_epochs=1, device="cpu").fit(X, y)
    assert clf.net_.module_.hidden.linear0.in_features == 4 and clf.net_.module_.output.out_features == 3
    kept = TorchClassifier(module__n_features=4, module__hidden_sizes=(), max_epochs=1, device="cpu")
    assert kept.fit(X, y).net_.get_params_for("module")["n_features"] == 4
    # The user's n_outputs is kept too: 5 logits for iris's 3 classes are then refused as such.
    with pytest.raises(ValueError, match=r"returns outputs of shape \(2, 5\).*\(2, 3\).*"
                                         r"built with n_outputs=5, set as module__n_outputs"):
        TorchClassifier(module__n_outputs=5, module__hidden_sizes=(), max_epochs=1, device="cpu").fit(X, y)


class Squeezed(nn.Module):
    """A regression module that returns its single output flat, ``(n,)``, as many tutorials do."""

    def __init__(self, n_features, n_outputs, width=8):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, n_outputs))

    def forward(self, X):
        return self.layers(X).squeeze(-1)


class Column(Squeezed):
    def forward(self, X):
        return self.layers(X)


class FixedOutputs(nn.Module):
    """A module whose number of outputs is its own ``k``, not the data's."""

    def __init__(self, n_features, k=1):
        super().__init__()
        self.linear = nn.Linear(n_features, k)

    def forward(self, X):
        return self.linear(X)


def _line(n=200):
    X = np.random.RandomState(0).normal(size=(n, 5))
    y = X @ np.arange(1.0, 6.0)
    return X, y / y.std()


def test_a_single_target_returned_flat_trains_as_the_column_it_is():
    # Left flat, (n,) against targets (n, 1) would broadcast the loss to (n, n): R^2 near 0.
    X, y = _line()
    flat, column = (TorchRegressor(module, lr=3e-2, max_epochs=30, random_state=0, dtype="float64",
                                   device="cpu").fit(X, y) for module in (Squeezed, Column))
    np.testing.assert_array_equal(flat.predict(X), column.predict(X))
    assert flat.score(X, y) > 0.9 and flat.predict(X[:1]).shape == (1,)


def test_a_single_target_returned_flat_is_batched_as_fitted_alone():
    X, y = _line()
    net = TorchRegressor(Squeezed, max_epochs=20, random_state=0, dtype="float64", device="cpu")
    grid = {"lr": [1e-2, 3e-2], "module__width": [4, 8]}
    runs = [GridSearchCV(net, grid, cv=3, engine=engine).fit(X, y) for engine in ("batched", "sequential")]
    assert runs[0].n_batched_fits_ == 12
    np.testing.assert_allclose(runs[0].cv_results_["mean_test_score"], runs[1].cv_results_["mean_test_score"],
                               rtol=0, atol=1e-12)
    assert min(runs[0].cv_results_["mean_test_score"]) > 0.5


def _three_classes(X, y):
    return (y > -0.5).astype(int) + (y > 0.5)


@pytest.mark.parametrize("make, y_of, k, shape, meaning", [
    (TorchRegressor, lambda X, y: np.c_[y, y, y], 1, (2, 3), r"one column per target \(3 targets\)"),
    (TorchClassifier, _three_classes, 4, (2, 3), r"a logit per class \(3 classes: \[0, 1, 2\]\)"),
    (TorchClassifier, _three_classes, 2, (2, 3), "a logit per class"),
    # Two outputs: three rows, so that an output transposed to (n_outputs, n_rows) cannot pass.
    (TorchClassifier, lambda X, y: np.c_[y > 0, y > 0.5].astype(int), 3, (3, 2),
     r"a logit per label \(2 labels\)"),
    (TorchClassifier, lambda X, y: np.where(y > 0, "yes", "no"), 1, (3, 2),
     r"a logit per class \(2 classes: \['no', 'yes'\]\)"),
])
@pytest.mark.parametrize("in_a_search", [False, True])
def test_outputs_of_the_wrong_shape_are_refused_at_fit_before_any_training(make, y_of, k, shape, meaning,
                                                                          in_a_search):
    X, y = _line(60)
    y = y_of(X, y)
    net = make(FixedOutputs, module__k=k, max_epochs=1, random_state=0, device="cpu")
    rows, n_outputs = shape
    match = (rf"{make.__name__}'s module FixedOutputs returns outputs of shape \({rows}, {k}\) for a batch "
             rf"of {rows} rows, but a tensor of shape \({rows}, {n_outputs}\) is expected: {meaning}")
    if not in_a_search:
        with pytest.raises(ValueError, match=match):
            net.fit(X, y)
        return
    for engine in ("batched", "sequential"):  # every fit fails, with the same words
        with pytest.raises(ValueError, match=r"(?s)fits failed.*" + match):
            GridSearchCV(net, {"lr": [1e-3, 1e-2]}, cv=2, engine=engine).fit(X, y)


class Transposed(FixedOutputs):
    """Two heads stacked along the wrong dimension: outputs (n_outputs, n_rows)."""

    def forward(self, X):
        return self.linear(X).T


@pytest.mark.parametrize("make, y_of", [(TorchClassifier, lambda X, y: (y > 0).astype(int)),
                                        (TorchRegressor, lambda X, y: np.c_[y, -y])])
def test_outputs_transposed_for_two_outputs_are_refused(make, y_of):
    X, y = _line(60)
    # On two rows, (2, 2) would pass for (n_rows, 2); before the check, a batch size of 2 trained.
    net = make(Transposed, module__k=2, batch_size=2, max_epochs=1, random_state=0, device="cpu")
    with pytest.raises(ValueError, match=r"returns outputs of shape \(2, 3\) for a batch of 3 rows, but a "
                                         r"tensor of shape \(3, 2\) is expected"):
        net.fit(X, y_of(X, y))


class Noisy(nn.Module):
    """Adds noise to its inputs in every forward pass, in evaluation too: the check draws."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X + 0.1 * torch.randn_like(X))


def test_the_output_check_changes_nothing_a_fit_computes(monkeypatch):
    X, y = load_iris(return_X_y=True)
    net = TorchClassifier(Noisy, max_epochs=3, random_state=0, device="cpu")
    torch.manual_seed(1)
    checked = clone(net).fit(X, y)
    caller = torch.random.get_rng_state()
    monkeypatch.setattr(TorchClassifier, "_check_outputs", lambda self, *args: None)
    torch.manual_seed(1)
    unchecked = clone(net).fit(X, y)
    for a, b in zip(checked.net_.module_.parameters(), unchecked.net_.module_.parameters(), strict=True):
        assert torch.equal(a, b)  # its draws were undone, and it trained nothing
    assert torch.equal(torch.random.get_rng_state(), caller)  # nor moved the caller's generator


def test_module_params_are_parameters_for_get_params_set_params_and_clone():
    clf = TorchClassifier(SmallCNN, lr=0.1)
    assert clf.set_params(module__channels=8, lr=0.2) is clf
    params = clf.get_params()
    assert params["module__channels"] == 8 and params["lr"] == 0.2 and params["module"] is SmallCNN
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    assert "module__channels=8" in repr(clf)


def test_the_mlps_have_no_module_parameters():
    for est in (MLPClassifier(), MLPRegressor()):
        assert not [name for name in est.get_params() if name.startswith("module")]
        with pytest.raises(ValueError, match="Invalid parameter 'module'"):
            est.set_params(module__channels=8)


def test_an_argument_the_module_does_not_take_is_refused_at_fit():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=r"MLPModule takes no argument\(s\) \['channels'\]"):
        TorchClassifier(module__channels=3, max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['channels'\]"):
        TorchClassifier(channels=3, max_epochs=1).fit(X, y)


def test_a_module_instance_is_refused_for_a_class():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="torch.nn.Module subclass"):
        TorchClassifier(MLPModule(4)).fit(X, y)


def test_a_fitted_torch_estimator_pickles(digit_images):
    X, y = digit_images
    clf = TorchClassifier(SmallCNN, module__channels=3, max_epochs=2, random_state=0, device="cpu").fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.get_params()["module__channels"] == 3


def test_save_and_load_round_trip_a_torch_regressor_with_module_params(tmp_path):
    X = np.random.RandomState(0).normal(size=(60, 3))
    y = np.c_[X.sum(axis=1), X[:, 0]]
    reg = TorchRegressor(module__hidden_sizes=(7, 5), module__activation="tanh", max_epochs=3,
                         random_state=0, dtype="float64", device="cpu").fit(X, y)
    reg.save(tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    assert type(loaded) is TorchRegressor and loaded.get_params() == reg.get_params()
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_save_refuses_a_module_class_that_cannot_be_imported(tmp_path):
    class Local(nn.Module):
        def __init__(self, n_features, n_outputs):
            super().__init__()
            self.linear = nn.Linear(n_features, n_outputs)

        def forward(self, X):
            return self.linear(X)

    X, y = load_iris(return_X_y=True)
    clf = TorchClassifier(Local, max_epochs=1, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="the class must be importable"):
        clf.save(tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


def test_a_file_naming_a_class_that_is_not_a_torch_module_is_refused(tmp_path):
    X, y = load_iris(return_X_y=True)
    TorchClassifier(max_epochs=1, device="cpu").fit(X, y).save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    payload["params"] = payload["params"].replace("sknet.nets._module:MLPModule", "collections:OrderedDict")
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match="'collections:OrderedDict' is not a torch.nn.Module subclass"):
        load(tmp_path / "edited.pt")


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(200, 10, n_classes=4, random_state=0)
    return X / X.max(), Y


@pytest.mark.parametrize("make", [TorchClassifier, MLPClassifier])
def test_a_multilabel_indicator_y_gives_per_label_predictions(multilabel, make):
    X, Y = multilabel
    clf = make(lr=1e-2, max_epochs=30, random_state=0, device="cpu").fit(X, Y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2, 3])
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and not np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    assert clf.score(X, Y) > 0.4  # subset accuracy; predicting no label scores 0.12
    assert isinstance(clf.net_.criterion_, nn.BCEWithLogitsLoss)


def test_a_multilabel_mlp_trains_the_same_batched_as_alone(multilabel):
    X, Y = multilabel
    net = MLPClassifier(max_epochs=5, random_state=0, dtype="float64", device="cpu")
    runs = [GridSearchCV(net, {"lr": [1e-2, 3e-2]}, cv=2, engine=engine).fit(X, Y).cv_results_
            for engine in ("batched", "sequential")]
    np.testing.assert_allclose(runs[0]["mean_test_score"], runs[1]["mean_test_score"], rtol=0, atol=1e-12)


def test_a_multilabel_model_is_saved_and_loaded(multilabel, tmp_path):
    X, Y = multilabel
    clf = MLPClassifier(max_epochs=3, random_state=0, device="cpu").fit(X, Y)
    clf.save(tmp_path / "model.pt")
    np.testing.assert_array_equal(load(tmp_path / "model.pt").predict_proba(X), clf.predict_proba(X))


def test_a_2d_y_that_is_not_a_multilabel_indicator_is_refused(multilabel):
    X, Y = multilabel
    with pytest.raises(ValueError, match="multilabel indicator matrix.*got multiclass-multioutput"):
        TorchClassifier(max_epochs=1).fit(X, Y + 2 * Y[:, :1])


def test_binary_cross_entropy_and_its_gradient_match_torch_in_float64():
    generator = torch.Generator().manual_seed(0)
    out = (torch.randn(3, 5, 4, generator=generator, dtype=torch.float64) * 30).requires_grad_()
    target = (torch.rand(3, 5, 4, generator=generator) > 0.5).double()
    weight = torch.rand(3, 5, generator=generator, dtype=torch.float64)
    coef = weight / weight.sum(dim=1, keepdim=True)
    per_element = nn.functional.binary_cross_entropy_with_logits(out, target, reduction="none")
    expected = (per_element.mean(dim=2) * coef).sum(dim=1)
    expected.sum().backward()
    loss, grad = binary_cross_entropy(out.detach(), target, coef)
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, out.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("optimizer", "momentum", "expected"), [
    ("sgd", None, 0.9), ("rmsprop", None, 0.0), ("sgd", 0.5, 0.5), ("rmsprop", 0.5, 0.5)])
def test_momentum_none_is_the_optimizers_own_default(optimizer, momentum, expected):
    X, y = load_iris(return_X_y=True)
    for make in (TorchClassifier, MLPClassifier):
        clf = make(optimizer=optimizer, momentum=momentum, max_epochs=1, device="cpu").fit(X, y)
        assert clf.net_.optimizer_.defaults["momentum"] == expected
        assert clf._momentum() == expected


def test_l1_penalises_the_weight_matrices_of_any_module():
    weights = penalized_weights(SmallCNN((1, 8, 8), 3))
    assert [tuple(w.shape) for w in weights] == [(4, 1, 3, 3), (3, 256)]  # no bias, no norm scale
    X = np.random.RandomState(0).normal(size=(50, 1, 8, 8))
    y = np.arange(50) % 3
    plain, sparse = (TorchClassifier(SmallCNN, l1=l1, max_epochs=20, lr=1e-2, random_state=0,
                                     device="cpu").fit(X, y) for l1 in (0.0, 1e-2))
    assert sparse.net_.module_.head.weight.abs().sum() < plain.net_.module_.head.weight.abs().sum()


def test_the_engine_takes_torch_estimators_and_groups_them_by_module_and_arguments(digit_images):
    X, _ = digit_images
    assert refusal(TorchClassifier(SmallCNN), {}) is None  # without X, the module is not probed
    assert "updates its buffers" in refusal(TorchClassifier(SmallCNN), {}, X)  # batch norm's statistics
    assert refusal(TorchRegressor(), {}, X.reshape(len(X), -1)) is None
    def key(estimator):
        return group_key(training_spec(estimator))

    assert key(TorchClassifier(SmallCNN)) != key(TorchRegressor())
    assert key(TorchClassifier(SmallCNN, lr=0.1)) == key(TorchClassifier(SmallCNN))
    assert key(TorchClassifier(SmallCNN, module__channels=2)) != key(TorchClassifier(SmallCNN))
    assert refusal(MLPClassifier(), {}) is None
