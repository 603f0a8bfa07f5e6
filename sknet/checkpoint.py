"""The checkpoint of a search: an SQLite journal of its finished (candidate, fold) results.

A search given ``checkpoint=path`` writes each cross-validation result to the
file the moment it exists, and a search run again on the same file serves the
results already there instead of fitting again. See ``docs/checkpoint.md`` for
the user's side; this module is the file itself.

Why SQLite: it is in Python's standard library, and its write-ahead log (WAL)
gives what a journal needs. A committed transaction survives the writer being
killed (and, with ``synchronous=FULL``, a power cut); several processes may
write at once, each waiting its turn on the busy timeout instead of failing;
readers never block writers, so a running search can be watched from outside.
Every result is one transaction of one row, so a crash loses at most the fits
still running.

Its SQLite header carries sknet's mark: ``PRAGMA application_id`` is
``APPLICATION_ID`` (``b"sknt"``) and ``PRAGMA user_version`` the format,
``FORMAT_VERSION``. They are read from the file's first 100 bytes before
SQLite opens it, and only a new path, an empty file or a file with the mark is
ever opened with SQLite: anything else is refused without a byte written.

The file holds four tables:

``header`` (``key``, ``value``)
    ``format``, the identity of the search that owns the file (one row per
    part: ``search``, ``estimator``, the space, ``settings``, ``scoring``,
    ``cv``, ``data``; canonical JSON; ``data_identity`` for the data)
    and, for information only, the versions and time it was created with.
``rounds`` (``round``, ``first``, ``candidates``, ``extra``)
    The candidates each call of the strategy proposed, in order: ``first`` is
    the position of the round's first candidate in the whole search. A resumed
    search must propose the very same ones, round by round.
``state`` (``key``, ``value``)
    The strategy's random state when ``random_state`` is None or a
    ``RandomState`` (an int seed is part of the identity instead), and
    ``finished`` once the strategy has run to its end: a finished checkpoint
    serves every result, so it may be read-only.
``results`` (``candidate``, ``split``, ``params``, ``test_scores``, ...)
    One row per finished fit: its candidate's position and parameters, the
    fold, scores, times, number of test samples and the traceback of a failed
    fit, exactly as scikit-learn's ``_fit_and_score`` returned them.
"""

import functools
import hashlib
import json
import math
import numbers
import os
import pickle
import sqlite3
import stat
import struct
import time
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np

__all__ = ["CheckpointPermissionError", "Journal"]

FORMAT_VERSION = 2
FORMAT = f"sknet-checkpoint/{FORMAT_VERSION}"
# sknet's mark in the SQLite header of every checkpoint, where any program can read it without
# SQLite: PRAGMA application_id (bytes 68-71) and PRAGMA user_version, the format (bytes 60-63).
APPLICATION_ID = int.from_bytes(b"sknt", "big")  # 0x736b6e74
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Seconds a writer waits for another's transaction before giving up. Transactions
# are a single row, so only a stuck process can hold the lock anywhere near this.
BUSY_TIMEOUT = 300.0

_SCHEMA = """
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
_COLUMNS = ("fit_error", "test_scores", "train_scores", "n_test_samples", "fit_time", "score_time")
_JSON_COLUMNS = ("test_scores", "train_scores")

class CheckpointPermissionError(PermissionError):
    """A checkpoint this process cannot write (or read), where the search needs to.

    Raised before any fit: when a new checkpoint cannot be created, or an
    unfinished one (which has fits to write) is not writable. A finished
    checkpoint may be read-only: it is then only read.
    """


class Journal:
    """The SQLite file of one search's finished results.

    A search opens it with :meth:`open`, which creates the file or checks that
    it belongs to the same search. Every other method opens its own short-lived
    connection, so a ``Journal`` pickles as its path and may be used from any
    thread or process at the same time.

    Parameters
    ----------
    path : str or os.PathLike
        The file; made absolute, so that worker processes find it too.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sknet.checkpoint import Journal
    >>> from sknet.model_selection import GridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> path = os.path.join(tempfile.mkdtemp(), "search.db")
    >>> search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3,
    ...                       checkpoint=path).fit(X, y)
    >>> journal = Journal(path)
    >>> len(journal), journal.header()["search"]
    (6, 'sknet.model_selection.GridSearchCV')
    >>> row = journal.results()[0]
    >>> row["candidate"], row["split"], row["params"]
    (0, 0, {'C': 0.1})
    """

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))
        self._read_only = False  # set by open() for a finished checkpoint this process cannot write

    def __repr__(self):
        return f"Journal({self.path!r})"

    def _raw(self):
        if self._read_only:
            # immutable: SQLite reads the main file only, takes no lock and creates no -wal or -shm
            # file. Safe because open() saw no write-ahead log and nobody can write the file.
            return sqlite3.connect(f"{Path(self.path).as_uri()}?immutable=1", uri=True, isolation_level=None)
        # isolation_level=None: transactions are explicit; BEGIN IMMEDIATE takes the write
        # lock up front, so a writer waits (busy timeout) instead of failing halfway.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")  # a committed result survives a power cut
        return conn

    @contextmanager
    def _connect(self, write=False):
        try:
            with closing(self._raw()) as conn:
                if not write or self._read_only:  # a read-only journal's writes fail below, clearly
                    yield conn
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc) and "unable to open" not in str(exc):
                raise
            # open() refuses a journal that cannot be written before any fit; this is for a file
            # whose permissions changed while the search ran.
            why = self._unwritable() or f"SQLite says: {exc}"
            raise CheckpointPermissionError(
                f"Checkpoint {self.path!r} cannot be written: {why}. Its finished fits are kept; make "
                "it writable and fit the same search again to resume, or pass another checkpoint path."
            ) from exc

    # -- the search's side: create or check, rounds, random state ---------------------------

    def open(self, identity, info=None):
        """Create the journal, or check that the existing one belongs to ``identity``.

        A file is taken as a checkpoint only if it is new, empty (0 bytes), or an
        SQLite database carrying sknet's mark (``PRAGMA application_id``) and
        format (``PRAGMA user_version``), read from its first 100 bytes before
        SQLite opens it. Anything else is refused without a byte written to it.

        Parameters
        ----------
        identity : dict of str -> JSON-able
            The parts that make a search the same search (see
            ``describe``); compared part by part with the stored ones.
        info : dict of str -> str, optional
            Stored with a new journal for information (versions, time); never compared.

        Returns
        -------
        self : Journal

        Raises
        ------
        ValueError
            If the file is not an sknet checkpoint, or belongs to another
            search; it is left untouched.
        CheckpointPermissionError
            If the journal must be written (it is new, or its search is not
            finished) and this process cannot write the file or its folder.
            A finished checkpoint is opened read-only instead.
        """
        parts = {name: _canonical(value) for name, value in identity.items()}
        is_new = self._sniff()
        why = self._unwritable()
        if why is not None and is_new:
            raise CheckpointPermissionError(f"Cannot create checkpoint {self.path!r}: {why}.")
        stored = self._read_header(why) if why is not None else self._create_or_read(parts, info)
        if stored:
            self._check(stored, parts)
        if self._read_only and not self.finished():
            raise CheckpointPermissionError(
                f"Checkpoint {self.path!r} cannot be resumed: {why}, and its search is not finished, so "
                "there are fits to write. Nothing was trained; make it writable, or pass another "
                "checkpoint path."
            )
        return self

    def _sniff(self):
        """True if the file is new or empty; raise ValueError if it is not an sknet checkpoint.

        Reads the first 100 bytes, SQLite's header, with plain file reads: opening a
        file with SQLite may already write to it (a hot journal's rollback, WAL files).
        """
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise ValueError(f"Cannot create checkpoint {self.path!r}: the folder {folder!r} does not exist.")
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            return self._no_stale_log("it does not exist")
        if stat.S_ISDIR(mode):
            raise ValueError(self._foreign("it is a directory; a checkpoint is a file, e.g. "
                                           f"{os.path.join(self.path, 'search.db')!r}"))
        if not stat.S_ISREG(mode):
            raise ValueError(self._foreign("it is not a regular file"))
        try:
            with open(self.path, "rb") as file:
                head = file.read(100)
        except OSError as exc:
            raise CheckpointPermissionError(
                f"Cannot read checkpoint {self.path!r}: {exc.strerror.lower()}.") from exc
        if not head:
            return self._no_stale_log("it is empty")
        why = _not_ours(head)
        if why:
            raise ValueError(self._foreign(why))
        return False

    def _no_stale_log(self, state):
        # A write-ahead log without its database would be replayed into the new file.
        wal = self.path + "-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise ValueError(self._foreign(f"{state}, but {wal!r}, the write-ahead log of an earlier "
                                           "database of that name, is still there; delete it too"))
        return True

    def _unwritable(self):
        """Why this process cannot write the journal, or None if it can.

        SQLite's write-ahead log needs the file, its ``-wal`` and ``-shm`` files and
        the folder they are created in. The files are tried by opening them for
        writing (which writes nothing), so a read-only file system or an immutable
        file is seen as well as permission bits.
        """
        folder = os.path.dirname(self.path)
        if not os.access(folder, os.W_OK | os.X_OK):
            return (f"the folder {folder!r} is not writable (SQLite creates the journal's -wal and -shm "
                    "files in it)")
        for name in (self.path, self.path + "-wal", self.path + "-shm"):
            try:
                os.close(os.open(name, os.O_RDWR))
            except FileNotFoundError:
                continue
            except OSError as exc:
                return f"{name!r} is not writable ({exc.strerror.lower()})"
        return None

    def _create_or_read(self, parts, info):
        """Create the journal in a new or empty file, or read the stored header rows."""
        try:
            with closing(self._raw()) as conn:
                conn.execute("BEGIN IMMEDIATE")  # two processes creating the file: one waits, then reads
                try:
                    mark = conn.execute("PRAGMA application_id").fetchone()[0]
                    if mark == 0 and _is_blank(conn):  # new or empty when sniffed, and still
                        self._create(conn, parts, info)
                        stored = {}
                    elif mark != APPLICATION_ID:
                        raise ValueError(self._foreign("another program wrote to it as it was opened"))
                    else:
                        stored = dict(conn.execute("SELECT key, value FROM header"))
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                _use_wal(conn)
        except sqlite3.OperationalError as exc:
            why = self._unwritable()
            if why is None:
                raise
            raise CheckpointPermissionError(f"Cannot open checkpoint {self.path!r}: {why}.") from exc
        except sqlite3.DatabaseError as exc:  # marked as a checkpoint, but damaged
            raise ValueError(self._foreign(f"SQLite cannot read it ({exc})")) from exc
        return stored

    def _create(self, conn, parts, info):
        # The mark goes in with the first transaction, before WAL mode, so that it is in the
        # main file's header page, where _sniff reads it, from the moment the file has content.
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        rows = {"format": FORMAT, **{f"identity.{k}": v for k, v in parts.items()},
                **{f"info.{k}": str(v) for k, v in (info or {}).items()}}
        conn.executemany("INSERT INTO header VALUES (?, ?)", rows.items())

    def _read_header(self, why):
        """The header rows of a checkpoint this process cannot write, read without writing a byte."""
        wal = self.path + "-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise CheckpointPermissionError(
                f"Checkpoint {self.path!r} cannot be opened: {why}, and its write-ahead log {wal!r} holds "
                "results that only a writer can merge into it. Make it writable and fit again, or pass "
                "another checkpoint path."
            )
        self._read_only = True
        try:
            with self._connect() as conn:
                return dict(conn.execute("SELECT key, value FROM header"))
        except sqlite3.DatabaseError as exc:
            raise ValueError(self._foreign(f"SQLite cannot read it ({exc})")) from exc

    def _check(self, stored, parts):
        if stored.get("format") != FORMAT:
            raise ValueError(self._foreign(f"its format is {stored.get('format')!r}, not {FORMAT!r}"))
        old = {k[len("identity."):]: v for k, v in stored.items() if k.startswith("identity.")}
        differ = [name for name in sorted(set(old) | set(parts)) if old.get(name) != parts.get(name)]
        if not differ:
            return
        lines = []
        for name in differ:
            explain = _data_differences if name == "data" else _differences
            details = explain(_load(old.get(name)), _load(parts.get(name)))
            lines.append(f"  {name}: " + "; ".join(details[:3] or ["differs"]) + _HINTS.get(name, ""))
        raise ValueError(
            f"The checkpoint {self.path!r} belongs to a different search, so its results are not "
            f"reused; the file is left as it is. What differs:\n" + "\n".join(lines) + "\n"
            "Pass a new checkpoint path for this search, or delete the file to start it afresh."
        )

    def _foreign(self, why):
        return (f"{self.path!r} is not an sknet search checkpoint: {why}. It is left as it is; "
                "pass another checkpoint path.")

    def finished(self):
        """Whether the search ran to its end (see :meth:`finish`)."""
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM state WHERE key = 'finished'").fetchone() is not None

    def finish(self):
        """Record that the search's strategy ran to its end.

        A finished checkpoint is complete: fitting the search again serves every
        result from it, so it may then be read-only (an archive, a shared folder).
        Written once; a finished journal is never written again by this call.
        """
        if not self.finished():
            with self._connect(write=True) as conn:
                conn.execute("INSERT OR IGNORE INTO state VALUES ('finished', 'true')")

    def begin_round(self, index, first, candidates, extra=None):
        """Record round ``index`` (or check it against the record); return its finished fits.

        Parameters
        ----------
        index : int
            The round's number, from 0.
        first : int
            The position of its first candidate in the whole search.
        candidates : list of dict
            The candidates' parameters.
        extra : dict or None
            The strategy's own columns for these candidates (``more_results``).

        Returns
        -------
        done : set of (int, int)
            ``(candidate within the round, split)`` pairs already in the journal.

        Raises
        ------
        RuntimeError
            If the journal recorded other candidates for this round: the resumed
            strategy did not replay the interrupted one, and mixing the two would
            give ``cv_results_`` that neither run produced.
        """
        proposed = _canonical([describe(params) for params in candidates])
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT first, candidates FROM rounds WHERE round = ?", (index,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO rounds VALUES (?, ?, ?, ?)",
                             (index, first, proposed, _canonical(extra) if extra else None))
            done = conn.execute("SELECT candidate, split FROM results WHERE candidate >= ? AND candidate < ?",
                                (first, first + len(candidates))).fetchall()
        if row is not None and tuple(row) != (first, proposed):
            recorded = json.loads(row[1])
            details = _differences(recorded, json.loads(proposed))
            raise RuntimeError(
                f"Round {index} of this search proposed other candidates than checkpoint {self.path!r} "
                f"recorded ({'; '.join(details[:2]) or f'first candidate {row[0]} vs {first}'}). The "
                "strategy did not replay the interrupted run, so the journal cannot be reused: is some "
                "random_state inside the estimator, the space or optimizer_kwargs left unseeded? Delete "
                "the file or pass a new path to start afresh."
            )
        return {(candidate - first, split) for candidate, split in done}

    def state(self, key, value):
        """The stored ``state[key]``; stores ``value`` (JSON-able) first if there is none."""
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO state VALUES (?, ?)", (key, _canonical(value)))
                return value
        return json.loads(row[0])

    def peek(self, key):
        """The stored ``state[key]``, or None if there is none (nothing is written)."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def count(self, first=0, stop=None):
        """Finished fits of the candidates at positions ``first`` to ``stop`` (excluded)."""
        stop = 2**62 if stop is None else stop
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM results WHERE candidate >= ? AND candidate < ?",
                                (first, stop)).fetchone()[0]

    def __len__(self):
        return self.count()

    # -- the workers' side: one result ------------------------------------------------------

    def get(self, candidate, split, params):
        """The journaled result of fitting ``params`` on ``split``, or None if not there yet.

        Raises RuntimeError if the journal has that position for other parameters.
        """
        with self._connect() as conn:
            row = conn.execute(f"SELECT params, {', '.join(_COLUMNS)}, extra FROM results "
                               "WHERE candidate = ? AND split = ?", (candidate, split)).fetchone()
        if row is None:
            return None
        if row[0] != _canonical(describe(params)):
            raise RuntimeError(f"Checkpoint {self.path!r} holds candidate {candidate} with parameters "
                               f"{row[0]}, not {_canonical(describe(params))}; the search did not replay.")
        result = dict(zip(_COLUMNS, row[1:-1], strict=True))
        for column in _JSON_COLUMNS:
            result[column] = _load(result[column])
        if result["train_scores"] is None:
            del result["train_scores"]  # asked for only with return_train_score
        result.update(_load(row[-1]) or {})
        return result

    def put(self, candidate, split, params, result):
        """Journal one result of scikit-learn's ``_fit_and_score``, in a transaction of its own.

        A result already there (another process of the same search got there
        first) is kept: both came from the same fit.
        """
        values = [_ordered(result[c]) if c in _JSON_COLUMNS and c in result else _plain_scalar(result.get(c))
                  for c in _COLUMNS]
        extra = {k: v for k, v in result.items() if k not in _COLUMNS}
        with self._connect(write=True) as conn:
            conn.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (candidate, split, _canonical(describe(params)), *values,
                          _ordered(extra) if extra else None, time.time(), os.getpid()))

    # -- reading it back --------------------------------------------------------------------

    def header(self):
        """The header: ``format``, the identity parts (decoded) and ``info.*`` rows."""
        with self._connect() as conn:
            rows = dict(conn.execute("SELECT key, value FROM header"))
        return {key.removeprefix("identity."): json.loads(value) if key.startswith("identity.") else value
                for key, value in rows.items()}

    def results(self):
        """Every journaled result as a dict, in (candidate, split) order; params and scores decoded."""
        with self._connect() as conn:
            cursor = conn.execute("SELECT * FROM results ORDER BY candidate, split")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor]
        for row in rows:
            for column in ("params", "extra", *_JSON_COLUMNS):
                row[column] = _load(row[column])
        return rows



def _not_ours(head):
    """Why the first 100 bytes of a file are not an sknet checkpoint's, or None if they are."""
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
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


def _is_blank(conn):
    """Whether a database holds nothing at all: no schema object, no header field set."""
    return (conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
            and conn.execute("PRAGMA user_version").fetchone()[0] == 0)


def _use_wal(conn):
    """Switch a new journal to WAL mode (a no-op once it is in it)."""
    # The switch needs the only lock on the file and, unlike a transaction, does not wait on the
    # busy timeout: retry while another process creating the same journal reads its header.
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


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
        return {"set": sorted((_describe(v, seen) for v in value), key=_canonical)}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _describe(v, seen) for k, v in value.items()}
        pairs = [[_describe(k, seen), _describe(v, seen)] for k, v in value.items()]
        return {"dict": sorted(pairs, key=_canonical)}
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
    return hashlib.blake2b(_canonical(random_state_to_json(rng)).encode(), digest_size=16).hexdigest()


def _name(obj):
    return f"{getattr(obj, '__module__', None) or ''}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _canonical(value):
    """JSON text that is equal for equal values (sorted keys, no spaces, numpy as Python)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain)


def _ordered(value):
    """JSON text keeping the order of dict keys: scores come back as scikit-learn gave them."""
    return json.dumps(value, default=_plain)


def _plain_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Cannot journal {type(value).__name__} {value!r}: it is not plain data.")


def _load(text):
    return None if text is None else json.loads(text)


def _differences(old, new, path=()):
    """Where two JSON structures differ: ``["params.lr: 0.01 in the checkpoint, 0.1 now", ...]``."""
    if _canonical(old) == _canonical(new):
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
                out += _differences(old[key], new[key], (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in _differences(a, b, (*path, f"[{i}]"))]
    return [f"{where}: {_short(old)} in the checkpoint, {_short(new)} now"]


def _data_differences(old, new):
    """What differs in the data: other values, or the same values in another form."""
    if not all(isinstance(part, dict) and all(v is None or isinstance(v, dict) and "digest" in v
                                              for v in part.values()) for part in (old, new)):
        return _differences(old, new)  # not data_identity's (a Journal used directly)
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


_HINTS = {
    "cv": " (other splits; a splitter that shuffles needs a fixed random_state)",
}


def _short(value, limit=80):
    text = _canonical(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
