import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createMemoryLogger } from "../telemetry/index.ts";
import { type AccessEnv, accessLog } from "./access-log.ts";

function app() {
  const logger = createMemoryLogger();
  const hono = new Hono<AccessEnv>();
  hono.use(accessLog(logger));
  hono.get("*", (c) => c.text("ok"));
  const lines = () => logger.records.filter((r) => r.event === "access");
  return { hono, lines };
}

describe("access log: client address", () => {
  it("records the remote address of the connection, and ignores X-Forwarded-For", async () => {
    const { hono, lines } = app();
    const env = { incoming: { socket: { remoteAddress: "192.0.2.7" } } } as unknown as AccessEnv["Bindings"];
    const res = await hono.request("/v2/", { headers: { "x-forwarded-for": "203.0.113.9" } }, env);
    await res.text();
    expect(lines()).toEqual([expect.objectContaining({ client: "192.0.2.7", method: "GET", status: 200 })]);
    expect(JSON.stringify(lines())).not.toContain("203.0.113.9");
  });

  it("leaves `client` out without a socket (app.request), whatever the headers say", async () => {
    const { hono, lines } = app();
    await (await hono.request("/v2/", { headers: { "x-forwarded-for": "203.0.113.9" } })).text();
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).not.toHaveProperty("client");
    expect(JSON.stringify(lines())).not.toContain("203.0.113.9");
  });
});
