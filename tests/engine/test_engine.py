"""The batched engine: each trained job equals its own sequential fit."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from skorch.helper import predefined_split

import sknet
from sknet import MLPClassifier, MLPRegressor
from sknet._options import ACTIVATIONS
from sknet.engine import can_batch, group_jobs, train_batched
from sknet.engine._group import GroupTrainer
from sknet.engine._jobs import prepare
from sknet.engine._loss import LOSSES
from sknet.engine._model import BatchedMLP
from sknet.nets._data import InMemoryDataset

CLF = MLPClassifier(hidden_layer_sizes=(16, 8), batch_size=32, max_epochs=4, random_state=0, device="cpu")
REG = MLPRegressor(n_units=16, batch_size=32, max_epochs=4, random_state=0, device="cpu")


def two_folds(n, sizes=(150, 97)):
    """Two overlapping training folds of different sizes; 97 = 3 * 32 + 1 ends in a folded 1-row batch."""
    order = np.random.RandomState(0).permutation(n)
    return [np.sort(order[:sizes[0]]), order[-sizes[1]:]]


def sequential(base, params, rows, X, y, sample_weight=None):
    weight = None if sample_weight is None else sample_weight[rows]
    return clone(base).set_params(**params).fit(X[rows], y[rows], sample_weight=weight)


def trained_both_ways(base, jobs, X, y, sample_weight=None):
    """Each job trained by the engine and by its own fit: ``[(batched, alone), ...]``."""
    fitted = train_batched(base, jobs, X, y, sample_weight)
    return [(batched, sequential(base, params, rows, X, y, sample_weight))
            for (params, rows), batched in zip(jobs, fitted, strict=True)]


def assert_matches_sequential(base, jobs, X, y, output="predict_proba", sample_weight=None):
    """Batched fits equal their sequential fits: to 1e-9 in float64, within rounding in float32.

    float64 (``dtype="float64"``) is the test that holds on any CPU: its rounding (1e-16) stays
    far below 1e-9 over these short fits, whatever order a BLAS kernel sums in. In float32 the
    batched and the sequential fit round differently, and each lands about as far from the
    exact fit (its float64 twin) as float32 rounding takes a fit: so the two may differ by up to
    the sum of those distances, a few times the sequential fit's own (4x, plus 1e-5, ~100 ulps
    at 1, for outputs that rounding happens to leave almost untouched). Returns the float64
    ``(batched, alone)`` pairs for further checks.
    """
    out = (lambda est: getattr(est, output)(X))  # noqa: E731
    pairs = trained_both_ways(clone(base).set_params(dtype="float64"), jobs, X, y, sample_weight)
    for batched, alone in pairs:
        np.testing.assert_allclose(out(batched), out(alone), rtol=0, atol=1e-9)
        np.testing.assert_allclose(batched.loss_curve_, alone.loss_curve_, rtol=1e-9)
        assert batched.n_iter_ == alone.n_iter_ and batched.best_epoch_ == alone.best_epoch_
        assert_same_history_records(batched.net_.history, alone.net_.history)
    for (batched, alone), (_, exact) in zip(trained_both_ways(base, jobs, X, y, sample_weight), pairs,
                                            strict=True):
        rounding = np.abs(out(alone) - out(exact)).max()
        assert np.abs(out(batched) - out(alone)).max() <= 4 * rounding + 1e-5
    return pairs


def assert_same_history_records(batched, alone):
    """The same records epoch by epoch, and the same values where they are not measured floats."""
    assert len(batched) == len(alone)
    for mine, theirs in zip(batched, alone, strict=True):
        assert mine.keys() == theirs.keys()
        assert [batch.keys() for batch in mine["batches"]] == [batch.keys() for batch in theirs["batches"]]
        for key, value in theirs.items():
            if key in ("epoch", "event_lr") or key.endswith(("_best", "_count")):
                assert mine[key] == pytest.approx(value, rel=1e-5), key


def assert_same_optimizer_state(batched, alone):
    """The same optimizer state, in float64 (RMSprop and Adam divide by running averages of
    squared gradients, which magnify float32 rounding beyond any tolerance it justifies)."""
    state = batched.net_.optimizer_.state_dict()["state"]
    expected = alone.net_.optimizer_.state_dict()["state"]
    assert state.keys() == expected.keys()
    for index, entries in expected.items():
        assert state[index].keys() == entries.keys()
        for name, value in entries.items():
            np.testing.assert_allclose(np.asarray(state[index][name]), np.asarray(value), rtol=1e-7,
                                       atol=1e-12, err_msg=name)


# -- equivalence with sequential fits --------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_classifier_matches_sequential_fits(digits, optimizer):
    X, y = digits
    hyper = [dict(lr=1e-3, weight_decay=0.0, momentum=0.9), dict(lr=1e-2, weight_decay=1e-3, momentum=0.5)]
    jobs = [({"optimizer": optimizer, **h}, rows) for h in hyper for rows in two_folds(len(X))]
    pairs = assert_matches_sequential(CLF, jobs, X, y)
    np.testing.assert_array_equal(pairs[0][0].classes_, np.unique(y))


@pytest.mark.parametrize("optimizer", ["adamw", "rmsprop", "adagrad"])
def test_other_optimizers_match_sequential_fits(clf_data, optimizer):
    X, y = clf_data
    jobs = [(dict(optimizer=optimizer, lr=lr, weight_decay=wd), rows)
            for lr, wd in [(1e-3, 0.0), (1e-2, 1e-2)] for rows in two_folds(len(X))]
    assert_matches_sequential(CLF, jobs, X, y)


@pytest.mark.parametrize("options", [
    {"optimizer": "adam"}, {"optimizer": "adam", "early_stopping": True, "patience": 2, "max_epochs": 8},
    {"optimizer": "adamw"}, {"optimizer": "adam", "unfused": True}, {"optimizer": "adamw", "unfused": True},
    {"optimizer": "rmsprop"}, {"optimizer": "sgd", "batch_norm": True}, {"optimizer": "sgd"},
    {"optimizer": "sgd", "unfused": True}, {"optimizer": "adagrad"},
    {"optimizer": "adagrad", "unfused": True}, {"optimizer": "adam", "many_rates": True},
    {"optimizer": "adamw", "many_rates": True}, {"optimizer": "sgd", "many_rates": True}],
    ids=str)
def test_models_of_different_widths_train_together_as_their_sequential_fits(clf_data, options, monkeypatch):
    # Widths interleaved in the jobs (the engine orders them into blocks of equal widths), each
    # model with its own hyperparameters, folds with different numbers of batches, and models
    # leaving at different epochs, whole blocks too.
    from sknet.engine import _optim

    if options.pop("unfused", False):  # the formulas torch's fused kernels stand in for
        for name, formulas in [("sgd", _optim.SGD), ("adam", _optim.Adam), ("adamw", _optim.AdamW),
                               ("adagrad", _optim.Adagrad)]:
            monkeypatch.setitem(_optim.OPTIMIZERS, name, formulas)
    if options.pop("many_rates", False):  # the fused optimizers' step for models in many groups
        monkeypatch.setattr(_optim._GroupKernel, "max_calls", 0)
    X, y = clf_data
    widths, epochs = [(16, 8), (4, 4), (16, 8), (8, 12)], [4, 2, 3, 1]
    hyper = [dict(lr=1e-2, weight_decay=0.0, momentum=0.9, l1=0.0),
             dict(lr=3e-3, weight_decay=1e-2, momentum=0.0, l1=1e-3),
             dict(lr=3e-2, weight_decay=1e-3, momentum=0.5, l1=0.0),
             dict(lr=1e-2, weight_decay=3e-3, momentum=0.9, l1=1e-4)]
    jobs = [({"hidden_layer_sizes": w, "max_epochs": e, **h, **options}, rows)
            for w, e, h in zip(widths, epochs, hyper, strict=True) for rows in two_folds(len(X))]
    assert len(group_jobs(CLF, jobs)) == 1
    pairs = assert_matches_sequential(CLF, jobs, X, y)
    for (params, _), (batched, alone) in zip(jobs, pairs, strict=True):
        assert batched.net_.module_.hidden.linear0.out_features == params["hidden_layer_sizes"][0]
        assert_same_optimizer_state(batched, alone)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_regressor_matches_sequential_fits(reg_data, loss):
    X, y = reg_data
    jobs = [(dict(loss=loss, lr=lr), rows) for lr in (1e-3, 1e-2) for rows in two_folds(len(X))]
    assert_matches_sequential(REG, jobs, X, y, output="predict")
    assert_matches_sequential(REG, jobs[:2], X, np.c_[y, -y], output="predict")  # several outputs


@pytest.mark.parametrize("schedule", ["step", "exponential", "cosine", "plateau", "onecycle"])
def test_schedules_match_sequential_fits(clf_data, schedule):
    X, y = clf_data
    jobs = [(dict(lr_schedule=schedule, lr=1e-2, max_epochs=5), np.arange(200)),
            (dict(lr_schedule=schedule, lr=3e-3, max_epochs=3), np.arange(120))]
    assert_matches_sequential(CLF, jobs, X, y)


@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"relu"}))
def test_activations_match_sequential_fits(clf_data, activation):
    X, y = clf_data
    jobs = [(dict(activation=activation, lr=lr), rows) for lr in (1e-3, 1e-2) for rows in two_folds(len(X))]
    assert_matches_sequential(CLF, jobs, X, y)


def assert_same_early_stopping(batched, alone):
    assert batched.n_iter_ == alone.n_iter_ and batched.best_epoch_ == alone.best_epoch_
    np.testing.assert_allclose(batched.validation_loss_curve_, alone.validation_loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(batched.validation_scores_, alone.validation_scores_, atol=1e-9)
    assert batched.best_validation_score_ == pytest.approx(alone.best_validation_score_, abs=1e-9)


@pytest.mark.parametrize("extra", [{}, {"class_weight": "balanced"}, {"lr_schedule": "plateau"}])
def test_each_model_stops_early_on_its_own_as_its_sequential_fit(clf_data, extra):
    X, y = clf_data
    base = clone(CLF).set_params(early_stopping=True, patience=2, tol=1e-3, max_epochs=40, **extra)
    jobs = [(dict(lr=lr, validation_fraction=fraction), rows)
            for lr, fraction in [(3e-2, 0.2), (1e-2, 0.1), (1e-3, 0.3)] for rows in two_folds(len(X))]
    pairs = assert_matches_sequential(base, jobs, X, y)
    for batched, alone in pairs:
        assert_same_early_stopping(batched, alone)
    assert len({clf.n_iter_ for clf, _ in pairs}) > 1  # they stopped at different epochs
    assert min(clf.n_iter_ for clf, _ in pairs) < 40


def test_regressor_stops_early_as_its_sequential_fit(reg_data):
    X, y = reg_data
    base = clone(REG).set_params(early_stopping=True, patience=2, max_epochs=30)
    jobs = [(dict(lr=lr), rows) for lr in (3e-2, 1e-3) for rows in two_folds(len(X))]
    for batched, alone in assert_matches_sequential(base, jobs, X, y, output="predict"):
        assert_same_early_stopping(batched, alone)


def test_finished_models_leave_the_group(clf_data, monkeypatch):
    X, y = clf_data
    sizes = []
    forward = BatchedMLP.forward
    monkeypatch.setattr(BatchedMLP, "forward",
                        lambda self, X, **kw: sizes.append(len(X)) or forward(self, X, **kw))
    # Two steps per epoch; other rates, or the shorter jobs would follow the longest (one model).
    jobs = [(dict(max_epochs=epochs, lr=lr), np.arange(64))
            for epochs, lr in ((1, 1e-3), (2, 2e-3), (4, 3e-3))]
    fitted = train_batched(clone(CLF).set_params(batch_size=32), jobs, X, y)
    assert [clf.n_iter_ for clf in fitted] == [1, 2, 4]
    assert sizes == [3, 3, 2, 2, 1, 1, 1, 1]


@pytest.mark.parametrize("extra", [{}, {"lr_schedule": "exponential", "optimizer": "sgd"},
                                   {"dropout": 0.3, "batch_norm": True},
                                   {"lr_schedule": "plateau", "l1": 1e-3}])
def test_jobs_differing_only_in_epochs_train_once_and_match_their_own_fits(clf_data, monkeypatch, extra):
    X, y = clf_data
    base = clone(CLF).set_params(batch_size=32, dtype="float64", **extra)
    jobs = [(dict(max_epochs=epochs), np.arange(64)) for epochs in (4, 1, 2)]
    sizes = []
    forward = BatchedMLP.forward
    with monkeypatch.context() as patch:
        patch.setattr(BatchedMLP, "forward",
                      lambda self, X, **kw: sizes.append(len(X)) or forward(self, X, **kw))
        train_batched(base, jobs, X, y)
    assert sizes == [1] * 8  # one model trained, for 4 epochs of two steps
    for batched, alone in assert_matches_sequential(base, jobs, X, y):
        assert batched.n_iter_ == alone.n_iter_ == alone.max_epochs == batched.max_epochs
        assert_same_optimizer_state(batched, alone)


@pytest.mark.parametrize("extra", [{}, {"early_stopping": True, "patience": 2, "max_epochs": 12},
                                   {"class_weight": "balanced", "momentum": 0.5}])
def test_batch_norm_matches_sequential_fits(clf_data, extra):
    X, y = clf_data
    base = clone(CLF).set_params(batch_norm=True, optimizer="sgd", **extra)
    jobs = [(dict(lr=lr), rows) for lr in (1e-2, 1e-1) for rows in two_folds(len(X))]  # 97 rows: 33-row batch
    for batched, alone in assert_matches_sequential(base, jobs, X, y):
        for name, value in alone.net_.module_.state_dict().items():  # running statistics included
            torch.testing.assert_close(batched.net_.module_.state_dict()[name], value, rtol=1e-9, atol=1e-12)


def test_batch_norm_with_adam_is_as_close_to_sequential_as_rounding_allows(clf_data):
    # A linear bias before batch norm has a gradient of exactly zero in theory and of float
    # noise in practice; Adam divides by the gradient's size and turns that noise into steps of
    # size lr. Batch norm cancels the bias in training (the losses match tightly) but not in
    # prediction, where it enters through the running mean. So the sequential fit itself moves
    # when its input moves by float rounding: the batched fit must stay within that distance.
    X, y = clf_data
    base = clone(CLF).set_params(batch_norm=True)
    jobs = [(dict(lr=lr), rows) for lr in (1e-3, 1e-2) for rows in two_folds(len(X))]
    deviation, sensitivity = 0.0, 0.0
    for (params, rows), batched in zip(jobs, train_batched(base, jobs, X, y), strict=True):
        alone = sequential(base, params, rows, X, y)
        nudged = sequential(base, params, rows, X * (1 + 1e-7), y)
        np.testing.assert_allclose(batched.loss_curve_, alone.loss_curve_, rtol=1e-4)
        deviation = max(deviation, np.abs(batched.predict_proba(X) - alone.predict_proba(X)).max())
        sensitivity = max(sensitivity, np.abs(nudged.predict_proba(X) - alone.predict_proba(X)).max())
    assert deviation <= 5 * sensitivity + 1e-4


def test_per_model_options_match_sequential_fits(clf_data):
    X, y = clf_data
    jobs = [(dict(l1=1e-3, class_weight="balanced"), np.arange(150)),
            (dict(weight_init="xavier_uniform", class_weight={0: 3.0}, random_state=7), np.arange(200)),
            (dict(n_layers=0, hidden_layer_sizes=None), np.arange(200))]  # a linear model
    assert_matches_sequential(CLF, jobs, X, y)


def test_fold_missing_a_class_gets_its_own_classes(clf_data):
    X, y = clf_data
    two_classes = np.flatnonzero(y != 2)
    (first, _), (second, _) = assert_matches_sequential(CLF, [({}, two_classes), ({}, np.arange(200))], X, y)
    assert first.classes_.tolist() == [0, 1] and second.classes_.tolist() == [0, 1, 2]


def test_many_models_each_reach_their_sequential_loss(clf_data):
    X, y = clf_data
    base = MLPClassifier(n_units=8, batch_size=64, max_epochs=3, device="cpu", dtype="float64")
    jobs = [(dict(lr=lr, random_state=seed, max_epochs=2 + seed % 3), rows)
            for lr in (1e-3, 3e-3, 1e-2, 3e-2) for seed in range(5) for rows in two_folds(len(X))]
    assert len(jobs) == 40 and len(group_jobs(base, jobs)) == 1
    fitted = train_batched(base, jobs, X, y)
    for (params, rows), batched in zip(jobs, fitted, strict=True):
        alone = sequential(base, params, rows, X, y)
        assert batched.n_iter_ == params["max_epochs"]
        assert batched.loss_curve_[-1] == pytest.approx(alone.loss_curve_[-1], rel=1e-9)


# -- float64 ---------------------------------------------------------------------------------
def prepared_in_float64(base, params, rows, X, y):
    """A prepared job whose net is float64, as the estimators' ``dtype="float64"`` makes it."""
    job = prepare(base, params, rows, X, y)
    job.estimator.net_.module_.double()
    job.estimator.net_.initialize_optimizer()  # on the float64 parameters
    return job


def float64_dataset(X, rows, y, weight):
    dataset = InMemoryDataset(X[rows], y, weight)
    dataset.X = torch.as_tensor(X[rows], dtype=torch.float64)  # the dataset makes them float32
    if dataset.y.is_floating_point():
        dataset.y = dataset.y.double()
    if dataset.sample_weight is not None:
        dataset.sample_weight = dataset.sample_weight.double()
    return dataset


def train_alone_in_float64(job, X):
    """Train a prepared float64 job with its own net's loop (its sequential fit's), on ``X``'s rows."""
    net = job.estimator.net_
    if job.valid is not None:
        net.train_split = predefined_split(float64_dataset(X, *job.valid))
    return net.train_epochs(float64_dataset(X, job.rows, job.y, job.weight), job.estimator.max_epochs)


@pytest.mark.parametrize("options", [
    {"optimizer": "adam", "l1": 1e-3, "class_weight": "balanced"}, {"optimizer": "adam", "unfused": True},
    {"optimizer": "adamw", "weight_decay": 1e-2}, {"optimizer": "sgd", "momentum": 0.9, "batch_norm": True},
    {"optimizer": "rmsprop"}, {"optimizer": "adagrad"}, {"loss": "mse"},
    {"early_stopping": True, "patience": 2, "max_epochs": 8}], ids=str)
def test_float64_jobs_train_in_float64_as_their_own_loops(clf_data, reg_data, options, monkeypatch):
    # The estimators' dtype="float64" gives float64 nets and X: the engine must then compute in
    # float64 throughout (a single float32 buffer, column or kernel would show at ~1e-7).
    from sknet.engine import _optim

    if options.pop("unfused", False):
        monkeypatch.setitem(_optim.OPTIMIZERS, "adam", _optim.Adam)
    base, (X, y) = (REG, reg_data) if "loss" in options else (CLF, clf_data)
    jobs = [({"hidden_layer_sizes": widths, "lr": lr, **options}, rows)
            for widths, lr in [((16, 8), 1e-2), ((4, 4), 3e-2)] for rows in two_folds(len(X))]
    batched = [prepared_in_float64(base, *job, X, y) for job in jobs]
    GroupTrainer(batched, torch.as_tensor(X, dtype=torch.float64)).run()
    in_float32 = [prepare(base, *job, X, y) for job in jobs]
    GroupTrainer(in_float32, torch.as_tensor(X, dtype=torch.float32)).run()
    for job, mine, single in zip(jobs, batched, in_float32, strict=True):
        alone = train_alone_in_float64(prepared_in_float64(base, *job, X, y), X)
        state, expected = mine.estimator.net_.module_.state_dict(), alone.module_.state_dict()
        rounded = single.estimator.net_.module_.state_dict()
        assert state.keys() == expected.keys()
        float32_error = 0.0
        for name, value in expected.items():
            assert state[name].dtype == value.dtype
            torch.testing.assert_close(state[name], value, rtol=1e-9, atol=1e-10, msg=name)
            if value.is_floating_point():
                float32_error = max(float32_error, (rounded[name].double() - value).abs().max().item())
        assert float32_error > 1e-8  # those tolerances tell float64 from float32
        for key in ("train_loss",) + ("valid_loss",) * ("early_stopping" in options):
            np.testing.assert_allclose(mine.estimator.net_.history[:, key], alone.history[:, key], rtol=1e-12)


# -- the hand-written gradients --------------------------------------------------------------
def generators(n):
    return [torch.Generator().manual_seed(seed) for seed in range(n)]


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_backward_equals_autograd(clf_data, activation, dropout, batch_norm):
    # In float64, where the hand-written and the recorded gradients agree to 1e-16 rounding.
    X, y = clf_data
    base = clone(CLF).set_params(activation=activation, dropout=dropout, batch_norm=batch_norm,
                                 dtype="float64")
    # Two blocks: two models of CLF's widths, one narrower.
    params = [{"random_state": 0}, {"random_state": 1}, {"random_state": 2, "hidden_layer_sizes": (5, 3)}]
    modules = [prepare(base, p, np.arange(50), X, y).estimator.net_.module_ for p in params]
    model = BatchedMLP(modules, activation, dropout * np.array([1.0, 0.5, 1.5]), generators(3))
    assert [block.span for block in model.blocks] == [slice(0, 2), slice(2, 3)]
    inputs = torch.randn(3, 5, X.shape[1], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rows = torch.tensor([[1.0] * 5, [1.0] * 4 + [0.0], [1.0] * 3 + [0.0] * 2],  # padded batches
                        dtype=torch.float64)
    draws = [generator.get_state() for block in model.blocks for generator in block.generators]
    out = model.forward(inputs, training=True, rows=rows)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grad_out = grad_out * rows[..., None]
    grads = [grad.clone() for grad in model.backward(grad_out)]
    for generator, state in zip([g for block in model.blocks for g in block.generators], draws, strict=True):
        generator.set_state(state)  # the same dropout masks again
    leaves = [p.clone().requires_grad_() for p in model.parameters()[0]]
    noise, start = set(), 0
    for block in model.blocks:
        n = len(block.weights)
        block_leaves = leaves[start:start + len(block.parameters()[0])]
        block.weights, block.biases = block_leaves[:n], block_leaves[n:2 * n]
        for i, norm in enumerate(block.norms):
            norm.weight, norm.bias = block_leaves[2 * n + 2 * i], block_leaves[2 * n + 2 * i + 1]
        if batch_norm:  # before batch norm a linear bias has a gradient of 0 in theory: float noise
            noise |= set(range(start + n, start + 2 * n - 1))
        start += len(block_leaves)
    (model.forward(inputs, training=True, rows=rows) * grad_out).sum().backward()
    for i, (grad, leaf) in enumerate(zip(grads, leaves, strict=True)):
        if i in noise:
            assert grad.abs().max() < 1e-12 and leaf.grad.abs().max() < 1e-12
        else:
            torch.testing.assert_close(grad, leaf.grad, rtol=1e-10, atol=1e-12)


def test_each_model_drops_units_at_its_own_rate_in_its_block(clf_data):
    X, y = clf_data
    base = clone(CLF).set_params(dropout=0.1)
    widths = [(64, 64), (64, 64), (32, 32)]
    modules = [prepare(base, {"hidden_layer_sizes": w}, np.arange(50), X, y).estimator.net_.module_
               for w in widths]
    model = BatchedMLP(modules, "relu", np.array([0.1, 0.5, 0.8]), generators(3))

    def dropped():
        model.forward(torch.randn(len(model.keep), 500, X.shape[1]), training=True)
        scales = model._saved[0][0][4]  # the first layer's dropout scales, block by block
        return [rate for scale in scales for rate in (scale == 0).float().mean(dim=(1, 2)).tolist()]

    np.testing.assert_allclose(dropped(), [0.1, 0.5, 0.8], atol=0.02)
    model.keep_models(torch.tensor([0, 2]))  # the first block keeps one model, the second all
    np.testing.assert_allclose(dropped(), [0.1, 0.8], atol=0.02)


@pytest.mark.parametrize("loss", list(LOSSES.values()), ids=lambda f: f.__name__)
def test_loss_gradients_equal_autograd_and_torch_losses(loss):
    gen = torch.Generator().manual_seed(0)
    out = (3 * torch.randn(2, 7, 4, generator=gen)).requires_grad_()
    if loss is LOSSES[torch.nn.CrossEntropyLoss]:
        target, reference = torch.randint(0, 4, (2, 7), generator=gen), torch.nn.CrossEntropyLoss
        per_row = lambda: reference(reduction="none")(out.flatten(0, 1), target.flatten()).view(2, 7)  # noqa: E731
    else:
        target = torch.randn(2, 7, 4, generator=gen)
        reference = next(cls for cls, f in LOSSES.items() if f is loss)
        per_row = lambda: reference(reduction="none")(out, target).mean(dim=2)  # noqa: E731
    weight = torch.rand(2, 7, generator=gen)
    coef = weight / weight.sum(dim=1, keepdim=True)
    value, grad = loss(out.detach(), target, coef)
    expected = (per_row() * coef).sum(dim=1)
    torch.testing.assert_close(value, expected.detach())
    expected.sum().backward()
    torch.testing.assert_close(grad, out.grad)


# -- the returned estimators -----------------------------------------------------------------
@pytest.mark.parametrize("extra", [{}, {"class_weight": "balanced"},
                                   {"early_stopping": True, "patience": 2, "max_epochs": 12}])
def test_sample_weights_match_sequential_fits(clf_data, extra):
    X, y = clf_data
    weight = np.random.RandomState(1).uniform(0.0, 2.0, len(y))
    weight[::7] = 0.0  # rows that do not count
    jobs = [({"lr": lr, **extra}, rows) for lr in (1e-3, 3e-2) for rows in two_folds(len(X))]
    pairs = assert_matches_sequential(CLF, jobs, X, y, sample_weight=weight)
    unweighted = train_batched(clone(CLF).set_params(dtype="float64"), jobs, X, y)
    assert not np.allclose(pairs[0][0].predict_proba(X), unweighted[0].predict_proba(X), atol=1e-4)


def test_negative_sample_weights_come_back_as_the_fit_error(clf_data):
    X, y = clf_data
    weight = np.ones(len(y))
    weight[3] = -1.0
    jobs = [({}, np.arange(100)), ({}, np.arange(100, len(y)))]
    first, second = train_batched(CLF, jobs, X, y, weight)
    assert isinstance(first, ValueError) and "Negative values" in str(first)  # what fit says
    assert second.n_iter_ == CLF.max_epochs  # the job without the bad row trains


@pytest.mark.parametrize("options", [
    {"optimizer": "adam"}, {"optimizer": "adamw", "weight_decay": 1e-2},
    {"optimizer": "sgd", "momentum": 0.9}, {"optimizer": "sgd", "momentum": 0.0},
    {"optimizer": "rmsprop"}, {"optimizer": "rmsprop", "momentum": 0.0}, {"optimizer": "adagrad"}], ids=str)
def test_training_goes_on_from_the_optimizer_state_a_sequential_fit_leaves(clf_data, options):
    X, y = clf_data
    jobs = [({"lr": lr, **options}, rows) for lr in (3e-3, 1e-2) for rows in two_folds(len(X))]
    pairs = assert_matches_sequential(CLF, jobs, X, y)
    for (_, rows), (batched, alone) in zip(jobs, pairs, strict=True):
        assert_same_optimizer_state(batched, alone)
        for est in (batched, alone):  # partial_fit: one more epoch from where the fit stopped
            est.partial_fit(X[rows], y[rows])
        np.testing.assert_allclose(batched.predict_proba(X), alone.predict_proba(X), rtol=0, atol=1e-9)


def test_each_training_set_is_validated_once(clf_data, monkeypatch):
    X, y = clf_data
    calls, validate = [], MLPClassifier._validate_targets
    monkeypatch.setattr(MLPClassifier, "_validate_targets",
                        lambda self, *a, **k: calls.append(1) or validate(self, *a, **k))
    jobs = [({"lr": lr}, rows) for lr in (1e-3, 1e-2, 3e-2) for rows in two_folds(len(X))]
    fitted = train_batched(CLF, jobs, X, y)
    assert len(calls) == 2  # two folds
    for est in fitted:
        np.testing.assert_array_equal(est.classes_, np.unique(y))
        assert est.n_features_in_ == X.shape[1]


def test_returned_estimators_are_ordinary_fitted_estimators(digits, tmp_path):
    X, y = digits
    rows = np.arange(400)
    [clf] = train_batched(CLF, [(dict(lr=1e-2), rows)], X, y)
    check_is_fitted(clf)
    assert clf.n_features_in_ == X.shape[1] and clf.device_ == "cpu" and len(clf.loss_curve_) == 4
    score = get_scorer("accuracy")(clf, X[400:], y[400:])
    assert 0.5 < score <= 1.0
    clf.save(tmp_path / "model.pt")
    np.testing.assert_array_equal(sknet.load(tmp_path / "model.pt").predict(X), clf.predict(X))


def test_diverged_job_comes_back_as_its_error_and_spares_the_others(clf_data):
    X, y = clf_data
    base = clone(CLF).set_params(dtype="float64")
    jobs = [(dict(optimizer="sgd", lr=lr), np.arange(200)) for lr in (1e200, 1e-2)]  # float64 overflows too
    with pytest.raises(FloatingPointError):
        sequential(base, *jobs[0], X, y)
    diverged, fine = train_batched(base, jobs, X, y)
    assert isinstance(diverged, FloatingPointError)
    np.testing.assert_allclose(fine.predict_proba(X), sequential(base, *jobs[1], X, y).predict_proba(X),
                               rtol=0, atol=1e-9)


def test_job_whose_data_fit_refuses_comes_back_as_its_error(clf_data):
    X, y = clf_data
    one_class = np.flatnonzero(y == 0)
    refused, fine = train_batched(CLF, [({}, one_class), ({}, np.arange(200))], X, y)
    with pytest.raises(ValueError, match="at least 2 classes") as expected:
        sequential(CLF, {}, one_class, X, y)
    assert isinstance(refused, ValueError) and str(refused) == str(expected.value)
    check_is_fitted(fine)


@pytest.mark.parametrize("extra", [{}, {"optimizer": "sgd", "batch_norm": True},
                                   {"early_stopping": True, "patience": 2, "max_epochs": 8},
                                   {"class_weight": "balanced", "activation": "tanh"}], ids=str)
def test_dropout_masks_are_those_of_each_sequential_fit(clf_data, extra):
    # Each model draws its masks from its own generator as its fit's nn.Dropout layers do:
    # folds of 150 and 97 rows (a last batch of 33, padded), models of two widths (two blocks)
    # and their own rates, some leaving the group early.
    X, y = clf_data
    jobs = [({"hidden_layer_sizes": widths, "dropout": rate, "lr": lr, "max_epochs": epochs, **extra}, rows)
            for widths, rate, lr, epochs in [((16, 8), 0.2, 1e-2, 4), ((8, 4), 0.5, 3e-2, 3),
                                             ((16, 8), 0.1, 3e-3, 2)]
            for rows in two_folds(len(X))]
    assert len(group_jobs(CLF, jobs)) == 1
    assert_matches_sequential(CLF, jobs, X, y)


def test_dropout_trains_reproducibly(clf_data):
    X, y = clf_data
    jobs = [(dict(dropout=p, lr=1e-2, max_epochs=10), np.arange(200)) for p in (0.1, 0.5)]
    first, again = train_batched(CLF, jobs, X, y), train_batched(CLF, jobs, X, y)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
        assert a.loss_curve_[-1] < a.loss_curve_[0]


# -- grouping and refusals -------------------------------------------------------------------
def test_group_jobs_splits_on_the_loop_not_on_depth_width_activation_batch_size_or_hyperparameters():
    rows = np.arange(10)
    jobs = [(dict(lr=1e-3), rows), (dict(lr=1e-2, weight_decay=1e-3, l1=1e-4, momentum=0.5), rows),
            (dict(hidden_layer_sizes=(32,)), rows), (dict(optimizer="sgd"), rows),
            (dict(max_epochs=9, random_state=1), rows), (dict(dropout=0.2), rows),
            (dict(dropout=0.4), rows), (dict(batch_size=16), rows), (dict(optimizer=torch.optim.SGD), rows),
            (dict(hidden_layer_sizes=(32, 4, 4), activation="tanh"), rows),
            (dict(dropout=0.2, batch_size=16), rows), (dict(batch_norm=True), rows),
            (dict(batch_norm=True, batch_size=16), rows), (dict(n_layers=0), rows)]
    # Batch sizes apart on a CPU (separate loops measured faster there; see test_mixed_groups.py).
    assert group_jobs(CLF, jobs) == [[0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 13], [7, 10, 12]]


class Noop(Callback):
    pass


@pytest.mark.parametrize("params", [
    dict(callbacks=[Noop()]), dict(warm_start=True), dict(optimizer=torch.optim.NAdam),
    dict(verbose=1), dict(lr=-1.0),
    dict(hidden_layer_sizes=(0,)), dict(no_such_parameter=1),
])
def test_can_batch_refuses_what_it_does_not_support(params):
    assert not can_batch(CLF, params)
    with pytest.raises(ValueError, match="cannot be trained by the batched engine"):
        train_batched(CLF, [(params, np.arange(10))], np.zeros((10, 2)), np.arange(10) % 2)


def test_can_batch_refuses_sparse_x_and_foreign_estimators(clf_data):
    X, _ = clf_data
    assert can_batch(CLF, {}, X) and can_batch(CLF, dict(optimizer=torch.optim.Adam, dropout=0.3))
    assert not can_batch(CLF, {}, sp.csr_matrix(X))
    assert not can_batch(LogisticRegression(), {})


def test_a_group_out_of_memory_is_halved_and_retried(monkeypatch):
    from sknet.engine import _train

    X, y = load_iris(return_X_y=True)
    jobs = [({"lr": lr}, np.arange(i, 150, 2)) for lr in (1e-3, 3e-3, 1e-2) for i in (0, 1)]
    base = MLPClassifier(max_epochs=3, random_state=0, device="cpu")
    expected = [est.predict_proba(X) for est in train_batched(base, jobs, X, y)]
    real_run, sizes = _train.GroupTrainer.run, []

    def run_or_oom(self):
        sizes.append(len(self.jobs))
        if len(self.jobs) > 2:
            real_run(self)  # fail part-way, after touching the nets' histories
            raise torch.OutOfMemoryError("simulated")
        return real_run(self)

    monkeypatch.setattr(_train.GroupTrainer, "run", run_or_oom)
    fitted = train_batched(base, jobs, X, y)
    assert sizes == [6, 3, 1, 2, 3, 1, 2]
    for est, proba in zip(fitted, expected, strict=True):
        _assert_same_up_to_summation_order(est.predict_proba(X), proba)
        assert est.n_iter_ == 3 and len(est.loss_curve_) == 3


def test_a_group_larger_than_free_memory_is_split_before_training(monkeypatch):
    from sknet.engine import _train

    X, y = load_iris(return_X_y=True)
    jobs = [({"lr": lr}, np.arange(i, 150, 2)) for lr in (1e-3, 3e-3, 1e-2) for i in (0, 1)]
    base = MLPClassifier(max_epochs=3, random_state=0, device="cpu")
    expected = [est.predict_proba(X) for est in train_batched(base, jobs, X, y)]
    job = _train.prepare(base, *jobs[0], X, y)
    room_for_two = 2.5 * _train._estimated_bytes(job, X.shape[1]) / _train.MEMORY_SHARE
    monkeypatch.setattr(_train, "_free_memory", lambda device: room_for_two)
    real_init, sizes = _train.GroupTrainer.__init__, []
    monkeypatch.setattr(_train.GroupTrainer, "__init__",
                        lambda self, jobs, *rest: sizes.append(len(jobs)) or real_init(self, jobs, *rest))
    fitted = train_batched(base, jobs, X, y)
    assert sizes == [2, 2, 2]
    for est, proba in zip(fitted, expected, strict=True):
        _assert_same_up_to_summation_order(est.predict_proba(X), proba)


def test_a_group_of_several_widths_is_split_by_what_each_model_needs(monkeypatch):
    from sknet.engine import _costs, _train

    monkeypatch.setattr(_costs, "FIXED_FLOPS", {"cpu": 0.0, "cuda": 0.0})  # a block per width: no padding
    X, y = load_iris(return_X_y=True)
    # Rates of their own: identical jobs would train once.
    jobs = [({"n_units": units, "lr": 1e-3 * (1 + i)}, np.arange(150))
            for i, units in enumerate((4, 512, 4, 4, 512, 4))]
    base = MLPClassifier(max_epochs=3, random_state=0, device="cpu")
    expected = [est.predict_proba(X) for est in train_batched(base, jobs, X, y)]
    small, large = (_train._estimated_bytes(_train.prepare(base, *jobs[i], X, y), X.shape[1]) for i in (0, 1))
    room = (4 * small + 1.5 * large) / _train.MEMORY_SHARE  # the four small models and one large one
    monkeypatch.setattr(_train, "_free_memory", lambda device: room)
    real_init, sizes = _train.GroupTrainer.__init__, []
    monkeypatch.setattr(_train.GroupTrainer, "__init__",
                        lambda self, jobs, *rest: sizes.append(len(jobs)) or real_init(self, jobs, *rest))
    fitted = train_batched(base, jobs, X, y)
    assert sizes == [5, 1]  # ordered by width: the four small ones and a large one, then the other
    for est, proba in zip(fitted, expected, strict=True):
        _assert_same_up_to_summation_order(est.predict_proba(X), proba)


def _assert_same_up_to_summation_order(actual, expected):
    # A model trained in a group of another size is the same computation, but torch may sum a
    # batch's gradient in another order for another number of models (a float32 rounding
    # apart, ~1e-9 here); one more epoch moves these probabilities by 0.03 to 0.1.
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-7)


def test_memory_estimate_grows_with_what_a_model_holds(clf_data):
    from sknet.engine._train import _estimated_bytes

    X, y = clf_data
    rows = np.arange(100)
    small = _estimated_bytes(prepare(CLF, {}, rows, X, y), X.shape[1])
    wide = _estimated_bytes(prepare(CLF, {"hidden_layer_sizes": (256, 256)}, rows, X, y), X.shape[1])
    assert small < wide and wide > 4 * 5 * 256 * 256  # at least parameters, gradients and Adam's state


@pytest.mark.parametrize("extra", [{}, {"lr_schedule": "exponential", "optimizer": "sgd", "momentum": 0.9},
                                   {"dropout": 0.3, "batch_norm": True, "optimizer": "rmsprop"},
                                   {"lr_schedule": "plateau", "weight_decay": 1e-3}])
def test_a_job_continued_from_its_state_equals_its_fit_from_scratch(clf_data, extra):
    X, y = clf_data
    base = clone(CLF).set_params(batch_size=32, dtype="float64", **extra)
    rows = [np.arange(64), np.arange(32, 100)]
    first = [(dict(max_epochs=2, lr=lr), rows[i]) for i, lr in enumerate((1e-2, 3e-2))]
    _, states = train_batched(base, first, X, y, keep_states=True)
    assert [state.epochs for state in states] == [2, 2]
    # Continued to other lengths, beside a job trained from scratch in the same group.
    more = [({**params, "max_epochs": epochs}, rows)
            for (params, rows), epochs in zip(first, (5, 3), strict=True)]
    more.append((dict(max_epochs=4, lr=2e-2), rows[0]))
    fitted, new_states = train_batched(base, more, X, y, starts=[*states, None], keep_states=True)
    assert [clf.n_iter_ for clf in fitted] == [5, 3, 4] and new_states[0].epochs == 5
    assert fitted[0] is states[0].estimator  # continued in place
    for (params, train), batched in zip(more, fitted, strict=True):
        alone = sequential(base, params, train, X, y)
        np.testing.assert_allclose(batched.predict_proba(X), alone.predict_proba(X), rtol=0, atol=1e-9)
        np.testing.assert_allclose(batched.loss_curve_, alone.loss_curve_, rtol=1e-9)
        assert_same_history_records(batched.net_.history, alone.net_.history)
        assert_same_optimizer_state(batched, alone)


def test_a_state_that_cannot_continue_is_ignored(clf_data):
    X, y = clf_data
    rows = np.arange(64)
    _, [state] = train_batched(CLF, [(dict(max_epochs=3), rows)], X, y, keep_states=True)
    trained = {name: value.clone() for name, value in state.estimator.net_.module_.state_dict().items()}
    # More epochs than asked for, other parameters: trained from scratch, the state left alone.
    for params in (dict(max_epochs=2), dict(max_epochs=5, lr=0.5)):
        [fitted] = train_batched(CLF, [(params, rows)], X, y, starts=[state])
        assert fitted is not state.estimator and fitted.n_iter_ == params["max_epochs"]
    assert all(torch.equal(value, state.estimator.net_.module_.state_dict()[name])
               for name, value in trained.items())
    _, [none] = train_batched(CLF, [(dict(early_stopping=True), np.arange(100))], X, y, keep_states=True)
    assert none is None  # early stopping does not continue


def test_a_state_given_to_two_jobs_is_continued_by_one_only(clf_data):
    X, y = clf_data
    base, rows = clone(CLF).set_params(dtype="float64"), np.arange(64)
    _, [state] = train_batched(base, [(dict(max_epochs=2), rows)], X, y, keep_states=True)
    jobs = [(dict(max_epochs=4), rows), (dict(max_epochs=5), rows)]
    first, second = train_batched(base, jobs, X, y, starts=[state, state])
    assert first is state.estimator and second is not state.estimator
    for (params, train), batched in zip(jobs, (first, second), strict=True):
        alone = sequential(base, params, train, X, y)
        np.testing.assert_allclose(batched.predict_proba(X), alone.predict_proba(X), rtol=0, atol=1e-9)
