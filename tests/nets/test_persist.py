import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
import traceback
import warnings

import _persist_modules  # pytest puts tests/nets on sys.path: the test folders are not packages
import numpy as np
import pytest
import torch

import sknet
from sknet import MLPClassifier, MLPRegressor, TorchClassifier

FAST = dict(max_epochs=5, random_state=0, device="cpu")


@pytest.fixture
def fitted_models(clf_data, reg_data):
    Xc, yc = clf_data
    Xr, yr = reg_data
    labels = np.array(["ant", "bee", "cat"])[yc]
    return [
        (MLPClassifier(hidden_layer_sizes=(7, 5), batch_norm=True, optimizer=torch.optim.NAdam,
                       class_weight={"ant": 2.0}, **FAST).fit(Xc, labels), Xc),
        (MLPRegressor(loss="huber", early_stopping=True, **FAST).fit(Xr, np.c_[yr, -yr]), Xr),
    ]


def _predictions(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def test_pickle_round_trip(fitted_models):
    for est, X in fitted_models:
        clone = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(_predictions(clone, X), _predictions(est, X))
        assert clone.get_params() == est.get_params()


def test_pickled_gpu_model_loads_on_cpu_only_machine(clf_data):
    if torch.cuda.is_available():
        pytest.skip("simulates a machine without CUDA")
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    expected = est.predict_proba(X)
    est.device_ = est.net_.device = "cuda"  # as if trained on a GPU
    with pytest.warns(UserWarning, match="no CUDA devices"):
        clone = pickle.loads(pickle.dumps(est))
    assert clone.device_ == "cpu"
    np.testing.assert_array_equal(clone.predict_proba(X), expected)


def test_save_and_load(fitted_models, tmp_path):
    for est, X in fitted_models:
        path = tmp_path / "model.pt"
        est.save(path)
        loaded = sknet.load(path)
        assert type(loaded) is type(est)
        assert loaded.get_params() == est.get_params()
        np.testing.assert_array_equal(_predictions(loaded, X), _predictions(est, X))
        for name in ("n_features_in_", "n_iter_", "loss_curve_", "best_epoch_"):
            assert getattr(loaded, name) == getattr(est, name)
    np.testing.assert_array_equal(loaded.predict(X).shape, (len(X), 2))


def test_loaded_classifier_keeps_labels_and_can_train_further(clf_data, tmp_path):
    X, y = clf_data
    labels = np.array(["ant", "bee", "cat"])[y]
    est = MLPClassifier(warm_start=True, **FAST).fit(X, labels)
    est.save(tmp_path / "m.pt")
    loaded = sknet.load(tmp_path / "m.pt")
    assert list(loaded.classes_) == ["ant", "bee", "cat"]
    before = loaded.loss_curve_[-1]
    loaded.fit(X, labels)  # warm start: continues from the stored weights
    assert loaded.loss_curve_[-1] < before


def test_save_refuses_what_json_cannot_hold(clf_data, tmp_path):
    from skorch.callbacks import EpochTimer

    X, y = clf_data
    est = MLPClassifier(callbacks=[("timer2", EpochTimer())], **FAST).fit(X, y)
    with pytest.raises(TypeError, match="callbacks.*pickle"):
        est.save(tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_save_needs_a_fitted_model(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "m.pt")


class _Exploit:
    """Unpickling this object would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_crafted_file_cannot_execute_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "sknet-model", "format_version": 1, "estimator": "MLPClassifier",
                "payload": _Exploit(marker)}, path)
    with pytest.raises(ValueError, match="not a valid sknet model file"):
        sknet.load(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ValueError, match="not a valid sknet model file"):
        sknet.load(path)
    assert not marker.exists()


def test_foreign_and_future_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an sknet model file"):
        sknet.load(tmp_path / "other.pt")
    torch.save({"format": "sknet-model", "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format version 99"):
        sknet.load(tmp_path / "future.pt")


def test_no_warnings_on_plain_round_trip(clf_data, tmp_path):
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(est))
        est.save(tmp_path / "m.pt")
        sknet.load(tmp_path / "m.pt")


# A saver process that imports sknet once, then forks a child per round that saves the two
# models in turn onto one path until the test kills it (importing anew for every kill would
# take seconds).
_SAVER = """
import os, sys
import sknet
target, *sources = sys.argv[1:]
models = [sknet.load(source) for source in sources]
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            models[i % 2].save(target)
            i += 1
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the saver forks")
def test_a_save_killed_at_any_moment_leaves_the_old_model_or_the_new_one(clf_data, tmp_path):
    X, y = clf_data
    models = [MLPClassifier(n_units=300, max_epochs=1, random_state=seed, device="cpu").fit(X, y)
              for seed in (0, 1)]
    expected = [m.predict_proba(X) for m in models]
    assert not np.array_equal(*expected)
    sources = [tmp_path / f"source{i}.pt" for i in range(2)]
    for model, source in zip(models, sources, strict=True):
        model.save(source)
    target = tmp_path / "target" / "model.pt"
    target.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    saver = subprocess.Popen([sys.executable, "-c", _SAVER, str(target), *map(str, sources)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    rng = random.Random(0)
    child = None
    try:
        for _ in range(20):
            saver.stdin.write("\n")
            saver.stdin.flush()
            child = int(saver.stdout.readline())
            deadline = time.monotonic() + 60
            while not target.exists():  # the first round kills only once there is a model
                assert time.monotonic() < deadline, "the saver wrote nothing"
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.02))
            os.kill(child, signal.SIGKILL)
            assert saver.stdout.readline() == "reaped\n"
            child = None
            probabilities = sknet.load(target).predict_proba(X)
            assert any(np.array_equal(probabilities, e) for e in expected)
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        saver.kill()
        saver.wait()
    leftovers = {p.name for p in target.parent.iterdir()} - {"model.pt"}
    assert all(name.startswith(".model.pt.") and name.endswith(".tmp") for name in leftovers)


def test_a_loaded_model_can_be_saved_again(clf_data, tmp_path):
    X, y = clf_data
    est = MLPClassifier(lr_schedule="onecycle", **FAST).fit(X, y)
    est.save(tmp_path / "a.pt")
    loaded = sknet.load(tmp_path / "a.pt")
    loaded.save(tmp_path / "b.pt")
    again = sknet.load(tmp_path / "b.pt")
    np.testing.assert_array_equal(again.predict_proba(X), loaded.predict_proba(X))
    # the learning-rate schedule of further training spans the same number of steps
    steps = dict(est.net_.callbacks)["lr_schedule"].total_steps
    assert dict(again.net_.callbacks)["lr_schedule"].total_steps == steps


def test_save_into_a_missing_folder_raises_file_not_found_naming_the_folder(clf_data, tmp_path):
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(FileNotFoundError, match="folder does not exist.*nowhere") as info:
        est.save(tmp_path / "nowhere" / "m.pt")
    assert info.value.filename == str(tmp_path / "nowhere")


def test_save_onto_a_folder_raises_is_a_directory_error_naming_it(clf_data, tmp_path):
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    (tmp_path / "m.pt").mkdir()
    with pytest.raises(IsADirectoryError, match="path is a folder.*m.pt"):
        est.save(tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == [tmp_path / "m.pt"]


def test_a_saved_file_gets_the_permissions_open_would_give(clf_data, tmp_path):
    X, y = clf_data
    est = MLPClassifier(**FAST).fit(X, y)
    old_mask = os.umask(0o027)
    try:
        est.save(tmp_path / "new.pt")
    finally:
        os.umask(old_mask)
    assert (tmp_path / "new.pt").stat().st_mode & 0o777 == 0o640
    (tmp_path / "old.pt").write_bytes(b"")
    (tmp_path / "old.pt").chmod(0o604)
    est.save(tmp_path / "old.pt")  # replacing a file keeps its permissions
    assert (tmp_path / "old.pt").stat().st_mode & 0o777 == 0o604


def test_a_failed_save_keeps_the_old_model_and_removes_its_temporary_file(clf_data, tmp_path, monkeypatch):
    X, y = clf_data
    old, new = (MLPClassifier(**{**FAST, "random_state": seed}).fit(X, y) for seed in (0, 1))
    old.save(tmp_path / "m.pt")

    def disk_full(payload, file):
        file.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        new.save(tmp_path / "m.pt")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == [tmp_path / "m.pt"]
    np.testing.assert_array_equal(sknet.load(tmp_path / "m.pt").predict_proba(X), old.predict_proba(X))


# -- files that are broken, foreign or edited by hand ---------------------------------------------

@pytest.fixture
def saved(clf_data, tmp_path):
    """A small fitted classifier, saved; its predictions on the training data."""
    X, y = clf_data
    est = MLPClassifier(n_units=10, **FAST).fit(X, y)
    est.save(tmp_path / "model.pt")
    return tmp_path / "model.pt", est.predict_proba(X)


def test_loading_a_missing_file_raises_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file.*missing.pt") as info:
        sknet.load(tmp_path / "missing.pt")
    assert not isinstance(info.value, ValueError)


def test_loading_a_folder_raises_is_a_directory_error_naming_it(tmp_path):
    with pytest.raises(IsADirectoryError, match="path is a folder.*model.pt"):
        (tmp_path / "model.pt").mkdir()
        sknet.load(tmp_path / "model.pt")


def test_an_empty_file_is_refused_as_empty(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"model.pt is not a valid sknet model file: the file is empty "
                                         r"\(0 bytes\)"):
        sknet.load(tmp_path / "model.pt")


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.1])
def test_a_truncated_file_is_refused_as_truncated_or_corrupted(saved, keep):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match="model.pt is not a valid sknet model file: it is truncated or "
                                         "corrupted") as info:
        sknet.load(path)
    assert "Errno" not in str(info.value)


def test_a_file_of_pickled_objects_is_refused_without_advice_to_unpickle_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": _Exploit(marker)}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="holds pickled Python objects.*sknet does not unpickle") as info:
        sknet.load(tmp_path / "model.pt")
    report = "".join(traceback.format_exception(info.value))  # chained errors included
    assert "weights_only" not in report and "estimator.save()" in report
    assert "open" in str(info.value)  # names what the pickle would have called
    assert not marker.exists()


def _edited(path, edit):
    """Write a copy of the model file at ``path`` changed by ``edit(payload, params, fitted)``."""
    payload = torch.load(path, weights_only=True)
    params = payload["params"] = json.loads(payload["params"])
    fitted = payload["fitted"] = json.loads(payload["fitted"])
    edit(payload, params, fitted)
    for field in ("params", "fitted"):
        if payload[field] in (params, fitted):  # not replaced by the edit: back to JSON
            payload[field] = json.dumps(payload[field])
    torch.save(payload, path.with_name("edited.pt"))
    return path.with_name("edited.pt")


def _set(mapping, **values):
    return lambda payload, params, fitted: {"payload": payload, "params": params,
                                            "fitted": fitted}[mapping].update(values)


def _drop(mapping, key):
    return lambda payload, params, fitted: {"payload": payload, "params": params, "fitted": fitted,
                                            "state": payload["state_dict"]}[mapping].pop(key)


def _set_weights(name, value):
    return lambda payload, params, fitted: payload["state_dict"].__setitem__(name, value)


_HAND_EDITS = {
    "unknown parameter": (_set("params", n_unitz=3), "has no parameter.*'n_unitz'"),
    "activation naming a function": (_set("params", activation="os.system"),
                                     "'activation' parameter.*must be a str among.*Got 'os.system'"),
    "negative learning rate": (_set("params", lr=-1.0), "'lr' parameter.*range.*Got -1.0"),
    "zero-width hidden layer": (_set("params", hidden_layer_sizes={"__tuple__": [0]}),
                                "'hidden_layer_sizes' parameter must be None or a sequence of positive"),
    "callbacks that are not callbacks": (_set("params", callbacks=["os.system"]),
                                         "'callbacks' parameter must be a list of skorch callbacks"),
    "unknown device": (_set("params", device="tpu"), "'device' parameter.*Got 'tpu'"),
    "unknown fitted attribute": (_set("fitted", predict=1), r"unknown fitted attribute\(s\) \['predict'\]"),
    "fitted attribute of the other estimator": (_set("fitted", n_outputs_=3),
                                                r"unknown fitted attribute\(s\) \['n_outputs_'\]"),
    "missing fitted attribute": (_drop("fitted", "n_features_in_"),
                                 r"fitted attribute\(s\) \['n_features_in_'\] are missing"),
    "negative n_features_in_": (_set("fitted", n_features_in_=-8), "n_features_in_ must be a positive int"),
    "n_features_in_ as text": (_set("fitted", n_features_in_="8"), "n_features_in_ must be a positive int"),
    "2-D classes_": (_set("fitted", classes_={"__array__": [[0, 1, 2]], "dtype": "<i8"}),
                     "classes_ must be a 1-D array of at least 2 distinct labels"),
    "repeated classes_": (_set("fitted", classes_={"__array__": [0, 0, 2], "dtype": "<i8"}),
                          "classes_ must be a 1-D array of at least 2 distinct labels"),
    "classes_ of raw bytes": (_set("fitted", classes_={"__array__": ["a", "b", "c"], "dtype": "V8"}),
                              "'fitted' field cannot be read: an array of dtype"),
    "loss curve of text": (_set("fitted", loss_curve_=["low"]), "loss_curve_ must be a list of numbers"),
    "feature names of another length": (
        _set("fitted", feature_names_in_={"__array__": ["a", "b"], "dtype": "|O"}),
        "feature_names_in_ names 2 features, but n_features_in_ is 8"),
    "feature names that are not text": (
        _set("fitted", feature_names_in_={"__array__": list(range(8)), "dtype": "<i8"}),
        "feature_names_in_ must be a 1-D array of str"),
    "device_ naming a function": (_set("fitted", device_="os.system"), "device_ must be a torch device"),
    "zero steps per epoch": (_set("fitted", steps_per_epoch=0), "steps_per_epoch must be a positive int"),
    "params not JSON": (_set("payload", params="{"), "its 'params' field cannot be read"),
    "module class not named as a path": (
        _set("params", module={"__module_class__": "this"}),
        "its 'params' field cannot be read: the module class 'this' is not named 'package.module:"),
    "module class in __main__": (
        _set("params", module={"__module_class__": "__main__:Net"}),
        "its 'params' field cannot be read: the module class '__main__:Net' is not named"),
    "fitted not text": (_set("payload", fitted=torch.zeros(1)), "its 'fitted' field cannot be read"),
    "extra field": (_set("payload", code="print"), r"unknown fields \['code'\]"),
    "unknown estimator": (_set("payload", estimator="Pipeline"), "Unknown estimator 'Pipeline'"),
    "newer format": (_set("payload", format_version=2), "format version 2"),
    "huge hidden layer": (_set("params", hidden_layer_sizes={"__tuple__": [2_000_000_000]}),
                          r"'hidden.linear0.weight' has shape \(10, 8\), but the parameters give the "
                          r"network the shape \(2000000000, 8\)"),
    "weights of the wrong shape": (_set_weights("output.weight", torch.zeros(2, 10)),
                                   r"'output.weight' has shape \(2, 10\).*shape \(3, 10\)"),
    "missing weights": (_drop("state", "output.bias"), r"missing entries \['output.bias'\]"),
    "extra weights": (_set_weights("output.extra", torch.zeros(1)), r"unknown entries \['output.extra'\]"),
    "weights of another dtype": (_set_weights("output.bias", torch.zeros(3, dtype=torch.float64)),
                                 "'output.bias' has dtype torch.float64, but the model's dtype makes it "
                                 "torch.float32"),
    "weights that are not tensors": (_set_weights("output.bias", [0.0, 0.0, 0.0]),
                                     "'output.bias' is a list, not a dense tensor"),
    "sparse weights": (_set_weights("output.bias", torch.zeros(3).to_sparse()),
                       "'output.bias' is a Tensor, not a dense tensor"),
}


@pytest.mark.parametrize("case", _HAND_EDITS)
def test_a_hand_edited_file_is_refused_naming_what_is_wrong(saved, case):
    path, _ = saved
    edit, message = _HAND_EDITS[case]
    with pytest.raises(ValueError, match=message) as info:
        sknet.load(_edited(path, edit))
    assert "edited.pt" in str(info.value)


def test_an_unedited_copy_loads(saved):
    path, expected = saved
    X = np.zeros((1, 8))
    loaded = sknet.load(_edited(path, lambda payload, params, fitted: None))
    np.testing.assert_array_equal(loaded.predict_proba(X), sknet.load(path).predict_proba(X))


def test_a_hand_made_text_width_is_not_allocated(saved):
    path, _ = saved
    labels = {"__array__": ["ant", "bee", "cat"], "dtype": "<U1000000"}  # 4 MB a label as declared
    loaded = sknet.load(_edited(path, _set("fitted", classes_=labels)))
    assert list(loaded.classes_) == ["ant", "bee", "cat"]
    assert loaded.classes_.dtype.itemsize <= 1024


# -- module classes: what load imports, and what it builds ----------------------------------------

_PROBE = "sknet_persist_probe"  # a module whose import writes a marker file: proof that it ran
_PROBE_CODE = """
import pathlib
from torch import nn

pathlib.Path({marker!r}).write_text("imported")


def __getattr__(name):  # a lazy attribute (which could import anything): a marker if it runs
    pathlib.Path({marker!r}).with_name("looked_up").write_text(name)
    raise AttributeError(name)


class Net(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X)
"""


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """The marker file the probe module writes when imported; the module is installed, not imported."""
    marker = tmp_path / "imported"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / f"{_PROBE}.py").write_text(_PROBE_CODE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(tmp_path / "site")
    sys.modules.pop(_PROBE, None)
    yield marker
    sys.modules.pop(_PROBE, None)


def _torch_model(module, path, **params):
    """A TorchClassifier of ``module`` fitted on tiny data and saved at ``path``; it and its data."""
    X, y = np.random.RandomState(0).normal(size=(20, 3)), np.arange(20) % 2
    est = TorchClassifier(module, max_epochs=1, random_state=0, device="cpu", **params).fit(X, y)
    est.save(path)
    return est, X


def _naming(class_name):
    return _set("params", module={"__module_class__": class_name})


def test_a_file_naming_a_module_that_is_not_imported_is_refused_without_importing_it(probe, tmp_path):
    est, X = _torch_model(_persist_modules.Linear, tmp_path / "model.pt")
    edited = _edited(tmp_path / "model.pt", _naming(f"{_PROBE}:Net"))
    with pytest.raises(ValueError, match=rf"edited.pt names the module class '{_PROBE}:Net', whose module "
                       rf"'{_PROBE}' is not imported.*sknet.load\('.*edited.pt', "
                       rf"trusted=\['{_PROBE}:Net'\]\), or run 'import {_PROBE}' before loading") as info:
        sknet.load(edited)
    assert "not a valid sknet model file" not in str(info.value)
    assert not probe.exists() and _PROBE not in sys.modules
    # trusted, it is imported: its Net has the same weights as Linear
    loaded = sknet.load(edited, trusted=[f"{_PROBE}:Net"])
    assert probe.exists() and type(loaded.net_.module_).__name__ == "Net"
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_a_module_class_named_in_an_mlp_file_is_refused_without_importing_it(probe, saved):
    path, _ = saved
    edited = _edited(path, _naming(f"{_PROBE}:Net"))
    for trusted in (None, [f"{_PROBE}:Net"]):  # the parameter is refused before anything is imported
        with pytest.raises(ValueError, match=r"MLPClassifier has no parameter\(s\) \['module'\]"):
            sknet.load(edited) if trusted is None else sknet.load(edited, trusted=trusted)
        assert not probe.exists()


def test_a_model_of_a_module_imported_when_saved_loads_once_trusted(probe, tmp_path):
    import sknet_persist_probe

    est, X = _torch_model(sknet_persist_probe.Net, tmp_path / "model.pt")
    del sys.modules[_PROBE]  # as in a new session that has not imported it (the fixture cleans up)
    probe.unlink()
    assert sknet.get_untrusted_types(tmp_path / "model.pt") == [f"{_PROBE}:Net"]
    with pytest.raises(ValueError, match=f"names the module class '{_PROBE}:Net', whose module '{_PROBE}' is "
                                         "not imported"):
        sknet.load(tmp_path / "model.pt")
    assert not probe.exists()
    loaded = sknet.load(tmp_path / "model.pt", trusted=[f"{_PROBE}:Net"])
    assert probe.exists()
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_get_untrusted_types_lists_the_module_classes_load_would_not_import(probe, saved, tmp_path):
    path, _ = saved
    assert sknet.get_untrusted_types(path) == []  # an MLP: sknet's own module
    _torch_model(_persist_modules.Linear, tmp_path / "torch.pt")
    assert sknet.get_untrusted_types(tmp_path / "torch.pt") == []  # imported by this test file
    assert sknet.get_untrusted_types(_edited(tmp_path / "torch.pt", _naming(f"{_PROBE}:Net"))) == [
        f"{_PROBE}:Net"]
    assert not probe.exists()
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pt is not a valid sknet model file: the file is empty"):
        sknet.get_untrusted_types(tmp_path / "empty.pt")


@pytest.mark.parametrize(("trusted", "error", "message"), [
    (f"{_PROBE}:Net", TypeError, "must be None or a list of str"),
    (3, TypeError, "must be None or a list of str"),
    ([_persist_modules.Linear], TypeError, "must be None or a list of str"),
    ({f"{_PROBE}:Net"}, TypeError, "must be None or a list of str"),
    ([f"{_PROBE}.Net"], ValueError,
     r"names classes as 'package.module:Class'.*Got \['sknet_persist_probe.Net'\]"),
], ids=["a str", "an int", "a list of classes", "a set", "a dotted name"])
def test_a_trusted_value_that_is_not_a_list_of_class_names_is_refused(saved, trusted, error, message):
    path, _ = saved
    with pytest.raises(error, match=f"The 'trusted' parameter of sknet.load {message}"):
        sknet.load(path, trusted=trusted)


@pytest.mark.parametrize("case", ["renamed", "uninstalled"])
def test_a_module_class_that_is_gone_is_reported_as_missing_not_as_a_broken_file(tmp_path, monkeypatch, case):
    _torch_model(_persist_modules.Linear, tmp_path / "model.pt")
    if case == "renamed":
        monkeypatch.delattr(_persist_modules, "Linear")
        path, name, cause = tmp_path / "model.pt", "_persist_modules:Linear", "AttributeError: .*'Linear'"
        options = {}
    else:
        name = "sknet_uninstalled_package.nets:Net"
        path, options = _edited(tmp_path / "model.pt", _naming(name)), {"trusted": [name]}
        cause = "ModuleNotFoundError: No module named 'sknet_uninstalled_package'"
    message = (rf"{path.name} holds a TorchClassifier whose module class '{name}' it was saved with cannot "
               rf"be imported \({cause}\): install or restore the code that defines it")
    with pytest.raises(ValueError, match=message) as info:
        sknet.load(path, **options)
    assert "not a valid sknet model file" not in str(info.value)


def test_a_module_class_is_looked_up_without_running_its_module_s_getattr(probe, tmp_path):
    import sknet_persist_probe  # noqa: F401 - imported: load may look in it

    _torch_model(_persist_modules.Linear, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=rf"module class '{_PROBE}:Lazy' it was saved with cannot be "
                                         rf"imported \(AttributeError: '{_PROBE}' has no attribute 'Lazy'\)"):
        sknet.load(_edited(tmp_path / "model.pt", _naming(f"{_PROBE}:Lazy")))
    assert not probe.with_name("looked_up").exists()


def test_a_module_that_cannot_be_built_on_the_meta_device_loads_once_trusted(tmp_path):
    est, X = _torch_model(_persist_modules.ScaledLinear, tmp_path / "model.pt", module__scale=9.0)
    # Built for real, a module allocates what the file's arguments ask for before they can be
    # checked (a hand-made size of 30000 x 30000 would take 3.4 GB): imported is not enough.
    with pytest.raises(ValueError, match=r"model.pt holds a TorchClassifier whose module class "
                       r"'_persist_modules:ScaledLinear' cannot be built on torch's meta device, where load "
                       r"checks the file's sizes without allocating memory \(RuntimeError: .*\)\. Built for "
                       r"real, .*trusted=\['_persist_modules:ScaledLinear'\]\)\."):
        sknet.load(tmp_path / "model.pt")
    loaded = sknet.load(tmp_path / "model.pt", trusted=["_persist_modules:ScaledLinear"])
    assert loaded.net_.module_.scale == 3.0
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize(("edit", "message"), [
    (_set_weights("linear.weight", torch.zeros(2, 4)),
     r"'linear.weight' has shape \(2, 4\), but the parameters give the network the shape \(2, 3\)"),
    (_drop("state", "linear.bias"), r"missing entries \['linear.bias'\]"),
], ids=["wrong shape", "missing weights"])
def test_the_weights_of_a_module_built_on_the_cpu_are_checked_as_on_meta(tmp_path, edit, message):
    _torch_model(_persist_modules.ScaledLinear, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=f"edited.pt is not a valid sknet model file: .*{message}"):
        sknet.load(_edited(tmp_path / "model.pt", edit), trusted=["_persist_modules:ScaledLinear"])


def test_a_module_class_that_lost_an_argument_is_reported_as_changed_not_as_a_broken_file(
        tmp_path, monkeypatch):
    _torch_model(_persist_modules.LinearOfWidth, tmp_path / "model.pt", module__width=3)
    monkeypatch.setattr(_persist_modules, "LinearOfWidth", _persist_modules.Linear)
    message = (r"model.pt holds a TorchClassifier whose module class '_persist_modules:LinearOfWidth' "
               r"cannot be built with the arguments it was saved with \(ValueError: Linear takes no "
               r"argument\(s\) \['width'\].*\)\. If the class has changed")
    with pytest.raises(ValueError, match=message) as info:
        sknet.load(tmp_path / "model.pt")
    assert "not a valid sknet model file" not in str(info.value)


def test_a_module_class_that_gained_a_required_argument_is_reported_naming_the_file_and_class(
        tmp_path, monkeypatch):
    _torch_model(_persist_modules.Linear, tmp_path / "model.pt")
    monkeypatch.setattr(_persist_modules, "Linear", _persist_modules.LinearOfWidth)
    with pytest.raises(ValueError, match=r"model.pt holds a TorchClassifier whose module class "
                       r"'_persist_modules:Linear' cannot be built with the arguments it was saved with "
                       r"\(.*'width'.*\)\. If the class has changed since the model was saved, restore"):
        sknet.load(tmp_path / "model.pt")
