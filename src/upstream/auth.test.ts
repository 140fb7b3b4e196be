import { MockAgent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { Secret } from "../config/index.ts";
import { UpstreamAuth } from "./auth.ts";

const agent = new MockAgent();
agent.disableNetConnect();
afterEach(() => agent.assertNoPendingInterceptors());

function auth(now: () => number, origin = "https://reg.test") {
  return new UpstreamAuth({
    upstream: "reg",
    origin,
    credentials: { username: "u", password: new Secret("p") },
    dispatcher: agent,
    userAgent: "t",
    timeoutMs: 1000,
    now,
  });
}

describe("UpstreamAuth", () => {
  it("caches a token until shortly before expires_in, then forgets it", async () => {
    let t = 1_000_000;
    const a = auth(() => t);
    agent
      .get("https://auth.test")
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { access_token: "A", expires_in: 100 });
    const header = await a.answer('Bearer realm="https://auth.test/token",service="s"', "repository:x:pull");
    expect(header).toBe("Bearer A");
    expect(a.cached("repository:x:pull")).toBe("Bearer A");
    expect(a.cached("repository:y:pull")).toBeUndefined();
    t += 85_000; // 100 s token, renewed 10 s early
    expect(a.cached("repository:x:pull")).toBe("Bearer A");
    t += 6_000;
    expect(a.cached("repository:x:pull")).toBeUndefined();
  });

  it("defaults to 60 s when the token service gives no expires_in", async () => {
    let t = 0;
    const a = auth(() => t);
    agent
      .get("https://auth.test")
      .intercept({ path: /\/token/, method: "GET" })
      .reply(200, { token: "B" });
    await a.answer('Bearer realm="https://auth.test/token"', "s");
    t = 47_000;
    expect(a.cached("s")).toBe("Bearer B");
    t = 51_000;
    expect(a.cached("s")).toBeUndefined();
  });

  it("never sends credentials to a plain-HTTP realm of an HTTPS registry", async () => {
    const a = auth(() => 0);
    await expect(a.answer('Bearer realm="http://auth.test/token"', "s")).rejects.toMatchObject({
      code: "AUTH_FAILED",
    });
  });

  it("cannot answer Basic without credentials", async () => {
    const a = new UpstreamAuth({
      upstream: "r",
      origin: "http://r",
      credentials: undefined,
      dispatcher: agent,
      userAgent: "t",
      timeoutMs: 1,
    });
    expect(await a.answer('Basic realm="x"', "s")).toBeUndefined();
  });
});
