// mixio for JavaScript guests: plain synchronous code, asynchronous I/O in the host.
//
//     import { handler, http, sql, ws, Response } from "mixio";
//
//     export const incomingHandler = handler((request) => {
//       const db = sql.connect("default");
//       db.execute("INSERT INTO orders (dish) VALUES ($1)", [request.json().dish]);
//       const answer = http.post("https://kitchen.example/", { json: request.json() });
//       return Response.json(answer.json(), { status: 201 });
//     });
//
// Every call into `http`, `sql`, `kv`, `ws`, `pubsub`, `time.sleep` is synchronous: it
// suspends only this guest while the host does the I/O. No `await`, no promises. A handler may
// return a `Response`, a string (text), a `Uint8Array`, or any other value (JSON). An exception
// that escapes it answers 500 with its message, which is also logged.

import * as wconfig from "mixio:io/config@0.1.0";
import * as whttp from "mixio:io/http-client@0.1.0";
import * as wkv from "mixio:io/kv@0.1.0";
import * as wlog from "mixio:io/log@0.1.0";
import * as wpubsub from "mixio:io/pubsub@0.1.0";
import * as wsql from "mixio:io/sql@0.1.0";
import * as wtime from "mixio:io/time@0.1.0";
import * as wws from "mixio:io/websocket@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `JSON.stringify` that writes a BigInt (a SQL integer beyond 2^53) as a number. */
function stringify(value) {
  const marked = JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `\u0000bigint:${v}` : v));
  return marked === undefined ? marked : marked.replace(/"\\u0000bigint:(-?\d+)"/g, "$1");
}

// ---- errors ----------------------------------------------------------------------------

/** The error every SDK call throws: `kind` is the host's case (`access-denied`,
 * `invalid-query`, `constraint-violation`, `not-allowed`, `timeout`, ...), `detail` the host's
 * text, and `message` reads like the Rust SDK's (`access denied: ...`, `connection failed: ...`). */
export class MixioError extends Error {
  constructor(kind, detail) {
    super(describe(kind, detail));
    this.name = "MixioError";
    this.kind = kind;
    this.detail = detail;
  }
}

const PREFIXES = {
  "access-denied": "access denied: ",
  invalid: "invalid argument: ",
  "invalid-query": "invalid query: ",
  "constraint-violation": "constraint violation: ",
  "transaction-state": "transaction: ",
  backend: "backend error: ",
  "not-allowed": "not allowed: ",
  "invalid-request": "invalid request: ",
  connection: "connection failed: ",
};

function describe(kind, detail) {
  if (kind === "timeout") return "timed out";
  if (kind === "too-large") return `response larger than ${detail} bytes`;
  if (kind === "missing-config") return `configuration variable \`${detail}\` is not set`;
  return (PREFIXES[kind] || "") + detail;
}

/** Calls a binding, turning the error payload of a WIT `result` into a `MixioError`. */
function call(f, ...args) {
  try {
    return f(...args);
  } catch (e) {
    const payload = e && e.payload;
    if (payload && typeof payload.tag === "string") throw new MixioError(payload.tag, String(payload.val ?? ""));
    throw e;
  }
}

// ---- requests and responses ------------------------------------------------------------

/** Header fields, looked up case-insensitively; `raw` keeps `[name, bytes]` pairs. */
export class Headers {
  constructor(fields = []) {
    const pairs = Array.isArray(fields) ? fields : Object.entries(fields);
    this.raw = pairs.map(([n, v]) => [String(n).toLowerCase(), v !== null && typeof v === "object" ? v : encoder.encode(String(v))]);
  }
  get(name) {
    name = name.toLowerCase();
    const field = this.raw.find(([n]) => n === name);
    return field ? decoder.decode(field[1]) : null;
  }
  has(name) {
    return this.get(name) !== null;
  }
  set(name, value) {
    name = name.toLowerCase();
    this.raw = this.raw.filter(([n]) => n !== name);
    this.raw.push([name, encoder.encode(String(value))]);
  }
  entries() {
    return this.raw.map(([n, v]) => [n, decoder.decode(v)]);
  }
}

class Body {
  /** The body as text (UTF-8). */
  text() {
    return decoder.decode(this.body);
  }
  /** The body parsed as JSON; throws `SyntaxError` if it is not JSON. */
  json() {
    return JSON.parse(this.text());
  }
}

/** The request a handler is called with: `method`, `path`, `query` (URLSearchParams),
 * `headers`, `body` (Uint8Array), `contentType`, `text()`, `json()`, `form()`. */
export class Request extends Body {
  constructor(method = "GET", pathWithQuery = "/", headers = [], body = new Uint8Array()) {
    super();
    this.method = method;
    this.pathWithQuery = pathWithQuery;
    const q = pathWithQuery.indexOf("?");
    this.path = q < 0 ? pathWithQuery : pathWithQuery.slice(0, q);
    this.query = new URLSearchParams(q < 0 ? "" : pathWithQuery.slice(q + 1));
    this.headers = new Headers(headers);
    this.body = body;
  }
  /** The media type of the body, lower case, without parameters ("" if none). */
  get contentType() {
    return (this.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
  }
  /** The fields of an `application/x-www-form-urlencoded` body (empty otherwise). */
  form() {
    return new URLSearchParams(this.contentType === "application/x-www-form-urlencoded" ? this.text() : "");
  }
}

/** What a handler returns: `new Response("text")`, `new Response(bytes, { status: 201,
 * headers: { "content-type": "image/png" } })`, `Response.json(data, { status })`. A string
 * body is sent as UTF-8 `text/plain` unless a content-type is given. */
export class Response extends Body {
  constructor(body = "", { status = 200, headers = [] } = {}) {
    super();
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new RangeError(`status must be 100..=999, not ${status}`);
    }
    this.status = status;
    this.headers = new Headers(headers);
    if (typeof body === "string") {
      if (!this.headers.has("content-type")) this.headers.set("content-type", "text/plain; charset=utf-8");
      body = encoder.encode(body);
    }
    this.body = body;
  }
  /** A response whose body is `data` as JSON. */
  static json(data, { status = 200, headers = [] } = {}) {
    const response = new Response(encoder.encode(stringify(data)), { status, headers });
    if (!response.headers.has("content-type")) response.headers.set("content-type", "application/json");
    return response;
  }
}

function toResponse(value) {
  if (value instanceof Response) return value;
  if (value && typeof value.then === "function") {
    throw new TypeError("a handler must return its response, not a promise: mixio calls are synchronous, no `async` needed");
  }
  if (typeof value === "string" || value instanceof Uint8Array) return new Response(value);
  if (value === undefined || typeof value === "function" || typeof value === "bigint") {
    throw new TypeError(`a handler must return a Response, a string, a Uint8Array or a JSON value, not ${typeof value}`);
  }
  return Response.json(value);
}

/** Makes `view` (a function from `Request` to a response) the component's export:
 * `export const incomingHandler = handler(view);` */
export function handler(view) {
  return {
    handle(request) {
      let response;
      try {
        const r = new Request(request.method, request.pathWithQuery, request.headers, request.body);
        response = toResponse(view(r));
      } catch (e) {
        const message = (e && e.message) || String(e);
        log.error(`handler failed: ${message}${e && e.stack ? "\n" + e.stack : ""}`);
        response = new Response(message + "\n", { status: 500 });
      }
      return { status: response.status, headers: response.headers.raw, body: response.body };
    },
  };
}

// ---- outbound HTTP ---------------------------------------------------------------------

/** The answer to an outbound request: `status`, `ok`, `headers`, `body`, `text()`, `json()`. */
export class ClientResponse extends Body {
  constructor(status, headers, body) {
    super();
    this.status = status;
    this.ok = status < 400;
    this.headers = new Headers(headers);
    this.body = body;
  }
}

/** Outbound HTTP, synchronous. Options: `json` (a value sent as JSON), `body` (string or
 * Uint8Array), `headers`, `timeoutMs` (capped by the host). Any status is returned; a request
 * that fails throws a `MixioError` (`not-allowed`, `timeout`, `too-large`, `connection`,
 * `invalid-request`). */
export const http = {
  request(method, url, { json, body, headers = [], timeoutMs } = {}) {
    const fields = new Headers(headers);
    if (json !== undefined) {
      if (body !== undefined) throw new TypeError("give `body` or `json`, not both");
      body = stringify(json);
      if (!fields.has("content-type")) fields.set("content-type", "application/json");
    }
    if (typeof body === "string") body = encoder.encode(body);
    const answer = call(whttp.send, {
      method: method.toUpperCase(),
      url,
      headers: fields.raw,
      body: body || new Uint8Array(),
      timeoutMs: timeoutMs === undefined ? undefined : BigInt(Math.max(0, Math.floor(timeoutMs))),
    });
    return new ClientResponse(answer.status, answer.headers, answer.body);
  },
  get: (url, options) => http.request("GET", url, options),
  post: (url, options) => http.request("POST", url, options),
  put: (url, options) => http.request("PUT", url, options),
  delete: (url, options) => http.request("DELETE", url, options),
};

// ---- SQL -------------------------------------------------------------------------------

function sqlValue(v) {
  if (v === null || v === undefined) return { tag: "null" };
  if (typeof v === "boolean") return { tag: "boolean", val: v };
  if (typeof v === "bigint") return { tag: "integer", val: v };
  if (typeof v === "number") return Number.isInteger(v) ? { tag: "integer", val: BigInt(v) } : { tag: "real", val: v };
  if (typeof v === "string") return { tag: "text", val: v };
  if (v instanceof Uint8Array) return { tag: "blob", val: v };
  throw new TypeError(`cannot bind ${typeof v} as a SQL parameter`);
}

function jsValue(v) {
  if (v.tag === "null") return null;
  if (v.tag === "integer") {
    const n = Number(v.val);
    return Number.isSafeInteger(n) ? n : v.val;
  }
  return v.val;
}

/** A database connection: `execute` returns the rows changed, `query` the rows as objects.
 * Parameters are bound (`$1`, `$2`, ...): null, booleans, numbers, bigints, strings, bytes. */
class Connection {
  constructor(inner) {
    this.inner = inner;
  }
  execute(statement, params = []) {
    return Number(call(() => this.inner.execute(statement, params.map(sqlValue))));
  }
  query(statement, params = []) {
    const rows = call(() => this.inner.query(statement, params.map(sqlValue)));
    return rows.rows.map((row) => Object.fromEntries(row.map((v, i) => [rows.columns[i], jsValue(v)])));
  }
  begin() {
    call(() => this.inner.begin());
  }
  commit() {
    call(() => this.inner.commit());
  }
  rollback() {
    call(() => this.inner.rollback());
  }
  /** Runs `f` in a transaction: committed if it returns, rolled back if it throws. */
  transaction(f) {
    this.begin();
    let result;
    try {
      result = f(this);
    } catch (e) {
      this.rollback();
      throw e;
    }
    this.commit();
    return result;
  }
}

export const sql = {
  /** Opens the database `name` granted to this component. */
  connect: (name = "default") => new Connection(call(() => wsql.Connection.open(name))),
};

// ---- key-value -------------------------------------------------------------------------

const ttl = (ttlMs) => (ttlMs === undefined ? undefined : BigInt(ttlMs));
const bytes = (v) => (typeof v === "string" ? encoder.encode(v) : v);

/** An open store: values are bytes (strings are stored as UTF-8). */
class Store {
  constructor(inner) {
    this.inner = inner;
  }
  get(key) {
    return call(() => this.inner.get(key));
  }
  getText(key) {
    const value = this.get(key);
    return value === undefined ? undefined : decoder.decode(value);
  }
  set(key, value, { ttlMs } = {}) {
    call(() => this.inner.set(key, bytes(value), ttl(ttlMs)));
  }
  /** The values of `keys` (a `Uint8Array`, or `undefined` where a key is not set), in their
   * order, in one call to the host: at most 256 keys, whose values total at most 16 MiB. */
  getMany(keys) {
    return call(() => this.inner.getMany([...keys]));
  }
  /** Sets each key of `entries` (an object, a `Map` or `[key, value]` pairs) to its value, in
   * one call to the host, all or none: at most 256 entries, whose values total at most 16 MiB. */
  setMany(entries, { ttlMs } = {}) {
    const pairs = entries instanceof Map || Array.isArray(entries) ? [...entries] : Object.entries(entries);
    const list = pairs.map(([key, value]) => [key, bytes(value)]);
    call(() => this.inner.setMany(list, ttl(ttlMs)));
  }
  delete(key) {
    return call(() => this.inner.delete(key));
  }
  exists(key) {
    return call(() => this.inner.exists(key));
  }
  keys(prefix = "") {
    return call(() => this.inner.listKeys(prefix));
  }
  increment(key, delta = 1) {
    return Number(call(() => this.inner.increment(key, BigInt(delta))));
  }
  compareAndSwap(key, expected, value) {
    return call(() => this.inner.compareAndSwap(key, expected == null ? undefined : bytes(expected), bytes(value)));
  }
}

export const kv = {
  /** Opens the store `name` granted to this component. */
  open: (name = "default") => new Store(call(() => wkv.Store.open(name))),
};

// ---- websocket, pub/sub, config, time, log ---------------------------------------------

export const ws = {
  /** Sends `text` to the clients of `channel` (at most once; no clients is not an error). */
  send: (channel, text) => call(wws.send, channel, text),
  sendJson: (channel, data) => call(wws.send, channel, stringify(data)),
};

export const pubsub = {
  publish: (topic, payload) => call(wpubsub.publish, topic, bytes(payload)),
  publishJson: (topic, data) => call(wpubsub.publish, topic, encoder.encode(stringify(data))),
};

export const config = {
  /** The value of variable `key`, or `fallback` if this component has none. */
  get: (key, fallback = undefined) => {
    const value = wconfig.get(key);
    return value === undefined ? fallback : value;
  },
  /** The value of variable `key`; throws a `MixioError` (`missing-config`) if it is not set. */
  require: (key) => {
    const value = wconfig.get(key);
    if (value === undefined) throw new MixioError("missing-config", key);
    return value;
  },
};

export const time = {
  /** Suspends this guest for at least `ms` milliseconds. */
  sleep: (ms) => wtime.sleep(BigInt(Math.max(0, Math.round(ms * 1e6)))),
  /** The wall-clock time as a `Date`. */
  now: () => {
    const t = wtime.now();
    return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanoseconds / 1e6));
  },
  /** Milliseconds on a monotonic clock, for measuring elapsed time. */
  monotonic: () => Number(wtime.monotonicNow()) / 1e6,
};

const write = (level) => (...parts) =>
  wlog.log(level, parts.map((p) => (typeof p === "string" ? p : stringify(p) ?? String(p))).join(" "));

/** The host log, tagged with the component: `log.info("order", id)`. */
export const log = {
  trace: write("trace"),
  debug: write("debug"),
  info: write("info"),
  warn: write("warn"),
  error: write("error"),
};
