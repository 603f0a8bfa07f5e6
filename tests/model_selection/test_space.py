import numpy as np
import pytest
from scipy.stats import uniform
from skopt.space import Categorical, Integer, Real

from sknet.model_selection._space import DimensionDistribution, check_space, to_dimension, to_distributions


@pytest.mark.parametrize("spec, cls, bounds, prior", [
    ((1, 5), Integer, (1, 5), "uniform"),
    ((0.1, 2), Real, (0.1, 2.0), "uniform"),
    ((1e-4, 1e-1, "log-uniform"), Real, (1e-4, 1e-1), "log-uniform"),
    (Real(0, 1), Real, (0, 1), "uniform"),
])
def test_ranges(spec, cls, bounds, prior):
    dim = to_dimension("p", spec)
    assert isinstance(dim, cls) and dim.bounds == bounds and dim.prior == prior and dim.name == "p"


def test_lists_are_categorical():
    dim = to_dimension("act", ["relu", "tanh"])
    assert isinstance(dim, Categorical) and list(dim.categories) == ["relu", "tanh"]


@pytest.mark.parametrize("spec, error, match", [
    ([], ValueError, "'p' is an empty list"),
    ((5, 1), ValueError, "empty or inverted: low=5 must be below high=1"),
    ((1, 1), ValueError, "empty or inverted"),
    ((0, 1, "log-uniform"), ValueError, "needs low > 0"),
    ((1, 2, "normal"), ValueError, "prior of 'p' must be one of"),
    (("a", "b"), TypeError, "bounds of 'p' must be numbers"),
    ((1, 2, 3, 4), ValueError, r"\(low, high\) or \(low, high, prior\)"),
    ({"x": 1}, ValueError, "skopt dimension"),
    ("1 ... 100.0", ValueError, "skopt dimension"),
])
def test_bad_spaces_are_named(spec, error, match):
    with pytest.raises(error, match=match):
        to_dimension("p", spec)


def test_check_space_orders_by_name_and_refuses_empty():
    assert list(check_space({"b": [1], "a": (0.0, 1.0)})) == ["a", "b"]
    with pytest.raises(ValueError, match="non-empty dict"):
        check_space({})


def test_random_search_distributions():
    dist = uniform(0, 1)
    with pytest.warns(UserWarning, match="two choices, as scikit-learn does"):
        out = to_distributions({"ranged": (1e-3, 1.0, "log-uniform"), "choices": (1, 2), "scipy": dist,
                                "dim": Integer(3, 9), "listed": [1, 2, 3]})
    assert isinstance(out["ranged"], DimensionDistribution) and isinstance(out["dim"], DimensionDistribution)
    assert out["choices"] == (1, 2) and out["scipy"] is dist and out["listed"] == [1, 2, 3]
    rng = np.random.RandomState(0)
    draws = [out["ranged"].rvs(random_state=rng) for _ in range(200)]
    assert all(1e-3 <= d <= 1.0 and isinstance(d, float) for d in draws)
    assert np.mean(np.array(draws) < 0.03) > 0.35  # log-uniform: half the mass below sqrt(1e-3)
    assert all(isinstance(out["dim"].rvs(random_state=rng), int) for _ in range(5))
