// The food-delivery view in JavaScript: plain synchronous code, no `await` anywhere.
//
// `POST /js/order` with `user` and `dish` (a JSON body, a form body or the query string): the
// order is inserted into SQL database `default`, the kitchen (config `kitchen_url`) is asked
// over HTTP how long it will take, and the answer goes to the customer's websocket channel and
// back as `201 {"mins": N}`. The same behaviour, status for status, as the Rust guest
// (guests/food-delivery).

import { MixioError, Response, config, handler, http, log, sql, ws } from "../../guest-sdk/js/mixio.js";

const MAX_CHARS = 100;

const CREATE_ORDERS = "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, " +
  "user_name TEXT NOT NULL, dish TEXT NOT NULL, created_ms BIGINT NOT NULL)";

class BadRequest extends Error {}

// Lossy, and keeping a byte order mark: the checks below look at the bytes as Rust does.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

export const incomingHandler = handler((request) => {
  if (request.method !== "POST") {
    return new Response("use POST\n", { status: 405, headers: { allow: "POST" } });
  }
  let order;
  try {
    order = readOrder(request);
  } catch (e) {
    if (e instanceof BadRequest) return new Response(`${e.message}\n`, { status: 400 });
    throw e;
  }
  const kitchenUrl = config.require("kitchen_url");

  const nowMs = Date.now();
  const id = orderId(nowMs);
  const db = sql.connect("default");
  db.execute(CREATE_ORDERS);
  db.execute("INSERT INTO orders (id, user_name, dish, created_ms) VALUES ($1, $2, $3, $4)",
    [id, order.user, order.dish, nowMs]);
  log.info(`order ${id}: ${order.dish} for ${order.user}`);

  let answer;
  try {
    answer = http.post(kitchenUrl, { json: { id, user: order.user, dish: order.dish } });
  } catch (e) {
    if (e instanceof MixioError) return new Response(`${e.message}\n`, { status: 502 });
    throw e;
  }
  const mins = estimate(answer);
  if (mins === undefined) {
    return new Response(`kitchen answered ${answer.status}: ${answer.text().trimEnd()}\n`, { status: 502 });
  }

  const eta = { mins };
  try {
    ws.sendJson(order.user, eta);
  } catch (e) {
    log.warn(`order ${id}: could not notify ${order.user}: ${e.message}`);
  }
  return Response.json(eta, { status: 201 });
});

// Unicode's White_Space, which Rust's `str::trim` strips (`String.prototype.trim` differs).
const WHITE_SPACE = "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const TRIM = new RegExp(`^${WHITE_SPACE}+|${WHITE_SPACE}+$`, "g");
const trim = (text) => text.replace(TRIM, "");
// ASCII whitespace as Rust's `trim_ascii` knows it.
const ASCII_TRIM = /^[ \t\n\f\r]+|[ \t\n\f\r]+$/g;
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `user` and `dish`: the first non-blank value of each, the body's before the query string's. */
function readOrder(request) {
  const pairs = [...bodyFields(request), ...request.query];
  const field = (name) => {
    const value = pairs.filter(([n]) => n === name).map(([, v]) => trim(v)).find((v) => v !== "");
    if (value === undefined) {
      throw new BadRequest(`\`${name}\` is required (JSON body, form body or query string)`);
    }
    if ([...value].length > MAX_CHARS) throw new BadRequest(`\`${name}\` must be at most ${MAX_CHARS} characters`);
    if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) {
      throw new BadRequest(`\`${name}\` must not contain control characters`);
    }
    return value;
  };
  return { user: field("user"), dish: field("dish") };
}

/** The `[name, value]` pairs of a form or JSON body; none for an empty or other body. */
function bodyFields(request) {
  const ascii = decoder.decode(request.body).replace(ASCII_TRIM, "");
  if (ascii === "") return [];
  let text;
  try {
    text = strict.decode(request.body);
  } catch {
    text = undefined;
  }
  const type = request.contentType;
  if (type === "application/x-www-form-urlencoded") {
    if (text === undefined) throw new BadRequest("request body is not valid UTF-8");
    return [...new URLSearchParams(text)];
  }
  if (type === "application/json" || type.endsWith("+json") || ascii.startsWith("{")) {
    let data;
    try {
      if (text === undefined) throw new SyntaxError("not valid UTF-8");
      data = JSON.parse(text);
    } catch (e) {
      throw new BadRequest(`body: invalid JSON: ${e.message}`);
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      throw new BadRequest("the JSON body must be an object");
    }
    if (depth(data) > MAX_DEPTH) throw new BadRequest("body: invalid JSON: recursion limit exceeded");
    if (hasLoneSurrogate(data)) throw new BadRequest("body: invalid JSON: a lone surrogate is not text");
    const fields = [];
    for (const name of ["dish", "user"]) { // in the order the Rust guest checks them
      const value = data[name];
      if (value === undefined || value === null) continue;
      if (typeof value !== "string") throw new BadRequest(`\`${name}\` must be a string`);
      fields.push([name, value]);
    }
    return fields;
  }
  return [];
}

// The deepest nesting of arrays and objects the Rust guest's JSON parser (serde_json) reads.
const MAX_DEPTH = 127;

/** How deeply arrays and objects nest in `value`. */
function depth(value) {
  let deepest = 0;
  const stack = [[value, 1]];
  while (stack.length) {
    const [item, level] = stack.pop();
    if (item !== null && typeof item === "object") {
      deepest = Math.max(deepest, level);
      for (const child of Object.values(item)) stack.push([child, level + 1]);
    }
  }
  return deepest;
}

/** Whether a string anywhere in `value` (keys too) holds half a surrogate pair. */
function hasLoneSurrogate(value) {
  if (typeof value === "string") return LONE_SURROGATE.test(value);
  if (value === null || typeof value !== "object") return false;
  return Object.entries(value).some(([k, v]) => LONE_SURROGATE.test(k) || hasLoneSurrogate(v));
}

/** The minutes of a kitchen's `201 {"mins": N}` with N a JSON integer, else undefined. */
function estimate(answer) {
  if (answer.status !== 201) return undefined;
  // The source text of each object's `mins`, where the engine gives it: `12.0` is not an integer.
  const sources = new Map();
  let data;
  try {
    data = JSON.parse(answer.text(), function (key, value, context) {
      if (key === "mins" && context && typeof context.source === "string") sources.set(this, context.source);
      return value;
    });
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) return undefined;
  const source = sources.get(data);
  if (source !== undefined && !/^\d+$/.test(source)) return undefined;
  const mins = data.mins;
  return Number.isSafeInteger(mins) && mins >= 0 ? mins : undefined;
}

/** The time as 16 hex digits (ids sort by time), then 8 random hex digits so that orders in
 * the same instant, on any host, do not collide. */
function orderId(nowMs) {
  const nanos = BigInt(nowMs) * 1000000n;
  const random = crypto.getRandomValues(new Uint32Array(1))[0];
  return `${nanos.toString(16).padStart(16, "0")}-${random.toString(16).padStart(8, "0")}`;
}
