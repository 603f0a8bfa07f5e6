"""The engine's bookkeeping shortcuts leave exactly what the nets' own callbacks would."""

import numpy as np
import pytest
import torch
from sklearn.utils import check_random_state

from sknet import MLPClassifier
from sknet.engine._bookkeeping import _mean_losses, _pass_through, _plain_callbacks
from sknet.engine._group import GroupTrainer, _RowIndices, _take_rows
from sknet.engine._jobs import prepare
from sknet.engine._layout import _batch_sizes, _Layout
from sknet.nets._data import DeviceBatches
from sknet.nets._seeding import MAX_SEED, first_seed

CLF = MLPClassifier(hidden_layer_sizes=(16, 8), batch_size=32, max_epochs=4, optimizer="sgd", momentum=0.9,
                    random_state=0, device="cpu")


def trained(jobs, X, y, plain):
    """The jobs trained as one group, their epochs written in bulk (``plain``) or by ``net.notify``."""
    prepared = [prepare(CLF, params, rows, X, y) for params, rows in jobs]
    trainer = GroupTrainer(prepared, torch.as_tensor(X, dtype=torch.float32))
    assert trainer.plain == all(_plain_callbacks(job.estimator.net_) for job in prepared)
    trainer.plain = plain
    return trainer.run(), [job.estimator.net_ for job in prepared]


def records(history):
    """The history's records but their durations, as text: exact values (NaN included), types, key order."""
    return repr([{key: value for key, value in record.items() if key != "dur"} for record in history])


def test_plain_epochs_leave_the_records_and_states_of_the_callbacks(clf_data):
    X, y = clf_data
    # Different fold sizes (different batch counts), widths, epochs; one job diverges at its first epoch.
    jobs = [(dict(lr=1e-2, max_epochs=5), np.arange(200)),
            (dict(lr=3e-2, hidden_layer_sizes=(8, 8)), np.arange(97)),
            (dict(lr=1e6), np.arange(150)),
            (dict(lr=1e-3, max_epochs=3), np.arange(1, 200, 2))]
    bulk, bulk_nets = trained(jobs, X, y, plain=True)
    alone, alone_nets = trained(jobs, X, y, plain=False)
    assert isinstance(bulk[2], FloatingPointError) and str(bulk[2]) == str(alone[2])
    for mine, theirs, net, reference in zip(bulk, alone, bulk_nets, alone_nets, strict=True):
        assert records(net.history) == records(reference.history)
        assert [list(record) for record in net.history] == [list(record) for record in reference.history]
        callbacks, expected = dict(net.callbacks_), dict(reference.callbacks_)
        assert repr(callbacks["train_loss"].best_score_) == repr(expected["train_loss"].best_score_)
        assert isinstance(callbacks["epoch_timer"].epoch_start_time_, float)
        assert all(type(record["dur"]) is float and record["dur"] >= 0 for record in net.history)
        if not isinstance(mine, Exception):
            assert mine.loss_curve_ == theirs.loss_curve_ and mine.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("options", [dict(lr_schedule="cosine"), dict(early_stopping=True)], ids=str)
def test_nets_with_more_callbacks_are_not_plain(clf_data, options):
    X, y = clf_data
    job = prepare(CLF, options, np.arange(200), X, y)
    assert _plain_callbacks(job.estimator.net_) is None
    assert not GroupTrainer([job], torch.as_tensor(X, dtype=torch.float32)).plain


def test_mean_losses_are_the_pass_through_means():
    rng = np.random.default_rng(0)
    sizes = [np.diff(np.unique(np.r_[0, rng.choice(np.arange(1, n), size=m - 1, replace=False), n]))
             for n, m in [(500, 7), (400, 7), (1000, 30), (90, 1), (3000, 130), (2000, 30)]]
    losses = rng.random((len(sizes), 130)).astype(np.float32) * 3

    class Scoring:
        name = "train_loss"

        def _is_best_score(self, score):
            return None

    for k, size in enumerate(sizes):
        history = History()
        _pass_through(Scoring(), history, losses[k, :len(size)], size.tolist())
        assert _mean_losses(losses, sizes)[k] == history.records["train_loss"]


class History:
    def __init__(self):
        self.records = {}

    def record(self, name, value):
        self.records[name] = value


def test_layout_puts_each_batch_row_in_its_slot():
    rng = np.random.default_rng(0)
    folded = 0
    for trial in range(100):
        batch_size = int(rng.integers(1, 40))
        n_rows = rng.integers(1, 300, size=int(rng.integers(1, 12)))
        if trial % 2:  # equal folds, as a search's candidates share them
            n_rows[:] = n_rows[0]
        if trial % 3 == 0:  # a last row folded into the batch before: the earlier batches are padded
            n_rows[-1] = 2 * batch_size + 1
        batches = [DeviceBatches(_RowIndices(int(n)), batch_size, shuffle=True, seed=int(n) + trial)
                   for n in n_rows]
        orders, stops = zip(*(batch.shuffled_order() for batch in batches), strict=True)
        sizes = [_batch_sizes(ends) for ends in stops]
        layout = _Layout(sizes, torch.zeros(1, dtype=torch.float64), weighted=False)
        folded += any(position is not None for position in layout.positions)
        local = layout.local(orders)
        assert local.shape == layout.mask.shape == (len(sizes), max(map(len, sizes)), max(map(max, sizes)))
        for k, (order, size) in enumerate(zip(orders, sizes, strict=True)):
            starts = np.cumsum(size) - size
            for s, (start, n) in enumerate(zip(starts, size, strict=True)):
                torch.testing.assert_close(local[k, s, :n], order[start:start + n], rtol=0, atol=0)
                assert (layout.mask[k, s, :n] == 1).all() and (layout.mask[k, s, n:] == 0).all()
                assert layout.counts[s][k] == n
                torch.testing.assert_close(layout.coef[k, s].sum(), torch.tensor(1.0, dtype=torch.float64))
            assert (layout.mask[k, len(size):] == 0).all() and (layout.coef[k, len(size):] == 0).all()
    assert folded


@pytest.mark.parametrize("rest", [(), (3,)], ids=str)
def test_take_rows_takes_each_models_rows(rest):
    values = torch.randn(4, 50, *rest)
    index = torch.randint(0, 50, (4, 70))
    expected = torch.stack([values[k, index[k]] for k in range(4)])
    torch.testing.assert_close(_take_rows(values, index), expected, rtol=0, atol=0)


@pytest.mark.parametrize("random_state", [0, 7, np.int64(7), True])
def test_first_seed_of_an_int_is_check_random_states_first_draw(random_state):
    expected = check_random_state(random_state).randint(MAX_SEED)
    assert first_seed(random_state) == expected and first_seed(random_state) == expected


def test_first_seed_of_a_generator_draws_from_it():
    rng, twin = np.random.RandomState(3), np.random.RandomState(3)
    assert [first_seed(rng) for _ in range(3)] == [twin.randint(MAX_SEED) for _ in range(3)]
    global_rng = check_random_state(None)
    state = global_rng.get_state()
    expected = global_rng.randint(MAX_SEED)
    global_rng.set_state(state)
    assert first_seed(None) == expected  # numpy's global generator, drawn from


def test_write_module_loads_the_models_state(clf_data):
    X, y = clf_data
    base = clone_with(batch_norm=True)
    jobs = [prepare(base, dict(hidden_layer_sizes=sizes), np.arange(150), X, y)
            for sizes in [(16, 8), (16, 8), (4, 4)]]
    trainer = GroupTrainer(jobs, torch.as_tensor(X, dtype=torch.float32))
    trainer.index = np.arange(len(jobs))
    trainer._epoch()  # moved weights and running statistics
    for k, job in enumerate(jobs):
        module = job.estimator.net_.module_
        trainer.model.write_module(k, module)
        written = {name: value.clone() for name, value in module.state_dict().items()}
        module.load_state_dict(trainer.model.state_dict(k))
        assert written.keys() == module.state_dict().keys()
        for name, value in module.state_dict().items():
            torch.testing.assert_close(written[name], value, rtol=0, atol=0)


def test_finite_tells_each_models_weights():
    X, y = np.random.RandomState(0).rand(60, 5), np.arange(60) % 3
    jobs = [prepare(CLF, dict(hidden_layer_sizes=sizes), np.arange(60), X, y)
            for sizes in [(6, 4), (6, 4), (3, 4)]]  # two blocks: models 0 and 1, model 2
    model = GroupTrainer(jobs, torch.as_tensor(X, dtype=torch.float32)).model
    assert model.finite().tolist() == [True, True, True]
    model.blocks[0].biases[1][1, 0, 2] = float("nan")
    model.blocks[1].weights[0][0, 1, 1] = float("inf")
    assert model.finite().tolist() == [True, False, False]


def clone_with(**params):
    return MLPClassifier(**{**CLF.get_params(), **params})


def test_jobs_sharing_their_parameters_are_checked_once(clf_data, monkeypatch):
    from sknet.engine import _train, train_batched

    X, y = clf_data
    calls = []
    refusal = _train.refusal
    monkeypatch.setattr(_train, "refusal", lambda *args: calls.append(args[1]) or refusal(*args))
    lr, epochs = 1e-2, 2
    jobs = [({"lr": lr, "max_epochs": epochs}, rows) for rows in (np.arange(100), np.arange(100, 200))]
    jobs.append(({"lr": 3e-2, "max_epochs": epochs}, np.arange(200)))
    assert all(not isinstance(fitted, Exception) for fitted in train_batched(CLF, jobs, X, y))
    assert calls == [jobs[0][0], jobs[2][0]]
    # The same value objects, one more parameter: another check.
    refused = [({"max_epochs": epochs}, np.arange(200)),
               ({"max_epochs": epochs, "verbose": 1}, np.arange(200))]
    with pytest.raises(ValueError, match="Job 1 cannot be trained by the batched engine: verbose > 0"):
        train_batched(CLF, refused, X, y)
