"""Mixed groups: models of different depths, widths, activations and batch sizes train as one
batched model, and each equals its own sequential fit."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.base import clone
from test_engine import assert_matches_sequential, assert_same_optimizer_state, two_folds

from sknet import MLPClassifier, MLPRegressor
from sknet.engine import _costs, group_jobs, train_batched
from sknet.engine._costs import padded_widths
from sknet.engine._group import GroupTrainer

CLF = MLPClassifier(hidden_layer_sizes=(16, 8), batch_size=32, max_epochs=3, random_state=0, device="cpu")

# Each difference a search space can draw, as the values two or more candidates take.
DIFFERENCES = {
    "depth": [dict(hidden_layer_sizes=(16, 8)), dict(hidden_layer_sizes=(12,)), dict(hidden_layer_sizes=()),
              dict(hidden_layer_sizes=(6, 9, 7))],
    "width": [dict(n_units=16), dict(n_units=5), dict(n_units=11)],
    "activation": [dict(activation="relu"), dict(activation="tanh"), dict(activation="sigmoid")],
    "batch_size": [dict(batch_size=32), dict(batch_size=64), dict(batch_size=50)],
    "l1": [dict(l1=0.0), dict(l1=1e-3)],
    "dropout": [dict(dropout=0.0), dict(dropout=0.3)],
    "schedule": [dict(lr_schedule=None), dict(lr_schedule="cosine"), dict(lr_schedule="onecycle")],
    # SGD: with an adaptive optimizer a bias before batch norm drifts on float noise (docs/engine.rst).
    "batch_norm": [dict(batch_norm=False, optimizer="sgd"), dict(batch_norm=True, optimizer="sgd")],
    "early_stopping": [dict(early_stopping=False), dict(early_stopping=True, patience=1, max_epochs=6)],
    # (RMSprop at these rates magnifies rounding past 1e-9 alone already: it is mixed in the test below.)
    "optimizer": [dict(optimizer="adam"), dict(optimizer="sgd", momentum=0.9), dict(optimizer="adagrad"),
                  dict(optimizer="adamw")],
}
# Batch norm with an adaptive optimizer is as close as rounding allows, not 1e-9 (test_engine.py
# checks that): its pair with the optimizers is left out.
PAIRS = [pair for pair in itertools.combinations(DIFFERENCES, 2) if set(pair) != {"batch_norm", "optimizer"}]


@pytest.fixture(autouse=True)
def ticks_across_batch_sizes(monkeypatch):
    """Batch sizes share a group on the CPU too (as on a GPU): the arithmetic under test."""
    monkeypatch.setattr(_costs, "TICKS_ACROSS_BATCH_SIZES", {"cpu": True, "cuda": True})


@pytest.fixture(params=["own widths", "padded to the widest"])
def padding(request, monkeypatch):
    """Blocks as the models' own widths make them (no fixed cost: nothing merges), or all models of
    a depth in one block padded to its widest (a huge fixed cost: everything merges)."""
    fixed = 0.0 if request.param == "own widths" else 1e18
    monkeypatch.setattr(_costs, "FIXED_FLOPS", {"cpu": fixed, "cuda": fixed})
    return request.param


def blocks_built(monkeypatch):
    """The number of blocks of each GroupTrainer's model, as they are built."""
    built = []
    init = GroupTrainer.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(len(self.model.blocks))

    monkeypatch.setattr(GroupTrainer, "__init__", spy)
    return built


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_every_pair_of_differences_trains_in_one_group_as_the_sequential_fits(clf_data, pair, padding,
                                                                              monkeypatch):
    X, y = clf_data
    built = blocks_built(monkeypatch)
    options = [{**a, **b} for a, b in itertools.product(*(DIFFERENCES[name] for name in pair))]
    jobs = [({**option, "lr": 10 ** -(1 + k % 3), "weight_decay": 1e-3 * (k % 2)}, rows)
            for k, option in enumerate(options) for rows in two_folds(len(X))]
    whole_batches = {"batch_norm", "early_stopping"} & set(pair)  # these share their batch size:
    if whole_batches:  # so do the others then (as on a CPU)
        monkeypatch.setattr(_costs, "TICKS_ACROSS_BATCH_SIZES", {"cpu": False, "cuda": False})
    assert len(group_jobs(CLF, jobs)) == (3 if whole_batches and "batch_size" in pair else 1)
    assert_matches_sequential(CLF, jobs, X, y)
    kinds = {(len(clone(CLF).set_params(**params)._hidden_sizes()), params.get("batch_norm", False),
              params.get("optimizer")) for params, _ in jobs}  # a block each, when all are padded alike
    if whole_batches:  # several groups, or models leaving the group at different epochs
        return
    if padding == "padded to the widest":
        assert set(built) == {len(kinds)}  # one block per depth
    else:
        assert max(built) >= len(kinds)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop", "adagrad"])
@pytest.mark.parametrize("many_rates", [False, True], ids=["fused", "scaled"])
def test_batches_of_several_steps_add_their_gradients_as_one_batch(clf_data, optimizer, many_rates,
                                                                   monkeypatch):
    # Batch sizes 16, 40 and 64 step in ticks of 16 (40 as 16 + 16 + 8), with sample weights, weight
    # decay, l1 and momentum per model, and the optimizer state each leaves.
    from sknet.engine import _optim

    if many_rates:  # the fused optimizers' step for models in many groups
        monkeypatch.setattr(_optim._GroupKernel, "max_calls", 0)
    X, y = clf_data
    weight = np.random.RandomState(0).uniform(0.5, 2.0, len(X))
    hyper = [dict(batch_size=16, lr=1e-2, weight_decay=1e-3, momentum=0.9),
             dict(batch_size=40, lr=3e-3, weight_decay=0.0, l1=1e-3, momentum=0.5),
             dict(batch_size=64, lr=3e-2, weight_decay=1e-2, momentum=0.0, n_units=9, n_layers=1)]
    jobs = [({"optimizer": optimizer, **h}, rows) for h in hyper for rows in two_folds(len(X))]
    # Another optimizer beside it, in the same group: each steps its own tensors.
    other = "sgd" if optimizer != "sgd" else "rmsprop"
    jobs += [({"optimizer": other, "lr": 1e-2, "batch_size": 40}, rows) for rows in two_folds(len(X))]
    assert len(group_jobs(CLF, jobs)) == 1
    pairs = assert_matches_sequential(CLF, jobs, X, y, sample_weight=weight)
    for batched, alone in pairs:
        assert_same_optimizer_state(batched, alone)


def test_a_mixed_regressor_group_matches_its_sequential_fits(reg_data):
    X, y = reg_data
    base = MLPRegressor(batch_size=32, max_epochs=3, random_state=0, device="cpu")
    jobs = [(dict(hidden_layer_sizes=h, activation=a, batch_size=b, loss=loss), rows)
            for h, a, b in [((16, 8), "elu", 32), ((7,), "gelu", 64), ((), "relu", 48)]
            for loss in ("mse", "huber") for rows in two_folds(len(X))]
    assert len(group_jobs(base, jobs)) == 2  # one per loss
    assert_matches_sequential(base, jobs, X, y, output="predict")


def test_a_mixed_group_continues_from_its_states_as_a_longer_fit(clf_data):
    X, y = clf_data
    jobs = [(dict(hidden_layer_sizes=h, batch_size=b, max_epochs=2), rows)
            for h, b in [((16, 8), 32), ((5,), 64)] for rows in two_folds(len(X))]
    base = clone(CLF).set_params(dtype="float64")
    _, states = train_batched(base, jobs, X, y, keep_states=True)
    longer = [({**params, "max_epochs": 4}, rows) for params, rows in jobs]
    continued = train_batched(base, longer, X, y, starts=states)
    fresh = train_batched(base, longer, X, y)
    for a, b in zip(continued, fresh, strict=True):
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=0, atol=1e-12)


def test_padded_units_stay_zero_and_models_keep_their_own_shapes(clf_data, monkeypatch):
    X, y = clf_data
    monkeypatch.setattr(_costs, "FIXED_FLOPS", {"cpu": 1e18, "cuda": 1e18})
    models = []
    init = GroupTrainer.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        models.append(self.model)

    monkeypatch.setattr(GroupTrainer, "__init__", spy)
    jobs = [(dict(hidden_layer_sizes=h, activation="sigmoid", lr=0.1), np.arange(150))
            for h in [(16, 8), (4, 12), (9, 3)]]
    fitted = train_batched(CLF, jobs, X, y)
    [model] = models
    [block] = model.blocks
    assert block.padded == [X.shape[1], 16, 12, 3]
    for j, (params, _) in enumerate(jobs):
        a, b = params["hidden_layer_sizes"]
        assert torch.count_nonzero(block.weights[0][j, :, a:]) == 0
        assert torch.count_nonzero(block.weights[1][j, a:, :]) == 0
        assert torch.count_nonzero(block.weights[1][j, :, b:]) == 0
        assert torch.count_nonzero(block.weights[2][j, b:, :]) == 0
        assert fitted[j].net_.module_.hidden.linear1.weight.shape == (b, a)


def test_widths_cost_model_merges_blocks_only_where_the_padding_costs_less():
    hidden = [(16,)] * 30 + [(17,)] * 30 + [(256,)] * 30 + [(250,)] * 30 + [(64, 64)] * 3
    padded = padded_widths(hidden, 64, 10, 32)
    assert sorted(set(padded)) == [(17,), (64, 64), (256,)]
    assert all(p >= h for p, h in zip(padded, hidden, strict=True))  # never narrower
    # Without fixed costs nothing merges; on a GPU (a launch worth many products) all of a depth merge.
    assert padded_widths(hidden, 64, 10, 32, device="cuda") == [(256,)] * 120 + [(64, 64)] * 3


def test_on_a_cpu_batch_sizes_train_in_groups_of_their_own_by_default(clf_data, monkeypatch):
    monkeypatch.undo()  # the library's own policy
    X, y = clf_data
    jobs = [(dict(hidden_layer_sizes=h, batch_size=b), rows)
            for h, b in [((16, 8), 32), ((5,), 64), ((7,), 32)] for rows in two_folds(len(X))]
    assert group_jobs(CLF, jobs) == [[0, 1, 4, 5], [2, 3]]
    monkeypatch.setattr(_costs, "TICKS_ACROSS_BATCH_SIZES", {"cpu": True, "cuda": True})
    assert group_jobs(CLF, jobs) == [[0, 1, 2, 3, 4, 5]]


def test_verbose_prints_one_line_per_group_with_what_it_shares(clf_data, capsys):
    X, y = clf_data
    jobs = [(dict(hidden_layer_sizes=h, batch_size=b, optimizer=o, dtype=d), np.arange(100))
            for h, b, o, d in [((16, 8), 32, "adam", "float32"), ((5,), 64, "sgd", "float32"),
                               ((5,), 64, "sgd", "float64")]]
    train_batched(CLF, jobs, X, y, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "group of 2 models" in lines[0] and "[32, 64]" in lines[0]
    assert "optimizers ['adam', 'sgd']" in lines[0]
    assert "group of 1 models" in lines[1] and "dtype='float64'" in lines[1]
    train_batched(CLF, jobs, X, y, verbose=1)
    assert capsys.readouterr().out == ""


def test_a_search_with_verbose_2_prints_its_groups(clf_data, capsys):
    from sknet.model_selection import GridSearchCV

    X, y = clf_data
    grid = {"hidden_layer_sizes": [(16,), (16, 8)], "activation": ["relu", "tanh"]}
    GridSearchCV(clone(CLF).set_params(max_epochs=1), grid, cv=2, verbose=2).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[sknet.engine]")]
    assert lines[0].startswith("[sknet.engine] group of 8 models") and "depths [1, 2]" in lines[0]


def test_nets_of_different_depths_and_activations_predict_in_one_pass(clf_data, monkeypatch):
    from sknet.engine import _predict, predict_batched
    from sknet.nets import validate_input

    X, y = clf_data
    nets = [clone(CLF).set_params(hidden_layer_sizes=h, activation=a, dtype="float64").fit(X, y)
            for h, a in [((16, 8), "relu"), ((5,), "sigmoid"), ((), "relu"), ((9, 9, 4), "tanh"),
                         ((5,), "relu")]]
    passes = []
    forward = _predict._forward
    monkeypatch.setattr(_predict, "_forward", lambda estimators, specs, X: passes.append(len(estimators))
                        or forward(estimators, specs, X))
    outputs = predict_batched(nets, validate_input(nets[0], X))
    assert passes == [5]
    for net, out in zip(nets, outputs, strict=True):
        np.testing.assert_allclose(out.numpy(), net.net_.forward(X).numpy(), rtol=0, atol=1e-12)


def test_the_memory_estimate_counts_each_model_at_its_padded_widths(monkeypatch):
    from sklearn.datasets import load_iris

    from sknet.engine import _train

    X, y = load_iris(return_X_y=True)
    jobs = [({"n_units": units, "lr": 1e-3 * (1 + i)}, np.arange(150)) for i, units in enumerate((4, 512, 4))]
    base = MLPClassifier(max_epochs=1, random_state=0, device="cpu")
    small, large = (_train._estimated_bytes(_train.prepare(base, *jobs[i], X, y), X.shape[1]) for i in (0, 1))
    room = (2 * small + 1.5 * large) / _train.MEMORY_SHARE  # the two small models and one large one
    monkeypatch.setattr(_train, "_free_memory", lambda device: room)
    sizes = []
    init = GroupTrainer.__init__
    monkeypatch.setattr(GroupTrainer, "__init__", lambda self, jobs, *rest: sizes.append(len(jobs))
                        or init(self, jobs, *rest))
    # Own widths: the small ones fit beside the large one.
    monkeypatch.setattr(_costs, "FIXED_FLOPS", {"cpu": 0.0, "cuda": 0.0})
    train_batched(base, jobs, X, y)
    monkeypatch.setattr(_costs, "FIXED_FLOPS", {"cpu": 1e18, "cuda": 1e18})  # all padded to 512: one each
    train_batched(base, jobs, X, y)
    assert sizes == [3, 1, 1, 1]
