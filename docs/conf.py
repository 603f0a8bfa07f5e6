"""Sphinx configuration of the sknet documentation.

Build from the repository root: ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
The gallery runs the examples with ``SKNET_EXAMPLES_FAST=1`` (small settings) unless the
environment sets it otherwise.
"""

import os
import re
import shutil
import sys
from pathlib import Path

from docutils.statemachine import StringList
from sphinx.directives.other import TocTree
from sphinx_gallery.sorting import ExplicitOrder

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document the checkout, installed or not

import sknet  # noqa: E402

# The gallery runs every example; their small settings keep the build short.
os.environ.setdefault("SKNET_EXAMPLES_FAST", "1")

project = "sknet"
author = "the sknet developers"
copyright = "the sknet developers"
release = version = sknet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_gallery_src", "**.ipynb_checkpoints", "gallery_header.rst"]
default_role = "literal"
# Every cross-reference must resolve (-n), except those into the libraries sknet builds on:
# their sites are not fetched (no intersphinx), so the build needs no network.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(sklearn|skopt|skorch|torch|numpy|scipy|joblib|matplotlib)(\..*)?")]

# -- API reference: autosummary + numpydoc -----------------------------------------------------
autosummary_generate = True
# autosummary writes a stub per documented name into generated/ and never deletes one; remove
# them so that a name dropped from api.rst leaves no orphan page behind.
for _stub in (DOCS / "generated").glob("*.rst"):
    _stub.unlink()
autosummary_imported_members = False
autodoc_typehints = "none"
numpydoc_show_class_members = True  # a table of methods atop each class page ...
numpydoc_class_members_toctree = False  # ... linking to the entries autodoc writes below it
numpydoc_xref_param_type = False

# -- Markdown pages (benchmarks and the topic pages) --------------------------------------------
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# -- Gallery: examples/ -------------------------------------------------------------------------
# sphinx-gallery wants a header file next to the examples; examples/ holds only scripts, so the
# gallery is built from a copy of examples/*.py plus docs/gallery_header.rst, refreshed on
# every build (docs/_gallery_src, ignored by git).
GALLERY_SRC = DOCS / "_gallery_src"


def _stage_examples():
    if GALLERY_SRC.exists():
        shutil.rmtree(GALLERY_SRC)
    GALLERY_SRC.mkdir()
    shutil.copy2(DOCS / "gallery_header.rst", GALLERY_SRC / "GALLERY_HEADER.rst")
    for script in sorted((ROOT / "examples").glob("*.py")):
        shutil.copy2(script, GALLERY_SRC / script.name)


_stage_examples()

# sphinx-gallery looks up each example object's classes, scikit-learn's bases included, under
# their public modules; scikit-learn raises ImportError (not AttributeError) for its halving
# searches there unless they are enabled, as scikit-learn documents it:
import sklearn.experimental.enable_halving_search_cv  # noqa: E402, F401

sphinx_gallery_conf = {
    "examples_dirs": "_gallery_src",
    "gallery_dirs": "auto_examples",
    # Execute every example but atlas.py (a long survey: shown, not run).
    "filename_pattern": r"^(?!.*atlas\.py$)",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": ExplicitOrder(
        ["tune_digits.py", "search_random.py", "search_bayes.py", "search_genetic.py", "*"]),
    "doc_module": ("sknet",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sknet": None},
    "download_all_examples": False,
    "min_reported_time": 1,
}

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sknet {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_sidebars = {"index": [], "getting_started": []}


# -- A toctree that lists only the pages that exist ---------------------------------------------
class OptionalTocTree(TocTree):
    """``.. optional-toctree::``: a toctree whose entries are skipped when their page is absent.

    Topic pages written alongside the code (atlas, dask, ...) join the user guide with one line
    each, and a build before a page lands still passes with warnings as errors.
    """

    def run(self):
        _optional_toctree_docs(self.env).add(self.env.docname)
        found = self.env.found_docs
        kept = [(line, item) for line, item in zip(self.content, self.content.items, strict=True)
                if not line.strip() or line.strip() in found]
        self.content = StringList([line for line, _ in kept], items=[item for _, item in kept])
        return super().run()


def _optional_toctree_docs(env):
    if not hasattr(env, "sknet_optional_toctree_docs"):
        env.sknet_optional_toctree_docs = set()
    return env.sknet_optional_toctree_docs


def _reread_optional_toctrees(app, env, added, changed, removed):
    # A page that appears or disappears changes these toctrees without changing their source,
    # so the pages holding one are read again on every build.
    return sorted(_optional_toctree_docs(env) & env.found_docs)


# -- Docstrings inherited from scikit-learn ----------------------------------------------------
# The estimators and searches inherit methods and properties (score, get_params, predict_proba,
# n_features_in_, ...) whose docstrings point into scikit-learn's glossary and user guide with
# :term: and :ref:. Those targets exist only on scikit-learn's site (and numpydoc copies property
# docstrings into the class's Attributes), so a :term: becomes a literal, and a :ref: in a
# docstring sknet did not write becomes plain text. sknet's own :ref: roles are left alone: a
# broken one still fails the build.
_TERM = re.compile(r":term:`([^`<]*?)\s*(?:<([^>`]*)>)?`")
_REF = re.compile(r":ref:`([^`<]*?)\s*(?:<([^>`]*)>)?`")


def _is_foreign(obj):
    target = getattr(obj, "fget", obj)
    module = getattr(target, "__module__", None) or ""
    return not module.startswith("sknet") or getattr(target, "__doc__", None) is None


def _plain_foreign_roles(app, what, name, obj, options, lines):
    foreign = _is_foreign(obj)
    for i, line in enumerate(lines):
        line = _TERM.sub(lambda m: f"``{m.group(1) or m.group(2)}``", line)
        if foreign:
            line = _REF.sub(lambda m: m.group(1) or m.group(2), line)
        lines[i] = line


def setup(app):
    app.add_directive("optional-toctree", OptionalTocTree)
    app.connect("env-get-outdated", _reread_optional_toctrees)
    app.connect("autodoc-process-docstring", _plain_foreign_roles)
