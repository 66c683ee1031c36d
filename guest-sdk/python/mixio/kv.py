"""Key-value stores, synchronously::

    from mixio import kv

    store = kv.open("default")
    store.set("greeting", "hello", ttl=60)
    store.get("greeting")          # b"hello"
    store.increment("visits")      # 1

Keys are private to the component. Values are bytes (``str`` is stored as UTF-8).
"""

from wit_world.imports import kv as _wit

from . import errors as _errors
from ._handle import Handle
from .errors import InvalidArgument

__all__ = ["open", "Store"]


def open(name="default"):  # noqa: A001 - the SDK's name for opening a store, like Rust's
    """Opens the store ``name`` granted to this component (:class:`mixio.AccessDenied` if it
    is not)."""
    return Store(_errors.call(_wit.Store.open, name))


class Store(Handle):
    """An open store."""

    def get(self, key, default=None):
        """The value of ``key`` (bytes), or ``default`` if it is not set."""
        value = _errors.call(self._inner.get, key)
        return default if value is None else value

    def get_text(self, key, default=None):
        """The value of ``key`` decoded as UTF-8, or ``default``."""
        value = self.get(key)
        return default if value is None else value.decode()

    def set(self, key, value, ttl=None):
        """Sets ``key`` to ``value`` (``str`` or ``bytes``), expiring after ``ttl`` seconds if
        given."""
        ttl_ms = _ttl_ms(ttl)
        _errors.call(self._inner.set, key, _bytes(value), ttl_ms)

    def get_many(self, keys):
        """The values of ``keys`` (bytes, or ``None`` where a key is not set), in their order, in
        one call to the host: at most 256 keys, whose values total at most 16 MiB."""
        return _errors.call(self._inner.get_many, list(keys))

    def set_many(self, entries, ttl=None):
        """Sets each key of ``entries`` (a dict, or pairs) to its value (``str`` or ``bytes``),
        expiring after ``ttl`` seconds if given, in one call to the host, all or none: at most
        256 entries, whose values total at most 16 MiB."""
        ttl_ms = _ttl_ms(ttl)
        pairs = entries.items() if hasattr(entries, "items") else entries
        _errors.call(self._inner.set_many, [(key, _bytes(value)) for key, value in pairs], ttl_ms)

    def delete(self, key):
        """Removes ``key``; ``True`` if it was set."""
        return _errors.call(self._inner.delete, key)

    def exists(self, key):
        """Whether ``key`` is set."""
        return _errors.call(self._inner.exists, key)

    def keys(self, prefix=""):
        """The keys that start with ``prefix``, sorted."""
        return _errors.call(self._inner.list_keys, prefix)

    def increment(self, key, delta=1):
        """Atomically adds ``delta`` to the integer at ``key`` (0 when unset); the new value."""
        return _errors.call(self._inner.increment, key, delta)

    def compare_and_swap(self, key, expected, value):
        """Sets ``key`` to ``value`` if it currently holds ``expected`` (``None``: unset);
        ``True`` if it did."""
        expected = None if expected is None else _bytes(expected)
        return _errors.call(self._inner.compare_and_swap, key, expected, _bytes(value))

    def __contains__(self, key):
        return self.exists(key)


def _ttl_ms(ttl):
    """``ttl`` seconds in milliseconds, as the host takes them (``None``: no expiry)."""
    if ttl is not None and ttl < 0:
        raise InvalidArgument("a TTL must not be negative")
    return None if ttl is None else int(ttl * 1000)


def _bytes(value):
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"a value must be str or bytes, not {type(value).__name__}")
