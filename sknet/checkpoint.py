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
    ``cv``, ``data`` and, for a search of torch modules, ``module code``;
    canonical JSON, computed by ``sknet._identity``)
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

import json
import os
import sqlite3
import stat
import time
from collections.abc import Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ._identity import canonical, describe, differences, explain, plain
from ._journal_format import (
    APPLICATION_ID,
    COLUMNS,
    FORMAT,
    FORMAT_VERSION,
    JSON_CELLS,
    JSON_COLUMNS,
    RESULT_COLUMNS,
    SCHEMA,
    SQL_KINDS,
    cell_kind,
    is_blank,
    not_ours,
    schema_columns,
)

__all__ = ["CheckpointDamagedError", "CheckpointPermissionError", "Journal"]

# Seconds a writer waits for another's transaction before giving up. Transactions
# are a single row, so only a stuck process can hold the lock anywhere near this.
BUSY_TIMEOUT = 300.0


class CheckpointPermissionError(PermissionError):
    """A checkpoint this process cannot write (or read), where the search needs to.

    Raised before any fit: when a new checkpoint cannot be created, or an
    unfinished one (which has fits to write) is not writable. A finished
    checkpoint may be read-only: it is then only read.
    """


class CheckpointDamagedError(ValueError):
    """A checkpoint whose tables or values are not what sknet wrote: damaged, or edited by hand.

    Raised when a search opens it (before any fit, nothing written) if a
    table or column is missing or a stored value is not valid JSON, and by
    any :class:`Journal` method that reads such a value later. The message
    names the file, the table and the row.
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

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._read_only = False  # set by open() for a finished checkpoint this process cannot write

    def __repr__(self) -> str:
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
            if "no such table" in str(exc) or "no such column" in str(exc):  # open() checks the
                # schema before any fit; this is for a table dropped while the search ran
                raise CheckpointDamagedError(self._damaged(_missing(exc), at_open=False)) from exc
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

    def open(self, identity: Mapping[str, Any], info: Mapping[str, str] | None = None) -> "Journal":
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
        parts = {name: canonical(value) for name, value in identity.items()}
        is_new = self._sniff()
        why = self._unwritable()
        if why is not None and is_new:
            raise CheckpointPermissionError(f"Cannot create checkpoint {self.path!r}: {why}.")
        stored = self._read_header(why) if why is not None else self._create_or_read(parts, info)
        if stored:
            self._check(stored, parts)
            self._check_cells()
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
        why = not_ours(head)
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
                    if mark == 0 and is_blank(conn):  # new or empty when sniffed, and still
                        self._create(conn, parts, info)
                        stored = {}
                    elif mark != APPLICATION_ID:
                        raise ValueError(self._foreign("another program wrote to it as it was opened"))
                    else:
                        self._check_tables(conn)
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
        for statement in filter(str.strip, SCHEMA.split(";")):
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
                self._check_tables(conn)
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
            stored_part = self._cell(old.get(name), "header", "value", {"key": f"identity.{name}"})
            lines.append(f"  {name}: " + explain(name, stored_part, _load(parts.get(name))))
        raise ValueError(
            f"The checkpoint {self.path!r} belongs to a different search, so its results are not "
            f"reused; the file is left as it is. What differs:\n" + "\n".join(lines) + "\n"
            "Pass a new checkpoint path for this search, or delete the file to start it afresh."
        )

    def _check_tables(self, conn):
        """Raise CheckpointDamagedError if a table or column of the schema is missing (a hand edit)."""
        for table, want in schema_columns().items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not have:
                raise CheckpointDamagedError(self._damaged(f"its {table} table is missing"))
            if missing := [column for column in want if column not in have]:
                what = f"its {table} table has no {', '.join(missing)} column"
                raise CheckpointDamagedError(self._damaged(what))

    def _check_cells(self):
        """Read back every cell a search reads back, so that a damaged one is refused before any fit."""
        with self._connect() as conn:
            for table, (keys, columns) in JSON_CELLS.items():
                for row in conn.execute(f"SELECT {', '.join((*keys, *columns))} FROM {table}"):
                    where = dict(zip(keys, row, strict=False))
                    for column, text in zip(columns, row[len(keys):], strict=True):
                        self._cell(text, table, column, where, at_open=True)
            kinds = ", ".join(f"typeof({column})" for column in SQL_KINDS)
            for candidate, split, *types in conn.execute(f"SELECT candidate, split, {kinds} FROM results"):
                for (column, (allowed, words)), kind in zip(SQL_KINDS.items(), types, strict=True):
                    if kind not in allowed:
                        raise CheckpointDamagedError(self._damaged(
                            f"in its results table, the {column} column of the row of candidate {candidate}, "
                            f"split {split} holds {kind}, not {words}"))

    def _cell(self, text, table, column, row, at_open=True):
        """The JSON value stored in a cell; CheckpointDamagedError, naming the cell, if it is not JSON
        or not the kind of value sknet writes there."""
        name = ", ".join(f"{key} {value!r}" for key, value in row.items())
        try:
            value = _load(text)
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError; TypeError: a number, not text
            raise CheckpointDamagedError(self._damaged(
                f"in its {table} table, the {column} column of the row of {name} is not valid JSON "
                f"({_short_text(text)}: {exc})", at_open)) from exc
        check, words = cell_kind(table, column, row)
        if not check(value):
            raise CheckpointDamagedError(self._damaged(
                f"in its {table} table, the {column} column of the row of {name} holds "
                f"{_short_text(text)}, not {words}", at_open))
        return value

    def _damaged(self, what, at_open=True):
        # At open, nothing was written yet; later, this search's own fits may have been.
        written = "Nothing was written to it; delete" if at_open else "Delete"
        return (f"Checkpoint {self.path!r} is damaged or was edited: {what}. {written} it, or pass a new "
                "checkpoint path, to start the search afresh.")

    def _foreign(self, why):
        return (f"{self.path!r} is not an sknet search checkpoint: {why}. It is left as it is; "
                "pass another checkpoint path.")

    def finished(self) -> bool:
        """Whether the search ran to its end (see :meth:`finish`)."""
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM state WHERE key = 'finished'").fetchone() is not None

    def finish(self) -> None:
        """Record that the search's strategy ran to its end.

        A finished checkpoint is complete: fitting the search again serves every
        result from it, so it may then be read-only (an archive, a shared folder).
        Written once; a finished journal is never written again by this call.
        """
        if not self.finished():
            with self._connect(write=True) as conn:
                conn.execute("INSERT OR IGNORE INTO state VALUES ('finished', 'true')")

    def begin_round(self, index: int, first: int, candidates: Sequence[Mapping[str, Any]],
                    extra: Mapping[str, Any] | None = None) -> set[tuple[int, int]]:
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
        proposed = canonical([describe(params) for params in candidates])
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT first, candidates FROM rounds WHERE round = ?", (index,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO rounds VALUES (?, ?, ?, ?)",
                             (index, first, proposed, canonical(extra) if extra else None))
            done = conn.execute("SELECT candidate, split FROM results WHERE candidate >= ? AND candidate < ?",
                                (first, first + len(candidates))).fetchall()
        if row is not None and tuple(row) != (first, proposed):
            recorded = self._cell(row[1], "rounds", "candidates", {"round": index}, at_open=False)
            details = differences(recorded, json.loads(proposed))
            raise RuntimeError(
                f"Round {index} of this search proposed other candidates than checkpoint {self.path!r} "
                f"recorded ({'; '.join(details[:2]) or f'first candidate {row[0]} vs {first}'}). The "
                "strategy did not replay the interrupted run, so the journal cannot be reused: is some "
                "random_state inside the estimator, the space or optimizer_kwargs left unseeded? Delete "
                "the file or pass a new path to start afresh."
            )
        return {(candidate - first, split) for candidate, split in done}

    def state(self, key: str, value: Any) -> Any:
        """The stored ``state[key]``; stores ``value`` (JSON-able) first if there is none."""
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO state VALUES (?, ?)", (key, canonical(value)))
                return value
        return self._cell(row[0], "state", "value", {"key": key}, at_open=False)

    def peek(self, key: str) -> Any:
        """The stored ``state[key]``, or None if there is none (nothing is written)."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._cell(row[0], "state", "value", {"key": key}, at_open=False)

    def count(self, first: int = 0, stop: int | None = None) -> int:
        """Finished fits of the candidates at positions ``first`` to ``stop`` (excluded)."""
        stop = 2**62 if stop is None else stop
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM results WHERE candidate >= ? AND candidate < ?",
                                (first, stop)).fetchone()[0]

    def __len__(self) -> int:
        return self.count()

    # -- the workers' side: one result ------------------------------------------------------

    def get(self, candidate: int, split: int, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The journaled result of fitting ``params`` on ``split``, or None if not there yet.

        Raises RuntimeError if the journal has that position for other parameters.
        """
        with self._connect() as conn:
            row = conn.execute(f"SELECT params, {', '.join(COLUMNS)}, extra FROM results "
                               "WHERE candidate = ? AND split = ?", (candidate, split)).fetchone()
        if row is None:
            return None
        where = {"candidate": candidate, "split": split}
        self._cell(row[0], "results", "params", where, at_open=False)  # "did not replay" only if it is JSON
        if row[0] != canonical(describe(params)):
            raise RuntimeError(f"Checkpoint {self.path!r} holds candidate {candidate} with parameters "
                               f"{row[0]}, not {canonical(describe(params))}; the search did not replay.")
        result = dict(zip(COLUMNS, row[1:-1], strict=True))
        for column in JSON_COLUMNS:
            result[column] = self._cell(result[column], "results", column, where, at_open=False)
        if result["train_scores"] is None:
            del result["train_scores"]  # asked for only with return_train_score
        result.update(self._cell(row[-1], "results", "extra", where, at_open=False) or {})
        return result

    def put(self, candidate: int, split: int, params: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Journal one result of scikit-learn's ``_fit_and_score``, in a transaction of its own.

        A result already there (another process of the same search got there
        first) is kept: both came from the same fit.
        """
        values = [_ordered(result[c]) if c in JSON_COLUMNS and c in result else _plain_scalar(result.get(c))
                  for c in COLUMNS]
        extra = {k: v for k, v in result.items() if k not in COLUMNS}
        with self._connect(write=True) as conn:
            conn.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (candidate, split, canonical(describe(params)), *values,
                          _ordered(extra) if extra else None, time.time(), os.getpid()))

    # -- reading it back --------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """The header: ``format``, the identity parts (decoded) and ``info.*`` rows."""
        with self._connect() as conn:
            rows = dict(conn.execute("SELECT key, value FROM header"))
        return {key.removeprefix("identity."): value if not key.startswith("identity.")
                else self._cell(value, "header", "value", {"key": key}, at_open=False)
                for key, value in rows.items()}

    def results(self) -> list[dict[str, Any]]:
        """Every journaled result as a dict, in (candidate, split) order; params and scores decoded."""
        with self._connect() as conn:
            # Columns by name: one dropped by hand is then SQLite's "no such column", not a KeyError.
            columns = ", ".join(RESULT_COLUMNS)
            cursor = conn.execute(f"SELECT {columns} FROM results ORDER BY candidate, split")
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor]
        for row in rows:
            where = {"candidate": row["candidate"], "split": row["split"]}
            for column in ("params", "extra", *JSON_COLUMNS):
                row[column] = self._cell(row[column], "results", column, where, at_open=False)
        return rows


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


def _ordered(value):
    """JSON text keeping the order of dict keys: scores come back as scikit-learn gave them."""
    return json.dumps(value, default=plain)


def _plain_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _load(text):
    return None if text is None else json.loads(text)


def _short_text(text, limit=40):
    """The start of a stored text, for a message about it."""
    return repr(text if not isinstance(text, str) or len(text) <= limit else text[:limit] + "...")


def _missing(exc):
    """``"its rounds table is missing"`` from SQLite's "no such table: rounds"."""
    kind, _, name = str(exc).partition(": ")
    if kind == "no such table":
        return f"its {name} table is missing"
    return f"a column is missing (SQLite says: {exc})"
