"""Behaviour of MLPClassifier and MLPRegressor that users rely on."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from skorch.callbacks import Callback

from sknet import MLPClassifier, MLPRegressor
from sknet._options import ACTIVATIONS

FAST = dict(max_epochs=5, random_state=0, device="cpu")


def hidden_linears(est):
    return [m for m in est.net_.module_.hidden if isinstance(m, torch.nn.Linear)]


# -- architecture -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, widths", [
    (dict(), [100]),
    (dict(n_layers=3, n_units=7), [7, 7, 7]),
    (dict(n_layers=0), []),
    (dict(hidden_layer_sizes=(5, 9), n_layers=4, n_units=3), [5, 9]),
])
def test_layer_sizes(clf_data, kwargs, widths):
    X, y = clf_data
    clf = MLPClassifier(**kwargs, **FAST).fit(X, y)
    assert [m.out_features for m in hidden_linears(clf)] == widths
    assert clf.net_.module_.output.out_features == 3


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "selu", "tanh",
                                        "sigmoid", "logistic", "identity"])
def test_activation_is_used_and_trains(clf_data, activation):
    X, y = clf_data
    clf = MLPClassifier(activation=activation, lr=1e-2, max_epochs=30, random_state=0,
                        device="cpu").fit(X, y)
    expected = ACTIVATIONS[activation]
    assert any(isinstance(m, expected) for m in clf.net_.module_.hidden)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_dropout_and_batch_norm_layers(clf_data):
    X, y = clf_data
    clf = MLPClassifier(n_layers=2, dropout=0.3, batch_norm=True, **FAST).fit(X, y)
    drops = [m for m in clf.net_.module_.hidden if isinstance(m, torch.nn.Dropout)]
    norms = [m for m in clf.net_.module_.hidden if isinstance(m, torch.nn.BatchNorm1d)]
    assert [d.p for d in drops] == [0.3, 0.3] and len(norms) == 2
    plain = MLPClassifier(n_layers=2, **FAST).fit(X, y)
    assert not np.allclose(clf.predict_proba(X), plain.predict_proba(X))


def test_batch_norm_survives_a_last_batch_of_one_row(clf_data):
    X, y = clf_data
    clf = MLPClassifier(batch_norm=True, batch_size=33, **FAST).fit(X[:67], y[:67])  # 33 + 33 + 1
    assert clf.net_.history[-1, "train_batch_count"] == 2


# -- optimisation -----------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop),
                                       ("adagrad", torch.optim.Adagrad),
                                       (torch.optim.NAdam, torch.optim.NAdam)])
def test_optimizer(clf_data, name, cls):
    X, y = clf_data
    clf = MLPClassifier(optimizer=name, lr=1e-2, momentum=0.5, max_epochs=20, random_state=0,
                        device="cpu").fit(X, y)
    optimizer = clf.net_.optimizer_
    assert type(optimizer) is cls
    if "momentum" in optimizer.defaults:
        assert optimizer.defaults["momentum"] == 0.5
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad"])
def test_onecycle_works_with_every_optimizer(clf_data, optimizer):
    X, y = clf_data
    clf = MLPClassifier(optimizer=optimizer, lr_schedule="onecycle", lr=1e-2, **FAST).fit(X, y)
    assert clf.n_iter_ == 5


def test_weight_init_changes_the_starting_point(clf_data):
    X, y = clf_data
    first_loss = {init: MLPClassifier(weight_init=init, max_epochs=1, random_state=0,
                                      device="cpu").fit(X, y).loss_curve_[0]
                  for init in ("default", "normal", "he_normal")}
    assert len(set(first_loss.values())) == 3


def test_lr_changes_the_result(clf_data):
    X, y = clf_data
    slow = MLPClassifier(lr=1e-5, **FAST).fit(X, y)
    fast = MLPClassifier(lr=1e-2, **FAST).fit(X, y)
    assert fast.loss_curve_[-1] < slow.loss_curve_[-1] - 0.1


def _weight_norms(est, order):
    return sum(float(w.detach().norm(p=order)) for w in est.net_.module_.penalized_weights())


def test_weight_decay_shrinks_weights_but_not_biases(clf_data):
    X, y = clf_data
    kw = dict(optimizer="sgd", lr=0.05, max_epochs=30, random_state=0, device="cpu")
    plain = MLPClassifier(**kw).fit(X, y)
    decayed = MLPClassifier(weight_decay=0.05, **kw).fit(X, y)
    assert _weight_norms(decayed, 2) < 0.9 * _weight_norms(plain, 2)
    groups = decayed.net_.optimizer_.param_groups
    bias_ids = {id(p) for n, p in decayed.net_.module_.named_parameters() if n.endswith("bias")}
    for group in groups:
        if any(id(p) in bias_ids for p in group["params"]):
            assert group["weight_decay"] == 0.0


def test_l1_shrinks_weights(clf_data):
    X, y = clf_data
    kw = dict(lr=1e-2, max_epochs=30, random_state=0, device="cpu")
    plain = MLPClassifier(**kw).fit(X, y)
    sparse = MLPClassifier(l1=1e-3, **kw).fit(X, y)
    assert _weight_norms(sparse, 1) < 0.8 * _weight_norms(plain, 1)


@pytest.mark.parametrize("batch_size, n_batches", [(50, 4), (128, 2), (1000, 1)])
def test_batch_size(clf_data, batch_size, n_batches):
    X, y = clf_data
    clf = MLPClassifier(batch_size=batch_size, **FAST).fit(X, y)
    assert clf.net_.history[-1, "train_batch_count"] == n_batches
    assert clf.net_.history[-1, "batches", 0, "train_batch_size"] == min(batch_size, 200)


def test_max_epochs_and_fitted_attributes(clf_data):
    X, y = clf_data
    clf = MLPClassifier(max_epochs=7, random_state=0, device="cpu").fit(X, y)
    assert clf.n_iter_ == 7 == len(clf.loss_curve_) == clf.best_epoch_
    assert clf.n_features_in_ == 8 and clf.device_ == "cpu"
    assert not hasattr(clf, "validation_scores_")


# Learning rate after 9 epochs from lr=1e-2: step divides by 10 every 3 epochs,
# exponential multiplies by 0.95 per epoch, cosine and onecycle anneal towards zero.
@pytest.mark.parametrize("schedule, at_most", [("step", 1.1e-5), ("exponential", 0.95**9 * 1e-2 * 1.01),
                                               ("cosine", 1e-4), ("onecycle", 1e-4)])
def test_lr_schedule_changes_the_rate(clf_data, schedule, at_most):
    X, y = clf_data
    clf = MLPClassifier(lr_schedule=schedule, lr=1e-2, max_epochs=9, random_state=0,
                        device="cpu").fit(X, y)
    final_lr = clf.net_.optimizer_.param_groups[0]["lr"]
    assert final_lr <= at_most


def test_plateau_schedule_lowers_the_rate_when_stuck(clf_data):
    X, y = clf_data
    # lr so small that the loss barely moves: every epoch is a plateau.
    clf = MLPClassifier(lr_schedule="plateau", optimizer="sgd", lr=1e-6, patience=2, tol=0.0,
                        max_epochs=6, random_state=0, device="cpu").fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["lr"] <= 1e-7


def test_early_stopping_stops_and_restores_best_weights(digits):
    X, y = digits
    clf = MLPClassifier(early_stopping=True, patience=3, lr=3e-2, max_epochs=200,
                        validation_fraction=0.2, random_state=0, device="cpu").fit(X, y)
    assert clf.n_iter_ < 200
    assert clf.n_iter_ == clf.best_epoch_ + 3
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.validation_loss_curve_)
    assert clf.best_validation_score_ == clf.validation_scores_[clf.best_epoch_ - 1]
    assert 0.8 < clf.best_validation_score_ <= 1.0
    # The restored weights are those of the best epoch: re-scoring the held-out split gives its loss.
    best = min(clf.validation_loss_curve_)
    assert clf.validation_loss_curve_[clf.best_epoch_ - 1] == best


def test_early_stopping_regressor_scores_are_r2(reg_data):
    X, y = reg_data
    reg = MLPRegressor(early_stopping=True, lr=1e-2, max_epochs=40, random_state=0,
                       device="cpu").fit(X, y)
    assert reg.best_validation_score_ > 0.5


@pytest.mark.parametrize("loss, cls", [("mse", torch.nn.MSELoss), ("mae", torch.nn.L1Loss),
                                       ("huber", torch.nn.HuberLoss)])
def test_regression_loss(reg_data, loss, cls):
    X, y = reg_data
    reg = MLPRegressor(loss=loss, lr=1e-2, max_epochs=30, random_state=0, device="cpu").fit(X, y)
    assert isinstance(reg.net_.criterion_, cls)
    assert reg.score(X, y) > 0.8


def test_class_weight_balanced_favours_the_rare_class():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] + 0.8 * rng.normal(size=400) > 1.3).astype(int)  # about 10% positives
    kw = dict(lr=1e-2, max_epochs=30, random_state=0, device="cpu")
    plain = MLPClassifier(**kw).fit(X, y)
    balanced = MLPClassifier(class_weight="balanced", **kw).fit(X, y)
    as_dict = MLPClassifier(class_weight={0: 1.0, 1: 9.0}, **kw).fit(X, y)
    assert balanced.predict(X).sum() > 1.5 * plain.predict(X).sum()
    assert as_dict.predict(X).sum() > 1.5 * plain.predict(X).sum()


def test_sample_weight(clf_data):
    X, y = clf_data
    none = MLPClassifier(**FAST).fit(X, y)
    ones = MLPClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(none.predict_proba(X), ones.predict_proba(X))
    w = np.where(y == 2, 0.0, 1.0)
    ignored = MLPClassifier(lr=1e-2, max_epochs=30, random_state=0, device="cpu").fit(X, y, sample_weight=w)
    assert (ignored.predict(X) == 2).mean() < 0.1
    with pytest.raises(ValueError, match="(?i)negative"):
        MLPClassifier(**FAST).fit(X, y, sample_weight=-np.ones(len(y)))


def test_training_that_diverges_raises(clf_data):
    X, y = clf_data
    with pytest.raises(FloatingPointError, match="diverged.*lr"):
        MLPClassifier(optimizer="sgd", lr=1e12, momentum=0.9, max_epochs=20, random_state=0,
                      device="cpu").fit(X * 1e3, y)


# -- reproducibility, warm start, partial_fit, callbacks, verbose -----------------------------
def test_same_random_state_same_predictions(clf_data):
    X, y = clf_data
    kw = dict(dropout=0.2, early_stopping=True, max_epochs=5, device="cpu")
    a = MLPClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
    b = MLPClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
    c = MLPClassifier(random_state=4, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_touch_global_torch_rng(clf_data):
    X, y = clf_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_warm_start_continues_training(clf_data):
    X, y = clf_data
    clf = MLPClassifier(warm_start=True, **FAST).fit(X, y)
    first_weights = clf.net_.module_.output.weight.detach().clone()
    clf.fit(X, y)
    assert clf.n_iter_ == 10
    assert clf.loss_curve_[5] < clf.loss_curve_[0]
    assert not torch.equal(first_weights, clf.net_.module_.output.weight)
    cold = MLPClassifier(**FAST).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 5


def test_partial_fit(clf_data):
    X, y = clf_data
    clf = MLPClassifier(random_state=0, device="cpu")
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and list(clf.classes_) == [0, 1, 2]
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2
    with pytest.raises(ValueError, match="not among classes_"):
        clf.partial_fit(X, y + 5)
    reg = MLPRegressor(random_state=0, device="cpu").partial_fit(X, y.astype(float))
    reg.partial_fit(X, y.astype(float))
    assert reg.n_iter_ == 2


def test_extra_skorch_callbacks_are_called(clf_data):
    X, y = clf_data

    class CountEpochs(Callback):
        def initialize(self):
            self.epochs = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    counter = CountEpochs()
    clf = MLPClassifier(callbacks=[counter], **FAST).fit(X, y)
    assert dict(clf.net_.callbacks_)["CountEpochs"].epochs == 5


def test_a_users_ctrl_c_is_not_swallowed(clf_data):
    X, y = clf_data

    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        MLPClassifier(callbacks=[CtrlC()], **FAST).fit(X, y)


def test_verbose_prints_the_epoch_table(clf_data, capsys):
    X, y = clf_data
    MLPClassifier(max_epochs=2, verbose=1, device="cpu").fit(X, y)
    assert "train_loss" in capsys.readouterr().out
    MLPClassifier(max_epochs=2, verbose=0, device="cpu").fit(X, y)
    assert capsys.readouterr().out == ""


# -- labels and targets -----------------------------------------------------------------------
@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "eel"]), np.array([-5, 7, 100]),
                                    np.array(["a", "b", "c"], dtype=object)])
def test_any_label_type_round_trips(clf_data, labels):
    X, y = clf_data
    clf = MLPClassifier(lr=1e-2, max_epochs=20, random_state=0, device="cpu").fit(X, labels[y])
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert pred.dtype == labels.dtype and set(pred) <= set(labels)
    assert clf.score(X, labels[y]) > 0.7
    assert clf.predict_proba(X).shape == (200, 3)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_binary_bool_labels(clf_data):
    X, y = clf_data
    clf = MLPClassifier(lr=1e-2, max_epochs=20, random_state=0, device="cpu").fit(X, y == 1)
    assert clf.classes_.tolist() == [False, True] and clf.predict(X).dtype == bool
    assert clf.predict_proba(X).shape == (200, 2)


def test_one_class_is_refused(clf_data):
    X, _ = clf_data
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier(**FAST).fit(X, np.zeros(len(X)))


@pytest.mark.parametrize("shape", [(200,), (200, 1), (200, 3)])
def test_regressor_returns_the_target_shape(reg_data, shape):
    X, y = reg_data
    Y = np.column_stack([y, -y, 2 * y])[:, : (shape[1] if len(shape) > 1 else 1)].reshape(shape)
    reg = MLPRegressor(lr=1e-2, max_epochs=30, random_state=0, device="cpu").fit(X, Y)
    assert reg.predict(X).shape == shape
    assert reg.n_outputs_ == (1 if len(shape) == 1 else shape[1])
    assert reg.score(X, Y) > 0.8


# -- input types ------------------------------------------------------------------------------
def test_lists_and_integer_dtypes(clf_data):
    X, y = clf_data
    Xi = np.round(X * 10).astype(np.int64)
    a = MLPClassifier(**FAST).fit(Xi, y).predict_proba(Xi)
    b = MLPClassifier(**FAST).fit(Xi.tolist(), y.tolist()).predict_proba(Xi.tolist())
    np.testing.assert_allclose(a, b)


def test_pandas_input_keeps_feature_names(clf_data):
    pd = pytest.importorskip("pandas")
    X, y = clf_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = MLPClassifier(**FAST).fit(df, pd.Series(y))
    assert list(clf.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_allclose(clf.predict_proba(df), clf.predict_proba(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"f0": "other"}))


def test_sparse_input_is_not_densified_whole(clf_data, monkeypatch):
    from sknet.nets import _data

    X, y = clf_data
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    densified = []
    original = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        densified.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    clf = MLPClassifier(batch_size=32, **FAST).fit(Xs, y)
    assert densified and max(densified) <= 33
    assert isinstance(_data.InMemoryDataset(Xs).X, sp.csr_matrix)
    monkeypatch.undo()
    dense = MLPClassifier(batch_size=32, **FAST).fit(Xs.toarray(), y)
    np.testing.assert_allclose(clf.predict_proba(Xs), dense.predict_proba(Xs.toarray()), atol=1e-5)
    for fmt in ("csc", "coo"):
        MLPClassifier(**FAST).fit(Xs.asformat(fmt), y).predict(Xs.asformat(fmt))


def test_wrong_number_of_features_at_predict(clf_data):
    X, y = clf_data
    clf = MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])


# -- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("param, value, match", [
    ("activation", "swish", "'activation' parameter"),
    ("optimizer", "lbfgs", "'optimizer' parameter"),
    ("optimizer", dict, "'optimizer' parameter"),
    ("lr", 0.0, "'lr' parameter"),
    ("lr", -1.0, "'lr' parameter"),
    ("batch_size", 0, "'batch_size' parameter"),
    ("max_epochs", 0, "'max_epochs' parameter"),
    ("dropout", 1.0, "'dropout' parameter"),
    ("weight_init", "zeros", "'weight_init' parameter"),
    ("lr_schedule", "linear", "'lr_schedule' parameter"),
    ("validation_fraction", 1.5, "'validation_fraction' parameter"),
    ("hidden_layer_sizes", (10, 0), "'hidden_layer_sizes' parameter"),
    ("hidden_layer_sizes", (10, 2.5), "'hidden_layer_sizes' parameter"),
    ("device", "tpu", "'device' parameter"),
    ("callbacks", ["not a callback"], "'callbacks' parameter"),
    ("class_weight", "even", "'class_weight' parameter"),
])
def test_bad_arguments_are_named(clf_data, param, value, match):
    X, y = clf_data
    with pytest.raises((ValueError, TypeError), match=match):
        MLPClassifier(**{**FAST, param: value}).fit(X, y)


def test_bad_regression_loss_is_named(reg_data):
    X, y = reg_data
    with pytest.raises(ValueError, match="'loss' parameter"):
        MLPRegressor(loss="hinge").fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_requested_without_cuda(clf_data):
    X, y = clf_data
    with pytest.raises(ValueError, match="CUDA is not available"):
        MLPClassifier(device="cuda", max_epochs=1).fit(X, y)


def test_auto_device_on_this_machine(clf_data):
    X, y = clf_data
    clf = MLPClassifier(max_epochs=1).fit(X, y)
    assert clf.device_ == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(clf_data):
    X, y = clf_data
    cpu = MLPClassifier(**FAST).fit(X, y)
    gpu = MLPClassifier(**{**FAST, "device": "cuda"}).fit(X, y)
    assert gpu.device_ == "cuda"
    assert math.isclose(cpu.score(X, y), gpu.score(X, y), abs_tol=0.05)
