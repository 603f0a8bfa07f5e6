"""Shadows: jobs differing only in a smaller max_epochs follow the longest; a net only as they finish."""

import traceback

import numpy as np
import pytest
import torch

from sknet import MLPClassifier
from sknet._compat import OutOfMemoryError
from sknet.engine import _group, _jobs, train_batched
from sknet.engine._group import GroupTrainer

BASE = MLPClassifier(hidden_layer_sizes=(16, 8), batch_size=32, random_state=0, device="cpu", dtype="float64")
ROWS = np.arange(150)


@pytest.fixture
def built_after(monkeypatch):
    """``{max_epochs: epochs}``: the epochs trained when each job's estimator was first set up."""
    built, epochs = {}, [0]
    begin_fit, epoch = _jobs.begin_fit, GroupTrainer._epoch

    def counted_epoch(self):
        epochs[0] += 1
        return epoch(self)

    def noted_begin_fit(estimator, data):
        built.setdefault(estimator.max_epochs, epochs[0])
        return begin_fit(estimator, data)

    monkeypatch.setattr(_jobs, "begin_fit", noted_begin_fit)
    monkeypatch.setattr(GroupTrainer, "_epoch", counted_epoch)
    return built


def alone(job, X, y, others=()):
    """``(fitted, state)`` of ``job`` trained on its own (beside ``others``, in its group)."""
    [fitted, *_], [state, *_] = train_batched(BASE, [job, *others], X, y, keep_states=True)
    return fitted, state


def assert_same_fit(mine, theirs):
    """The same fitted estimator: weights, optimizer, history (but durations) and callbacks, exactly."""
    assert mine.get_params() == theirs.get_params()
    assert (mine.n_iter_, mine.loss_curve_, mine.best_epoch_) == (theirs.n_iter_, theirs.loss_curve_,
                                                                  theirs.best_epoch_)
    assert mine.net_.shuffle_seed == theirs.net_.shuffle_seed
    assert np.array_equal(mine._seed_rng.get_state()[1], theirs._seed_rng.get_state()[1])
    for name, value in theirs.net_.module_.state_dict().items():  # batch norm's statistics included
        assert torch.equal(mine.net_.module_.state_dict()[name], value), name
    state, expected = mine.net_.optimizer_.state_dict(), theirs.net_.optimizer_.state_dict()
    assert state["param_groups"] == expected["param_groups"]
    assert state["state"].keys() == expected["state"].keys()
    for index, entries in expected["state"].items():
        assert state["state"][index].keys() == entries.keys()
        for name, value in entries.items():
            assert torch.equal(state["state"][index][name], value), name
    assert mine.net_.optimizer_._opt_called is theirs.net_.optimizer_._opt_called
    assert len(mine.net_.history) == len(theirs.net_.history)
    for record, other in zip(mine.net_.history, theirs.net_.history, strict=True):
        assert list(record) == list(other)
        assert {**record, "dur": None} == {**other, "dur": None}  # a duration is measured
    assert [name for name, _ in mine.net_.callbacks_] == [name for name, _ in theirs.net_.callbacks_]
    for (_, callback), (_, other) in zip(mine.net_.callbacks_, theirs.net_.callbacks_, strict=True):
        for name, value in vars(other).items():
            if name.endswith("_") and name != "epoch_start_time_":  # the epoch timer's start: a time
                mine_value = getattr(callback, name)
                if hasattr(value, "state_dict") and not isinstance(value, type):  # a schedule's scheduler
                    mine_value, value = mine_value.state_dict(), value.state_dict()
                assert mine_value == value, name


def assert_same_state(mine, theirs):
    assert mine.epochs == theirs.epochs
    assert torch.equal(mine.shuffle_state, theirs.shuffle_state)
    assert (mine.dropout_state is None) == (theirs.dropout_state is None)
    if mine.dropout_state is not None:
        assert torch.equal(mine.dropout_state, theirs.dropout_state)


@pytest.mark.parametrize("extra, built", [
    ({}, {5: 0, 1: 1, 2: 2, 4: 4}),  # plain callbacks: each shadow set up at its last epoch
    ({"lr_schedule": "exponential"}, {5: 0, 1: 0, 2: 0, 4: 0}),  # its schedule runs in its own net
], ids=["plain", "schedule"])
def test_a_shadow_gets_a_net_only_at_its_epoch_unless_its_callbacks_need_one(clf_data, built_after, extra,
                                                                              built):
    X, y = clf_data
    fitted = train_batched(BASE, [({**extra, "max_epochs": e}, ROWS) for e in (5, 1, 2, 4)], X, y)
    assert [clf.n_iter_ for clf in fitted] == [5, 1, 2, 4]
    assert built_after == built


@pytest.mark.parametrize("extra, others", [
    ({}, []),
    ({"dropout": 0.3, "batch_norm": True, "optimizer": "sgd", "momentum": 0.9, "l1": 1e-3}, []),
    ({"lr_schedule": "exponential"}, []),
    ({}, [({"lr": 3e-3, "lr_schedule": "plateau", "max_epochs": 5}, ROWS)]),  # a group not all plain
], ids=["plain", "dropout", "schedule", "beside-a-schedule"])
def test_a_shadow_equals_its_job_trained_on_its_own(clf_data, extra, others):
    X, y = clf_data
    jobs = [({**extra, "max_epochs": e}, ROWS) for e in (5, 1, 2, 4)]
    fitted, states = train_batched(BASE, jobs + others, X, y, keep_states=True)
    for job, mine, state in zip(jobs, fitted, states, strict=False):
        theirs, their_state = alone(job, X, y, others)
        assert_same_fit(mine, theirs)
        assert_same_state(state, their_state)


def test_shadows_past_a_divergence_share_its_error_and_get_no_net(clf_data, built_after, monkeypatch):
    X, y = clf_data
    write = _group._write_plain_epoch

    def nan_from_epoch_3(net, callbacks, losses, size, score, started, ended):
        return write(net, callbacks, losses, size, np.nan if len(net.history) >= 2 else score, started, ended)

    monkeypatch.setattr(_group, "_write_plain_epoch", nan_from_epoch_3)
    jobs = [({"max_epochs": e}, ROWS) for e in (5, 1, 2, 3, 4)]
    fitted = train_batched(BASE, jobs, X, y)
    assert built_after == {5: 0, 1: 1, 2: 2}  # the shadows of 3 and 4 epochs never needed a net
    assert [clf.n_iter_ for clf in (fitted[1], fitted[2])] == [1, 2]
    errors = [fitted[0], fitted[3], fitted[4]]
    assert len({id(error) for error in errors}) == 3  # each job's own
    for job, error in zip([jobs[0], jobs[3], jobs[4]], errors, strict=True):
        theirs, _ = alone(job, X, y)
        assert type(error) is type(theirs) is FloatingPointError
        assert str(error) == str(theirs) and "nan at epoch 3" in str(error)
        assert traceback.format_exception(error) == traceback.format_exception(errors[0])


def test_shadows_come_through_a_group_that_runs_out_of_memory(clf_data, monkeypatch):
    X, y = clf_data
    jobs = [({"lr": lr, "max_epochs": e}, ROWS) for lr in (1e-2, 3e-3) for e in (4, 1, 2)]
    epoch = GroupTrainer._epoch

    def short_of_memory(self):  # the two models' group, once its shadows of 1 and 2 epochs finished
        if len(self.jobs) == 2 and self.epochs[0] == 2:
            raise OutOfMemoryError("out of memory (simulated)")
        return epoch(self)

    monkeypatch.setattr(GroupTrainer, "_epoch", short_of_memory)
    fitted, states = train_batched(BASE, jobs, X, y, keep_states=True)
    monkeypatch.undo()
    for job, mine, state in zip(jobs, fitted, states, strict=True):  # its half trains each model alone
        theirs, their_state = alone(job, X, y)
        assert_same_fit(mine, theirs)
        assert_same_state(state, their_state)


def test_jobs_whose_parameters_joblib_cannot_hash_train_on_their_own(monkeypatch):
    # joblib before 1.4 cannot pickle a class defined in a function (a module passed as a
    # parameter): the digest that finds followers fails, and each job trains for itself.
    import pickle

    def unpicklable(value):
        raise pickle.PicklingError("Can't pickle <class 'local.Conv'>")

    X, y = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32), np.arange(60) % 2
    jobs = [({"max_epochs": epochs}, np.arange(60)) for epochs in (1, 3)]
    base = MLPClassifier(n_units=4, random_state=0, device="cpu")
    expected = [len(net.net_.history) for net in train_batched(base, jobs, X, y)]
    monkeypatch.setattr(_jobs.joblib, "hash", unpicklable)
    assert [len(net.net_.history) for net in train_batched(base, jobs, X, y)] == expected == [1, 3]
