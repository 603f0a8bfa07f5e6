"""Which module classes a model file may name, and how ``load`` finds them without importing the untrusted.

A file names the class of its network's module as ``"package.module:Qualified.Name"``.
Importing a Python module runs its code, so ``load`` takes such a class only from a
module that is imported already, or from one the user trusts (``trusted=``, as in
skops); the names are looked up statically, so that no ``__getattr__`` runs.
"""

import dataclasses
import importlib
import inspect
import os
import sys

import torch


def valid_class_name(name):
    """Whether ``name`` reads ``"package.module:Qualified.Name"``: identifiers, none of them a dunder.

    Classes that ``save`` accepts are named so; a dunder (``__main__``, ``__globals__``)
    could only lead a hand-made name to objects no model was saved with.
    """
    module_name, colon, qualname = name.partition(":")
    parts = module_name.split(".") + qualname.split(".")
    return colon == ":" and all(part.isidentifier() and not (part.startswith("__") and part.endswith("__"))
                                for part in parts)


def qualified_name(module_class):
    """``"package.module:Qualified.Name"`` of a class."""
    return f"{module_class.__module__}:{module_class.__qualname__}"


def find(name):
    """The object ``name`` ("package.module:Qualified.Name") designates, importing its module if needed.

    Only call it on a trusted name, or one whose module is imported already: importing runs code.
    The names are looked up statically: a module's ``__getattr__`` (which may import submodules)
    or a descriptor never runs.
    """
    module_name, _, qualname = name.partition(":")
    found = sys.modules.get(module_name)
    if found is None:
        found = importlib.import_module(module_name)
    where = module_name
    for part in qualname.split("."):
        try:
            found = inspect.getattr_static(found, part)
        except AttributeError:
            raise AttributeError(f"{where!r} has no attribute {part!r}") from None
        where = f"{where}{'.' if ':' in where else ':'}{part}"
    return found


@dataclasses.dataclass(frozen=True)
class ModuleClassName:
    """A module class as a model file names it, not yet looked up: reading a file imports nothing."""

    name: str

    def imported(self):
        """Whether the Python module that defines the class is imported already."""
        return sys.modules.get(self.name.partition(":")[0]) is not None


def import_path(module_class):
    """``"package.module:Qualified.Name"`` of a module class that ``load`` can find again, else ValueError."""
    name = qualified_name(module_class)
    try:  # only an imported module can hold this very class: find imports nothing here
        found = find(name) if valid_class_name(name) and ModuleClassName(name).imported() else None
    except Exception:  # e.g. AttributeError: a class no longer where it was defined
        found = None
    if found is not module_class:
        raise ValueError(
            f"Cannot save module={module_class.__qualname__} (from {module_class.__module__}): save() "
            "stores the module class by its import path, so the class must be importable. Define it at "
            "the top level of a module (not in __main__, a notebook or a function), or pickle the model."
        )
    return name


def untrusted(params):
    """The sorted names of the module classes in decoded ``params`` whose modules are not imported."""
    return sorted(value.name for value in params.values()
                  if isinstance(value, ModuleClassName) and not value.imported())


def checked_trusted(trusted):
    """``trusted`` as a set of class names, after checking it is None or a list of such names."""
    if trusted is None:
        return frozenset()
    if not (isinstance(trusted, (list, tuple)) and all(isinstance(name, str) for name in trusted)):
        raise TypeError("The 'trusted' parameter of sknet.load must be None or a list of str such as "
                        f"['package.module:Class']. Got {trusted!r:.200} instead.")
    malformed = [name for name in trusted if not valid_class_name(name)]
    if malformed:
        raise ValueError("The 'trusted' parameter of sknet.load names classes as 'package.module:Class', "
                         f"as sknet.get_untrusted_types lists them. Got {malformed!r:.200} in it.")
    return frozenset(trusted)


def resolve_module_class(name, estimator_name, path, trusted):
    """The torch module class ``name`` (a ``ModuleClassName``) designates, if imported or trusted."""
    module_name = name.name.partition(":")[0]
    if not name.imported() and name.name not in trusted:
        raise ValueError(
            f"{path!s} names the module class {name.name!r}, whose module {module_name!r} is not imported: "
            "loading would import it, which runs its code, and sknet.load imports only what it is told to "
            f"trust. If that code is what you expect, load with sknet.load({os.fspath(path)!r}, "
            f"trusted={[name.name]!r}), or run 'import {module_name}' before loading.")
    try:
        found = find(name.name)
    except Exception as exc:  # whatever its import raises: the file is valid, the code is missing
        raise ValueError(
            f"{path!s} holds a {estimator_name} whose module class {name.name!r} it was saved with cannot "
            f"be imported ({cause(exc)}): install or restore the code that defines it, or save the model "
            "again from where that code is.") from exc
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        kind = "" if isinstance(found, type) else f" (it is a {type(found).__name__})"
        raise ValueError(f"{path!s} is not a valid sknet model file: its module class {name.name!r} is not "
                         f"a torch.nn.Module subclass{kind}.")
    return found


def cause(exc):
    return f"{type(exc).__name__}: {str(exc).rstrip('.')}"
