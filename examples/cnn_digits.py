"""
A small CNN on the digits, tuned by grid search
===============================================

``sknet.TorchClassifier`` takes any ``torch.nn.Module`` class. Its constructor
arguments are tuned as ``module__<name>`` parameters, next to the training
hyperparameters (``lr``, ``batch_size``, ``max_epochs``...), and the searches
train the candidates × folds of each shape of network as one batched model.

Here the 8×8 digits are images of shape ``(n, 1, 8, 8)``, and a two-layer CNN
is tuned over its channels, kernel size and dropout, and the learning rate.
``n_outputs`` is filled in from the data (the number of classes). Set
``SKNET_EXAMPLES_FAST=1`` for a quick run.
"""

import os

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from sknet import TorchClassifier
from sknet.model_selection import GridSearchCV


class DigitsCNN(nn.Module):
    """conv -> ReLU -> 2x2 max-pool -> dropout -> linear, on (n, 1, 8, 8) images."""

    def __init__(self, n_outputs, channels=8, kernel_size=3, dropout=0.0):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size, padding=kernel_size // 2)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(channels * 4 * 4, n_outputs)

    def forward(self, X):
        hidden = self.pool(torch.relu(self.conv(X)))
        return self.out(self.drop(hidden.flatten(1)))


fast = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)  # images: (n, channels, height, width)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

grid = {
    "module__channels": [4, 16] if fast else [4, 8, 16],
    "module__kernel_size": [3] if fast else [3, 5],
    "module__dropout": [0.0] if fast else [0.0, 0.25],
    "lr": [3e-3] if fast else [1e-3, 3e-3, 1e-2],
}
net = TorchClassifier(DigitsCNN, max_epochs=2 if fast else 15, random_state=0)
search = GridSearchCV(net, grid, cv=3).fit(X_train, y_train)

print(f"{len(search.cv_results_['params'])} candidates x 3 folds, "
      f"{search.n_batched_fits_} fits trained by the batched engine")
print(f"best CV accuracy {search.best_score_:.4f} with {search.best_params_}")
print(f"test accuracy of the refitted best CNN: {search.score(X_test, y_test):.4f}")
