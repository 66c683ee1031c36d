// Exercises the JavaScript SDK (guest-sdk/js/mixio.js) against the host: each call's result
// or error goes into one JSON report, which the end-to-end test compares with what the host
// must answer. Granted: kv store `default`, sql database `default`, config `greeting`, and
// outbound HTTP to nowhere.

import { MixioError, Response, config, handler, http, kv, log, pubsub, sql, time, ws } from "../../guest-sdk/js/mixio.js";

/** What calling `f` gave: its value, or the error's kind and message. */
function outcome(f) {
  try {
    const value = f();
    return { ok: value === undefined ? null : value };
  } catch (e) {
    if (e instanceof MixioError) return { error: e.kind, message: e.message };
    throw e;
  }
}

export const incomingHandler = handler((request) => {
  const report = {};
  const store = kv.open("default");
  store.delete("counter");
  store.set("greeting", "hello");
  store.set("bytes", new Uint8Array([0, 255]));
  report.kv = [
    store.getText("greeting"),
    [...store.get("bytes")],
    store.get("missing") ?? "fallback",
    store.increment("counter"),
    store.increment("counter", 41),
    store.compareAndSwap("greeting", "hello", "bye"),
    store.compareAndSwap("greeting", "hello", "again"),
    store.getText("greeting"),
    store.exists("greeting"),
    store.keys("g"),
    store.delete("greeting"),
    store.exists("greeting"),
  ];
  store.setMany({ m1: "one", m2: new Uint8Array([2]) });
  report.kv_many = store.getMany(["m1", "missing", "m2"]).map((v) => (v === undefined ? null : [...v]));
  report.kv_many_invalid = outcome(() => store.getMany(Array(257).fill("k")));
  report.kv_denied = outcome(() => kv.open("secret"));
  report.kv_invalid = outcome(() => store.set("", "x"));

  const db = sql.connect("default");
  db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, " +
    "price REAL, data BLOB, flag BOOLEAN)");
  db.execute("DELETE FROM items");
  const inserted = db.execute("INSERT INTO items (id, name, price, data, flag) VALUES " +
    "($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)",
  [1, "tea", 2.5, new Uint8Array([1]), true, 2, "cake", null, null, false]);
  db.transaction(() => db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [3, "kept"]));
  try {
    db.transaction(() => {
      db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [4, "rolled back"]);
      throw new Error("abandon");
    });
  } catch (e) {
    if (e.message !== "abandon") throw e;
  }
  const rows = db.query("SELECT id, name, price, data FROM items ORDER BY id");
  report.sql = {
    inserted,
    rows: rows.map((r) => ({ ...r, data: r.data === null ? null : [...r.data] })),
    one: db.query("SELECT name FROM items WHERE price > $1", [2.0])[0] ?? null,
    none: db.query("SELECT name FROM items WHERE id = $1", [99])[0] ?? null,
  };
  report.sql_constraint = outcome(() => db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [5, "tea"]));
  report.sql_invalid = outcome(() => db.query("SELEC nothing"));
  report.sql_state = outcome(() => db.commit());
  report.sql_denied = outcome(() => sql.connect("other"));

  report.config = [config.get("greeting"), config.get("missing", "default")];
  report.config_missing = outcome(() => config.require("missing"));
  report.http_denied = outcome(() => http.get("http://example.com/"));
  report.ws_invalid = outcome(() => ws.send("", "x"));
  report.pubsub_denied = outcome(() => pubsub.publish("orders", "x"));

  const before = time.monotonic();
  time.sleep(10);
  report.slept = time.monotonic() - before >= 10;
  report.year = time.now().getUTCFullYear() >= 2024;
  log.warn("report ready");

  report.request = {
    method: request.method,
    path: request.path,
    GET: Object.fromEntries([...new Set(request.query.keys())].map((k) => [k, request.query.get(k)])),
    header: request.headers.get("X-Test"),
    json: request.body.length ? request.json() : null,
  };
  if (request.query.get("fail")) throw new Error("asked to fail");
  return Response.json(report);
});
