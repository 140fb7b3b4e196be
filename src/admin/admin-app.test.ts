import { MockAgent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../config/index.ts";
import { createPullgateMetrics, createTracer } from "../telemetry/index.ts";
import { RegistryClient, UpstreamRouter } from "../upstream/index.ts";
import { createAdminApp } from "./admin-app.ts";

const agent = new MockAgent();
agent.disableNetConnect();
afterEach(() => agent.assertNoPendingInterceptors());

function setup(draining = false) {
  const config = parseConfig('upstreams:\n  - name: up\n    url: "http://up.test"\n', {
    source: "t",
    baseDir: ".",
    env: {},
  });
  const metrics = createPullgateMetrics();
  const client = new RegistryClient(config.upstreams[0] as never, {
    tracer: createTracer(),
    dispatcher: agent,
    metrics,
  });
  const requests = () => metrics.upstreamRequests.value({ upstream: "up" });
  let t = 0;
  const app = createAdminApp({
    router: new UpstreamRouter([client]),
    isDraining: () => draining,
    now: () => t,
  });
  return { app, advance: (ms: number) => (t += ms), requests };
}

describe("admin", () => {
  it("/healthz answers without touching the upstream", async () => {
    const { app, requests } = setup();
    expect((await app.request("/healthz")).status).toBe(200);
    expect(requests()).toBe(0);
  });

  it("/readyz is ready when the default upstream answers /v2/ (200 or 401), and caches the answer", async () => {
    const { app, advance, requests } = setup();
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
    const { app } = setup(true);
    expect((await app.request("/readyz")).status).toBe(503);
  });
});
