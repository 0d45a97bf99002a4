"""Read-only SQLite access to database files the plugin's grants name
(`[plugins.NAME.grants] sqlite_read = [...]`, and `sqlite_write = [...]` for snapshots).

    with sqlite.open("/data/prod.db") as db:
        db.attach("/data/staging.db", "aux")
        cursor = db.execute("SELECT id, name FROM users WHERE team = ?", ["ops"])
        print(cursor.columns)              # ["id", "name"]
        for id, name in cursor: ...        # rows are tuples, fetched in batches

Statements run inside SQLite on the host; rows come back in batches with their storage
classes: NULL is None, INTEGER int, REAL float, TEXT str, BLOB bytes, and TEXT whose bytes
are not UTF-8 a `TextBytes` (a bytes subclass), exactly as stored. Parameters take the same
types (bool is an integer, bytearray a blob).

Under `roost.testing` the fake host runs the same statements on Python's own sqlite3, which
cannot bind text that is not UTF-8: there a `TextBytes` parameter binds as a BLOB.

Writes, transactions, ATTACH/DETACH statements and extensions are refused
(`AccessDenied`). A new query (or `attach`, `snapshot`) on a connection ends its previous cursor: rows it had not
fetched yet raise `NotFound`; a cursor left
unread for the plugin's `sqlite_cursor_idle_ms` is reset (its next fetch raises
`NotFound`), so read cursors through and close the ones you stop reading. Rows and batches
are capped at a quarter of the plugin's memory limit (`TooLarge`).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional

from . import _host
from .errors import NotFound

#: Rows fetched from the host per batch when iterating or calling `fetchall`.
BATCH = 256

_I64 = (-(2**63), 2**63 - 1)


class TextBytes(bytes):
    """TEXT whose bytes are not valid UTF-8, exactly as stored (a `str` cannot carry them).
    Its SQL `typeof()` is "text"; as a parameter it binds as TEXT, not BLOB."""

    def __repr__(self) -> str:
        return f"TextBytes({bytes(self)!r})"


def type_name(value: Any) -> str:
    """The SQL `typeof()` name of a value as the SDK returns it: "null", "integer",
    "real", "text" or "blob"."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int)):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, (str, TextBytes)):
        return "text"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "blob"
    raise TypeError(f"sqlite: no SQL type for {type(value).__name__}")


def param(value: Any) -> Any:
    """`value` as a query parameter: None, int, float, str, `TextBytes` or bytes. Raises
    TypeError for other types and OverflowError for an int outside 64 bits."""
    if value is None or isinstance(value, (float, str, TextBytes)):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not _I64[0] <= value <= _I64[1]:
            raise OverflowError(f"sqlite: {value} does not fit a 64-bit integer")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"sqlite: cannot bind a {type(value).__name__}; use None, int, float, str or bytes")


class Cursor:
    """The rows of one query, fetched from the host in batches. Iterating yields each row
    as a tuple."""

    def __init__(self, handle: Any, columns: list[str]):
        self._handle = handle
        self._done = False
        self._ended = ""
        self._buffer: list[tuple] = []
        #: The column names, in order.
        self.columns: list[str] = list(columns)

    def next_batch(self, max_rows: int = BATCH) -> Optional[list[tuple]]:
        """Up to `max_rows` more rows from the host, or None once there are no more. The
        host may return fewer (it also caps batches in bytes)."""
        if self._buffer:
            rows, self._buffer = self._buffer[:max_rows], self._buffer[max_rows:]
            return rows
        if self._ended:
            raise NotFound(self._ended)
        if self._done or self._handle is None:
            return None
        rows = _host.current().sqlite_next(self._handle, max(1, int(max_rows)))
        if not rows:
            self._done = True
            self.close()
            return None
        return [tuple(r) for r in rows]

    def fetchone(self) -> Optional[tuple]:
        """The next row, or None."""
        if not self._buffer:
            self._buffer = self.next_batch(BATCH) or []
        return self._buffer.pop(0) if self._buffer else None

    def fetchmany(self, size: int = BATCH) -> list[tuple]:
        """Up to `size` more rows; an empty list at the end."""
        out: list[tuple] = []
        while len(out) < size:
            batch = self.next_batch(size - len(out))
            if batch is None:
                break
            out.extend(batch)
        return out

    def fetchall(self) -> list[tuple]:
        """Every remaining row."""
        return list(self)

    def __iter__(self) -> Iterator[tuple]:
        while True:
            batch = self.next_batch(BATCH)
            if batch is None:
                return
            yield from batch

    def _end(self) -> None:
        """A newer query or call ran on the connection: the host ended this cursor, and
        rows not fetched yet are gone (fetching them raises `NotFound`, as in Rust)."""
        if not self._done:
            self._ended = "cursor ended: a newer query or call ran on its connection"
        self.close()

    def close(self) -> None:
        """Lets the host finish the statement now (releasing its read lock) instead of at
        the idle reset; a closed cursor has no more rows. Closing twice is fine."""
        handle, self._handle = self._handle, None
        self._done = True
        if handle is not None:
            _host.current().sqlite_drop(handle)

    def __enter__(self) -> "Cursor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Connection:
    """One read-only connection: a granted database file as schema `main`, plus at most
    one more granted file attached under a schema name of the plugin's choice."""

    def __init__(self, handle: Any):
        self._handle = handle
        self._cursor: Optional[Cursor] = None

    @classmethod
    def open(cls, path: str) -> "Connection":
        """Opens `path` read-only. Outside `sqlite_read` it raises `AccessDenied`; a
        missing file raises `NotFound`."""
        return cls(_host.current().sqlite_open(path))

    def attach(self, path: str, schema: str) -> None:
        """Attaches another granted database read-only as `schema` (not "main" or "temp")."""
        self._end_cursor()
        _host.current().sqlite_attach(self._live(), path, schema)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Cursor:
        """Runs one statement with `?` parameters and returns its rows as a `Cursor`. The
        previous cursor of this connection ends."""
        values = [param(v) for v in params]
        self._end_cursor()
        handle, columns = _host.current().sqlite_query(self._live(), sql, values)
        self._cursor = Cursor(handle, columns)
        return self._cursor

    #: The WIT name for `execute`.
    query = execute

    def snapshot(self, path: str) -> None:
        """Writes a consistent copy of `main` to `path` (SQLite's online backup), which must
        lie in a directory granted in `sqlite_write`."""
        self._end_cursor()
        _host.current().sqlite_snapshot(self._live(), path)

    def close(self) -> None:
        """Closes the cursor, then the connection. Closing twice is fine."""
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None
        handle, self._handle = self._handle, None
        if handle is not None:
            _host.current().sqlite_drop(handle)

    def _end_cursor(self) -> None:
        if self._cursor is not None:
            self._cursor._end()
            self._cursor = None

    def _live(self) -> Any:
        if self._handle is None:
            raise ValueError("sqlite: the connection is closed")
        return self._handle

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open(path: str) -> Connection:  # noqa: A001 - mirrors the WIT and Rust names
    """`Connection.open(path)`."""
    return Connection.open(path)
