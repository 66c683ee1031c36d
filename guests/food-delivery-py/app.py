"""The food-delivery view in Python: plain synchronous code, like a Django view.

``POST /py/order`` with ``user`` and ``dish`` (a JSON body, a form body or the query string):
the order is inserted into SQL database ``default``, the kitchen (config ``kitchen_url``) is
asked over HTTP how long it will take, and the answer goes to the customer's websocket channel
and back as ``201 {"mins": N}``. The same behaviour, status for status, as the Rust guest
(guests/food-delivery).
"""

import json
import logging
import os
import time
from urllib.parse import parse_qsl

import mixio
from mixio import IncomingHandler  # noqa: F401 - the export componentize-py looks for
from mixio import JSONResponse, Response, config, handler, http, sql, ws

MAX_CHARS = 100

CREATE_ORDERS = ("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, "
                 "user_name TEXT NOT NULL, dish TEXT NOT NULL, created_ms BIGINT NOT NULL)")

log = logging.getLogger("food-delivery-py")


@handler
def order(request):
    if request.method != "POST":
        return Response("use POST\n", status=405, headers={"allow": "POST"})
    try:
        user, dish = read_order(request)
    except ValueError as why:
        return Response(f"{why}\n", status=400)
    kitchen_url = config.require("kitchen_url")

    now_ns = time.time_ns()
    order_id = new_order_id(now_ns)
    db = sql.connect("default")
    db.execute(CREATE_ORDERS)
    db.execute("INSERT INTO orders (id, user_name, dish, created_ms) VALUES ($1, $2, $3, $4)",
               [order_id, user, dish, now_ns // 1_000_000])
    log.info("order %s: %s for %s", order_id, dish, user)

    try:
        answer = http.post(kitchen_url, json={"id": order_id, "user": user, "dish": dish})
    except mixio.Error as e:
        return Response(f"{e}\n", status=502)

    match answer.status_code, safe_json(answer):
        case 201, {"mins": int(mins)} if 0 <= mins < 2**64 and not isinstance(mins, bool):
            eta = {"mins": mins}
        case status, _:
            return Response(f"kitchen answered {status}: {answer.text.rstrip()}\n", status=502)

    try:
        ws.send_json(user, eta)
    except mixio.Error as e:
        log.warning("order %s: could not notify %s: %s", order_id, user, e)
    return JSONResponse(eta, status=201)


# Unicode's White_Space, which Rust's `str::trim` strips (Python's `str.strip` strips more).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006" \
              "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# ASCII whitespace as Rust's `trim_ascii` knows it.
ASCII_SPACE = b" \t\n\x0c\r"


def read_order(request):
    """``user`` and ``dish``: the first non-blank value of each, the body's before the query
    string's."""
    pairs = body_fields(request) + parse_qsl(request.query_string, keep_blank_values=True)

    def field(name):
        value = next((v.strip(WHITE_SPACE) for n, v in pairs if n == name and v.strip(WHITE_SPACE)), None)
        if value is None:
            raise ValueError(f"`{name}` is required (JSON body, form body or query string)")
        if len(value) > MAX_CHARS:
            raise ValueError(f"`{name}` must be at most {MAX_CHARS} characters")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
            raise ValueError(f"`{name}` must not contain control characters")
        return value

    return field("user"), field("dish")


def body_fields(request):
    """The ``(name, value)`` pairs of a form or JSON body; none for an empty or other body."""
    body = request.content.strip(ASCII_SPACE)
    if not body:
        return []
    try:
        text = request.content.decode()
    except UnicodeDecodeError:
        text = None
    if request.content_type == "application/x-www-form-urlencoded":
        if text is None:
            raise ValueError("request body is not valid UTF-8")
        return parse_qsl(text, keep_blank_values=True)
    if request.content_type == "application/json" or request.content_type.endswith("+json") \
            or body.startswith(b"{"):
        try:
            if text is None:
                raise ValueError("not valid UTF-8")
            data = json.loads(text)
            # A lone surrogate (`"\\ud800"`) is not text: refused like any invalid JSON.
            if depth(data) > MAX_DEPTH:
                raise ValueError("recursion limit exceeded")
            json.dumps(data, ensure_ascii=False).encode()
        except (ValueError, RecursionError, UnicodeEncodeError) as e:
            raise ValueError(f"body: invalid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
        fields = []
        for name in ("dish", "user"):  # in the order the Rust guest checks them
            match data.get(name):
                case None:
                    pass
                case str(value):
                    fields.append((name, value))
                case _:
                    raise ValueError(f"`{name}` must be a string")
        return fields
    return []


# The deepest nesting of arrays and objects the Rust guest's JSON parser (serde_json) reads.
MAX_DEPTH = 127


def depth(value):
    """How deeply arrays and objects nest in ``value`` (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def safe_json(answer):
    try:
        return answer.json()
    except ValueError:
        return None


def new_order_id(now_ns):
    """The time in nanoseconds as 16 hex digits (ids sort by time), then 8 random hex digits
    so that orders in the same nanosecond, on any host, do not collide."""
    return f"{now_ns:016x}-{int.from_bytes(os.urandom(4), 'big'):08x}"
