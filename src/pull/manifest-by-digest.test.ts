import { createHash } from "node:crypto";
import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApps, createDeps, type Deps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";

// Repeat GETs and HEADs by digest are answered from memory, but only when that cannot leak content.

const UP = "http://up.test";
const OCI = "application/vnd.oci.image.manifest.v1+json";
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: {}, layers: [] }));
const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
const ACCEPT = { accept: `${OCI}, */*` };

let agent: MockAgent;
let deps: Deps;
let app: ReturnType<typeof createApps>;

beforeEach(async () => {
  agent = new MockAgent();
  agent.disableNetConnect();
  const config = parseConfig(`upstreams:\n  - name: up\n    url: "${UP}"\n`, {
    source: "t",
    baseDir: ".",
    env: {},
  });
  deps = await createDeps(config, { logger: createMemoryLogger(), dispatcherFor: () => agent });
  app = createApps(deps);
});
afterEach(async () => {
  await deps.close();
});

function upstreamServes(path: string, times: number) {
  agent
    .get(UP)
    .intercept({ path, method: "GET" })
    .reply(200, manifest, { headers: { "content-type": OCI, "docker-content-digest": digest } })
    .times(times);
}

const upstreamRequests = () =>
  deps.metrics.upstreamRequests.value({ upstream: deps.config.upstreams[0]?.name ?? "" });

describe("manifests by digest from memory", () => {
  it("a repeat GET by digest and a HEAD by digest go nowhere; a GET by tag is always asked upstream", async () => {
    upstreamServes("/v2/proj/app/manifests/v1", 2);
    expect((await app.proxy.request("/v2/proj/app/manifests/v1", { headers: ACCEPT })).status).toBe(200);
    expect(upstreamRequests()).toBe(1);
    const byDigest = await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: ACCEPT });
    expect(byDigest.status).toBe(200);
    expect(Buffer.from(await byDigest.arrayBuffer()).equals(manifest)).toBe(true);
    expect(byDigest.headers.get("docker-content-digest")).toBe(digest);
    const head = await app.proxy.request(`/v2/proj/app/manifests/${digest}`, {
      method: "HEAD",
      headers: ACCEPT,
    });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(manifest.length));
    expect(upstreamRequests()).toBe(1);
    expect((await app.proxy.request("/v2/proj/app/manifests/v1", { headers: ACCEPT })).status).toBe(200);
    expect(upstreamRequests()).toBe(2);
    expect(deps.metrics.manifestCacheHits.value()).toBe(2);
  });

  it("a client with its own Authorization always goes upstream, and its answers are not cached", async () => {
    upstreamServes(`/v2/proj/app/manifests/${digest}`, 3);
    const auth = { ...ACCEPT, authorization: "Bearer client" };
    expect((await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: auth })).status).toBe(200);
    expect((await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: auth })).status).toBe(200);
    // Nor does an anonymous request get what an authenticated one fetched.
    expect((await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: ACCEPT })).status).toBe(
      200,
    );
    expect(upstreamRequests()).toBe(3);
  });

  it("another repository, or an Accept that does not admit the media type, goes upstream", async () => {
    upstreamServes(`/v2/proj/app/manifests/${digest}`, 1);
    await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: ACCEPT });
    upstreamServes(`/v2/proj/other/manifests/${digest}`, 1);
    expect((await app.proxy.request(`/v2/proj/other/manifests/${digest}`, { headers: ACCEPT })).status).toBe(
      200,
    );
    agent
      .get(UP)
      .intercept({ path: `/v2/proj/app/manifests/${digest}`, method: "GET" })
      .reply(404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "unknown" }] });
    const docker = { accept: "application/vnd.docker.distribution.manifest.v2+json" };
    expect((await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: docker })).status).toBe(
      404,
    );
    expect(upstreamRequests()).toBe(3);
  });
});

describe("tag TTL (opt-in)", () => {
  it("with cache.tagTtlSeconds, repeat HEADs and GETs by tag are answered without the upstream", async () => {
    await deps.close();
    agent = new MockAgent();
    agent.disableNetConnect();
    const config = parseConfig(`upstreams:\n  - name: up\n    url: "${UP}"\ncache: { tagTtlSeconds: 30 }\n`, {
      source: "t",
      baseDir: ".",
      env: {},
    });
    deps = await createDeps(config, { logger: createMemoryLogger(), dispatcherFor: () => agent });
    app = createApps(deps);
    upstreamServes("/v2/proj/app/manifests/v1", 1);
    for (let i = 0; i < 3; i++) {
      const head = await app.proxy.request("/v2/proj/app/manifests/v1", {
        method: i === 0 ? "GET" : "HEAD",
        headers: ACCEPT,
      });
      expect(head.status).toBe(200);
      expect(head.headers.get("docker-content-digest")).toBe(digest);
    }
    expect((await app.proxy.request("/v2/proj/app/manifests/v1", { headers: ACCEPT })).status).toBe(200);
    expect(upstreamRequests()).toBe(1);
    // A client with its own credentials still asks the upstream.
    agent
      .get(UP)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "HEAD" })
      .reply(200, "", {
        headers: {
          "content-type": OCI,
          "docker-content-digest": digest,
          "content-length": String(manifest.length),
        },
      });
    const own = await app.proxy.request("/v2/proj/app/manifests/v1", {
      method: "HEAD",
      headers: { ...ACCEPT, authorization: "Bearer c" },
    });
    expect(own.status).toBe(200);
    expect(upstreamRequests()).toBe(2);
  });
});

describe("a herd of first pulls", () => {
  it("makes one upstream manifest fetch for concurrent GETs by digest", async () => {
    agent
      .get(UP)
      .intercept({ path: `/v2/proj/app/manifests/${digest}`, method: "GET" })
      .reply(200, manifest, { headers: { "content-type": OCI, "docker-content-digest": digest } })
      .delay(100);
    const all = await Promise.all(
      Array.from({ length: 20 }, () =>
        app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: ACCEPT }),
      ),
    );
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(upstreamRequests()).toBe(1);
  });

  it("shares the fetch across different Accept lists that admit the type (a HEAD's background fetch and the GET)", async () => {
    agent
      .get(UP)
      .intercept({ path: `/v2/proj/app/manifests/${digest}`, method: "GET" })
      .reply(200, manifest, { headers: { "content-type": OCI, "docker-content-digest": digest } })
      .delay(100);
    const [a, b] = await Promise.all([
      app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: { accept: `${OCI}, */*` } }),
      app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: { accept: OCI } }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(upstreamRequests()).toBe(1);
  });
});

describe("metrics", () => {
  it("exposes counters in Prometheus text on the admin listener", async () => {
    upstreamServes(`/v2/proj/app/manifests/${digest}`, 1);
    await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: ACCEPT });
    await app.proxy.request(`/v2/proj/app/manifests/${digest}`, { headers: ACCEPT });
    const res = await app.admin.request("/metrics");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('pullgate_upstream_requests_total{upstream="up"} 1');
    expect(text).toContain("pullgate_manifest_cache_hits_total 1");
    expect(text).toMatch(/pullgate_decisions_total\{project="[^"]+",outcome="off",reason="none"\} 2/);
    expect(text).toMatch(/pullgate_manifest_cache_bytes \d+/);
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    expect(text).not.toContain(digest);
  });
});
