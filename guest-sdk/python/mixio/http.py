"""HTTP: the request a handler gets, the response it returns, and outbound requests.

Outbound requests read like ``requests``::

    from mixio import http

    r = http.post("https://kitchen.example/orders", json={"dish": "ramen"}, timeout=2.5)
    if r.status_code == 201:
        mins = r.json()["mins"]

Each call suspends only this guest until the whole response has arrived. The host allows only
the component's ``allowed_hosts``; anything else raises :class:`mixio.NotAllowed` before a
connection is made.
"""

import json as _json
from urllib.parse import parse_qsl

from wit_world.imports import http_client as _wit
from wit_world.imports import types as _types

from . import errors as _errors

__all__ = ["Request", "Response", "JSONResponse", "ClientResponse", "Headers",
           "request", "get", "post", "put", "delete"]


class Headers:
    """Header fields, looked up case-insensitively. Values are ``str`` (bytes that are not
    UTF-8 are decoded as Latin-1); ``raw`` keeps the fields as received."""

    def __init__(self, fields=()):
        self.raw = [(n.lower(), v if isinstance(v, bytes) else str(v).encode()) for n, v in fields]

    def get(self, name, default=None):
        """The first value of ``name``, or ``default``."""
        name = name.lower()
        for n, v in self.raw:
            if n == name:
                return _text(v)
        return default

    def get_all(self, name):
        """Every value of ``name``, in order."""
        name = name.lower()
        return [_text(v) for n, v in self.raw if n == name]

    def __getitem__(self, name):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name):
        return self.get(name) is not None

    def __iter__(self):
        return iter([n for n, _ in self.raw])

    def items(self):
        return [(n, _text(v)) for n, v in self.raw]

    def __len__(self):
        return len(self.raw)

    def __repr__(self):
        return f"Headers({self.items()!r})"


def _text(value):
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


class _Body:
    """``content``, ``text`` and ``json()`` over a body of bytes."""

    content = b""

    @property
    def text(self):
        """The body as text (UTF-8; invalid bytes are replaced)."""
        return self.content.decode(errors="replace")

    def json(self):
        """The body parsed as JSON; :class:`ValueError` if it is not JSON."""
        return _json.loads(self.content)


class Request(_Body):
    """The request a handler is called with.

    ``method`` (upper case), ``path``, ``query_string``, ``GET`` (the query as a dict of first
    values), ``headers``, ``content`` (bytes), ``text``, ``json()``, and ``POST`` (a form
    body as a dict).
    """

    def __init__(self, method="GET", path_with_query="/", headers=(), body=b""):
        self.method = method
        self.path_with_query = path_with_query
        # Split at the first `?` only: `urlsplit` would read `//x/y` as a host name.
        path, _, self.query_string = path_with_query.partition("?")
        self.path = path or "/"
        self.headers = Headers(headers)
        self.content = bytes(body)

    @property
    def content_type(self):
        """The media type of the body, lower case, without parameters (``""`` if none)."""
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    @property
    def GET(self):
        """The query string's fields: the first value of each name."""
        return _first_values(self.query_string)

    @property
    def POST(self):
        """The fields of an ``application/x-www-form-urlencoded`` body (empty otherwise)."""
        if self.content_type != "application/x-www-form-urlencoded":
            return {}
        return _first_values(self.text)

    def __repr__(self):
        return f"<Request {self.method} {self.path_with_query}>"


def _first_values(encoded):
    fields = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


class Response:
    """What a handler returns: ``Response("text")``, ``Response(b"...", status=201,
    headers={"content-type": "image/png"})``.

    A ``str`` body is sent as UTF-8 with ``content-type: text/plain; charset=utf-8`` unless
    ``headers`` set one.
    """

    def __init__(self, content=b"", status=200, headers=None):
        self.status_code = int(status)
        if not 100 <= self.status_code <= 999:
            raise ValueError(f"status must be 100..=999, not {self.status_code}")
        self.headers = Headers(headers.items() if isinstance(headers, dict) else headers or ())
        if isinstance(content, str):
            content = content.encode()
            if "content-type" not in self.headers:
                self.headers.raw.append(("content-type", b"text/plain; charset=utf-8"))
        self.content = bytes(content)

    def _to_wit(self):
        return _types.Response(self.status_code, self.headers.raw, self.content)

    def __repr__(self):
        return f"<Response {self.status_code}>"


class JSONResponse(Response):
    """A response whose body is ``data`` as JSON: ``JSONResponse({"mins": 12}, status=201)``."""

    def __init__(self, data, status=200, headers=None):
        super().__init__(_json.dumps(data, separators=(",", ":")).encode(), status, headers)
        if "content-type" not in self.headers:
            self.headers.raw.append(("content-type", b"application/json"))


class ClientResponse(_Body):
    """The answer to an outbound request: ``status_code``, ``headers``, ``content``, ``text``,
    ``json()``, ``ok`` (status below 400)."""

    def __init__(self, status_code, headers, content):
        self.status_code = status_code
        self.headers = Headers(headers)
        self.content = bytes(content)

    @property
    def ok(self):
        return self.status_code < 400

    def __repr__(self):
        return f"<ClientResponse {self.status_code}>"


def request(method, url, *, data=None, json=None, headers=None, timeout=None):
    """Sends a request and returns its :class:`ClientResponse`, whatever its status.

    ``data`` is the body (``str`` or ``bytes``); ``json`` is serialized as the body with
    ``content-type: application/json``; ``timeout`` is in seconds (the host caps it). Raises
    :class:`mixio.NotAllowed`, :class:`mixio.Timeout`, :class:`mixio.TooLarge`,
    :class:`mixio.ConnectionFailed` or :class:`mixio.InvalidRequest`.
    """
    fields = Headers(headers.items() if isinstance(headers, dict) else headers or ())
    if json is not None:
        if data is not None:
            raise ValueError("give `data` or `json`, not both")
        data = _json.dumps(json, separators=(",", ":")).encode()
        if "content-type" not in fields:
            fields.raw.append(("content-type", b"application/json"))
    if isinstance(data, str):
        data = data.encode()
    timeout_ms = None if timeout is None else max(0, int(timeout * 1000))
    outgoing = _wit.OutgoingRequest(method.upper(), url, fields.raw, bytes(data or b""), timeout_ms)
    answer = _errors.call(_wit.send, outgoing)
    return ClientResponse(answer.status, answer.headers, answer.body)


def get(url, **kwargs):
    """``request("GET", url, ...)``."""
    return request("GET", url, **kwargs)


def post(url, **kwargs):
    """``request("POST", url, ...)``."""
    return request("POST", url, **kwargs)


def put(url, **kwargs):
    """``request("PUT", url, ...)``."""
    return request("PUT", url, **kwargs)


def delete(url, **kwargs):
    """``request("DELETE", url, ...)``."""
    return request("DELETE", url, **kwargs)
