"""Exercises the Python SDK (guest-sdk/python) against the host: each call's result or
exception goes into one JSON report, which the end-to-end test compares with what the host
must answer. Granted: kv store `default`, sql database `default`, config `greeting`, and
outbound HTTP to nowhere."""

import logging

import mixio
from mixio import IncomingHandler  # noqa: F401 - the export componentize-py looks for
from mixio import JSONResponse, config, handler, http, kv, pubsub, sql, time, ws


def outcome(f):
    """What calling ``f`` gave: its value, or the exception's class and message."""
    try:
        return {"ok": f()}
    except mixio.Error as e:
        return {"error": type(e).__name__, "message": str(e)}


@handler
def check(request):
    report = {}
    store = kv.open("default")
    store.delete("counter")
    store.set("greeting", "hello")
    store.set("bytes", b"\x00\xff")
    report["kv"] = [
        store.get_text("greeting"),
        list(store.get("bytes")),
        store.get("missing", "fallback"),
        store.increment("counter"),
        store.increment("counter", 41),
        store.compare_and_swap("greeting", "hello", "bye"),
        store.compare_and_swap("greeting", "hello", "again"),
        store.get_text("greeting"),
        "greeting" in store,
        store.keys("g"),
        store.delete("greeting"),
        store.exists("greeting"),
    ]
    store.set_many({"m1": "one", "m2": b"\x02"})
    report["kv_many"] = [None if v is None else list(v) for v in store.get_many(["m1", "missing", "m2"])]
    report["kv_many_invalid"] = outcome(lambda: store.get_many(["k"] * 257))
    report["kv_denied"] = outcome(lambda: kv.open("secret"))
    report["kv_invalid"] = outcome(lambda: store.set("", "x"))

    db = sql.connect("default")
    db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, "
               "price REAL, data BLOB, flag BOOLEAN)")
    db.execute("DELETE FROM items")
    inserted = db.execute("INSERT INTO items (id, name, price, data, flag) VALUES "
                          "($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)",
                          [1, "tea", 2.5, b"\x01", True, 2, "cake", None, None, False])
    with db.transaction():
        db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [3, "kept"])
    try:
        with db.transaction():
            db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [4, "rolled back"])
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    rows = db.query("SELECT id, name, price, data FROM items ORDER BY id")
    report["sql"] = {
        "inserted": inserted,
        "rows": [{**r, "data": None if r["data"] is None else list(r["data"])} for r in rows],
        "one": db.query_one("SELECT name FROM items WHERE price > $1", [2.0]),
        "none": db.query_one("SELECT name FROM items WHERE id = $1", [99]),
    }
    report["sql_constraint"] = outcome(lambda: db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [5, "tea"]))
    report["sql_invalid"] = outcome(lambda: db.query("SELEC nothing"))
    report["sql_state"] = outcome(db.commit)
    report["sql_denied"] = outcome(lambda: sql.connect("other"))

    report["config"] = [config.get("greeting"), config.get("missing", "default")]
    report["config_missing"] = outcome(lambda: config.require("missing"))
    report["http_denied"] = outcome(lambda: http.get("http://example.com/"))
    report["ws_invalid"] = outcome(lambda: ws.send("", "x"))
    report["pubsub_denied"] = outcome(lambda: pubsub.publish("orders", "x"))

    before = time.monotonic()
    time.sleep(0.01)
    report["slept"] = time.monotonic() - before >= 0.01
    report["year"] = time.now().year >= 2024
    logging.getLogger("sdk-py").warning("report ready")

    req = {
        "method": request.method,
        "path": request.path,
        "GET": request.GET,
        "header": request.headers.get("X-Test"),
        "json": request.json() if request.content else None,
    }
    report["request"] = req
    if request.GET.get("fail"):
        raise ValueError("asked to fail")
    return JSONResponse(report, status=200)
