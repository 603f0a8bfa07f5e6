"""What makes two searches the same search: descriptions of values, digests of data and code.

A checkpoint (:mod:`sknet.checkpoint`) stores a search's identity, part by part, and a search
run again on it must have the same. This module computes the parts (:func:`describe` for
parameters and spaces, :func:`data_identity` for data, :func:`code_digest` for the code of a
user's torch module) and says in words how two of them differ (:func:`explain`).
"""

import ast
import functools
import hashlib
import inspect
import json
import math
import numbers
import os
import pickle
import textwrap

import numpy as np


def describe(value):
    """A stable, JSON-able description of a parameter value, for telling searches apart.

    Two values describe the same when they would make a search compute the
    same: estimators by class and parameters (not their ``repr``, which
    scikit-learn abbreviates), arrays and data by digest, functions by name,
    distributions by name and arguments, other objects by class and
    attributes. Nothing in it depends on memory addresses or on the process.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> describe({"C": 1.0, "model": LogisticRegression(C=2.0), "sizes": (8, 8)})["C"]
    1.0
    >>> describe(LogisticRegression(C=2.0))["params"]["C"]
    2.0
    """
    return _describe(value, ())


def _describe(value, seen):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.generic):
        return _describe(value.item(), seen)
    if isinstance(value, np.ndarray):
        return {"array": data_digest(value)}
    if id(value) in seen or len(seen) > 30:
        return {"class": _name(type(value))}  # a cycle, or absurdly deep: the class will do
    seen = (*seen, id(value))
    if isinstance(value, list):
        return [_describe(v, seen) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [_describe(v, seen) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"set": sorted((_describe(v, seen) for v in value), key=canonical)}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _describe(v, seen) for k, v in value.items()}
        pairs = [[_describe(k, seen), _describe(v, seen)] for k, v in value.items()]
        return {"dict": sorted(pairs, key=canonical)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.random.RandomState):
        return {"RandomState": _state_digest(value)}
    if isinstance(value, functools.partial):
        return {"partial": _describe(value.func, seen), "args": _describe(value.args, seen),
                "keywords": _describe(value.keywords, seen)}
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return {"callable": _name(value)}  # classes, functions, methods: by name
    if hasattr(value, "get_params"):
        return {"class": _name(type(value)), "params": _describe(value.get_params(deep=False), seen)}
    if all(hasattr(value, a) for a in ("dist", "args", "kwds")):  # a frozen scipy.stats distribution
        return {"distribution": getattr(value.dist, "name", _name(type(value.dist))),
                "args": _describe(value.args, seen), "kwds": _describe(value.kwds, seen)}
    if hasattr(value, "__dict__"):  # skopt dimensions, scorers...: their attributes, not their repr
        return {"class": _name(type(value)), "attributes": _describe(vars(value), seen)}
    text = repr(value)
    return {"class": _name(type(value)), **({"repr": text} if " at 0x" not in text else {})}


def module_classes(*values):
    """The user's torch module classes that ``values`` name, by name: ``{"pkg.mod.Net": Net}``.

    Searched as :func:`describe` describes: estimators' parameters (pipeline
    steps and nested estimators included), lists, dicts, search space
    dimensions. Classes of torch and of sknet itself are left out: their
    code is the libraries' version, which a checkpoint records but does not compare.

    Examples
    --------
    >>> from torch import nn
    >>> from sknet import TorchClassifier
    >>> Net = type("Net", (nn.Module,), {"__module__": "models"})  # as if defined in models.py
    >>> list(module_classes(TorchClassifier(Net), {"module__act": [nn.ReLU]}))
    ['models.Net']
    """
    from torch import nn  # here: the journal itself needs no torch

    found = {}
    for value in values:
        _find_modules(value, nn.Module, found, ())
    return dict(sorted(found.items()))


def _find_modules(value, base, found, seen):
    if isinstance(value, type):
        if issubclass(value, base) and not _is_library(value):
            found[_name(value)] = value
        return
    if isinstance(value, base):  # a module instance: its class's code
        _find_modules(type(value), base, found, seen)
        return
    if isinstance(value, (str, bytes, numbers.Number, np.ndarray, np.generic)) or value is None:
        return
    if id(value) in seen or len(seen) > 30:  # a cycle, or absurdly deep, as in _describe
        return
    seen = (*seen, id(value))
    if isinstance(value, dict):
        children = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = value
    elif isinstance(value, functools.partial):
        children = [value.func, value.args, value.keywords]
    elif hasattr(value, "get_params"):
        children = value.get_params(deep=False).values()
    elif hasattr(value, "__dict__"):  # skopt dimensions (their categories)
        children = vars(value).values()
    else:
        return
    for child in children:
        _find_modules(child, base, found, seen)


def _is_library(cls):
    return cls.__module__.split(".")[0] in ("builtins", "torch", "sknet")


def code_digest(cls):
    """A digest of a class's code, and the names of the classes whose source could not be read.

    The code is the source of the class and of its bases outside torch,
    sknet and ``builtins``, read with :func:`inspect.getsource` (the file as
    it is on disk now), parsed, stripped of its docstrings and written back
    with :func:`ast.unparse`: a comment, a docstring or reformatting leaves the
    digest as it was, a change of code does not. A class whose source cannot
    be read (defined in an interactive session or by ``exec``) counts by its
    name only, and is named in the second value.

    Returns
    -------
    digest : str
        32 hex digits.
    unread : tuple of str
        The names of the classes counted by name only.

    Examples
    --------
    >>> from fractions import Fraction
    >>> digest, unread = code_digest(Fraction)
    >>> len(digest), unread
    (32, ())
    """
    digest, unread = hashlib.blake2b(digest_size=16), []
    for c in cls.__mro__:
        if _is_library(c):
            continue
        code = _class_code(c)
        if code is None:
            unread.append(_name(c))
        digest.update(f"{_name(c)}\n{code or ''}\n".encode())
    return digest.hexdigest(), tuple(unread)


def _class_code(cls):
    """A class's source as its syntax tree writes it back (no comments, docstrings, layout); or None."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    # unparse, not ast.dump: dump's text changes with Python's AST fields (3.12, 3.13), unparse's far less
    return ast.unparse(tree)


def data_digest(value):
    """A digest of training data: arrays, sparse matrices, DataFrames, lists; None for None."""
    if value is None:
        return None
    digest = hashlib.blake2b(digest_size=16)
    _feed(digest, value)
    return digest.hexdigest()


def data_identity(value):
    """What a checkpoint stores of one input of a search (``X``, ``y``, a fit parameter).

    The exact digest (:func:`data_digest`) is the identity: data in another
    dtype or container may train differently, e.g. float32 against float64.
    The digest of the values alone and the form (container, dtypes, shape)
    only explain a mismatch: the same values passed in another form.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = data_identity(np.eye(2, dtype=np.float32)), data_identity(np.eye(2))
    >>> a["digest"] == b["digest"], a["values"] == b["values"], b["form"]["dtypes"]
    (False, True, ['float64'])
    """
    if value is None:
        return None
    return {"digest": data_digest(value), "values": _values_digest(value), "form": _form(value)}


# Values cast at a time for the value digests, so that large data is not copied whole.
_CHUNK = 1 << 20


def _values_digest(value):
    """Digests of the numbers alone, as float64 and as float32, with the shape; None if not numeric."""
    if hasattr(value, "tocsr") and hasattr(value, "nnz"):  # sparse: any format, any index dtype
        csr = value.tocsr().copy()
        csr.sum_duplicates()
        values, shape, indices = csr.data, csr.shape, [csr.indices, csr.indptr]
    else:
        array = np.asarray(value) if _is_rectangular(value) else None
        if array is None or array.dtype.kind not in "biuf":
            return None  # text, objects: only the exact digest can tell
        values, shape, indices = array.reshape(-1), array.shape, []
    digests = {np.float64: hashlib.blake2b(digest_size=16), np.float32: hashlib.blake2b(digest_size=16)}
    for dtype, digest in digests.items():
        digest.update(repr(tuple(shape)).encode())
        for start in range(0, len(values), _CHUNK):
            digest.update(values[start:start + _CHUNK].astype(dtype).data)
        for part in indices:
            digest.update(part.astype(np.int64).data)
    return [digest.hexdigest() for digest in digests.values()]


def _form(value):
    """The container, dtypes and shape of some data: what a message says when only these differ."""
    kind = type(value)
    top = kind.__module__.split(".")[0]
    form = {"type": kind.__name__ if top == "builtins" else f"{top}.{kind.__name__}"}
    if hasattr(value, "columns") and hasattr(value, "dtypes"):  # a DataFrame
        form["dtypes"] = list(dict.fromkeys(str(dtype) for dtype in value.dtypes))
        form["columns"] = data_digest([str(column) for column in value.columns])
    elif hasattr(value, "dtype"):
        form["dtypes"] = [str(value.dtype)]
    elif _is_rectangular(value):
        form["dtypes"] = [str(np.asarray(value).dtype)]
    shape = getattr(value, "shape", None)
    if shape is None and _is_rectangular(value):
        shape = np.asarray(value).shape
    if shape is not None:
        form["shape"] = list(shape)
    return form


def _feed(digest, value):
    if hasattr(value, "tocsr") and hasattr(value, "nnz"):  # scipy.sparse, any format: the same matrix
        csr = value.tocsr().copy()
        csr.sum_duplicates()
        digest.update(f"sparse{csr.shape}".encode())
        for part in (csr.data, csr.indices, csr.indptr):
            _feed(digest, part)
        return
    digest.update(_name(type(value)).encode())
    if isinstance(value, np.ndarray):
        digest.update(f"{value.shape}{value.dtype.str}".encode())
        if value.dtype.hasobject:
            digest.update(pickle.dumps(value.tolist(), protocol=4))
        else:
            digest.update(np.ascontiguousarray(value).data)
    elif hasattr(value, "columns") and hasattr(value, "dtypes"):  # a DataFrame
        digest.update(repr(list(value.columns)).encode())
        for _, column in value.items():
            _feed(digest, column)
    elif hasattr(value, "to_numpy") and hasattr(value, "dtype"):  # a Series
        digest.update(f"{value.name!r}{value.dtype}".encode())
        _feed(digest, value.to_numpy())
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
        digest.update(f"{len(value)}".encode())  # a sequence of arrays, e.g. cross-validation splits
        for part in value:
            _feed(digest, part)
    elif isinstance(value, (list, tuple)):
        _feed(digest, np.asarray(value) if _is_rectangular(value) else np.asarray(value, dtype=object))
    else:
        try:
            digest.update(pickle.dumps(value, protocol=4))
        except Exception:
            digest.update(repr(value).encode())


def _is_rectangular(value):
    try:
        return np.asarray(value).dtype != object
    except ValueError:
        return False


def random_state_to_json(rng):
    """A ``RandomState``'s full state as JSON-able data."""
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)]


def random_state_from_json(state):
    """A new ``RandomState`` in the state :func:`random_state_to_json` saved."""
    rng = np.random.RandomState()
    name, keys, pos, has_gauss, cached = state
    rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    return rng


def _state_digest(rng):
    return hashlib.blake2b(canonical(random_state_to_json(rng)).encode(), digest_size=16).hexdigest()


def _name(obj):
    return f"{getattr(obj, '__module__', None) or ''}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def canonical(value):
    """JSON text that is equal for equal values (sorted keys, no spaces, numpy as Python)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=plain)


def plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Cannot journal {type(value).__name__} {value!r}: it is not plain data.")


def differences(old, new, path=()):
    """Where two JSON structures differ: ``["params.lr: 0.01 in the checkpoint, 0.1 now", ...]``."""
    if canonical(old) == canonical(new):
        return []
    where = ".".join(path) or "value"
    if all(isinstance(v, str) and len(v) == 32 and set(v) <= set("0123456789abcdef") for v in (old, new)):
        return [f"{where}: another digest"]  # data and splits are compared by digest only
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if key not in old:
                out.append(f"{'.'.join((*path, key))}: absent in the checkpoint, {_short(new[key])} now")
            elif key not in new:
                out.append(f"{'.'.join((*path, key))}: {_short(old[key])} in the checkpoint, absent now")
            else:
                out += differences(old[key], new[key], (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in differences(a, b, (*path, f"[{i}]"))]
    return [f"{where}: {_short(old)} in the checkpoint, {_short(new)} now"]


def _data_differences(old, new):
    """What differs in the data: other values, or the same values in another form."""
    if not all(isinstance(part, dict) and all(v is None or isinstance(v, dict) and "digest" in v
                                              for v in part.values()) for part in (old, new)):
        return differences(old, new)  # not data_identity's (a Journal used directly)
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None or b is None:
            out.append(f"{name}: {_form_text(a)} in the checkpoint, {_form_text(b)} now")
        elif a["values"] is not None and a["values"] == b["values"]:
            out.append(_same_values(name, a["form"], b["form"], ""))
        elif a["values"] and b["values"] and a["values"][1] == b["values"][1] and a["form"] != b["form"]:
            out.append(_same_values(name, a["form"], b["form"], " to float32 precision"))
        else:
            shapes = a["form"].get("shape"), b["form"].get("shape")
            out.append(f"{name} holds other values than in the checkpoint" + (
                f" (shape {tuple(shapes[1])} now, {tuple(shapes[0])} in the checkpoint)"
                if shapes[0] != shapes[1] and None not in shapes else ""))
    return out


def _same_values(name, old, new, precision):
    if _form_text(old) != _form_text(new):
        how = f"but as {_form_text(new)} now and {_form_text(old)} in the checkpoint"
    elif old.get("columns") != new.get("columns"):
        how = "but with other column names than in the checkpoint"
    else:
        how = "but under another name than in the checkpoint"
    return (f"{name} holds the same values{precision}, {how}; pass {name} as it was to resume, or use a "
            "new checkpoint path")


def _form_text(form):
    """``"a numpy.ndarray of float32"``; ``"absent"`` for no data."""
    if form is None:
        return "absent"
    form = form.get("form", form)  # a data_identity, or its form
    article = "an" if form["type"][0].lower() in "aeiou" else "a"
    dtypes = form.get("dtypes")
    return f"{article} {form['type']}" + (f" of {', '.join(dtypes)}" if dtypes else "")


def _code_differences(old, new):
    """What differs in the code of the search's torch modules (:func:`code_digest` by class name)."""
    if old is None:
        return ["the checkpoint does not record its module's code (it was written by an earlier sknet), "
                "so it cannot tell whether the code changed: pass a new checkpoint path"]
    if not isinstance(old, dict) or not isinstance(new, (dict, type(None))):  # not what sknet writes
        return differences(old, new)
    if new is None:
        return [f"the checkpoint records the code of {', '.join(old)}, which this search does not use"]
    changed = [name for name in sorted(set(old) & set(new)) if old[name] != new[name]]
    out = [f"{name} is a module of this search, not of the checkpoint's"
           for name in sorted(set(new) - set(old))]
    out += [f"{name} is a module of the checkpoint's search, not of this one"
            for name in sorted(set(old) - set(new))]
    if changed:  # several when they share a base class whose code changed
        which = (f"{changed[0]}'s code" if len(changed) == 1 else
                 f"the code of {', '.join(changed[:-1])} and {changed[-1]}")
        out.insert(0, f"{which} changed since the checkpoint was written; restore it to resume, or pass a "
                   "new checkpoint path to search with the new code")
    return out


# How a mismatch of an identity part is explained (_differences for the others).
_EXPLAIN = {"data": _data_differences, "module code": _code_differences}


def explain(part, old, new):
    """In words, how the identity part ``part`` stored in a checkpoint (``old``) differs from ``new``."""
    details = _EXPLAIN.get(part, differences)(old, new)
    return "; ".join(details[:3] or ["differs"]) + _HINTS.get(part, "")


_HINTS = {
    "cv": " (other splits; a splitter that shuffles needs a fixed random_state)",
}


def _short(value, limit=80):
    text = canonical(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
