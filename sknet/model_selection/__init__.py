"""Hyperparameter searches with scikit-learn's API: grid, random, Bayesian and genetic."""

from ._bayes import BayesSearchCV
from ._genetic import GeneticSearchCV
from ._grid import GridSearchCV
from ._random import RandomizedSearchCV

__all__ = ["BayesSearchCV", "GeneticSearchCV", "GridSearchCV", "RandomizedSearchCV"]
