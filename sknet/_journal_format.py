"""The file format of a search's checkpoint: sknet's mark, the tables, and what each cell may hold.

:mod:`sknet.checkpoint` reads and writes the file; this module says what a valid one is, so
that a file that is not a checkpoint, or one damaged or edited by hand, is refused with words
that name what is wrong.
"""

import functools
import sqlite3
import struct
from contextlib import closing

from ._identity import random_state_from_json

FORMAT_VERSION = 2


FORMAT = f"sknet-checkpoint/{FORMAT_VERSION}"


# sknet's mark in the SQLite header of every checkpoint, where any program can read it without
# SQLite: PRAGMA application_id (bytes 68-71) and PRAGMA user_version, the format (bytes 60-63).
APPLICATION_ID = int.from_bytes(b"sknt", "big")  # 0x736b6e74


SQLITE_MAGIC = b"SQLite format 3\x00"


SCHEMA = """
CREATE TABLE IF NOT EXISTS header (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY, first INTEGER NOT NULL, candidates TEXT NOT NULL, extra TEXT);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    candidate INTEGER NOT NULL,
    split INTEGER NOT NULL,
    params TEXT NOT NULL,
    fit_error TEXT,
    test_scores TEXT,
    train_scores TEXT,
    n_test_samples INTEGER,
    fit_time REAL,
    score_time REAL,
    extra TEXT,
    written REAL NOT NULL,
    pid INTEGER NOT NULL,
    PRIMARY KEY (candidate, split));
"""


# In the order scikit-learn's _fit_and_score builds its result dict.
COLUMNS = ("fit_error", "test_scores", "train_scores", "n_test_samples", "fit_time", "score_time")


JSON_COLUMNS = ("test_scores", "train_scores")


RESULT_COLUMNS = ("candidate", "split", "params", *COLUMNS, "extra", "written", "pid")  # as in SCHEMA


# The JSON cells a search reads back, checked when it opens the journal: table -> (the columns that
# name a row, its JSON columns).
JSON_CELLS = {
    "rounds": (("round",), ("candidates", "extra")),
    "state": (("key",), ("value",)),
    "results": (("candidate", "split"), ("params", *JSON_COLUMNS, "extra")),
}


# The SQLite types the results' plain columns may hold (typeof), and in words.
SQL_KINDS = {"fit_error": ({"text", "null"}, "text or null"),
              "n_test_samples": ({"integer", "null"}, "an integer or null"),
              "fit_time": ({"real", "integer", "null"}, "a number or null"),
              "score_time": ({"real", "integer", "null"}, "a number or null")}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_score(value):
    """A score as scikit-learn's ``_fit_and_score`` gives it: a number, or one per metric."""
    return _is_number(value) or (isinstance(value, dict) and all(map(_is_number, value.values())))


def _is_random_state(value):
    try:
        random_state_from_json(value)
    except Exception:
        return False
    return True


def _any(value):
    return True


# What a JSON cell holds, by (table, column): a check and its words for the error message.
_CELL_KINDS = {
    ("results", "params"): (lambda v: isinstance(v, dict), "an object of parameters"),
    ("results", "test_scores"): (_is_score, "a score: a number or an object of numbers"),
    ("results", "train_scores"): (lambda v: v is None or _is_score(v),  # null: not asked for
                                  "a score: a number, an object of numbers, or null"),
    ("results", "extra"): (lambda v: v is None or isinstance(v, dict), "an object or null"),
    ("rounds", "candidates"): (lambda v: isinstance(v, list) and all(isinstance(c, dict) for c in v),
                               "a list of objects of parameters"),
    ("rounds", "extra"): (lambda v: v is None or isinstance(v, dict), "an object or null"),
}


def cell_kind(table, column, row):
    """What the cell of ``table``, ``column`` in ``row`` must hold (``_CELL_KINDS``; state by its key)."""
    if table != "state":
        return _CELL_KINDS.get((table, column), (_any, "JSON"))
    key = str(row.get("key"))
    if key == "random_state":
        return _is_random_state, "a random state (numpy's, as a list of 5 values)"
    if key == "finished":
        return (lambda v: v is True), "true"
    if key.startswith("pruning of round "):
        return (lambda v: isinstance(v, dict) and {"pruned", "epochs_trained", "partial"} <= set(v),
                "an object of pruned, epochs_trained and partial")
    return _any, "JSON"


def not_ours(head):
    """Why the first 100 bytes of a file are not an sknet checkpoint's, or None if they are."""
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        return "it is not an SQLite database"
    version, application_id = struct.unpack(">i4xI", head[60:72])  # big-endian, as SQLite writes them
    if application_id == 0:
        return ("it is an SQLite database without sknet's mark (PRAGMA application_id): another "
                "program's, or a checkpoint of sknet's first format, which cannot be resumed")
    if application_id != APPLICATION_ID:
        return f"it is another program's SQLite database (PRAGMA application_id {application_id:#010x})"
    if version != FORMAT_VERSION:
        return (f"it is a checkpoint of format {version}, and this version of sknet reads format "
                f"{FORMAT_VERSION} only")
    return None


@functools.cache
def schema_columns():
    """``{table: [column, ...]}`` of SCHEMA, as SQLite reads it."""
    with closing(sqlite3.connect(":memory:")) as reference:
        reference.executescript(SCHEMA)
        tables = reference.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {table: [row[1] for row in reference.execute(f"PRAGMA table_info({table})")]
                for (table,) in tables}


def is_blank(conn):
    """Whether a database holds nothing at all: no schema object, no header field set."""
    return (conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
            and conn.execute("PRAGMA user_version").fetchone()[0] == 0)
