"""The documentation of the parameters every sknet search adds to scikit-learn's, written once.

Each search's docstring holds the placeholders ``ENGINE_PARAMETER``,
``CHECKPOINT_PARAMETER``, ``MAX_TIME_PARAMETER`` and (Bayes, genetic) ``PRUNE_PARAMETER``;
:func:`with_shared_parameters` fills them in with what that search adds to the
common words: the unit the engine trains together, what its checkpoint keeps
and how a run on it resumes.
"""

import textwrap

_INDENT = " " * 8
_WIDTH = 79


def _entry(header, text):
    """A numpydoc parameter entry: its header line, then ``text`` wrapped and indented."""
    return header + "\n" + textwrap.fill(" ".join(text.split()), _WIDTH, initial_indent=_INDENT,
                                         subsequent_indent=_INDENT)


def engine_doc(unit):
    """The ``engine`` parameter, training ``unit`` (e.g. "each round's candidates x folds") together."""
    return _entry('engine : {"auto", "batched", "sequential"}, default="auto"', f"""
        How sknet nets (or pipelines and target transforms around one) are trained: "auto"
        and "batched" train {unit} together with :mod:`sknet.engine` where it can (the layers
        around the nets are fitted per fold first) and the rest one by one; "batched" warns
        about the ones it could not batch. "sequential" fits every job on its own, as
        scikit-learn does. Other estimators are always fitted sequentially.""")


def checkpoint_doc(keeps="", resumes="skips what is there", note=""):
    """The ``checkpoint`` parameter: what the journal ``keeps`` besides the results, how a run on it
    ``resumes``, and a search's own ``note``."""
    return _entry("checkpoint : str, os.PathLike or None, default=None", f"""
        A file in which each finished (candidate, fold) result is journaled the moment it
        exists (SQLite){keeps}. Fitting the same search again with the same file {resumes}
        and gives the ``cv_results_`` of an uninterrupted run, fit and score times included;
        a file from another search (another estimator, space, setting, data, or code of the
        user's torch module) is refused with a ValueError and left as it is. {note} See
        ``docs/checkpoint.md``.""")


PRUNE_DOC = _entry("prune : list of int or None, default=None", """
    Epoch checkpoints at which to stop unpromising candidates of an sknet net (opt-in). At
    each checkpoint below its own ``max_epochs``, a candidate is scored on every split; if
    its mean score there is below the median of all finite scores this search has seen at
    that checkpoint, or a fit of it failed there (diverged), it stops training, and its row
    in ``cv_results_`` holds that partial score with ``pruned`` True and ``epochs_trained``
    the checkpoint. The others go on from where they stopped. ``best_*`` is chosen among the
    candidates that trained to the end (the partial score of a pruned one is not
    comparable); the strategy is told a pruned candidate's partial score. With
    ``checkpoint``, a round is journaled when it ends, its pruning with it.""")

# Grid and random search: without max_time all candidates are one round; with it, rounds that fill the engine.
ALL_IN_ROUNDS = ("round (all the candidates are one round, unless ``max_time`` is given: then rounds of "
                 "``ceil(32 / n_splits)`` candidates for sknet nets, which fill the engine, or of "
                 "``ceil(n_jobs / n_splits)``)")

# What the sequential strategies (Bayes, genetic) journal, and how they resume.
ROUNDS_KEPT = (", with each round's proposals and, for ``random_state`` None or a ``RandomState``, "
               "the state it starts from")
ROUNDS_REPLAYED = "replays the strategy on the journaled results, fits only what is missing"


def max_time_doc(round_):
    """The ``max_time`` parameter, the search stopping at the end of its ``round_`` that passes it."""
    return _entry("max_time : float or None, default=None", f"""
        Seconds the search may take, counted from the start of ``fit``: it stops cleanly at
        the end of the {round_} that passes them, with the results so far (its
        ``cv_results_``, best candidate and refit; ``timed_out_`` says whether it stopped
        early). None: no limit.""")


def with_shared_parameters(doc, engine, checkpoint, prune=False, max_time=None):
    """``doc`` with its placeholders filled in: ``engine`` and ``checkpoint`` entries, the
    ``prune`` entry where asked, and the ``max_time`` entry (what a round is) where given."""
    doc = doc.replace("ENGINE_PARAMETER", engine).replace("CHECKPOINT_PARAMETER", checkpoint)
    if max_time is not None:
        doc = doc.replace("MAX_TIME_PARAMETER", max_time_doc(max_time))
    return doc.replace("PRUNE_PARAMETER", PRUNE_DOC) if prune else doc
