"""Training in stages: a pause changes nothing, and a take-over computes what a copied state computes."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from sknet import MLPClassifier
from sknet.engine import train_batched
from sknet.engine._exploit import copy_state
from sknet.engine._stages import StagedTraining

ROWS = np.arange(200)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=260, n_features=10, n_informative=6, n_classes=3, random_state=0)
    return X, y


def _jobs(n_units=(16, 16, 16, 16), epochs=6):
    rates = [(1e-3, 0.0), (3e-3, 1e-4), (1e-2, 0.0), (2e-3, 1e-3)]
    return [({"lr": lr, "weight_decay": wd, "random_state": seed, "max_epochs": epochs, "n_units": units},
             ROWS) for seed, ((lr, wd), units) in enumerate(zip(rates, n_units, strict=True))]


NETS = {
    "adam, dropout, exponential schedule": dict(optimizer="adam", dropout=0.2, lr_schedule="exponential"),
    "sgd with momentum, plateau schedule": dict(optimizer="sgd", momentum=0.9, lr_schedule="plateau"),
    "rmsprop, batch norm": dict(optimizer="rmsprop", batch_norm=True),
}


def _net(options):
    return MLPClassifier(max_epochs=6, batch_size=32, random_state=0, dtype="float64", device="cpu",
                         **options)


@pytest.mark.parametrize("options", NETS.values(), ids=NETS.keys())
def test_a_pause_leaves_training_as_one_run_to_the_end(data, options):
    X, y = data
    net = _net(options)
    session = StagedTraining(net, _jobs(), X, y)
    paused = [clf.predict_proba(X[200:]) for clf in session.advance(3)]
    short = train_batched(net, [({**params, "max_epochs": 3}, rows) for params, rows in _jobs()], X, y)
    for at_pause, fitted in zip(paused, short, strict=True):
        np.testing.assert_array_equal(at_pause, fitted.predict_proba(X[200:]))
    whole = train_batched(net, _jobs(), X, y)
    for staged, fitted in zip(session.advance(None), whole, strict=True):
        np.testing.assert_array_equal(staged.predict_proba(X[200:]), fitted.predict_proba(X[200:]))
    assert sorted(session.states) == [0, 1, 2, 3]


@pytest.mark.parametrize("options", NETS.values(), ids=NETS.keys())
@pytest.mark.parametrize("n_units", [(16, 16, 16, 16), (8, 16, 16, 16)], ids=["in the group", "re-stacked"])
def test_a_take_over_computes_what_going_on_from_a_copied_state_computes(data, options, n_units):
    X, y = data
    net, jobs = _net(options), _jobs(n_units)
    new = {**jobs[2][0], "lr": 5e-3, "weight_decay": 3e-4}
    # What population training did before: every state written back, then copied.
    _, states = train_batched(net, [({**params, "max_epochs": 3}, rows) for params, rows in jobs], X, y,
                              keep_states=True)
    copied = copy_state(states[2])
    copied.estimator.set_params(**new)
    expected = train_batched(net, [(new, ROWS), *jobs[1:]], X, y, starts=[copied, *states[1:]])

    session = StagedTraining(net, jobs, X, y)
    session.advance(3)
    assert session.take_over(0, 2, new) is (n_units[0] == 16)
    assert (session.n_in_place, session.n_restacked) == ((1, 0) if n_units[0] == 16 else (0, 1))
    for staged, fitted in zip(session.advance(None), expected, strict=True):
        np.testing.assert_array_equal(staged.predict_proba(X[200:]), fitted.predict_proba(X[200:]))
        assert staged.lr == fitted.lr and staged.n_iter_ == fitted.n_iter_ == 6
        assert staged.loss_curve_ == fitted.loss_curve_


def test_a_failed_job_leaves_and_restarts_afresh(data):
    X, y = data
    net = _net({"optimizer": "sgd"})
    jobs = _jobs()
    jobs[1] = ({**jobs[1][0], "lr": 1e6}, ROWS)  # diverges
    session = StagedTraining(net, jobs, X, y)
    now = session.advance(3)
    assert isinstance(now[1], FloatingPointError) and isinstance(session.results[1], FloatingPointError)
    session.restart(1, {**jobs[1][0], "lr": 1e-3}, ROWS)
    final = session.advance(None)
    # Afresh: from its first epoch, to the next pause (here the end), in a group of its own.
    alone = train_batched(net, [({**jobs[1][0], "lr": 1e-3}, ROWS)], X, y)[0]
    np.testing.assert_array_equal(final[1].predict_proba(X[200:]), alone.predict_proba(X[200:]))
    assert final[1].n_iter_ == 6 and len(session.states) == 4
