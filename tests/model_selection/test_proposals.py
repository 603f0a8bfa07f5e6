"""Batched Bayesian proposals: one surrogate fit a round, the kriging believer's variance exact."""

import copy

import numpy as np
import pytest
from skopt import Optimizer
from skopt.learning import GaussianProcessRegressor

from sknet.model_selection._proposals import _Believer, propose, round_kwargs, warm_start


def _optimizer(base_estimator="GP", n_told=12, seed=0, **kwargs):
    optimizer = Optimizer([(-2.0, 2.0), (0.0, 1.0), ["a", "b", "c"]], base_estimator=base_estimator,
                          n_initial_points=8, random_state=seed, acq_optimizer_kwargs={"n_points": 500},
                          **kwargs)
    rng = np.random.RandomState(seed)
    points = optimizer.space.rvs(n_samples=n_told, random_state=rng)
    values = [x ** 2 + (y - 0.5) ** 2 + {"a": 0, "b": 0.3, "c": 0.6}[c] + 0.01 * rng.randn()
              for x, y, c in points]
    optimizer.tell(points, values)
    return optimizer


def _count_fits(monkeypatch):
    fits = []
    real = GaussianProcessRegressor.fit

    def counted(self, X, y):
        fits.append(len(X))
        return real(self, X, y)

    monkeypatch.setattr(GaussianProcessRegressor, "fit", counted)
    return fits


def test_a_round_fits_the_surrogate_no_more_where_skopt_fits_it_once_per_point(monkeypatch):
    optimizer = _optimizer()
    twin = copy.deepcopy(optimizer)
    fits = _count_fits(monkeypatch)
    points = propose(optimizer, 6)
    assert fits == []
    twin.ask(n_points=6)
    assert len(fits) >= 6  # the constant liar: a fit for the copy and one per lie
    assert len(points) == 6 and len({tuple(point) for point in points}) == 6
    assert all(point in optimizer.space for point in points)


def test_the_first_point_is_the_optimizers_own_and_one_point_is_ask():
    optimizer = _optimizer()
    first = optimizer.ask()
    assert propose(optimizer, 5)[0] == first
    assert propose(optimizer, 1) == [first]


@pytest.mark.parametrize("acq_func", ["EI", "LCB", "PI", "gp_hedge"])
def test_further_points_leave_the_believed_ones_and_the_told_ones(acq_func):
    optimizer = _optimizer(acq_func=acq_func)
    points = propose(optimizer, 8)
    told = {tuple(point) for point in optimizer.Xi}
    assert not told & {tuple(point) for point in points}


def test_the_believers_variance_is_the_gps_posterior_given_the_believed_points():
    optimizer = _optimizer(n_told=15)
    gp = optimizer.models[-1]
    space = optimizer.space
    candidates = space.transform(space.rvs(n_samples=60, random_state=1))
    first = space.transform([optimizer.ask()])[0]
    believer = _Believer(gp, candidates, first)
    for i in (3, 17, 40):
        believer.believe(i)
    # The posterior of the GP given the told points and the believed ones (each with the
    # GP's noise), in its normalised units: solved directly.
    believed = np.vstack([first, candidates[[3, 17, 40]]])
    Z = np.vstack([gp.X_train_, believed])
    K = gp.kernel_(Z) + np.eye(len(Z)) * (gp.noise_ or 0.0)
    K_cZ = gp.kernel_(candidates, Z)
    expected = gp.kernel_.diag(candidates) - np.einsum("ij,ji->i", K_cZ, np.linalg.solve(K, K_cZ.T))
    np.testing.assert_allclose(believer.var, expected, rtol=1e-6, atol=1e-9)
    mean, std = believer.predict(candidates, return_std=True)
    np.testing.assert_array_equal(mean, gp.predict(candidates))  # told its own mean, it keeps it
    assert std[3] < gp.predict(candidates[3:4], return_std=True)[1][0]


def test_other_surrogates_and_the_initial_points_go_through_skopts_ask():
    forest = _optimizer(base_estimator="RF")
    twin = copy.deepcopy(forest)
    assert propose(forest, 4) == twin.ask(n_points=4)
    fresh = Optimizer([(0.0, 1.0)], n_initial_points=10, random_state=0)
    twin = copy.deepcopy(fresh)
    assert propose(fresh, 4) == twin.ask(n_points=4)


def test_a_round_that_ends_the_initial_points_fills_up_with_random_ones_without_a_fit(monkeypatch):
    optimizer = _optimizer(n_told=6)  # 2 initial points left
    fits = _count_fits(monkeypatch)
    points = propose(optimizer, 5)
    assert fits == [] and len(points) == 5 and all(point in optimizer.space for point in points)


@pytest.mark.parametrize("estimator, expected", [("net", 11), ("ridge", 1)])
def test_auto_rounds_fill_the_engine_or_the_workers(estimator, expected):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import RidgeClassifier

    from sknet import MLPClassifier
    from sknet.model_selection import BayesSearchCV

    X, y = make_classification(n_samples=90, n_features=6, random_state=0)
    if estimator == "net":
        model, space = MLPClassifier(max_epochs=2, random_state=0), {"lr": (1e-3, 1e-1, "log-uniform")}
    else:
        model, space = RidgeClassifier(), {"alpha": (1e-3, 1e1, "log-uniform")}
    search = BayesSearchCV(model, space, n_iter=14, n_points="auto", cv=3, random_state=0).fit(X, y)
    assert search.n_points_ == expected and len(search.cv_results_["params"]) == 14
    assert search.proposal_time_ > 0


def _whites(kernel):
    """The WhiteKernels in a sum of kernels."""
    from skopt.learning.gaussian_process.kernels import WhiteKernel

    if isinstance(kernel, WhiteKernel):
        return [kernel]
    return [w for part in ("k1", "k2") if hasattr(kernel, part) for w in _whites(getattr(kernel, part))]


def test_warm_start_refits_from_the_last_kernel_without_restarts_or_extra_noise_terms():
    optimizer = _optimizer(n_told=10)
    rng = np.random.RandomState(1)
    for _ in range(3):
        model = optimizer.models[-1]
        warm_start(optimizer)
        base = optimizer.base_estimator_
        assert base.n_restarts_optimizer == 0
        # one noise term, at the fitted level (skopt zeroes it in the fitted kernel)
        assert [w.noise_level for w in _whites(base.kernel)] == [model.noise_]
        np.testing.assert_array_equal(base.kernel.k1.theta, model.kernel_.k1.theta)
        optimizer.tell(optimizer.space.rvs(n_samples=2, random_state=rng), list(rng.rand(2)))
        assert len(_whites(optimizer.models[-1].kernel_)) == 1


def test_rounds_of_several_points_minimise_the_acquisition_over_samples_unless_told_otherwise():
    assert round_kwargs({}, 1) == {}
    assert round_kwargs({"base_estimator": "GP"}, 8) == {"base_estimator": "GP", "acq_optimizer": "sampling"}
    assert round_kwargs({"acq_optimizer": "lbfgs"}, 8) == {"acq_optimizer": "lbfgs"}


def _costly_optimizer(acq_func):
    """A flat objective on [0, 1] whose cost grows 150-fold from 0 to 1."""
    optimizer = Optimizer([(0.0, 1.0)], n_initial_points=0, acq_func=acq_func, random_state=0,
                          acq_optimizer="sampling", acq_optimizer_kwargs={"n_points": 200})
    xs = np.linspace(0, 1, 9)
    values = 0.01 * np.random.RandomState(0).randn(9)
    optimizer.tell([[x] for x in xs], [[v, float(np.exp(5 * x))] for v, x in zip(values, xs, strict=True)]
                   if acq_func.endswith("ps") else values.tolist())
    return optimizer


@pytest.mark.parametrize("acq_func", ["EIps", "PIps"])
def test_per_second_rounds_prefer_cheap_points_without_a_fit_per_point(monkeypatch, acq_func):
    plain = np.mean(propose(_costly_optimizer(acq_func[:2]), 8))
    optimizer = _costly_optimizer(acq_func)
    fits = _count_fits(monkeypatch)
    points = propose(optimizer, 8)
    assert fits == []  # not skopt's ask(n_points), which fits both models once per lie
    assert len({tuple(point) for point in points}) == 8
    assert np.mean(points) < plain / 2  # divided by their expected cost, dear points lose
