"""SQL databases, synchronously::

    from mixio import sql

    db = sql.connect("default")
    db.execute("INSERT INTO orders (id, dish) VALUES ($1, $2)", [order_id, "ramen"])
    for row in db.query("SELECT id, dish FROM orders WHERE dish = $1", ["ramen"]):
        print(row["id"])

Parameters are always bound (``$1``, ``$2``, ... on every backend): ``None``, ``bool``,
``int``, ``float``, ``str`` and ``bytes``. Rows come back as dicts keyed by column name.
Each call suspends only this guest while the database works.
"""

from contextlib import contextmanager

from wit_world.imports import sql as _wit

from . import errors as _errors
from ._handle import Handle

__all__ = ["connect", "Connection"]


def connect(name="default"):
    """Opens the database ``name`` granted to this component (:class:`mixio.AccessDenied` if it
    is not)."""
    return Connection(_errors.call(_wit.Connection.open, name))


class Connection(Handle):
    """A database connection. Outside a transaction each statement runs on a pooled
    connection; a transaction still open when the request ends is rolled back."""

    def execute(self, statement, params=()):
        """Runs a statement; returns the number of rows it changed."""
        return _errors.call(self._inner.execute, statement, _values(params))

    def query(self, statement, params=()):
        """Runs a query; returns its rows as a list of dicts (column name to value)."""
        rows = _errors.call(self._inner.query, statement, _values(params))
        return [dict(zip(rows.columns, map(_python, row))) for row in rows.rows]

    def query_one(self, statement, params=()):
        """The first row of a query, or ``None``."""
        rows = self.query(statement, params)
        return rows[0] if rows else None

    def begin(self):
        """Starts a transaction."""
        _errors.call(self._inner.begin)

    def commit(self):
        """Commits the transaction."""
        _errors.call(self._inner.commit)

    def rollback(self):
        """Rolls the transaction back."""
        _errors.call(self._inner.rollback)

    @contextmanager
    def transaction(self):
        """``with db.transaction():`` commits at the end of the block, or rolls back if it
        raises."""
        self.begin()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()


def _values(params):
    if isinstance(params, (str, bytes, dict)):
        raise TypeError("params must be a list or tuple of values")
    return [_value(p) for p in params]


def _value(p):
    if p is None:
        return _wit.Value_Null()
    if isinstance(p, bool):
        return _wit.Value_Boolean(p)
    if isinstance(p, int):
        return _wit.Value_Integer(p)
    if isinstance(p, float):
        return _wit.Value_Real(p)
    if isinstance(p, str):
        return _wit.Value_Text(p)
    if isinstance(p, (bytes, bytearray, memoryview)):
        return _wit.Value_Blob(bytes(p))
    raise TypeError(f"cannot bind a {type(p).__name__} as a SQL parameter")


def _python(v):
    return None if isinstance(v, _wit.Value_Null) else v.value
