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

/** `user` and `dish`, each from the body if it has it, else from the query string. */
function readOrder(request) {
  const body = bodyFields(request);
  const field = (name) => {
    const value = [body[name], request.query.get(name)]
      .filter((v) => typeof v === "string")
      .map((v) => v.trim())
      .find((v) => v !== "");
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

/** The `user` and `dish` of a form or JSON body; nothing for an empty or other body. */
function bodyFields(request) {
  const text = request.text().trim();
  if (text === "") return {};
  const type = request.contentType;
  if (type === "application/x-www-form-urlencoded") {
    const form = request.form();
    return { user: form.get("user") ?? undefined, dish: form.get("dish") ?? undefined };
  }
  if (type === "application/json" || type.endsWith("+json") || text.startsWith("{")) {
    let data;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new BadRequest(`body: invalid JSON: ${e.message}`);
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      throw new BadRequest("the JSON body must be an object");
    }
    const fields = {};
    for (const name of ["user", "dish"]) {
      const value = data[name];
      if (value === undefined || value === null) continue;
      if (typeof value !== "string") throw new BadRequest(`\`${name}\` must be a string`);
      fields[name] = value;
    }
    return fields;
  }
  return {};
}

/** The minutes of a kitchen's `201 {"mins": N}`, else undefined. */
function estimate(answer) {
  if (answer.status !== 201) return undefined;
  let data;
  try {
    data = answer.json();
  } catch {
    return undefined;
  }
  const mins = data && data.mins;
  return Number.isInteger(mins) && mins >= 0 ? mins : undefined;
}

/** The time as 16 hex digits (ids sort by time), then 8 random hex digits so that orders in
 * the same instant, on any host, do not collide. */
function orderId(nowMs) {
  const nanos = BigInt(nowMs) * 1000000n;
  const random = crypto.getRandomValues(new Uint32Array(1))[0];
  return `${nanos.toString(16).padStart(16, "0")}-${random.toString(16).padStart(8, "0")}`;
}
