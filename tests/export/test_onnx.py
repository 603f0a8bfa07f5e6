"""Fitted models holding sknet nets, exported to ONNX and run by onnxruntime: the same answers as in Python.

Parity: labels equal ``predict``; probabilities and regression outputs agree
within 1e-9 for float64 nets (double rounding, summed in another order) and
1e-5 for float32 nets (float32 keeps about 7 digits; the graph sums in another
order than torch, over layers of at most 32 units, so the outputs' last digit or
so may differ). A float32 net's labels may then differ only where its two
most probable classes are within 1e-5 of each other.
"""

import numpy as np
import pytest
import torch
from shared_modules import BagOfEmbeddings
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

from sknet import MLPClassifier, MLPRegressor, TorchClassifier, TorchRegressor
from sknet._options import ACTIVATIONS

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")
from sknet.export import ExportError, onnx_inputs, save_onnx, to_onnx  # noqa: E402

FAST = dict(max_epochs=5, lr=1e-2, random_state=0, device="cpu")
TOLERANCE = {"float32": 1e-5, "float64": 1e-9}


def run(model, X_sample, X, **kwargs):
    """onnxruntime's outputs for ``X`` from the graph ``to_onnx(model, X_sample)``, by output name."""
    session = ort.InferenceSession(to_onnx(model, X_sample, **kwargs).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    outputs = session.run(None, onnx_inputs(session, X))
    return dict(zip([out.name for out in session.get_outputs()], outputs, strict=True))


def assert_same_labels(onnx_labels, labels, proba, dtype):
    """Labels equal; for a float32 net, except where the decision is within rounding of a tie."""
    assert onnx_labels.shape == labels.shape
    differ = onnx_labels != labels
    if dtype == "float64" or not differ.any():
        assert not differ.any()
    elif labels.ndim == 2:  # multilabel: a label's probability within rounding of the 0.5 threshold
        assert np.all(np.abs(proba[differ] - 0.5) < TOLERANCE[dtype])
    else:  # the two most probable classes within rounding of each other
        top = np.sort(proba[differ], axis=1)
        assert np.all(top[:, -1] - top[:, -2] < TOLERANCE[dtype])


def assert_classifier_parity(model, X_sample, X_test, dtype, **kwargs):
    out = run(model, X_sample, X_test, **kwargs)
    proba, labels = model.predict_proba(X_test), model.predict(X_test)
    np.testing.assert_allclose(out["probabilities"], proba, rtol=0, atol=TOLERANCE[dtype])
    assert out["probabilities"].shape == proba.shape
    assert_same_labels(out["label"], labels, proba, dtype)
    return out


def assert_regressor_parity(model, X_sample, X_test, dtype, scale=1.0):
    predicted = model.predict(X_test)
    out = run(model, X_sample, X_test)["variable"]
    assert out.shape == (len(predicted), 1 if predicted.ndim == 1 else predicted.shape[1])
    np.testing.assert_allclose(out.reshape(predicted.shape), predicted, rtol=0, atol=TOLERANCE[dtype] * scale)


@pytest.fixture(scope="module")
def tabular():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X[:200], y[:200], X[200:]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("labels", ["binary", "multiclass", "strings", "booleans", "floats", "multilabel"])
def test_classifier_graph_answers_as_predict_and_predict_proba(tabular, labels, dtype):
    X, y, X_test = tabular
    targets = {"binary": y % 2, "multiclass": y, "strings": np.array(["ant", "bee", "cat"])[y],
               "booleans": y == 1, "floats": y * 2.0,
               "multilabel": np.c_[y == 0, y == 1, X[:, 0] > 0].astype(int)}[labels]
    model = MLPClassifier(n_units=32, dtype=dtype, **FAST).fit(X, targets)
    out = assert_classifier_parity(model, X[:3].astype(dtype), X_test.astype(dtype), dtype)
    # As skl2onnx writes scikit-learn's labels: int64 for integer, boolean and whole float labels.
    assert out["label"].dtype.kind == ("O" if labels == "strings" else "i")
    # probabilities of the input's type, as skl2onnx gives scikit-learn's classifiers
    assert out["probabilities"].dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_graph_answers_as_predict(n_targets, dtype):
    X, y = make_regression(n_samples=200, n_features=5, n_targets=n_targets, random_state=0)
    model = MLPRegressor(n_layers=2, n_units=16, dtype=dtype, **FAST).fit(X[:150], y[:150] / 100)
    assert_regressor_parity(model, X[:3].astype(dtype), X[150:].astype(dtype), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scaled_pipeline_is_one_graph(tabular, dtype):
    X, y, X_test = tabular
    model = make_pipeline(StandardScaler(), MLPClassifier(dtype=dtype, **FAST)).fit(X * 10 + 3, y)
    assert_classifier_parity(model, X[:3].astype(dtype), (X_test * 10 + 3).astype(dtype), dtype)


class DigitsCNN(torch.nn.Module):
    def __init__(self, n_outputs, channels=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, channels, 3, padding=1)
        self.out = torch.nn.Linear(channels * 16, n_outputs)

    def forward(self, X):
        return self.out(torch.nn.functional.max_pool2d(torch.relu(self.conv(X)), 2).flatten(1))


def test_cnn_on_images():
    # onnxruntime's CPU provider has no float64 Conv: CNNs are served in float32.
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    model = TorchClassifier(DigitsCNN, **FAST).fit(X[:400], y[:400])
    assert_classifier_parity(model, X[:2], X[400:700], "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding_model_on_token_ids(dtype):
    rng = np.random.RandomState(0)
    tokens = rng.randint(0, 20, size=(300, 6))
    y = (tokens[:, :2].sum(axis=1) > 19).astype(int)
    model = TorchClassifier(BagOfEmbeddings, dtype=dtype, **FAST).fit(tokens[:200], y[:200])
    out = assert_classifier_parity(model, tokens[:2], tokens[200:], dtype)
    assert out["label"].shape == (100,)


class TwoInputs(torch.nn.Module):
    """Numbers and token ids, as two keyword arguments of forward."""

    def __init__(self, n_outputs, input_shape):
        super().__init__()
        self.numbers = torch.nn.Linear(input_shape["numbers"][0], 4)
        self.tokens = torch.nn.Embedding(20, 4)
        self.out = torch.nn.Linear(8, n_outputs)

    def forward(self, numbers, tokens):
        return self.out(torch.cat([self.numbers(numbers), self.tokens(tokens).mean(dim=1)], dim=1))


def test_dict_input_becomes_one_graph_input_per_key():
    rng = np.random.RandomState(0)
    X = {"numbers": rng.randn(200, 3), "tokens": rng.randint(0, 20, size=(200, 5))}
    y = X["numbers"][:, 0] + (X["tokens"][:, 0] > 9)
    model = TorchRegressor(TwoInputs, dtype="float64", **FAST)
    model.fit({k: v[:150] for k, v in X.items()}, y[:150])
    graph = to_onnx(model, {k: v[:2] for k, v in X.items()})
    assert [i.name for i in graph.graph.input] == ["numbers", "tokens"]
    assert_regressor_parity(model, {k: v[:2] for k, v in X.items()}, {k: v[150:] for k, v in X.items()},
                            "float64")
    # inputs are matched by name: keys in another order than fit saw them change nothing
    reordered = {k: X[k] for k in reversed(X)}
    assert_regressor_parity(model, {k: v[:2] for k, v in reordered.items()},
                            {k: v[150:] for k, v in reordered.items()}, "float64")


class OneUnused(torch.nn.Module):
    def __init__(self, n_outputs, input_shape):
        super().__init__()
        self.linear = torch.nn.Linear(input_shape["used"][0], n_outputs)

    def forward(self, used, ignored):
        return self.linear(used)


def test_an_input_the_module_does_not_use_is_still_an_input():
    rng = np.random.RandomState(0)
    X = {"used": rng.randn(100, 3), "ignored": rng.randn(100, 2)}
    model = TorchRegressor(OneUnused, dtype="float64", **FAST).fit(X, X["used"][:, 0])
    assert [i.name for i in to_onnx(model, X).graph.input] == ["used", "ignored"]
    assert_regressor_parity(model, X, X, "float64")


def test_column_transformer_on_a_dataframe_takes_one_input_per_column():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], 300),
                          "size": rng.randn(300).astype(np.float32),
                          "weight": (rng.randn(300) * 10 + 50).astype(np.float32)})
    frame.loc[::7, "weight"] = np.nan
    y = np.where((frame["colour"] == "red") | (frame["size"] > 1), "yes", "no")
    prepare = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                                 ("num", StandardScaler(), ["size"]),
                                 ("imputed", make_pipeline(SimpleImputer(), StandardScaler()), ["weight"])])
    # onnxruntime's Imputer takes float32 only: the numeric columns are float32, and so is the net.
    model = make_pipeline(prepare, MLPClassifier(**FAST)).fit(frame[:200], y[:200])
    assert [i.name for i in to_onnx(model, frame.head()).graph.input] == ["colour", "size", "weight"]
    assert_classifier_parity(model, frame.head(), frame[200:], "float32")


@pytest.mark.parametrize("names", [["colour name", "label", "variable"], [0, 1, 2]])
def test_columns_that_skl2onnx_renames_still_find_their_inputs(names):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({names[0]: rng.choice(["red", "blue"], 200), names[1]: rng.randn(200),
                          names[2]: rng.randn(200)})
    y = (frame[names[1]] > 0).to_numpy().astype(int)
    prepare = ColumnTransformer([("cat", OneHotEncoder(), [names[0]]), ("num", StandardScaler(), names[1:])])
    model = make_pipeline(prepare, MLPClassifier(dtype="float64", **FAST)).fit(frame, y)
    # skl2onnx names inputs as identifiers, apart from its outputs' names: the columns are found by name
    # (ColumnTransformer takes integer names as positions: those frames keep their order)
    rows = frame if isinstance(names[0], int) else frame[list(reversed(frame.columns))]
    assert_classifier_parity(model, frame.head(), rows, "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_targets", [1, 2])
@pytest.mark.parametrize("transformer", [StandardScaler(), MinMaxScaler(), None])
def test_transformed_target_regressor_inverts_the_target_transform(transformer, n_targets, dtype):
    X, y = make_regression(n_samples=200, n_features=5, n_targets=n_targets, random_state=0)
    y = y * 50 + 1000  # far from the net's scale: the inverse transform matters
    model = TransformedTargetRegressor(MLPRegressor(dtype=dtype, **FAST), transformer=transformer)
    model.fit(X[:150], y[:150])
    assert_regressor_parity(model, X[:2].astype(dtype), X[150:].astype(dtype), dtype, scale=np.abs(y).max())


def test_a_search_exports_its_best_estimator(tabular):
    from sknet.model_selection import RandomizedSearchCV

    X, y, X_test = tabular
    search = RandomizedSearchCV(make_pipeline(StandardScaler(), MLPClassifier(dtype="float64", **FAST)),
                                {"mlpclassifier__lr": [1e-3, 1e-2], "mlpclassifier__n_units": [8, 16]},
                                n_iter=3, cv=2, random_state=0).fit(X, y)
    assert_classifier_parity(search, X[:2], X_test, "float64")
    assert_classifier_parity(search.best_estimator_, X[:2], X_test, "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("labels", ["strings", "booleans", "floats"])
def test_zipmap_is_an_option_as_for_scikit_learn_classifiers(tabular, labels, dtype):
    X, y, X_test = tabular
    y = {"strings": np.array(["ant", "bee", "cat"])[y], "booleans": y == 1, "floats": y * 2.0}[labels]
    model = MLPClassifier(dtype=dtype, **FAST).fit(X, y)
    sample, rows = X[:2].astype(dtype), X_test.astype(dtype)
    out = run(model, sample, rows, options={MLPClassifier: {"zipmap": True}})
    assert list(out) == ["output_label", "output_probability"]
    proba = model.predict_proba(rows)
    # ONNX's ZipMap holds float32 probabilities, whatever the net's dtype: a float64 net's are rounded to
    # float32 (half a unit in the last place of numbers below 1: 6e-8)
    zipped = [[row[c] for c in sorted(row)] for row in out["output_probability"]]
    atol = TOLERANCE["float32"] if dtype == "float32" else 6e-8
    np.testing.assert_allclose(zipped, proba, rtol=0, atol=atol)
    assert_same_labels(out["output_label"], model.predict(rows), proba, "float32")
    columns = run(model, sample, rows, options={id(model): {"zipmap": "columns"}})
    stacked = np.column_stack(list(columns.values())[1:])
    np.testing.assert_allclose(stacked, proba, rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("options", [{MLPClassifier: {"nocl": False}},
                                     {"ids": {"output_class_labels": True}}])
def test_other_options_keep_the_probabilities_tensor(tabular, options):
    X, y, X_test = tabular
    model = MLPClassifier(dtype="float64", **FAST).fit(X, y)
    options = {id(model) if key == "ids" else key: value for key, value in options.items()}
    out = run(model, X[:2], X_test, options=options)
    assert list(out)[:2] == ["label", "probabilities"]
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X_test), rtol=0, atol=1e-9)
    if "output_class_labels" in str(options):
        np.testing.assert_array_equal(out["class_labels"], model.classes_)


def test_skl2onnx_converts_sknet_estimators_after_import(tabular):
    from skl2onnx import to_onnx as skl2onnx_to_onnx

    X, y, X_test = tabular
    graph = skl2onnx_to_onnx(make_pipeline(StandardScaler(), MLPRegressor(**FAST)).fit(X, y), X[:2])
    assert [out.name for out in graph.graph.output] == ["variable"]
    # skl2onnx's default for classifiers, a ZipMap, on float64 rows and a float64 net: a graph that loads
    model = MLPClassifier(dtype="float64", **FAST).fit(X, y)
    session = ort.InferenceSession(skl2onnx_to_onnx(model, X[:2]).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    label, probabilities = session.run(None, {"X": X_test})
    np.testing.assert_array_equal(label, model.predict(X_test))
    assert probabilities[0].keys() == {0, 1, 2}


def test_a_subclass_of_an_sknet_estimator_exports(tabular):
    class Tuned(MLPClassifier):
        pass

    X, y, X_test = tabular
    model = Tuned(**FAST).fit(X, y)
    assert_classifier_parity(model, X[:2], X_test, "float32")
    # options given for a class it derives from are its own (skl2onnx matches classes exactly)
    assert list(run(model, X[:2], X_test, options={MLPClassifier: {"zipmap": True}})) == [
        "output_label", "output_probability"]


class FlatOutput(torch.nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, 1)

    def forward(self, X):
        return self.linear(X)[:, 0]  # (n,): the regressor takes it as the column (n, 1)


def test_a_flat_regression_output_becomes_a_column(tabular):
    X, y, X_test = tabular
    model = TorchRegressor(FlatOutput, dtype="float64", **FAST).fit(X, y * 1.0)
    assert_regressor_parity(model, X[:2], X_test, "float64")


class ValueDependent(torch.nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.linear(X) if X.sum() > 0 else -self.linear(X)


class UnsupportedOperator(ValueDependent):
    def forward(self, X):
        return self.linear(torch.special.i1e(X))


@pytest.mark.parametrize("module, reason", [
    (ValueDependent, "TracerWarning: Converting a tensor to a Python boolean"),
    (UnsupportedOperator, "aten::special_i1e"),
])
def test_a_module_that_does_not_export_is_named_with_torchs_reason(tabular, module, reason):
    X, y, _ = tabular
    model = make_pipeline(StandardScaler(), TorchClassifier(module, max_epochs=1, random_state=0)).fit(X, y)
    with pytest.raises(ExportError, match=rf"{module.__qualname__} of this TorchClassifier does not") as info:
        to_onnx(model, X[:2])
    assert reason in str(info.value)


def test_a_target_transform_that_is_not_affine_is_refused_by_name(tabular):
    X, y, _ = tabular
    model = TransformedTargetRegressor(MLPRegressor(**FAST), func=np.log1p, inverse_func=np.expm1)
    model.fit(X, y + 1.0)
    with pytest.raises(ExportError, match="FunctionTransformer does not export.*StandardScaler, Robust"):
        to_onnx(model, X[:2])
    assert isinstance(model.transformer_, FunctionTransformer)


def test_a_target_transform_inside_another_is_refused_by_name(tabular):
    X, y, _ = tabular
    inner = TransformedTargetRegressor(MLPRegressor(**FAST), transformer=StandardScaler())
    model = TransformedTargetRegressor(inner, transformer=MinMaxScaler()).fit(X, y * 1.0)
    with pytest.raises(ExportError, match="TransformedTargetRegressor inside another's regressor"):
        to_onnx(model, X[:2])


def test_unfitted_models_and_searches_without_refit_are_refused(tabular):
    from sklearn.exceptions import NotFittedError

    from sknet.model_selection import GridSearchCV

    X, y, _ = tabular
    with pytest.raises(NotFittedError):
        to_onnx(make_pipeline(StandardScaler(), MLPClassifier()), X[:2])
    search = GridSearchCV(MLPClassifier(**FAST), {"lr": [1e-2]}, cv=2, refit=False).fit(X, y)
    with pytest.raises(ValueError, match="no best_estimator_ \\(refit=False\\)"):
        to_onnx(search, X[:2])


def test_save_onnx_writes_as_save_does(tabular, tmp_path):
    import os
    import stat

    X, y, _ = tabular
    model = MLPRegressor(**FAST).fit(X, y)
    target = tmp_path / "target.onnx"
    (tmp_path / "link.onnx").symlink_to(target)
    save_onnx(model, tmp_path / "link.onnx", X[:2])
    assert (tmp_path / "link.onnx").is_symlink() and target.stat().st_size > 0  # written through
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # what open() gives a new file
    with pytest.raises(FileNotFoundError, match="folder does not exist") as info:
        save_onnx(model, tmp_path / "missing" / "model.onnx", X[:2])
    assert info.value.filename == str(tmp_path / "missing")


def test_save_onnx_writes_the_graph_and_keeps_the_old_file_when_export_fails(tabular, tmp_path):
    import onnx

    X, y, X_test = tabular
    model = MLPClassifier(dtype="float64", **FAST).fit(X, y)
    path = tmp_path / "model.onnx"
    save_onnx(model, path, X[:2])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, _ = session.run(None, onnx_inputs(session, X_test))
    np.testing.assert_array_equal(label, model.predict(X_test))
    before = path.read_bytes()
    broken = TorchClassifier(ValueDependent, max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ExportError):
        save_onnx(broken, path, X[:2])
    assert path.read_bytes() == before and onnx.load(str(path)).graph.output[0].name == "label"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left behind


@pytest.mark.parametrize("which", ["older", "skl2onnx's latest"])
def test_the_graph_takes_the_opset_asked_for(which):
    # ReduceMean took its axes as an attribute up to opset 17 and as an input from 18 on: the module's
    # graph, written by torch at its own opset (17 to 20), is converted to the one of the whole graph.
    from skl2onnx import get_latest_tested_opset_version

    opset = 15 if which == "older" else get_latest_tested_opset_version()
    rng = np.random.RandomState(0)
    tokens = rng.randint(0, 20, size=(200, 6))
    model = TorchClassifier(BagOfEmbeddings, dtype="float64", **FAST).fit(tokens[:150], tokens[:150, 0] > 9)
    graph = to_onnx(model, tokens[:2], target_opset=opset)
    assert {entry.domain: entry.version for entry in graph.opset_import}[""] == opset
    assert_classifier_parity(model, tokens[:2], tokens[150:], "float64", target_opset=opset)


def test_bytes_and_booleans_are_cast_as_fit_casts_them():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(200, 16)).astype(np.uint8)
    model = MLPClassifier(dtype="float64", **FAST).fit(images, images[:, 0] > 127)
    assert_classifier_parity(model, images[:2], images, "float64")
    flags = images > 127
    model = MLPClassifier(dtype="float64", **FAST).fit(flags, flags[:, 0] ^ flags[:, 1])
    assert_classifier_parity(model, flags[:2], flags, "float64")


def test_a_text_pipeline_takes_strings():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = np.array(["good great film", "great acting good plot", "loved it great", "good fun",
                      "bad awful film", "terrible plot bad acting", "hated it awful", "boring bad"] * 10)
    y = np.array((["pos"] * 4 + ["neg"] * 4) * 10)
    # skl2onnx's text vectorizers compute in float32, whatever the net's dtype: a float32 net, then.
    model = make_pipeline(TfidfVectorizer(), MLPClassifier(**FAST)).fit(texts, y)
    graph = to_onnx(model, texts[:2])
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [0, 1]
    # onnxruntime lowercases in the graph's locale, en_US.UTF-8 by default, which not every machine has.
    assert_classifier_parity(model, texts[:2], texts, "float32", options={TfidfVectorizer: {"locale": "C"}})


def test_a_net_fitted_on_a_sparse_matrix_takes_dense_rows(tabular):
    import scipy.sparse as sp

    X, y, X_test = tabular
    X = np.where(np.abs(X) > 1, X, 0)
    model = MLPClassifier(dtype="float64", **FAST).fit(sp.csr_matrix(X), y)
    graph = to_onnx(model, sp.csr_matrix(X[:2]))
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [0, 6]
    assert_classifier_parity(model, sp.csr_matrix(X[:2]), sp.csr_matrix(X_test), "float64")


# onnxruntime's CPU provider has no float64 LeakyRelu, Elu, Erf (gelu) nor Selu: those run in float32.
FLOAT64_ACTIVATIONS = {"relu", "tanh", "sigmoid", "logistic", "identity"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_with_batch_norm_and_dropout(tabular, activation, dtype):
    import onnx

    X, y, X_test = tabular
    model = MLPClassifier(n_layers=2, n_units=16, activation=activation, batch_norm=True, dropout=0.2,
                          dtype=dtype, **FAST).fit(X, y)
    if dtype == "float32" or activation in FLOAT64_ACTIVATIONS:
        assert_classifier_parity(model, X[:2].astype(dtype), X_test.astype(dtype), dtype)
    else:  # a valid graph all the same, which other runtimes may run
        onnx.checker.check_model(to_onnx(model, X[:2]), full_check=True)
