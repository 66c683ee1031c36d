"""mixio for Python guests: plain synchronous code, asynchronous I/O in the host.

A handler is a function from a :class:`Request` to a :class:`Response`::

    from mixio import IncomingHandler, JSONResponse, handler, http, sql

    @handler
    def order(request):
        db = sql.connect("default")
        db.execute("INSERT INTO orders (dish) VALUES ($1)", [request.json()["dish"]])
        answer = http.post("https://kitchen.example/", json=request.json())
        return JSONResponse(answer.json(), status=201)

(``IncomingHandler`` is the export componentize-py looks for in the app module: import it.)

Every call into ``http``, ``sql``, ``kv``, ``ws``, ``pubsub``, ``time.sleep`` suspends only
this guest while the host does the I/O. A handler may return a :class:`Response`, a ``str``
(text), ``bytes``, or a ``dict``/``list`` (JSON). An exception that escapes it answers ``500``
with its message, and its traceback goes to the host log. The ``logging`` module writes to the
host log, tagged with the component.
"""

import logging as _logging
import traceback as _traceback

from wit_world import exports as _exports
from wit_world.imports import log as _wit_log

from . import config, http, kv, pubsub, sql, time, ws
from .errors import (AccessDenied, BackendError, ConnectionFailed, ConstraintViolation, Error,
                     InvalidArgument, InvalidQuery, InvalidRequest, MissingConfig, NotAllowed,
                     Timeout, TooLarge, TransactionState)
from .http import JSONResponse, Request, Response

__all__ = [
    "handler", "IncomingHandler", "Request", "Response", "JSONResponse",
    "config", "http", "kv", "pubsub", "sql", "time", "ws",
    "Error", "AccessDenied", "BackendError", "ConnectionFailed", "ConstraintViolation",
    "InvalidArgument", "InvalidQuery", "InvalidRequest", "MissingConfig", "NotAllowed",
    "Timeout", "TooLarge", "TransactionState",
]

_view = None


def handler(view):
    """Makes ``view`` the function that answers this component's requests."""
    global _view
    _view = view
    return view


class IncomingHandler(_exports.IncomingHandler):
    """The component's export: calls the function registered with :func:`handler`."""

    def handle(self, request):
        try:
            if _view is None:
                raise RuntimeError("no handler: decorate a function with @mixio.handler")
            r = Request(request.method, request.path_with_query, request.headers, request.body)
            return _response(_view(r))._to_wit()
        except Exception as e:  # the request's own failure: answered, not a trap
            _logging.getLogger("mixio").error("handler failed: %s\n%s", e, _traceback.format_exc())
            message = str(e) or type(e).__name__
            return Response(f"{message}\n", status=500)._to_wit()


def _response(value):
    if isinstance(value, Response):
        return value
    if isinstance(value, (dict, list)):
        return JSONResponse(value)
    if isinstance(value, (str, bytes)):
        return Response(value)
    raise TypeError(f"a handler must return a Response, str, bytes, dict or list, "
                    f"not {type(value).__name__}")


class _HostLog(_logging.Handler):
    """Sends ``logging`` records to the host log."""

    _LEVELS = [
        (_logging.ERROR, _wit_log.Level.ERROR),
        (_logging.WARNING, _wit_log.Level.WARN),
        (_logging.INFO, _wit_log.Level.INFO),
        (_logging.DEBUG, _wit_log.Level.DEBUG),
    ]

    def emit(self, record):
        try:
            level = next((w for p, w in self._LEVELS if record.levelno >= p), _wit_log.Level.TRACE)
            _wit_log.log(level, self.format(record))
        except Exception:
            self.handleError(record)


_root = _logging.getLogger()
_root.addHandler(_HostLog())
_root.setLevel(_logging.DEBUG)  # the host filters by RUST_LOG
