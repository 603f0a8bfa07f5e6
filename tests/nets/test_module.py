import math

import pytest
import torch

from sknet._options import WEIGHT_INITS
from sknet.nets._module import MLPModule


def _module(**kwargs):
    torch.manual_seed(0)
    return MLPModule(n_features=400, hidden_sizes=(300, 200), n_outputs=3, **kwargs)


@pytest.mark.parametrize("weight_init, activation, expected_std", [
    ("xavier_uniform", "tanh", 5 / 3 * math.sqrt(2 / 700)),
    ("xavier_normal", "identity", math.sqrt(2 / 700)),
    ("he_uniform", "relu", math.sqrt(2 / 400)),
    ("he_normal", "relu", math.sqrt(2 / 400)),
    ("normal", "relu", 0.01),
    ("orthogonal", "identity", 1 / math.sqrt(400)),  # rows of a 300x400 orthonormal frame
    ("default", "relu", 1 / math.sqrt(3 * 400)),  # torch: kaiming_uniform(a=sqrt(5))
])
def test_first_layer_weight_scale(weight_init, activation, expected_std):
    first = _module(weight_init=weight_init, activation=activation).hidden.linear0
    assert float(first.weight.detach().std()) == pytest.approx(expected_std, rel=0.05)


@pytest.mark.parametrize("weight_init", [w for w in WEIGHT_INITS if w != "default"])
def test_biases_start_at_zero(weight_init):
    module = _module(weight_init=weight_init)
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert all(float(m.bias.detach().abs().max()) == 0 for m in linears)


def test_layer_order_and_penalized_weights():
    module = _module(batch_norm=True, dropout=0.2)
    assert list(module.hidden._modules) == ["linear0", "norm0", "act0", "drop0",
                                            "linear1", "norm1", "act1", "drop1"]
    assert [tuple(w.shape) for w in module.penalized_weights()] == [(300, 400), (200, 300), (3, 200)]
    assert module(torch.zeros(5, 400)).shape == (5, 3)


def test_no_hidden_layer_is_a_linear_model():
    module = MLPModule(n_features=4, hidden_sizes=(), n_outputs=2)
    assert len(module.hidden) == 0 and module.output.in_features == 4
