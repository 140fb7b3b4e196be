import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createWebhookTransport } from "./transport.ts";

const ORIGIN = "https://hooks.example.com";
const PATH = "/services/T0/B0/SECRET";

let agent: MockAgent;
beforeEach(() => {
  agent = new MockAgent();
  agent.disableNetConnect();
});
afterEach(async () => {
  await agent.close();
});

function post(body = '{"a":1}') {
  const transport = createWebhookTransport({ dispatcher: agent });
  return transport.post({
    url: ORIGIN + PATH,
    headers: { authorization: "Bearer t" },
    body,
    timeoutMs: 1_000,
  });
}

describe("createWebhookTransport", () => {
  it("POSTs the JSON body with the configured headers; a 2xx is delivered", async () => {
    let seen: { headers: unknown; body: unknown } | undefined;
    agent
      .get(ORIGIN)
      .intercept({ path: PATH, method: "POST" })
      .reply(200, (opts) => {
        seen = { headers: opts.headers, body: opts.body };
        return "ok";
      });
    expect(await post('{"x":2}')).toEqual({ ok: true, status: 200 });
    expect(seen?.body).toBe('{"x":2}');
    expect(seen?.headers).toMatchObject({
      authorization: "Bearer t",
      "content-type": "application/json; charset=utf-8",
    });
  });

  it("5xx, 408 and 429 are retryable (with Retry-After); other answers are not", async () => {
    const pool = agent.get(ORIGIN);
    pool.intercept({ path: PATH, method: "POST" }).reply(503, "busy", { headers: { "retry-after": "7" } });
    pool.intercept({ path: PATH, method: "POST" }).reply(429, "slow down");
    pool.intercept({ path: PATH, method: "POST" }).reply(408, "");
    pool.intercept({ path: PATH, method: "POST" }).reply(404, "no such hook");
    pool
      .intercept({ path: PATH, method: "POST" })
      .reply(302, "", { headers: { location: "https://elsewhere/" } });
    expect(await post()).toEqual({ ok: false, retryable: true, status: 503, retryAfterMs: 7_000 });
    expect(await post()).toEqual({ ok: false, retryable: true, status: 429 });
    expect(await post()).toEqual({ ok: false, retryable: true, status: 408 });
    expect(await post()).toEqual({ ok: false, retryable: false, status: 404 });
    expect(await post()).toEqual({ ok: false, retryable: false, status: 302 });
  });

  it("a network error is retryable and reported by its code only (never a message that could quote the URL)", async () => {
    const err = Object.assign(new Error(`connect failed to ${ORIGIN}${PATH}`), { code: "ECONNREFUSED" });
    agent.get(ORIGIN).intercept({ path: PATH, method: "POST" }).replyWithError(err);
    const result = await post();
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(JSON.stringify(result)).not.toContain("SECRET");
    expect(JSON.stringify(result)).not.toContain("hooks.example.com");
  });
});
