"""The engine's bookkeeping shortcuts leave exactly what the nets' own callbacks would."""

import numpy as np
import pytest
import torch

from sknet import MLPClassifier
from sknet.engine._jobs import prepare
from sknet.engine._train import GroupTrainer, _mean_losses, _pass_through, _plain_callbacks

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
