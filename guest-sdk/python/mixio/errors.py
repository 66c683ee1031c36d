"""The exceptions of the mixio SDK: one class per kind of failure the host reports.

Every exception is a :class:`mixio.Error`. Its text reads like the Rust SDK's (``access denied:
kv store `x` is not granted ...``, ``connection failed: ...``); ``message`` is the host's own
words. A handler that lets one escape answers its request with ``500`` and that text, which is
also logged.
"""


class Error(Exception):
    """Base class of every mixio exception: ``message`` is the host's text, ``str()`` adds
    what kind of failure it is."""

    prefix = ""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return f"{self.prefix}{self.message}"


class AccessDenied(Error):
    """The store, database, channel or topic is not granted to this component."""

    prefix = "access denied: "


class InvalidArgument(Error, ValueError):
    """A key, value, channel or payload was refused (too long, empty, not an integer...)."""

    prefix = "invalid argument: "


class InvalidQuery(Error):
    """A SQL statement is invalid: syntax, unknown table or column, parameters."""

    prefix = "invalid query: "


class ConstraintViolation(Error):
    """A SQL constraint (unique, foreign key, not null, check) was violated."""

    prefix = "constraint violation: "


class TransactionState(Error):
    """``commit`` or ``rollback`` without ``begin``, or ``begin`` twice."""

    prefix = "transaction: "


class BackendError(Error):
    """The backend failed (unreachable, ...); the call may succeed later."""

    prefix = "backend error: "


class MissingConfig(Error, KeyError):
    """A configuration variable the component needs is not set (``message`` is its name)."""

    def __str__(self):
        return f"configuration variable `{self.message}` is not set"


class NotAllowed(Error):
    """The URL (or a redirect target, ``message``) is not on the component's allowed hosts."""

    prefix = "not allowed: "


class InvalidRequest(Error, ValueError):
    """An outbound request is malformed (URL, method, header)."""

    prefix = "invalid request: "


class Timeout(Error, TimeoutError):
    """An outbound request got no complete answer within its deadline."""

    def __str__(self):
        return "timed out"


class TooLarge(Error):
    """An outbound response exceeded the host's size limit (``limit``, in bytes)."""

    def __init__(self, limit):
        super().__init__(f"response larger than {limit} bytes")
        self.limit = limit


class ConnectionFailed(Error, ConnectionError):
    """Name resolution, connection, TLS or protocol failure of an outbound request."""

    prefix = "connection failed: "


# The cases of the WIT error variants, by their binding class name's suffix.
_BY_CASE = {
    "AccessDenied": AccessDenied,
    "Invalid": InvalidArgument,
    "InvalidQuery": InvalidQuery,
    "ConstraintViolation": ConstraintViolation,
    "TransactionState": TransactionState,
    "Backend": BackendError,
    "NotAllowed": NotAllowed,
    "InvalidRequest": InvalidRequest,
    "Connection": ConnectionFailed,
}


def from_wit(err):
    """The exception for the ``Err`` a generated binding raised (its ``value`` is a case of a
    WIT ``error`` variant, such as ``Error_AccessDenied("...")``)."""
    case = type(err.value).__name__.split("_", 1)[-1]
    if case == "Timeout":
        return Timeout("timed out")
    if case == "TooLarge":
        return TooLarge(err.value.value)
    return _BY_CASE.get(case, Error)(getattr(err.value, "value", str(err.value)))


def call(f, *args):
    """Calls binding ``f``, turning the ``Err`` it raises into a mixio exception."""
    from componentize_py_types import Err

    try:
        return f(*args)
    except Err as err:
        raise from_wit(err) from None
