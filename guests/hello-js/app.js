// The smallest JavaScript handler, like guests/hello: greets `?name=` (or the world) with the
// configured `greeting` (default "hello"). With `?ms=N` it first sleeps N milliseconds in the
// host (suspending only this guest), for the density benchmark (bench/benches/density.rs).

import { config, handler, time } from "../../guest-sdk/js/mixio.js";

export const incomingHandler = handler((request) => {
  const ms = request.query.get("ms");
  if (ms !== null) time.sleep(Number(ms));
  const greeting = config.get("greeting", "hello");
  return `${greeting}, ${request.query.get("name") ?? "world"}!\n`;
});
