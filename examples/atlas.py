"""
The hyperparameter atlas
========================

Popular articles on neural-network hyperparameters print tables of how the
learning rate, batch size, depth, activation, regularisation, optimizer,
dropout rate, weight initialisation and number of epochs change the results,
with numbers that are illustrative, not measured. This script measures each of
those nine tables with ``sknet`` on data that ships with scikit-learn (digits,
diabetes) and on a text task built from local files (the docstrings of
numpy, scipy, scikit-learn and PyTorch, labelled by library), with 5-fold
cross-validation, and reports every number as mean ± standard deviation over
the folds. Each table is written as Markdown with a figure into
``docs/atlas/`` and printed; ``docs/atlas.md`` sets them beside the articles'
claims. A full run takes 3-4 minutes on two CPU cores, too long for every
documentation build, so the gallery shows this script without running it.
``SKNET_EXAMPLES_FAST=1`` runs tiny settings and writes into a temporary
directory, leaving the committed tables alone.
"""

import ast
import importlib.util
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the script writes files; it never opens a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

import sknet  # noqa: E402
from sknet import MLPClassifier, MLPRegressor  # noqa: E402
from sknet.model_selection import GridSearchCV  # noqa: E402

FAST = os.environ.get("SKNET_EXAMPLES_FAST") == "1"
SEED = 0
N_FOLDS = 3 if FAST else 5


def epochs(full, fast=3):
    """The epoch budget of a table: ``full`` normally, ``fast`` under SKNET_EXAMPLES_FAST=1."""
    return fast if FAST else full


def output_dir():
    """docs/atlas/ of this checkout; a fresh temporary directory in fast mode."""
    if FAST:
        return Path(tempfile.mkdtemp(prefix="sknet-atlas-"))
    here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd() / "examples"
    return here.parent / "docs" / "atlas"


# -- data -----------------------------------------------------------------------------------------

def digits():
    """scikit-learn's handwritten digits: 1797 8x8 images, 10 classes (a stratified 450 in fast mode)."""
    X, y = load_digits(return_X_y=True)
    if FAST:
        keep = np.random.RandomState(SEED).permutation(len(y))[:450]
        X, y = X[keep], y[keep]
    return X, y


def diabetes():
    """scikit-learn's diabetes regression data: 442 patients, 10 features, a disease-progression score."""
    return load_diabetes(return_X_y=True)


TEXT_PACKAGES = ("numpy", "scipy", "sklearn", "torch")  # all four are sknet dependencies
# Names that give the answer away are blanked out of the text.
_GIVEAWAYS = re.compile(r"\b(numpy|np|scipy|sp|sklearn|scikit-learn|scikit|sk|torch|pytorch)\b",
                        re.IGNORECASE)
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]+\n\s*-{3,}\s*$", re.MULTILINE)


def _description(docstring):
    """The prose of a docstring: the text before its first numpydoc section, without doctest lines."""
    prose = _SECTION.split(docstring)[0]
    lines = [line for line in prose.splitlines() if not line.strip().startswith((">>>", "..."))]
    return " ".join(_GIVEAWAYS.sub(" ", " ".join(lines)).split())


def docstrings(per_class=500, per_file=8, min_words=8):
    """A 4-class text task from local files only: which library does a docstring come from?

    The source files of numpy, scipy, scikit-learn and PyTorch are read (parsed
    with ``ast``, never imported) in a seeded random order; from each file at
    most ``per_file`` docstrings of modules, classes and functions are drawn,
    until ``per_class`` distinct ones per library (every library is then cut to
    the smallest count, so the classes are balanced). Each text is the docstring's
    prose (before its first numpydoc section, doctest lines removed) with the
    libraries' names and aliases blanked out; texts under ``min_words`` words
    are skipped. Test files are left out. The corpus depends on the installed
    versions.
    """
    if FAST:
        per_class = 60
    rng = np.random.RandomState(SEED)
    texts, seen = [], set()
    for package in TEXT_PACKAGES:
        root = Path(importlib.util.find_spec(package).origin).parent
        files = sorted(path for path in root.rglob("*.py")
                       if "tests" not in path.parts and not path.name.startswith("test"))
        found = []
        for index in rng.permutation(len(files)):
            try:
                tree = ast.parse(files[index].read_text(encoding="utf-8", errors="ignore"))
            except (SyntaxError, ValueError):
                continue
            candidates = []
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    text = _description(doc) if doc else ""
                    if len(text.split()) >= min_words and text not in seen:
                        candidates.append(text)
                        seen.add(text)
            for pick in rng.permutation(len(candidates))[:per_file]:
                found.append(candidates[pick])
            if len(found) >= per_class:
                break
        texts.append(found[:per_class])
    n = min(len(found) for found in texts)
    return (np.array([text for found in texts for text in found[:n]], dtype=object),
            np.repeat(np.array(TEXT_PACKAGES), n))


def _to_dense(X):
    # The batched engine takes dense input only; a 1000-column TF-IDF matrix is small.
    return X.toarray().astype(np.float32)


N_TERMS = 300 if FAST else 1000


def text_pipeline(net):
    """TF-IDF (the 1000 most frequent terms of each training fold) -> dense -> the net.

    Every fold's vocabulary must reach ``N_TERMS`` terms: sknet's batched engine
    stacks the folds' transformed training sets and fails when their widths differ.
    """
    return make_pipeline(TfidfVectorizer(max_features=N_TERMS, sublinear_tf=True, min_df=2),
                         FunctionTransformer(_to_dense, accept_sparse=True), net)


def tabular_pipeline(net):
    return make_pipeline(StandardScaler(), net)


# -- measuring --------------------------------------------------------------------------------------

def final_net(model):
    """The sknet net at the end of a fitted pipeline (or target transformer)."""
    if isinstance(model, TransformedTargetRegressor):
        model = model.regressor_
    return model[-1] if isinstance(model, Pipeline) else model


def probe(model, X, y):
    """A scorer returning several numbers at once: the scores and the training curve of one fit.

    The per-epoch training loss (``loss_curve_``) travels as ``curve_0001``,
    ``curve_0002``, ...; scikit-learn keeps each of them per fold in ``cv_results_``.
    """
    net = final_net(model)
    if isinstance(net, MLPClassifier):
        scores = {"accuracy": accuracy_score(y, model.predict(X)),
                  "log_loss": log_loss(y, model.predict_proba(X), labels=model.classes_)}
    else:
        prediction = model.predict(X)
        scores = {"mse": mean_squared_error(y, prediction), "r2": r2_score(y, prediction)}
    scores["final_train_loss"] = net.loss_curve_[-1]
    scores.update({f"curve_{e + 1:04d}": loss for e, loss in enumerate(net.loss_curve_)})
    return scores


class Result:
    """What a one-parameter grid measured: per candidate, per metric, one value per fold."""

    def __init__(self, search):
        res = search.cv_results_
        self.params = res["params"]
        self.mean_fit_time, self.std_fit_time = res["mean_fit_time"], res["std_fit_time"]
        self.splits = {}
        for key, values in res.items():
            match = re.fullmatch(r"split(\d+)_(test|train)_(.+)", key)
            if match:
                self.splits.setdefault((match[2], match[3]), []).append(np.asarray(values, dtype=float))
        self.engine_time = getattr(search, "engine_time_", None)

    def folds(self, metric, part="test"):
        """Array (n_candidates, n_folds)."""
        return np.stack(self.splits[(part, metric)], axis=1)

    def curves(self):
        """Per-epoch training loss, array (n_candidates, n_folds, n_epochs); NaN past a run's end."""
        names = sorted(name for part, name in self.splits if part == "test" and name.startswith("curve_"))
        return np.stack([self.folds(name) for name in names], axis=2)

    def index(self, **params):
        """Index of the candidate whose parameters (without the pipeline prefix) are ``params``."""
        for i, candidate in enumerate(self.params):
            short = {key.split("__")[-1]: value for key, value in candidate.items()}
            if all(short.get(k) == v for k, v in params.items()):
                return i
        raise KeyError(params)


def cross_validate_grid(model, grid, X, y, *, cv, engine="auto", train_score=False):
    """Cross-validate every candidate of ``grid`` with :func:`probe`; returns a :class:`Result`.

    sknet's GridSearchCV trains all candidates x folds together with the batched
    engine (``engine="auto"``); ``engine="sequential"`` fits them one at a time.
    ``error_score=nan`` keeps a diverging candidate in the table as NaN.
    """
    search = GridSearchCV(model, grid, scoring=probe, refit=False, cv=cv, engine=engine,
                          return_train_score=train_score, error_score=np.nan, n_jobs=1)
    search.fit(X, y)
    return Result(search)


def stratified():
    return StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED)


def pm(values, digits=3, percent=False, sig=False, sign=False):
    """'mean ± std' over folds ('diverged' when a fold's fit failed).

    ``digits`` decimals, or significant digits with ``sig``; ``percent`` shows
    fractions in %, ``sign`` writes a + before positive means (for differences).
    """
    values = np.asarray(values, dtype=float)
    if np.isnan(values).any():
        n = int(np.isnan(values).sum())
        return "diverged" if n == len(values) else f"diverged in {n}/{len(values)} folds"
    scale, unit = (100, " %") if percent else (1, "")
    mean, std = scale * values.mean(), scale * values.std()
    plus = "+" if sign else ""
    if sig and mean != 0 and abs(mean) < 1e-3:
        return f"{mean:{plus}.{digits - 1}e} ± {std:.1e}{unit}"
    if sig:  # the std with as many decimals as the mean shows
        digits = max(0, digits - 1 - int(np.floor(np.log10(abs(mean))))) if mean else digits
    mean = round(mean, digits) + 0.0  # no "-0.0"
    return f"{mean:{plus}.{digits}f} ± {std:.{digits}f}{unit}"


def paired(values, base, digits=1, percent=True):
    """Per-fold difference to a baseline run on the same folds, as 'mean ± std'.

    Folds differ in difficulty for every setting alike; the paired difference
    removes that shared part, so it is the fairer test of "does this setting help".
    """
    return pm(np.asarray(values) - np.asarray(base), digits, percent, sign=True).replace(" %", " pp")


# -- output -----------------------------------------------------------------------------------------

OUT = output_dir()
OUT.mkdir(parents=True, exist_ok=True)
SETUP = (f"sknet {sknet.__version__}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
         f"Python {platform.python_version()}, {os.cpu_count()} CPU cores, torch on 1 thread"
         + (", fast mode" if FAST else ""))
WRITTEN = []


def table(name, caption, header, rows):
    """Write docs/atlas/<name>.md (a caption line and a Markdown table) and print it."""
    lines = [f"| {' | '.join(header)} |", "|" + "|".join(" --- " if i == 0 else " ---: "
                                                     for i in range(len(header))) + "|"]
    lines += [f"| {' | '.join(str(cell) for cell in row)} |" for row in rows]
    text = f"*{caption}*\n\n" + "\n".join(lines) + "\n"
    # "orphan": Sphinx builds this file without a toctree entry and without a warning;
    # docs/atlas.md includes it (MyST's include drops the front matter).
    (OUT / f"{name}.md").write_text(f"---\norphan: true\n---\n\n{text}")
    WRITTEN.append(OUT / f"{name}.md")
    print(f"\n## {name}\n\n{text}", flush=True)


def figure(name, fig):
    fig.tight_layout()
    fig.savefig(OUT / f"{name}.png", dpi=80)
    plt.close(fig)
    WRITTEN.append(OUT / f"{name}.png")


def errorbar(ax, x, values, label=None, **kwargs):
    """Mean ± std over folds (axis 1) of ``values`` against ``x``."""
    values = np.asarray(values, dtype=float)
    ax.errorbar(x, np.nanmean(values, axis=1), yerr=np.nanstd(values, axis=1), marker="o",
                capsize=3, label=label, **kwargs)


def first_epoch(curve, threshold):
    """1-based first epoch whose value is <= threshold; NaN when never."""
    hit = np.flatnonzero(curve <= threshold)
    return hit[0] + 1 if len(hit) else np.nan


# -- the nine tables ----------------------------------------------------------------------------------

def learning_rate():
    """Seed table 1: learning rate vs accuracy on handwritten digits."""
    X, y = digits()
    rates = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    n_epochs = epochs(50)
    model = tabular_pipeline(MLPClassifier(max_epochs=n_epochs, random_state=SEED))
    grid = {"mlpclassifier__optimizer": ["adam", "sgd"], "mlpclassifier__lr": rates}
    res = cross_validate_grid(model, grid, X, y, cv=stratified())
    acc = res.folds("accuracy")
    rows = [[f"{lr:g}"] + [pm(acc[res.index(optimizer=opt, lr=lr)], percent=True, digits=1)
                           for opt in ("adam", "sgd")] for lr in rates]
    table("learning_rate", f"Digits, one hidden layer of 100 ReLU units, batch 128, {n_epochs} epochs; "
          f"{N_FOLDS}-fold CV accuracy, mean ± std over folds.",
          ["learning rate", "accuracy, Adam", "accuracy, SGD (momentum 0.9)"], rows)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for opt, label in (("adam", "Adam"), ("sgd", "SGD, momentum 0.9")):
        errorbar(ax, rates, acc[[res.index(optimizer=opt, lr=lr) for lr in rates]], label=label)
    ax.set(xscale="log", xlabel="learning rate", ylabel="CV accuracy", title="Learning rate (digits)")
    ax.legend()
    figure("learning_rate", fig)


def batch_size():
    """Seed table 2: batch size vs training time (wall time of each fit, one fit at a time)."""
    X, y = digits()
    sizes = [16, 32, 64, 128, 256, 512]
    n_epochs = epochs(30)
    model = tabular_pipeline(MLPClassifier(max_epochs=n_epochs, random_state=SEED))
    res = cross_validate_grid(model, {"mlpclassifier__batch_size": sizes}, X, y, cv=stratified(),
                              engine="sequential")
    acc = res.folds("accuracy")
    n_train = len(y) * (N_FOLDS - 1) / N_FOLDS
    time_cell = [f"{m:.2f} ± {s:.2f}" for m, s in zip(res.mean_fit_time, res.std_fit_time, strict=True)]
    rows = [[bs, time_cell[i], f"{int(np.ceil(n_train / bs)) * n_epochs}",
             pm(acc[i], percent=True, digits=1)] for i, bs in enumerate(sizes)]
    table("batch_size", f"Digits ({int(n_train)} training rows per fold), one hidden layer of 100 ReLU "
          f"units, Adam lr=1e-3, {n_epochs} epochs; wall time of each fit (one at a time, {SETUP}); "
          f"{N_FOLDS}-fold CV, mean ± std over folds.",
          ["batch size", "fit time (s)", "optimizer steps", "accuracy"], rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.3))
    ax1.errorbar(sizes, res.mean_fit_time, yerr=res.std_fit_time, marker="o", capsize=3)
    ax1.set(xscale="log", yscale="log", xlabel="batch size", ylabel="seconds per fit",
            title=f"Training time ({n_epochs} epochs)")
    errorbar(ax2, sizes, acc, color="C1")
    ax2.set(xscale="log", xlabel="batch size", ylabel="CV accuracy", title="Accuracy")
    for ax in (ax1, ax2):
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
    figure("batch_size", fig)


def hidden_layers(text):
    """Seed table 3: number of hidden layers vs accuracy (the seed's task: sentiment analysis)."""
    X, y = text
    layers = [0, 1, 2, 3, 4]
    n_epochs = epochs(30)
    model = text_pipeline(MLPClassifier(max_epochs=n_epochs, random_state=SEED))
    res = cross_validate_grid(model, {"mlpclassifier__n_layers": layers}, X, y, cv=stratified(),
                              train_score=True)
    acc, train = res.folds("accuracy"), res.folds("accuracy", "train")
    one = layers.index(1)
    rows = [[n, pm(acc[i], percent=True, digits=1), "–" if i == one else paired(acc[i], acc[one]),
             pm(train[i], percent=True, digits=1)] for i, n in enumerate(layers)]
    table("hidden_layers", f"Docstring classification ({len(y)} texts, 4 libraries), TF-IDF of {N_TERMS} "
          f"terms, hidden layers of 100 ReLU units (0 = a linear softmax model), Adam lr=1e-3, "
          f"{n_epochs} epochs; {N_FOLDS}-fold CV, mean ± std over folds.",
          ["hidden layers", "CV accuracy", "Δ vs 1 layer (paired)", "training accuracy"], rows)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    errorbar(ax, layers, acc, label="CV (held-out fold)")
    errorbar(ax, layers, train, label="training folds")
    ax.set(xlabel="hidden layers", ylabel="accuracy", xticks=layers,
           title="Depth (docstring classification)")
    ax.legend()
    figure("hidden_layers", fig)


def activation():
    """Seed table 4: activation function vs final loss on a regression task."""
    X, y = diabetes()
    names = ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "selu", "identity"]
    n_epochs = epochs(200)
    # The target is standardised on each training fold (the net's loss is in standard deviations
    # squared); predictions come back in the original units for the test MSE and R^2.
    model = TransformedTargetRegressor(
        regressor=tabular_pipeline(MLPRegressor(max_epochs=n_epochs, batch_size=32, random_state=SEED)),
        transformer=StandardScaler())
    res = cross_validate_grid(model, {"regressor__mlpregressor__activation": names}, X, y,
                              cv=KFold(N_FOLDS, shuffle=True, random_state=SEED))
    final, mse, r2 = res.folds("final_train_loss"), res.folds("mse"), res.folds("r2")
    order = np.argsort(mse.mean(axis=1))
    relu = names.index("relu")
    rows = [[names[i], pm(final[i]), pm(mse[i], 0), "–" if i == relu else paired(mse[i], mse[relu], 0, False),
             pm(r2[i])] for i in order]
    table("activation", f"Diabetes regression (442 patients), one hidden layer of 100 units, Adam lr=1e-3, "
          f"batch 32, {n_epochs} epochs, target standardised on each training fold; final training loss = "
          f"MSE of the last epoch on the standardised target; test MSE in the original units; "
          f"{N_FOLDS}-fold CV, mean ± std over folds, sorted by test MSE.",
          ["activation", "final training loss", "test MSE", "Δ test MSE vs relu (paired)", "test R²"], rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(names))
    for ax, values, label in ((ax1, final[order], "final training loss (standardised)"),
                              (ax2, mse[order], "test MSE (original units)")):
        ax.bar(x, values.mean(axis=1), yerr=values.std(axis=1), capsize=3, color="C0")
        ax.set_xticks(x, [names[i] for i in order], rotation=35, ha="right")
        ax.set(ylabel=label)
    ax1.set_title("Training loss (diabetes)")
    ax2.set_title("Held-out loss (diabetes)")
    figure("activation", fig)


def regularization(text):
    """Seed table 5: L1 vs L2 vs dropout vs validation accuracy on text classification."""
    X, y = text
    n_epochs = epochs(30)
    p = "mlpclassifier__"
    settings = ([("none", "", {})]
                + [("L1", f"l1={v:g}", {"l1": v}) for v in (1e-5, 1e-4, 1e-3)]
                + [("L2", f"weight_decay={v:g}", {"weight_decay": v}) for v in (1e-4, 1e-3, 1e-2)]
                + [("dropout", f"dropout={v:g}", {"dropout": v}) for v in (0.2, 0.5)])
    grid = [{p + k: [v] for k, v in params.items()} or {p + "l1": [0.0]} for _, _, params in settings]
    model = text_pipeline(MLPClassifier(max_epochs=n_epochs, random_state=SEED))
    res = cross_validate_grid(model, grid, X, y, cv=stratified(), train_score=True)
    acc, train = res.folds("accuracy"), res.folds("accuracy", "train")
    index = [res.index(**(params or {"l1": 0.0})) for _, _, params in settings]
    rows = [[kind, strength or "–", pm(acc[i], percent=True, digits=1),
             "–" if i == index[0] else paired(acc[i], acc[index[0]]), pm(train[i], percent=True, digits=1)]
            for (kind, strength, _), i in zip(settings, index, strict=True)]
    table("regularization", f"Docstring classification ({len(y)} texts, 4 libraries), TF-IDF of {N_TERMS} "
          f"terms, one hidden layer of 100 ReLU units, Adam lr=1e-3, {n_epochs} epochs; weight_decay is an "
          f"L2 penalty added to the gradient by Adam; {N_FOLDS}-fold CV, mean ± std over folds.",
          ["regularisation", "strength", "CV accuracy", "Δ vs none (paired)", "training accuracy"], rows)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    colors = {"none": "0.5", "L1": "C0", "L2": "C1", "dropout": "C2"}
    x = np.arange(len(settings))
    ax.bar(x, acc[index].mean(axis=1), yerr=acc[index].std(axis=1), capsize=3,
           color=[colors[kind] for kind, _, _ in settings])
    ax.set_xticks(x, [strength or "none" for _, strength, _ in settings], rotation=35, ha="right")
    low = np.nanmin(acc[index]) - 0.05
    ax.set(ylim=(max(low, 0), None), ylabel="CV accuracy", title="Regularisation (docstring classification)")
    figure("regularization", fig)


def optimizers():
    """Seed table 6: Adam vs RMSprop vs SGD, accuracy and epochs to converge."""
    X, y = digits()
    # sknet passes ``momentum`` (default 0.9) to every optimizer that takes one, RMSprop included;
    # torch's and the textbook RMSprop have none, so both RMSprops are measured.
    variants = {"Adam": ("adam", 0.9), "RMSprop (momentum 0)": ("rmsprop", 0.0),
                "RMSprop (momentum 0.9, sknet's default)": ("rmsprop", 0.9),
                "SGD (momentum 0.9)": ("sgd", 0.9)}
    rates = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    n_epochs = epochs(50, 4)
    p = "mlpclassifier__"
    grid = [{p + "optimizer": [opt], p + "momentum": [momentum], p + "lr": rates}
            for opt, momentum in variants.values()]
    model = tabular_pipeline(MLPClassifier(max_epochs=n_epochs, random_state=SEED))
    res = cross_validate_grid(model, grid, X, y, cv=stratified())
    acc, curves = res.folds("accuracy"), res.curves()
    # Epochs to converge, two definitions, per fold:
    # (a) the first epoch whose training loss has made 95 % of its whole decrease (epoch 1 -> last);
    # (b) the first epoch whose training loss is below 0.1 (cross-entropy; NaN when never).
    start, end = curves[:, :, 0], curves[:, :, -1]
    to_95 = np.array([[first_epoch(c, e + 0.05 * (s - e)) for c, s, e in zip(cs, ss, es, strict=True)]
                      for cs, ss, es in zip(curves, start, end, strict=True)])
    to_01 = np.array([[first_epoch(c, 0.1) for c in cs] for cs in curves])

    def epochs_cell(values):
        if np.isnan(values).all():
            return f"not within {n_epochs}"
        missing = int(np.isnan(values).sum())
        cell = f"{np.nanmean(values):.1f} ± {np.nanstd(values):.1f}"
        return cell + (f" ({missing}/{len(values)} folds never)" if missing else "")

    def candidates(opt, momentum):
        return [res.index(optimizer=opt, momentum=momentum, lr=lr) for lr in rates]

    def best_of(mine):
        return mine[int(np.nanargmax(np.nanmean(acc[mine], axis=1)))]

    rows = []
    for label, (opt, momentum) in variants.items():
        mine = candidates(opt, momentum)
        best = best_of(mine)
        shared = mine[rates.index(1e-3)]
        for i, which in ((shared, "1e-3 (shared)"), (best, f"{rates[mine.index(best)]:g} (best)")):
            rows.append([label, which, pm(acc[i], percent=True, digits=1), epochs_cell(to_95[i]),
                         epochs_cell(to_01[i])])
    table("optimizers", f"Digits, one hidden layer of 100 ReLU units, batch 128, {n_epochs} epochs; each "
          f"optimizer at lr=1e-3 and at its best learning rate of {', '.join(f'{r:g}' for r in rates)} "
          f"(best by mean CV accuracy on the same folds, so slightly optimistic); epochs to converge: "
          f"(a) first epoch whose training loss has made 95 % of its decrease from epoch 1 to epoch "
          f"{n_epochs}, (b) first epoch whose training loss is below 0.1; {N_FOLDS}-fold CV, mean ± std.",
          ["optimizer", "learning rate", "CV accuracy", "epochs to converge (a: 95 % of decrease)",
           "epochs to converge (b: loss < 0.1)"], rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    e = np.arange(1, curves.shape[2] + 1)
    for k, (label, (opt, momentum)) in enumerate(variants.items()):
        mine = candidates(opt, momentum)
        errorbar(ax1, rates, acc[mine], label=label, color=f"C{k}")
        best = best_of(mine)
        mean, std = np.nanmean(curves[best], axis=0), np.nanstd(curves[best], axis=0)
        ax2.plot(e, mean, color=f"C{k}", label=f"lr={rates[mine.index(best)]:g}")
        ax2.fill_between(e, np.maximum(mean - std, mean / 10), mean + std, color=f"C{k}", alpha=0.2)
    ax1.set(xscale="log", xlabel="learning rate", ylabel="CV accuracy", title="Accuracy (digits)",
            ylim=(0, 1))
    ax2.axhline(0.1, color="0.5", linestyle=":", linewidth=1)
    ax2.set(yscale="log", xlabel="epoch", ylabel="training loss", title="Training loss at each one's best lr")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    figure("optimizers", fig)


def dropout():
    """Seed table 7: dropout rate vs test accuracy (the seed's task: speech recognition)."""
    X, y = digits()
    rates = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7]
    n_epochs = epochs(100)
    model = tabular_pipeline(MLPClassifier(n_layers=2, n_units=256, max_epochs=n_epochs, random_state=SEED))
    res = cross_validate_grid(model, {"mlpclassifier__dropout": rates}, X, y, cv=stratified(),
                              train_score=True)
    acc, train = res.folds("accuracy"), res.folds("accuracy", "train")
    test_loss = res.folds("log_loss")
    rows = [[f"{r:g}", pm(acc[i], percent=True, digits=1), "–" if i == 0 else paired(acc[i], acc[0]),
             pm(test_loss[i]), pm(train[i], percent=True, digits=1)] for i, r in enumerate(rates)]
    table("dropout", f"Digits, two hidden layers of 256 ReLU units with dropout after each, Adam lr=1e-3, "
          f"batch 128, {n_epochs} epochs; {N_FOLDS}-fold CV, mean ± std over folds.",
          ["dropout rate", "test accuracy", "Δ vs no dropout (paired)", "test log loss", "training accuracy"],
          rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.3))
    errorbar(ax1, rates, acc)
    ax1.set(xlabel="dropout rate", ylabel="test accuracy", title="Dropout (digits)")
    errorbar(ax2, rates, test_loss, color="C1")
    ax2.set(xlabel="dropout rate", ylabel="test log loss", title="Held-out loss")
    figure("dropout", fig)


def weight_init():
    """Seed table 8: weight initialisation vs training loss (the seed's task: speech synthesis)."""
    X, y = digits()
    inits = {"default": "torch default (Kaiming uniform, a=√5)", "normal": "random normal N(0, 0.01²)",
             "xavier_uniform": "Xavier uniform", "xavier_normal": "Xavier normal",
             "he_uniform": "He uniform", "he_normal": "He normal", "orthogonal": "orthogonal"}
    n_epochs, early = epochs(50, 4), epochs(5, 2)
    model = tabular_pipeline(MLPClassifier(n_layers=4, n_units=100, max_epochs=n_epochs, random_state=SEED))
    res = cross_validate_grid(model, {"mlpclassifier__weight_init": list(inits)}, X, y, cv=stratified())
    acc, curves = res.folds("accuracy"), res.curves()
    rows = [[label, pm(curves[i, :, early - 1], 3, sig=True), pm(curves[i, :, -1], 2, sig=True),
             pm(acc[i], percent=True, digits=1)] for i, label in enumerate(inits.values())]
    table("weight_init", f"Digits, four hidden layers of 100 ReLU units, Adam lr=1e-3, batch 128; training "
          f"loss = mean cross-entropy over the batches of an epoch; {N_FOLDS}-fold CV, mean ± std over "
          "folds.",
          ["initialisation", f"training loss, epoch {early}", f"training loss, epoch {n_epochs}",
           "CV accuracy"], rows)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    e = np.arange(1, curves.shape[2] + 1)
    for i, label in enumerate(inits.values()):
        ax.plot(e, np.nanmean(curves[i], axis=0), label=label, color=f"C{i}",
                linestyle="--" if i % 2 else "-")
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss (mean over folds)",
           title="Weight initialisation (digits, 4 hidden layers)")
    ax.legend(fontsize=7)
    figure("weight_init", fig)


def n_epochs_table():
    """Seed table 9: number of epochs vs training and validation loss (the seed's task: text generation)."""
    X, y = digits()
    budgets = [1, 3, 10, 30, 100, 300, 1000] if not FAST else [1, 3, 10]
    model = tabular_pipeline(MLPClassifier(random_state=SEED))
    res = cross_validate_grid(model, {"mlpclassifier__max_epochs": budgets}, X, y, cv=stratified(),
                              train_score=True)
    train_loss, test_loss = res.folds("log_loss", "train"), res.folds("log_loss")
    acc = res.folds("accuracy")
    rows = [[b, pm(train_loss[i], 3, sig=True), pm(test_loss[i], 3, sig=True),
             pm(acc[i], percent=True, digits=1)] for i, b in enumerate(budgets)]
    table("epochs", "Digits, one hidden layer of 100 ReLU units, Adam lr=1e-3, batch 128, no early stopping; "
          "one model per epoch budget (same seed, so each is the same run stopped earlier); training loss = "
          "log loss on the training folds, validation loss = log loss on the held-out fold, after training; "
          f"{N_FOLDS}-fold CV, mean ± std over folds.",
          ["epochs", "training loss", "validation loss", "validation accuracy"], rows)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    errorbar(ax, budgets, train_loss, label="training folds")
    errorbar(ax, budgets, test_loss, label="held-out fold")
    ax.set(xscale="log", yscale="log", xlabel="epochs", ylabel="log loss", title="Epochs (digits)")
    ax.legend()
    figure("epochs", fig)


def main():
    # One torch thread: on a 2-core machine shared with other processes, two threads spinning
    # against them made small fits 10-20x slower and their timings meaningless.
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    print(f"hyperparameter atlas: {SETUP}; writing to {OUT}", flush=True)
    start = time.perf_counter()
    timings = {}

    def run(name, function, *args):
        t = time.perf_counter()
        function(*args)
        timings[name] = time.perf_counter() - t

    t = time.perf_counter()
    text = docstrings()
    timings["text corpus"] = time.perf_counter() - t
    labels, counts = np.unique(text[1], return_counts=True)
    print(f"docstring corpus: {len(text[1])} texts, "
          + ", ".join(f"{label} {count}" for label, count in zip(labels, counts, strict=True)), flush=True)
    run("learning_rate", learning_rate)
    run("batch_size", batch_size)
    run("hidden_layers", hidden_layers, text)
    run("activation", activation)
    run("regularization", regularization, text)
    run("optimizers", optimizers)
    run("dropout", dropout)
    run("weight_init", weight_init)
    run("epochs", n_epochs_table)
    print("\nseconds per table: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(f"total {time.perf_counter() - start:.0f} s; wrote {len(WRITTEN)} files to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
