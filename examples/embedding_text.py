"""
Token embeddings for a text task, tuned by random search
========================================================

A module of your own can read integer inputs: here token ids. The task: which
library (numpy, scipy, scikit-learn or PyTorch) does a line of API documentation
come from? The texts are the first lines of the docstrings of the libraries'
public functions and classes, read from the installed packages (nothing is
downloaded), with the libraries' names blanked out.

A small scikit-learn transformer turns each text into a row of token ids
(0 pads the short ones), and ``sknet.TorchClassifier`` trains an embedding
model on them: the mean of the tokens' embedding vectors, then a linear layer.
The pipeline is tuned by ``RandomizedSearchCV`` over the embedding size and the
learning rate; the search fits the transformer once per fold and trains the
candidates × folds of each embedding size as one batched model. Set
``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import importlib
import inspect
import os
import re
from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from torch import nn

from sknet import TorchClassifier
from sknet.model_selection import RandomizedSearchCV

LIBRARIES = {
    "numpy": ["numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.ma"],
    "scipy": ["scipy.stats", "scipy.linalg", "scipy.signal", "scipy.optimize", "scipy.sparse"],
    "scikit-learn": ["sklearn.linear_model", "sklearn.preprocessing", "sklearn.metrics",
                     "sklearn.cluster", "sklearn.decomposition", "sklearn.ensemble"],
    "pytorch": ["torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.optim"],
}
NAMES = re.compile(r"\b(numpy|np|scipy|sklearn|scikit|learn|torch|pytorch|tensor\w*|array\w*)\b", re.I)
WORDS = re.compile(r"[a-z]{2,}")


def first_lines(module_names):
    """The first paragraph of each public callable's docstring in these modules, names blanked out."""
    texts = set()
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for name in dir(module):
            if name.startswith("_") or not callable(getattr(module, name, None)):
                continue
            doc = inspect.getdoc(getattr(module, name)) or ""
            text = NAMES.sub(" ", doc.split("\n\n")[0]).lower()
            if len(WORDS.findall(text)) >= 4:
                texts.add(text)
    return sorted(texts)


class TokenIds(TransformerMixin, BaseEstimator):
    """Texts -> rows of ``length`` token ids: the ``vocabulary`` most frequent words of the
    training texts are 1, 2, ...; other words are dropped; 0 pads."""

    def __init__(self, vocabulary=2000, length=24):
        self.vocabulary = vocabulary
        self.length = length

    def fit(self, X, y=None):
        counts = Counter(word for text in X for word in WORDS.findall(text))
        self.ids_ = {word: i + 1 for i, (word, _) in enumerate(counts.most_common(self.vocabulary))}
        return self

    def transform(self, X):
        rows = np.zeros((len(X), self.length), dtype=np.int64)
        for r, text in enumerate(X):
            ids = [self.ids_[word] for word in WORDS.findall(text) if word in self.ids_][: self.length]
            rows[r, : len(ids)] = ids
        return rows


class MeanEmbedding(nn.Module):
    """The mean embedding vector of a row's tokens (pads left out), then a linear layer."""

    def __init__(self, n_outputs, n_tokens=2001, dim=32):
        super().__init__()
        self.embed = nn.Embedding(n_tokens, dim, padding_idx=0)
        self.out = nn.Linear(dim, n_outputs)

    def forward(self, X):
        present = (X > 0).unsqueeze(-1).to(self.embed.weight.dtype)
        mean = (self.embed(X) * present).sum(dim=1) / present.sum(dim=1).clamp(min=1)
        return self.out(mean)


fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
texts, labels = [], []
for library, modules in LIBRARIES.items():
    found = first_lines(modules)
    texts += found
    labels += [library] * len(found)
texts, labels = np.array(texts, dtype=object), np.array(labels)
counts = zip(*np.unique(labels, return_counts=True), strict=True)
print(f"{len(texts)} docstring texts: " + ", ".join(f"{name} {n}" for name, n in counts))
X_train, X_test, y_train, y_test = train_test_split(texts, labels, test_size=0.25, stratify=labels,
                                                    random_state=0)

model = make_pipeline(TokenIds(vocabulary=2000),
                      TorchClassifier(MeanEmbedding, module__n_tokens=2001, class_weight="balanced",
                                      max_epochs=3 if fast else 40, random_state=0))
space = {"torchclassifier__module__dim": [8, 32] if fast else [8, 16, 32, 64],
         "torchclassifier__lr": (3e-3, 1e-1, "log-uniform")}
search = RandomizedSearchCV(model, space, n_iter=2 if fast else 12, cv=3, scoring="balanced_accuracy",
                            random_state=0).fit(X_train, y_train)

print(f"{search.n_batched_fits_} fits trained by the batched engine")
print(f"best CV balanced accuracy {search.best_score_:.4f} with {search.best_params_}")
print(f"test balanced accuracy: {search.score(X_test, y_test):.4f} (chance: 0.25)")
