"""The food-delivery view in Python: plain synchronous code, like a Django view.

``POST /py/order`` with ``user`` and ``dish`` (a JSON body, a form body or the query string):
the order is inserted into SQL database ``default``, the kitchen (config ``kitchen_url``) is
asked over HTTP how long it will take, and the answer goes to the customer's websocket channel
and back as ``201 {"mins": N}``. The same behaviour, status for status, as the Rust guest
(guests/food-delivery).
"""

import logging
import os
import time

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
        case 201, {"mins": int(mins)} if mins >= 0 and not isinstance(mins, bool):
            eta = {"mins": mins}
        case status, _:
            return Response(f"kitchen answered {status}: {answer.text.rstrip()}\n", status=502)

    try:
        ws.send_json(user, eta)
    except mixio.Error as e:
        log.warning("order %s: could not notify %s: %s", order_id, user, e)
    return JSONResponse(eta, status=201)


def read_order(request):
    """``user`` and ``dish``, each from the body if it has it, else from the query string."""
    body = body_fields(request)

    def field(name):
        value = next((v.strip() for v in (body.get(name), request.GET.get(name))
                      if v is not None and v.strip()), None)
        if value is None:
            raise ValueError(f"`{name}` is required (JSON body, form body or query string)")
        if len(value) > MAX_CHARS:
            raise ValueError(f"`{name}` must be at most {MAX_CHARS} characters")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
            raise ValueError(f"`{name}` must not contain control characters")
        return value

    return field("user"), field("dish")


def body_fields(request):
    """The ``user`` and ``dish`` of a form or JSON body; nothing for an empty or other body."""
    body = request.content.strip()
    if not body:
        return {}
    if request.content_type == "application/x-www-form-urlencoded":
        return request.POST
    if request.content_type == "application/json" or request.content_type.endswith("+json") \
            or body.startswith(b"{"):
        try:
            data = request.json()
        except ValueError as e:
            raise ValueError(f"body: invalid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
        fields = {}
        for name in ("user", "dish"):
            match data.get(name):
                case None:
                    pass
                case str(value):
                    fields[name] = value
                case _:
                    raise ValueError(f"`{name}` must be a string")
        return fields
    return {}


def safe_json(answer):
    try:
        return answer.json()
    except ValueError:
        return None


def new_order_id(now_ns):
    """The time in nanoseconds as 16 hex digits (ids sort by time), then 8 random hex digits
    so that orders in the same nanosecond, on any host, do not collide."""
    return f"{now_ns:016x}-{int.from_bytes(os.urandom(4), 'big'):08x}"
