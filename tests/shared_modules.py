"""Torch modules that tests in several folders train (``pythonpath`` in pyproject.toml puts tests/ on
the import path)."""

import torch
from torch import nn


class BagOfEmbeddings(nn.Module):
    """The mean of the tokens' embeddings, then a linear layer: needs integer token ids."""

    def __init__(self, n_outputs, vocabulary=20, width=8):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, width)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, X):
        assert X.dtype == torch.int64, X.dtype  # the ids reach the module as integers
        return self.head(self.embedding(X).mean(dim=1))
