"""The exceptions of the mixio SDK: one class per kind of failure the host reports.

Every exception is a :class:`mixio.Error`; its message is the host's. A handler that lets one
escape answers its request with ``500`` and that message, which is also logged.
"""


class Error(Exception):
    """Base class of every mixio exception."""


class AccessDenied(Error):
    """The store, database, channel or topic is not granted to this component."""


class InvalidArgument(Error, ValueError):
    """A key, value, channel or payload was refused (too long, empty, not an integer...)."""


class InvalidQuery(Error):
    """A SQL statement is invalid: syntax, unknown table or column, parameters."""


class ConstraintViolation(Error):
    """A SQL constraint (unique, foreign key, not null, check) was violated."""


class TransactionState(Error):
    """``commit`` or ``rollback`` without ``begin``, or ``begin`` twice."""


class BackendError(Error):
    """The backend failed (unreachable, ...); the call may succeed later."""


class MissingConfig(Error, KeyError):
    """A configuration variable the component needs is not set."""

    def __str__(self):
        return f"configuration variable `{self.args[0]}` is not set"


class NotAllowed(Error):
    """The URL (or a redirect target, ``url``) is not on the component's allowed hosts."""

    def __init__(self, url):
        super().__init__(f"not allowed: {url}")
        self.url = url


class InvalidRequest(Error, ValueError):
    """An outbound request is malformed (URL, method, header)."""


class Timeout(Error, TimeoutError):
    """An outbound request got no complete answer within its deadline."""


class TooLarge(Error):
    """An outbound response exceeded the host's size limit (``limit``, in bytes)."""

    def __init__(self, limit):
        super().__init__(f"response larger than {limit} bytes")
        self.limit = limit


class ConnectionFailed(Error, ConnectionError):
    """Name resolution, connection, TLS or protocol failure of an outbound request."""


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
