"""Groups of convolutional modules on a CPU run by their traced graph (BatchedGraph): the same
outputs and gradients as the vmap path, the same searches as sequential fits."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from sknet import TorchClassifier
from sknet.engine import _conv, _optim, _predict
from sknet.engine._conv import BatchedGraph, stack_conv_modules, stack_modules
from sknet.engine._functional import BatchedModule
from sknet.engine._group import GroupTrainer
from sknet.model_selection import GridSearchCV


class DigitsCNN(nn.Module):
    """benchmarks/bench_cnn.py's: ``torch.relu`` and ``.flatten(1)`` in its forward."""

    def __init__(self, channels=4, n_outputs=10):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Linear(channels * 4 * 4, n_outputs)

    def forward(self, X):
        return self.out(self.pool(torch.relu(self.conv(X))).flatten(1))


class Functional(nn.Module):
    """Functional calls, ``x.view(x.size(0), -1)``, a residual sum and a ReLU used twice."""

    def __init__(self, n_outputs=3):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Linear(3 * 4 * 4, n_outputs)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.max_pool2d(h + torch.tanh(self.conv2(h)), 2)
        return self.head(h.view(h.size(0), -1))


class InPlace(nn.Module):
    """An in-place ReLU whose input is used again (its values are then the ReLU's)."""

    def __init__(self, n_outputs=3):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.relu, self.pool = nn.ReLU(inplace=True), nn.MaxPool2d(2)
        self.head = nn.Linear(3 * 4 * 4, n_outputs)

    def forward(self, x):
        h = self.conv(x)
        return self.head((self.pool(self.relu(h)) + self.pool(h)).flatten(1))


def two_convs():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def strided():
    return nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2, bias=False), nn.Tanh(),
                         nn.Conv2d(4, 4, (2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2),
                         nn.LeakyReLU(0.1), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 2, 3, bias=False))


def strided_im2col():
    """The first convolution as im2col, with stride, dilation, no bias, uneven padding and kernel."""
    conv = nn.Conv2d(1, 3, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), bias=False)
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2, stride=1, padding=1), nn.Flatten(),
                         nn.Linear(3 * 5 * 13, 2))


def wide_input():
    """A first convolution of 27 columns a pixel: the loop over the models."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(4, 5, 1),
                         nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))


CASES = {"digits cnn": (DigitsCNN, (1, 8, 8)), "functional": (Functional, (2, 8, 8)),
         "two convs": (two_convs, (1, 8, 8)),
         "stride, padding, dilation, groups, no bias": (strided, (2, 9, 9)),
         "im2col with stride, dilation, no bias": (strided_im2col, (1, 9, 9)),
         "wide input, ceil mode, 1x1": (wide_input, (3, 9, 9)), "in-place relu": (InPlace, (1, 8, 8))}


def make_modules(make, k=3):
    modules = []
    for seed in range(k):
        torch.manual_seed(seed)
        modules.append(make().double())
    return modules


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_and_gradients_equal_the_vmap_path(case):
    make, shape = CASES[case]
    modules = make_modules(make)
    graph, vmapped = stack_modules(modules, seed=0), BatchedModule(modules, seed=0)
    assert type(graph) is BatchedGraph
    X = torch.randn(3, 7, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(graph.forward(X), vmapped.forward(X), rtol=0, atol=1e-9)
    out = graph.forward(X, training=True)
    torch.testing.assert_close(out, vmapped.forward(X, training=True), rtol=0, atol=1e-9)
    grad_out = torch.randn_like(out)
    for mine, theirs in zip(graph.backward(grad_out), vmapped.backward(grad_out), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-9)


def test_each_convolution_runs_as_its_place_calls_for(monkeypatch):
    ran = []
    for name in ("_im2col_conv", "_looped_conv", "_grouped_conv"):
        real = getattr(_conv, name)
        monkeypatch.setattr(_conv, name, lambda *args, name=name, real=real: ran.append(name) or real(*args))
    for make, shape in (CASES["two convs"], CASES["wide input, ceil mode, 1x1"]):
        stack_modules(make_modules(make, 2)).forward(torch.zeros(2, 3, *shape, dtype=torch.float64))
    # The module's input, one channel: im2col; three channels: a loop; deeper: a grouped convolution.
    assert ran == ["_im2col_conv", "_grouped_conv", "_looped_conv", "_grouped_conv"]


def test_a_max_pool_of_a_relu_runs_as_a_relu_of_the_max_pool():
    # Ties in a window (zeros of the ReLU, equal pixels) take the gradient where max_pool2d gives it.
    modules = make_modules(DigitsCNN, 2)
    X = torch.zeros(2, 4, 1, 8, 8, dtype=torch.float64)
    X[:, :, :, 2:5, 2:5] = 1.0
    graph, vmapped = stack_modules(modules), BatchedModule(modules)
    steps = {node.name: step for node, step in graph.plans[True][1]}
    assert steps["relu"] is _conv._same and steps["pool"].__name__ == "swapped"
    out = graph.forward(X, training=True)
    torch.testing.assert_close(out, vmapped.forward(X, training=True), rtol=0, atol=0)
    for mine, theirs in zip(graph.backward(torch.ones_like(out)), vmapped.backward(torch.ones_like(out)),
                            strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-12)


class BatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.norm = nn.BatchNorm2d(2, track_running_stats=False)

    def forward(self, x):
        return self.norm(self.conv(x)).flatten(1)


class MeanOverRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        h = self.conv(x).flatten(1)
        return h - h.mean(0)


class Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.conv(x).flatten(1) if x.sum() > 0 else -self.conv(x).flatten(1)


class OwnParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.conv(x).flatten(1) * self.scale


class FixedRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.conv(x).view(4, -1)


class FunctionalDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):  # the tracer would freeze self.training
        return F.dropout(self.conv(x).flatten(1), 0.5, self.training)


@pytest.mark.parametrize("make", [BatchNorm, MeanOverRows, Branching, OwnParameter, FixedRows,
                                  FunctionalDropout, lambda: nn.Sequential(nn.Embedding(5, 2), nn.Flatten())],
                         ids=["batch norm", "mean over rows", "control flow", "own parameter", "fixed rows",
                              "functional dropout", "embedding"])
def test_modules_it_does_not_batch_fall_back_to_vmap(make):
    modules = make_modules(make, 2)
    model = stack_modules(modules)
    assert type(model) is BatchedModule
    if not isinstance(modules[0], Branching | FixedRows):  # vmap refuses those (and FixedRows needs 4 rows)
        X = torch.zeros(2, 4, 3, dtype=torch.int64) if isinstance(modules[0], nn.Sequential) else \
            torch.randn(2, 4, 1, 5, 5, dtype=torch.float64)
        assert model.forward(X).shape[:2] == (2, 4)


def test_modules_off_the_cpu_keep_the_vmap_path():
    assert stack_conv_modules([DigitsCNN().to("meta"), DigitsCNN().to("meta")]) is None


def test_dropout_masks_differ_between_models_and_follow_the_seed():
    def make():
        torch.manual_seed(0)  # the same weights in every model: only the masks differ
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(36, 2))

    modules = [make().double() for _ in range(2)]
    X = torch.ones(2, 3, 1, 5, 5, dtype=torch.float64)

    def outputs(seed):
        state = torch.get_rng_state()
        model = stack_modules(modules, seed=seed)
        assert type(model) is BatchedGraph
        out = model.forward(X, training=True)
        assert torch.equal(torch.get_rng_state(), state)  # torch's own generator is left as it was
        return out, model.forward(X)

    (out, evaluated), (again, _), (other, _) = outputs(0), outputs(0), outputs(1)
    assert not torch.equal(out[0], out[1]) and torch.equal(out, again) and not torch.equal(out, other)
    torch.testing.assert_close(evaluated, BatchedModule(modules).forward(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stacked_training_equals_each_modules_own_torch_loop(optimizer):
    modules, alone = make_modules(two_convs), make_modules(two_convs)
    model = stack_modules(modules)
    assert type(model) is BatchedGraph
    rng = np.random.RandomState(0)
    X = torch.as_tensor(rng.standard_normal((3, 6, 8, 1, 8, 8)))  # model, step, row, image
    y = torch.as_tensor(rng.randint(3, size=(3, 6, 8)))
    lr = np.array([1e-2, 3e-2, 5e-2])
    params, decays = model.parameters()
    opt = _optim.OPTIMIZERS[optimizer](params, decays, np.zeros(3), np.full(3, 0.9), model.spans())
    for step in range(6):
        out = model.forward(X[:, step], training=True).detach().requires_grad_()
        loss = F.cross_entropy(out.flatten(0, 1), y[:, step].flatten(), reduction="none").view(3, 8).mean(1)
        opt.step(model.backward(torch.autograd.grad(loss.sum(), out)[0]), lr, np.ones(3, dtype=bool))
    for k, module in enumerate(alone):
        torch_opt = (torch.optim.SGD(module.parameters(), lr=lr[k], momentum=0.9) if optimizer == "sgd"
                     else torch.optim.Adam(module.parameters(), lr=lr[k]))
        for step in range(6):
            torch_opt.zero_grad()
            F.cross_entropy(module(X[k, step]), y[k, step]).backward()
            torch_opt.step()
        written = two_convs().double()
        model.write_module(k, written)
        for name, value in module.state_dict().items():
            torch.testing.assert_close(written.state_dict()[name], value, rtol=0, atol=1e-10, msg=name)


# -- in a search -------------------------------------------------------------------------------
class SearchCNN(nn.Module):
    def __init__(self, n_outputs, channels=2):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 4, 3, padding=1)
        self.head = nn.Linear(4 * 4 * 4, n_outputs)

    def forward(self, X):
        h = F.max_pool2d(torch.relu(self.conv2(torch.relu(self.conv1(X)))), 2)
        return self.head(F.avg_pool2d(h, 1).flatten(1))


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    return (X[:240] / 16).reshape(-1, 1, 8, 8), y[:240]


@pytest.fixture
def built(monkeypatch):
    """The batched models that the engine trained and predicted with."""
    models = []
    trainer_model, predict_stack = GroupTrainer._batched_model, _predict.stack_modules
    monkeypatch.setattr(GroupTrainer, "_batched_model",
                        lambda self: models.append(trainer_model(self)) or models[-1])
    monkeypatch.setattr(_predict, "stack_modules",
                        lambda modules: models.append(predict_stack(modules)) or models[-1])
    return models


def test_a_cnn_search_takes_the_graph_path_and_equals_sequential_fits(images, built):
    X, y = images
    net = TorchClassifier(SearchCNN, max_epochs=3, batch_size=32, random_state=0, device="cpu",
                          dtype="float64")
    grid = {"lr": [1e-2, 3e-2], "module__channels": [2, 3]}
    runs = {engine: GridSearchCV(net, grid, cv=3, engine=engine).fit(X, y)
            for engine in ("sequential", "batched")}
    seq, bat = runs["sequential"], runs["batched"]
    assert bat.n_batched_fits_ == 4 * 3
    # the two channel counts train as two groups and predict each fold's rows: all through the graph
    assert len(built) >= 2 + 2 * 3 and all(type(model) is BatchedGraph for model in built)
    assert seq.cv_results_["params"] == bat.cv_results_["params"]
    for split in range(3):
        np.testing.assert_array_equal(bat.cv_results_[f"split{split}_test_score"],
                                      seq.cv_results_[f"split{split}_test_score"])
    assert bat.best_params_ == seq.best_params_
    np.testing.assert_allclose(bat.predict_proba(X), seq.predict_proba(X), rtol=0, atol=1e-12)


def test_stack_modules_is_where_the_path_is_chosen(monkeypatch):
    monkeypatch.setattr(_conv, "graph_plans", lambda template: None)
    assert type(_conv.stack_modules(make_modules(DigitsCNN, 2))) is BatchedModule


def test_a_modules_step_work_counts_the_elements_its_operations_write():
    # A ReLU writes its 10 values and multiplies nothing; a flatten is a view (writes nothing);
    # a Linear(10, 3) multiplies 30 and writes 3 (its bias added in the same product).
    from sknet.engine._costs import ELEMENT_WORK, module_work

    rows = torch.randn(4, 10)
    assert module_work(nn.ReLU(), rows) == ELEMENT_WORK * 10
    assert module_work(nn.Flatten(), rows) == 0
    assert module_work(nn.Linear(10, 3), rows) == 30 + ELEMENT_WORK * 3
    assert module_work(nn.Sequential(nn.Linear(10, 3), nn.ReLU()), rows) == 30 + ELEMENT_WORK * 6
