"""Hyperparameter searches with scikit-learn's API: grid, random, successive halving, Hyperband and BOHB,
Bayesian, genetic, population-based training."""

from ._bayes import BayesSearchCV
from ._genetic import GeneticSearchCV
from ._grid import GridSearchCV
from ._halving import HalvingGridSearchCV, HalvingRandomSearchCV
from ._hyperband import HyperbandSearchCV
from ._population import PopulationSearchCV
from ._random import RandomizedSearchCV

__all__ = ["BayesSearchCV", "GeneticSearchCV", "GridSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV",
           "HyperbandSearchCV", "PopulationSearchCV", "RandomizedSearchCV"]
