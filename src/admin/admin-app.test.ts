import { MockAgent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { createDeps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { silentLogger } from "../telemetry/index.ts";
import { createAdminApp } from "./admin-app.ts";

const agent = new MockAgent();
agent.disableNetConnect();
afterEach(() => agent.assertNoPendingInterceptors());

async function setup(draining = false) {
  const config = parseConfig('upstreams:\n  - name: up\n    url: "http://up.test"\n', {
    source: "t",
    baseDir: ".",
    env: {},
  });
  let t = 0;
  const deps = await createDeps(config, {
    logger: silentLogger,
    dispatcherFor: () => agent,
    readiness: { now: () => t },
  });
  const app = createAdminApp({ pull: deps.pull, isDraining: () => draining });
  const requests = () => deps.metrics.upstreamRequests.value({ upstream: "up" });
  return { app, advance: (ms: number) => (t += ms), requests };
}

describe("admin", () => {
  it("/healthz answers without touching the upstream", async () => {
    const { app, requests } = await setup();
    expect((await app.request("/healthz")).status).toBe(200);
    expect(requests()).toBe(0);
  });

  it("/readyz is ready when the default upstream answers /v2/ (200 or 401), and caches the answer", async () => {
    const { app, advance, requests } = await setup();
    agent.get("http://up.test").intercept({ path: "/v2/", method: "GET" }).reply(401, "");
    expect((await app.request("/readyz")).status).toBe(200);
    expect((await app.request("/readyz")).status).toBe(200);
    expect(requests()).toBe(1);
    advance(1_500);
    agent
      .get("http://up.test")
      .intercept({ path: "/v2/", method: "GET" })
      .replyWithError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
    const res = await app.request("/readyz");
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: "not ready", upstream: "up", reason: "UNREACHABLE" });
  });

  it("/readyz fails while draining", async () => {
    const { app } = await setup(true);
    expect((await app.request("/readyz")).status).toBe(503);
  });
});
