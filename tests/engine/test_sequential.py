"""train_sequential: the jobs and starts of train_batched, each trained by its estimator's own loop.

The engine's stacked models round differently from a net's own loop (about 1e-16 a step in
float64), so sequential and batched weights agree to 1e-10 here, and exactly only where both
sides run the same arithmetic: a sequential chain and one fit. The generators' states come out
of either function bit for bit equal.
"""

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression

from sknet import MLPClassifier, MLPRegressor
from sknet.engine import train_batched, train_sequential

X, Y = make_classification(n_samples=60, n_features=6, n_informative=4, n_classes=3, random_state=0)
XR, YR = make_regression(n_samples=60, n_features=5, noise=1.0, random_state=0)
YR = YR / YR.std()
ROWS = np.arange(60)
SGD = MLPClassifier(n_units=8, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9, dropout=0.1,
                    dtype="float64", device="cpu", random_state=0)
ADAM = MLPRegressor(n_units=8, batch_size=16, optimizer="adam", lr=0.01, dtype="float64", device="cpu",
                    random_state=1)
RMSPROP = clone(SGD).set_params(optimizer="rmsprop", lr=0.01, momentum=0.0)  # no momentum buffer at first
# Three legs; between them lr, momentum, weight decay (off, then on: its param groups split), l1
# and the dropout rate change.
LEGS = [dict(max_epochs=3),
        dict(max_epochs=5, lr=0.02, momentum=0.5, weight_decay=1e-3, l1=1e-3, dropout=0.2),
        dict(max_epochs=9, lr=0.01, momentum=0.7, weight_decay=1e-2, l1=0.0, dropout=0.2)]
TRAIN = {"b": lambda *args, **kw: train_batched(*args, keep_states=True, **kw), "s": train_sequential}


def weights(est):
    return est.net_.module_.state_dict()


def optimizer_state(est):
    """The optimizer's state by parameter name (momentum buffers, Adam's averages and steps)."""
    state = est.net_.optimizer_.state
    return {(name, key): torch.as_tensor(value, dtype=torch.float64)
            for name, param in est.net_.module_.named_parameters() for key, value in state[param].items()}


def assert_same_training(a, b, atol=1e-10):
    """Equal weights, optimizer states and losses: exactly with ``atol=0``."""
    assert a.n_iter_ == b.n_iter_ == len(a.net_.history) == len(b.net_.history)
    for left, right in ((weights(a), weights(b)), (optimizer_state(a), optimizer_state(b))):
        assert left.keys() == right.keys()
        for name in left:
            if atol == 0:
                assert torch.equal(left[name], right[name]), name
            else:
                torch.testing.assert_close(left[name], right[name], rtol=0, atol=atol)
    if atol == 0:
        assert a.loss_curve_ == b.loss_curve_
    else:
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=0, atol=atol)


def assert_same_generators(a, b):
    assert torch.equal(a.shuffle_state, b.shuffle_state)
    assert (a.dropout_state is None) == (b.dropout_state is None)
    assert a.dropout_state is None or torch.equal(a.dropout_state, b.dropout_state)


def chain(base, kinds, X, y, legs=LEGS):
    """Train the legs one after the other, each by train_batched ("b") or train_sequential ("s"),
    setting each leg's parameters on the state's estimator before it goes on."""
    state = None
    for kind, params in zip(kinds, legs, strict=True):
        if state is not None:
            state.estimator.set_params(**{k: v for k, v in params.items() if k != "max_epochs"})
        [fitted], [new] = TRAIN[kind](base, [(params, ROWS)], X, y, starts=[state])
        assert state is None or fitted is state.estimator  # continued in place
        state = new
    return fitted, state


@pytest.mark.parametrize("base, X, y", [(SGD, X, Y), (clone(ADAM).set_params(dropout=0.1), XR, YR)],
                         ids=["sgd-classifier", "adam-regressor"])
def test_fresh_sequential_jobs_are_their_fits_and_equal_their_batched_twins(base, X, y):
    weight = np.random.RandomState(0).uniform(0.5, 2, size=60)
    jobs = [({"max_epochs": 4}, ROWS), ({"max_epochs": 3, "lr": 0.02, "dropout": 0.3}, ROWS[::2]),
            ({"max_epochs": 3, "weight_decay": 1e-3, "l1": 1e-3}, ROWS[10:])]
    sequential, seq_states = train_sequential(base, jobs, X, y, weight)
    batched, batched_states = train_batched(base, jobs, X, y, weight, keep_states=True)
    for (params, rows), seq, batch, seq_state, batch_state in zip(jobs, sequential, batched, seq_states,
                                                                  batched_states, strict=True):
        fit = clone(base).set_params(**params).fit(X[rows], y[rows], sample_weight=weight[rows])
        assert_same_training(seq, fit, atol=0)
        assert_same_training(seq, batch)
        assert seq_state.estimator is seq and seq_state.epochs == params["max_epochs"]
        assert_same_generators(seq_state, batch_state)
    pickle.loads(pickle.dumps(sequential[0]))  # nothing of the tracking stays on the net


@pytest.mark.parametrize("kinds", ["sss", "bsb", "sbs", "bbs"])
@pytest.mark.parametrize("base, X, y", [(SGD, X, Y), (clone(ADAM).set_params(dropout=0.1), XR, YR),
                                        (RMSPROP, X, Y)],
                         ids=["sgd-classifier", "adam-regressor", "rmsprop-momentum-turned-on"])
def test_a_chain_of_changing_parameters_equals_the_batched_one(base, X, y, kinds):
    batched, batched_state = chain(base, "bbb", X, y)
    mixed, mixed_state = chain(base, kinds, X, y)
    assert_same_training(mixed, batched)
    assert_same_generators(mixed_state, batched_state)
    # The parameters set last are those it trained with, its optimizer's included.
    assert mixed.net_.optimizer_.param_groups[0]["lr"] == 0.01 and mixed.net_.l1 == 0.0
    assert mixed.net_.module_.hidden.drop0.p == 0.2


def test_a_continued_leg_trains_with_its_new_parameters():
    # The last leg with other values than a chain's: its weights must differ (lr, momentum,
    # weight decay, l1 and dropout each change them), in the engine as sequentially.
    reference, _ = chain(SGD, "sss", X, Y)
    for name, value in dict(lr=0.03, momentum=0.2, weight_decay=0.1, l1=1e-2, dropout=0.4).items():
        legs = [*LEGS[:2], {**LEGS[2], name: value}]
        other, _ = chain(SGD, "sss", X, Y, legs)
        batched, _ = chain(SGD, "bbb", X, Y, legs)
        assert_same_training(other, batched)
        assert not torch.allclose(weights(other)["output.weight"], weights(reference)["output.weight"],
                                  rtol=0, atol=1e-6), name


# A plateau schedule that cuts the rate after epoch 8, the second worse than the 6th: were the
# last leg (epochs 8 and 9) to begin training anew, its schedule would forget epoch 6.
@pytest.mark.parametrize("extra", [{}, {"lr_schedule": "plateau", "patience": 2, "lr": 0.3},
                                   {"optimizer": "adam", "dropout": 0.3}])
def test_a_chain_without_changes_equals_one_fit_for_all_its_epochs(extra):
    base = clone(SGD).set_params(**extra)
    legs = [dict(max_epochs=epochs) for epochs in (3, 7, 9)]
    fit = clone(base).set_params(max_epochs=9).fit(X, Y)
    sequential, sequential_state = chain(base, "sss", X, Y, legs)
    batched, batched_state = chain(base, "bbb", X, Y, legs)
    assert_same_training(sequential, fit, atol=0)  # the same loop, from the generators where they were
    assert_same_training(batched, fit)
    assert_same_generators(sequential_state, batched_state)
    [alone], [alone_state] = train_sequential(base, [(dict(max_epochs=9), ROWS)], X, Y)
    assert_same_generators(sequential_state, alone_state)


def test_a_continued_leg_goes_on_from_the_states_generators():
    _, [state] = train_sequential(SGD, [(dict(max_epochs=3), ROWS)], X, Y)
    fresh = torch.Generator().manual_seed(0).get_state()
    # Copies of the same net, one generator state replaced each.
    starts = [dataclasses.replace(state, estimator=pickle.loads(pickle.dumps(state.estimator)), **changed)
              for changed in ({}, {"shuffle_state": fresh}, {"dropout_state": fresh})]
    results = [train_sequential(SGD, [(dict(max_epochs=5), ROWS)], X, Y, starts=[start])[0][0]
               for start in starts]
    assert all(fitted is start.estimator for fitted, start in zip(results, starts, strict=True))
    for other in results[1:]:
        assert not torch.allclose(weights(other)["output.weight"], weights(results[0])["output.weight"])


def test_turning_dropout_on_after_training_without_it_trains_from_scratch():
    base = clone(SGD).set_params(dropout=0.0)
    for train in (train_sequential, TRAIN["b"]):
        _, [state] = train(base, [(dict(max_epochs=3), ROWS)], X, Y)
        assert state.dropout_state is None
        before = {name: value.clone() for name, value in weights(state.estimator).items()}
        state.estimator.set_params(dropout=0.1)
        [fitted], _ = train(base, [(dict(max_epochs=5, dropout=0.1), ROWS)], X, Y, starts=[state])
        assert fitted is not state.estimator and state.epochs == 3  # the state left alone
        assert all(torch.equal(value, weights(state.estimator)[name]) for name, value in before.items())
        assert_same_training(fitted, clone(base).set_params(max_epochs=5, dropout=0.1).fit(X, Y),
                             atol=0 if train is train_sequential else 1e-10)


def test_errors_are_results_and_a_state_goes_on_for_one_job_only():
    jobs = [(dict(max_epochs=4), ROWS), (dict(max_epochs=5), ROWS), (dict(lr=1e200, max_epochs=2), ROWS)]
    _, [state] = train_sequential(SGD, [(dict(max_epochs=2), ROWS)], X, Y)
    (first, second, diverged), states = train_sequential(SGD, jobs, X, Y, starts=[state, state, None])
    assert first is state.estimator and second is not state.estimator and second.n_iter_ == 5
    assert isinstance(diverged, FloatingPointError) and states[2] is None
    with pytest.raises(ValueError, match="Job 0 has invalid parameters"):
        train_sequential(SGD, [(dict(lr=-1), ROWS)], X, Y)
