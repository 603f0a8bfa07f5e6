"""pytest plugin: run scikit-learn's own search tests against sknet's searches.

Loaded with ``-p sknet_upstream_plugin`` before scikit-learn's test modules are
imported, it swaps scikit-learn's search classes for sknet's in the namespace
those modules import from, so ``from sklearn.model_selection import GridSearchCV``
inside them yields sknet's class.
"""

import sklearn.experimental.enable_halving_search_cv  # noqa: F401 (scikit-learn's own names first)
import sklearn.model_selection

import sknet.model_selection

SWAPPED = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")


def pytest_configure(config):
    for name in SWAPPED:
        setattr(sklearn.model_selection, name, getattr(sknet.model_selection, name))


def pytest_collection_finish(session):
    # Fail loudly if the swap did not reach the modules under test: a suite that
    # silently ran against scikit-learn's own classes would prove nothing.
    for item in session.items:
        namespace = getattr(item.module, "__dict__", {})
        for name in SWAPPED:
            if name in namespace and namespace[name] is not getattr(sknet.model_selection, name):
                raise RuntimeError(f"{item.module.__name__}.{name} is not sknet's class")
