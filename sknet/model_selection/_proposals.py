"""A round of Bayesian proposals from one surrogate fit: the kriging believer, updated cheaply.

scikit-optimize's ``Optimizer.ask(n_points)`` proposes a batch by the constant liar: it copies
the optimizer (fitting its surrogate again), then for each point tells it a lie and fits the
surrogate again, so a round of q points costs q + 1 fits and acquisition searches on top
of the one ``tell`` makes. Here a round costs none beyond that ``tell``: the first point
is the optimizer's own next point (what ``ask()`` returns), and each further one minimises
the acquisition over the optimizer's random candidates after the Gaussian process
"believes" the points chosen so far (Ginsbourger et al. 2010, "Kriging is well-suited to
parallelize optimization": it is told its own mean there). Told its mean, a GP keeps its
mean; its variance shrinks around the believed points, a rank-one update per point over
the candidates (no refit: the kernel's hyperparameters are those of the last fit).
The per-second acquisitions ("EIps", "PIps": skopt fits a second GP on the log of each
point's cost) divide by the expected cost, as skopt's do; the cost model is not told the
believed points, whose cost is then its mean. Other surrogates (forests, boosted trees) go
through scikit-optimize's ``ask``.

What a round's ``tell`` costs is cut too (:func:`round_kwargs`, :func:`warm_start`): skopt
minimises the acquisition over its random candidates, as the further points are chosen,
not by L-BFGS from five of them for each of gp_hedge's three acquisitions; and each fit of
the Gaussian process starts from the kernel the last one found, without restarts.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone
from skopt.acquisition import _gaussian_acquisition
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gaussian_process.gpr import _param_for_white_kernel_in_Sum
from skopt.learning.gaussian_process.kernels import WhiteKernel


def propose(optimizer, n_points):
    """The next ``n_points`` points of ``optimizer`` (a ``skopt.Optimizer``), in its space.

    One point is ``[optimizer.ask()]``; while it still samples its initial points, or with a
    surrogate other than its Gaussian process, ``optimizer.ask(n_points)``. A round that ends
    the random initial points fills up with random points too.
    """
    model = optimizer.models[-1] if optimizer.models else None
    per_second = optimizer.acq_func.endswith("ps")
    model, cost_model = model.estimators_ if per_second and model is not None else (model, None)
    if n_points == 1:
        return [optimizer.ask()]
    if 0 < optimizer._n_initial_points < n_points and optimizer._initial_samples is None:
        # The last initial points, and random ones for the rest: no surrogate is fitted yet
        # (skopt's ask would fit one per point told after the initial ones).
        return optimizer.space.rvs(n_samples=n_points, random_state=optimizer.rng)
    if optimizer._n_initial_points > 0 or not isinstance(model, GaussianProcessRegressor):
        return optimizer.ask(n_points=n_points)
    space = optimizer.space
    chosen = [optimizer.ask()]
    candidates = space.transform(space.rvs(n_samples=optimizer.n_points, random_state=optimizer.rng))
    believer = _Believer(model, candidates, space.transform([chosen[0]])[0])
    seen = {point_key(point) for point in optimizer.Xi} | {point_key(chosen[0])}
    told = np.asarray(optimizer.yi, dtype=float)  # with per-second acquisitions, [value, log cost] rows
    y_opt = min(np.min(told[:, 0] if per_second else told), believer.mean_at_first)
    acq_func = _acquisition(optimizer).removesuffix("ps")
    per_cost = _inverse_cost(cost_model, candidates) if per_second else 1.0
    while len(chosen) < n_points:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = per_cost * _gaussian_acquisition(candidates, believer, y_opt, acq_func,
                                                      acq_func_kwargs=optimizer.acq_func_kwargs)
        for i in np.argsort(values, kind="stable"):
            point = space.inverse_transform(candidates[i:i + 1])[0]
            if point_key(point) not in seen:
                break
        else:  # every candidate was seen: a random point, as skopt falls back to
            i, point = None, space.rvs(random_state=optimizer.rng)[0]
        chosen.append(point)
        seen.add(point_key(point))
        if i is not None:
            y_opt = min(y_opt, believer.mean[i])
            believer.believe(i)
    return chosen


def round_kwargs(kwargs, n_points):
    """``skopt.Optimizer`` arguments for rounds of ``n_points``: with more than one, the
    acquisition is minimised over skopt's random candidates (``acq_optimizer="sampling"``,
    where ``kwargs`` do not choose), as the round's further points are."""
    return kwargs if n_points == 1 else {"acq_optimizer": "sampling", **kwargs}


def warm_start(optimizer, model=None):
    """Make ``optimizer``'s next Gaussian process fit start from the kernel ``model`` found (by
    default its own last fit).

    The kernel's hyperparameters move little from one round to the next: a fit from where
    they are needs no restarts from random ones (skopt's default makes two).
    """
    if model is None:
        model = optimizer.models[-1] if optimizer.models else None
    if not isinstance(model, GaussianProcessRegressor) or not isinstance(
            optimizer.base_estimator_, GaussianProcessRegressor):
        return
    kernel = clone(model.kernel_)
    white, name = _param_for_white_kernel_in_Sum(kernel)
    if white and model.noise_ is not None:  # skopt zeroes the fitted noise after the fit
        kernel.set_params(**{name: WhiteKernel(noise_level=model.noise_)})
    optimizer.base_estimator_ = clone(optimizer.base_estimator_).set_params(kernel=kernel,
                                                                            n_restarts_optimizer=0)


class _Believer:
    """A fitted skopt GP's mean and standard deviation over ``candidates``, its variance shrunk by
    each believed point (told its own mean there, with the GP's noise); ``predict`` answers for
    the candidates, as skopt's acquisition functions call it."""

    def __init__(self, gp, candidates, first):
        self.gp, self.candidates = gp, candidates
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.mean, std = gp.predict(candidates, return_std=True)
        self.var = (std / gp.y_train_std_) ** 2  # in the GP's normalised units
        self.cross = gp.kernel_(candidates, gp.X_train_) @ gp.K_inv_  # k(C, X) K^-1, once
        self.noise = gp.noise_ or 0.0
        self.residuals = np.empty((0, len(candidates)))  # the believed points' rank-one factors
        self.mean_at_first = float(gp.predict(first[None])[0])
        self._update(self._posterior_cov(first), self._posterior_cov(first, first[None])[0])

    def predict(self, X, return_std=False):
        if X is not self.candidates:
            return self.gp.predict(X, return_std=return_std)
        std = np.sqrt(np.maximum(self.var, 0.0)) * self.gp.y_train_std_
        return (self.mean, std) if return_std else self.mean

    def believe(self, i):
        """Candidate ``i`` is believed: the variance shrinks around it."""
        cov = self._posterior_cov(self.candidates[i]) - self.residuals.T @ self.residuals[:, i]
        self._update(cov, cov[i])

    def _posterior_cov(self, point, rows=None):
        """The GP's posterior covariance between ``rows`` (the candidates) and ``point``."""
        rows_cross = self.cross if rows is None else self.gp.kernel_(rows, self.gp.X_train_) @ self.gp.K_inv_
        rows = self.candidates if rows is None else rows
        k_point = self.gp.kernel_(self.gp.X_train_, point[None])[:, 0]
        return self.gp.kernel_(rows, point[None])[:, 0] - rows_cross @ k_point

    def _update(self, cov, var_at_point):
        residual = cov / np.sqrt(max(var_at_point, 0.0) + self.noise + 1e-12)
        self.residuals = np.vstack([self.residuals, residual])
        self.var = self.var - residual ** 2


def _inverse_cost(cost_model, candidates):
    """``E[1 / cost]`` at each candidate under a GP of log costs: what skopt's "EIps" and "PIps" divide
    by (their acquisition values are negative, to be minimised: multiplied, they stay so)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, std = cost_model.predict(candidates, return_std=True)
    return np.exp(-mean + 0.5 * std ** 2)


def _acquisition(optimizer):
    """The acquisition of the optimizer's next point: with ``gp_hedge``, the one whose
    candidate skopt drew."""
    if optimizer.acq_func != "gp_hedge":
        return optimizer.acq_func
    chosen = optimizer.space.transform([optimizer._next_x])[0]
    for acq_func, x in zip(optimizer.cand_acq_funcs_, optimizer.next_xs_, strict=True):
        if np.allclose(x, chosen):
            return acq_func
    return "EI"


def point_key(point):
    """A point of a skopt space as a set member: numpy scalars as their Python values."""
    return tuple(value.item() if isinstance(value, np.generic) else value for value in point)
