"""The generic batched model (vmap and autograd): each model trains as its own loop would."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from test_engine import CLF, REG, assert_matches_sequential, two_folds
from torch import nn

from sknet import _options
from sknet.engine import _functional, _optim, predict_batched, train_batched
from sknet.engine._functional import BatchedModule, vmap_refusal
from sknet.engine._group import GroupTrainer


@pytest.fixture
def through_vmap(monkeypatch):
    """sknet's MLPs trained (and predicted) by BatchedModule instead of BatchedMLP; records the
    models the trainer built."""
    built = []
    batched_model = GroupTrainer._batched_model
    monkeypatch.setattr(_functional, "has_hand_written_backward", lambda module: False)
    monkeypatch.setattr(GroupTrainer, "_batched_model",
                        lambda self: built.append(batched_model(self)) or built[-1])
    return built


# -- sknet's MLPs through the generic path equal their sequential fits ------------------------
@pytest.mark.parametrize("options", [
    {"optimizer": "adam"}, {"optimizer": "sgd", "momentum": 0.9}, {"optimizer": "rmsprop"},
    {"optimizer": "adamw", "weight_decay": 1e-2}, {"optimizer": "sgd", "weight_decay": 1e-2, "l1": 1e-3},
    {"optimizer": "adam", "class_weight": "balanced"}, {"lr_schedule": "cosine"},
    {"early_stopping": True, "patience": 2, "max_epochs": 10}], ids=str)
def test_mlps_through_vmap_match_their_sequential_fits(clf_data, through_vmap, options):
    X, y = clf_data
    jobs = [(dict(lr=lr, **options), rows) for lr in (3e-3, 3e-2) for rows in two_folds(len(X))]
    assert_matches_sequential(CLF, jobs, X, y)
    assert through_vmap and all(isinstance(model, BatchedModule) for model in through_vmap)


def test_regressor_through_vmap_matches_its_sequential_fits(reg_data, through_vmap):
    X, y = reg_data
    jobs = [(dict(lr=lr, hidden_layer_sizes=(8, 8)), rows)
            for lr in (1e-3, 1e-2) for rows in two_folds(len(X))]
    assert_matches_sequential(REG, jobs, X, y, output="predict")
    assert through_vmap


def test_weight_decay_spares_biases_as_the_estimators_param_groups_do():
    model = BatchedModule([nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))])
    names_decays = dict(zip(model.names, model.parameters()[1], strict=True))
    assert names_decays == {"0.weight": True, "0.bias": False, "1.weight": True, "1.bias": False,
                            "2.weight": True, "2.bias": False}
    assert not _options.takes_weight_decay("hidden.norm0.weight")


def test_predictions_through_vmap_equal_each_nets_own(clf_data, monkeypatch):
    X, y = clf_data
    nets = [clone(CLF).set_params(dtype="float64", n_units=8, max_epochs=2).fit(X, y) for _ in range(3)]
    monkeypatch.setattr(_functional, "has_hand_written_backward", lambda module: False)
    outputs = predict_batched(nets, nets[0]._validate_input(X))
    for net, out in zip(nets, outputs, strict=True):
        with torch.no_grad():
            expected = net.net_.module_(torch.as_tensor(X))
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=0, atol=1e-12)


# -- any module: stacked training equals K separate torch loops --------------------------------
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, dtype=torch.float64)
        self.head = nn.Linear(4 * 4 * 4, 3, dtype=torch.float64)

    def forward(self, x):
        return self.head(torch.flatten(nn.functional.max_pool2d(torch.relu(self.conv(x)), 2), 1))


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 6, dtype=torch.float64)
        self.head = nn.Linear(6, 2, dtype=torch.float64)

    def forward(self, ids):
        return self.head(torch.tanh(self.embed(ids).mean(dim=1)))


def data_for(module_class, n=40, seed=0):
    rng = np.random.RandomState(seed)
    if module_class is SmallCNN:
        return torch.as_tensor(rng.standard_normal((n, 1, 8, 8))), torch.as_tensor(rng.randint(3, size=n))
    return torch.as_tensor(rng.randint(20, size=(n, 5))), torch.as_tensor(rng.randint(2, size=n))


def loss_and_grad(out, y):
    """Mean cross-entropy of each model and its gradient with respect to the outputs."""
    out = out.detach().requires_grad_()
    loss = nn.functional.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)
    loss = loss.mean(dim=1)
    return loss.detach(), torch.autograd.grad(loss.sum(), out)[0]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("module_class", [SmallCNN, Bag])
def test_stacked_modules_train_as_their_own_torch_loops(module_class, optimizer):
    X, y = data_for(module_class)
    rows = [torch.arange(0, 40, 2), torch.arange(1, 40, 2), torch.arange(20)]  # each model its own rows
    lr = np.array([1e-2, 3e-2, 5e-2])
    modules = []
    for k in range(3):
        torch.manual_seed(k)
        modules.append(module_class())
    alone = [module_class() for _ in range(3)]
    for mine, theirs in zip(alone, modules, strict=True):
        mine.load_state_dict(theirs.state_dict())
    model = BatchedModule(modules)
    params, decays = model.parameters()
    opt = _optim.OPTIMIZERS[optimizer](params, decays, np.full(3, 1e-2), np.full(3, 0.9), model.spans())
    losses = []
    for step in range(5):
        batch = torch.stack([r[(step * 4 + torch.arange(8)) % len(r)] for r in rows])
        out = model.forward(X[batch], training=True)
        loss, grad = loss_and_grad(out, y[batch])
        opt.step(model.backward(grad), lr, np.ones(3, dtype=bool))
        losses.append(loss)
    for k, module in enumerate(alone):
        named = list(module.named_parameters())
        decayed = [_options.takes_weight_decay(name) for name, _ in named]
        groups = [{"params": [p for (_, p), d in zip(named, decayed, strict=True) if d],
                   "weight_decay": 1e-2},
                  {"params": [p for (_, p), d in zip(named, decayed, strict=True) if not d]}]
        torch_opt = (torch.optim.SGD(groups, lr=lr[k], momentum=0.9) if optimizer == "sgd"
                     else torch.optim.Adam(groups, lr=lr[k]))
        for step in range(5):
            batch = rows[k][(step * 4 + torch.arange(8)) % len(rows[k])]
            loss = nn.functional.cross_entropy(module(X[batch]), y[batch])
            torch_opt.zero_grad()
            loss.backward()
            torch_opt.step()
            assert loss.item() == pytest.approx(float(losses[step][k]), rel=1e-10, abs=1e-12)
        written = module_class()
        model.write_module(k, written)
        for name, value in module.state_dict().items():
            np.testing.assert_allclose(written.state_dict()[name].numpy(), value.detach().numpy(),
                                       rtol=0, atol=1e-10, err_msg=name)


def test_a_model_dropped_from_the_group_keeps_the_others_in_place():
    modules = [nn.Linear(3, 2, dtype=torch.float64) for _ in range(3)]
    model = BatchedModule(modules)
    model.keep_models(torch.tensor([0, 2]))
    written = nn.Linear(3, 2, dtype=torch.float64)
    model.write_module(1, written)
    torch.testing.assert_close(written.weight, modules[2].weight, rtol=0, atol=0)
    assert model.finite().tolist() == [True, True]


def test_dropout_masks_differ_between_models_and_are_reproducible():
    def outputs(seed):
        torch.manual_seed(0)  # the same weights every time: only the masks' seed differs
        modules = [nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5)) for _ in range(2)]
        modules[1].load_state_dict(modules[0].state_dict())
        state = torch.get_rng_state()
        out = BatchedModule(modules, seed=seed).forward(torch.ones(2, 3, 4), training=True)
        assert torch.equal(torch.get_rng_state(), state)  # torch's own generator is left as it was
        return out.detach()

    out = outputs(0)
    assert not torch.equal(out[0] == 0, out[1] == 0)
    assert torch.equal(out, outputs(0)) and not torch.equal(out, outputs(1))


# -- the probe ---------------------------------------------------------------------------------
class Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.linear(x)
        return -self.linear(x)


class CallsItem(nn.Linear):
    def __init__(self):
        super().__init__(3, 2)

    def forward(self, x):
        return super().forward(x) * x.abs().max().item()


@pytest.mark.parametrize("module, words", [
    (Branching(), "data-dependent control flow"), (CallsItem(), ".item()"),
    (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), "updates its buffers"),
    (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False)),
     "depends on the other rows")],
    ids=["control flow", "item", "running statistics", "batch statistics"])
def test_probe_refuses_modules_vmap_cannot_train_and_says_why(module, words):
    reason = vmap_refusal(module, torch.randn(4, 3))
    assert reason is not None and words in reason and type(module).__name__ in reason


@pytest.mark.parametrize("module, rows", [
    (nn.Linear(3, 2), torch.randn(4, 3)), (SmallCNN(), data_for(SmallCNN)[0]), (Bag(), data_for(Bag)[0]),
    (nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Dropout(0.2)), torch.randn(1, 3))],
    ids=["linear", "cnn", "embedding", "layernorm"])
def test_probe_accepts_modules_vmap_can_train(module, rows):
    state = {name: t.clone() for name, t in module.state_dict().items()}
    assert vmap_refusal(module, rows) is None
    for name, value in module.state_dict().items():  # the module itself is left as it was
        assert torch.equal(value, state[name])


# -- the MLP path is unchanged -----------------------------------------------------------------
def test_mlps_still_train_as_batched_mlps(clf_data, monkeypatch):
    from sknet.engine._model import BatchedMLP

    built = []
    batched_model = GroupTrainer._batched_model
    monkeypatch.setattr(GroupTrainer, "_batched_model",
                        lambda self: built.append(batched_model(self)) or built[-1])
    X, y = clf_data
    train_batched(CLF, [({}, np.arange(100))], X, y)
    assert len(built) == 1 and isinstance(built[0], BatchedMLP)
