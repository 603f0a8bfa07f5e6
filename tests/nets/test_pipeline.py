"""sknet nets inside scikit-learn pipelines, column transformers and cross-validation."""

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sknet import MLPClassifier, MLPRegressor

FAST = dict(max_epochs=10, lr=1e-2, random_state=0, device="cpu")


def test_scaled_pipeline_in_cross_val_score(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85


def test_regressor_in_cross_val_score(reg_data):
    X, y = reg_data
    scores = cross_val_score(MLPRegressor(**FAST), X, y, cv=3)
    assert scores.mean() > 0.5


def test_column_transformer_on_a_dataframe():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame({"size": rng.randn(n), "colour": rng.choice(["red", "green", "blue"], n),
                       "weight": rng.randn(n) * 10 + 50})
    y = np.where((df["colour"] == "red") | (df["size"] > 1), "yes", "no")
    pre = ColumnTransformer([("num", StandardScaler(), ["size", "weight"]),
                             ("cat", OneHotEncoder(), ["colour"])])
    pipe = make_pipeline(pre, MLPClassifier(max_epochs=60, lr=1e-2, random_state=0, device="cpu"))
    pipe.fit(df, y)
    assert pipe.score(df, y) > 0.9
    assert set(pipe.predict(df.head(20))) <= {"yes", "no"}


def test_tfidf_sparse_text_pipeline():
    texts = ["good great film", "great acting good plot", "loved it great", "good fun",
             "bad awful film", "terrible plot bad acting", "hated it awful", "boring bad"] * 10
    y = (["pos"] * 4 + ["neg"] * 4) * 10
    pipe = make_pipeline(TfidfVectorizer(), MLPClassifier(max_epochs=30, lr=1e-2, random_state=0,
                                                          device="cpu"))
    pipe.fit(texts, y)
    assert list(pipe.predict(["great good film", "awful boring plot"])) == ["pos", "neg"]


def test_scikit_learn_grid_search_sets_flat_hyperparameters(clf_data):
    X, y = clf_data
    grid = {"mlpclassifier__lr": [1e-4, 1e-2], "mlpclassifier__n_layers": [1, 2]}
    search = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(max_epochs=10, random_state=0,
                                                                        device="cpu")), grid, cv=3)
    search.fit(X, y)
    assert search.best_params_["mlpclassifier__lr"] == 1e-2
    assert len(search.best_estimator_[-1].net_.module_.hidden) // 2 == \
        search.best_params_["mlpclassifier__n_layers"]
