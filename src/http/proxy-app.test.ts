import { createHash } from "node:crypto";
import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApps, createDeps, type Deps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";

const UP = "http://up.test:5000";
const HUB = "https://hub.test";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }));
const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
const otherDigest = `sha256:${"0".repeat(64)}`;

const CONFIG = `
upstreams:
  - name: local
    url: "${UP}"
    default: true
  - name: hub
    url: "${HUB}"
    registry: docker.io
    pathPrefix: hub
manifests:
  maxBytes: 2048
`;

let agent: MockAgent;
let deps: Deps;
let logger: ReturnType<typeof createMemoryLogger>;
let app: ReturnType<typeof createApps>["proxy"];

beforeEach(async () => {
  agent = new MockAgent();
  agent.disableNetConnect();
  logger = createMemoryLogger();
  const config = parseConfig(CONFIG, { source: "test", baseDir: ".", env: {} });
  deps = await createDeps(config, { logger, dispatcherFor: () => agent });
  app = createApps(deps).proxy;
});

afterEach(async () => {
  await agent.close();
});

function local() {
  return agent.get(UP);
}

function manifestReply(body: Buffer = manifest, extra: Record<string, string> = {}) {
  return {
    headers: {
      "content-type": OCI_MANIFEST,
      "docker-content-digest": digest,
      "content-length": String(body.length),
      ...extra,
    },
  };
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: Array<{ code: string }> };
  return body.errors[0]?.code ?? "";
}

describe("GET /v2/", () => {
  it("answers 200 {} with the API version header, checking the default upstream once per 30 s", async () => {
    local().intercept({ path: "/v2/", method: "GET" }).reply(200, "{}");
    const res = await app.request("/v2/");
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    expect(await res.text()).toBe("{}");
    expect((await app.request("/v2/")).status).toBe(200);
    expect(deps.metrics.upstreamRequests.value({ upstream: deps.config.upstreams[0]?.name ?? "" })).toBe(1);
  });

  it("relays the upstream's challenge when pullgate cannot get in itself, so ping-first clients send credentials", async () => {
    local()
      .intercept({ path: "/v2/", method: "GET" })
      .reply(
        401,
        { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
        {
          headers: { "www-authenticate": 'Basic realm="Registry"' },
        },
      );
    const res = await app.request("/v2/");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Basic realm="Registry"');
    expect(await errorCode(res)).toBe("UNAUTHORIZED");
  });

  it("checks a client's own Authorization with the upstream, every time", async () => {
    local()
      .intercept({ path: "/v2/", method: "GET", headers: { authorization: "Basic Z29vZDpwdw==" } })
      .reply(200, "{}")
      .times(2);
    local()
      .intercept({ path: "/v2/", method: "GET", headers: { authorization: "Basic YmFkOnB3" } })
      .reply(401, "", { headers: { "www-authenticate": 'Basic realm="Registry"' } });
    expect((await app.request("/v2/", { headers: { authorization: "Basic Z29vZDpwdw==" } })).status).toBe(
      200,
    );
    expect((await app.request("/v2/", { headers: { authorization: "Basic Z29vZDpwdw==" } })).status).toBe(
      200,
    );
    expect((await app.request("/v2/", { headers: { authorization: "Basic YmFkOnB3" } })).status).toBe(401);
  });

  it("does not fail an anonymous ping when the upstream is down", async () => {
    local()
      .intercept({ path: "/v2/", method: "GET" })
      .replyWithError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
    expect((await app.request("/v2/")).status).toBe(200);
  });
});

describe("manifests", () => {
  it("serves the exact upstream bytes with content type, digest, length and etag, forwarding Accept", async () => {
    let seenAccept: string | undefined;
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply((opts) => {
        seenAccept = (opts.headers as Record<string, string>).accept;
        return { statusCode: 200, data: manifest, responseOptions: manifestReply() };
      });
    const res = await app.request("/v2/proj/app/manifests/v1", { headers: { accept: OCI_MANIFEST } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(manifest)).toBe(true);
    expect(res.headers.get("content-type")).toBe(OCI_MANIFEST);
    expect(res.headers.get("docker-content-digest")).toBe(digest);
    expect(res.headers.get("content-length")).toBe(String(manifest.length));
    expect(res.headers.get("etag")).toBe(`"${digest}"`);
    expect(seenAccept).toBe(OCI_MANIFEST);
  });

  it("refuses a body whose digest differs from the requested digest", async () => {
    local()
      .intercept({ path: `/v2/proj/app/manifests/${otherDigest}`, method: "GET" })
      .reply(200, manifest, manifestReply());
    const res = await app.request(`/v2/proj/app/manifests/${otherDigest}`);
    expect(res.status).toBe(502);
    expect(await errorCode(res)).toBe("DIGEST_INVALID");
  });

  it("refuses a tag answer whose claimed digest disagrees with its bytes", async () => {
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(200, manifest, manifestReply(manifest, { "docker-content-digest": otherDigest }));
    const res = await app.request("/v2/proj/app/manifests/v1");
    expect(res.status).toBe(502);
  });

  it("refuses a manifest over the size cap, by header or by body", async () => {
    const big = Buffer.alloc(4096, 32);
    local()
      .intercept({ path: "/v2/proj/app/manifests/big", method: "GET" })
      .reply(200, big, manifestReply(big));
    const res = await app.request("/v2/proj/app/manifests/big");
    expect(res.status).toBe(502);
    expect(await errorCode(res)).toBe("MANIFEST_INVALID");
    local()
      .intercept({ path: "/v2/proj/app/manifests/chunked", method: "GET" })
      .reply(200, big, { headers: { "content-type": OCI_MANIFEST } });
    const res2 = await app.request("/v2/proj/app/manifests/chunked");
    expect(res2.status).toBe(502);
  });

  it("answers HEAD with the headers GET would give, from an upstream HEAD", async () => {
    local().intercept({ path: "/v2/proj/app/manifests/v1", method: "HEAD" }).reply(200, "", manifestReply());
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(200, manifest, manifestReply());
    const head = await app.request("/v2/proj/app/manifests/v1", { method: "HEAD" });
    const get = await app.request("/v2/proj/app/manifests/v1");
    expect(head.status).toBe(get.status);
    for (const h of ["content-type", "docker-content-digest", "content-length", "etag"]) {
      expect(head.headers.get(h), h).toBe(get.headers.get(h));
    }
    expect(await head.text()).toBe("");
  });

  it("falls back to GET when the upstream HEAD lacks a digest, and refuses a HEAD by digest the upstream contradicts", async () => {
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "HEAD" })
      .reply(200, "", { headers: { "content-type": OCI_MANIFEST } });
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(200, manifest, manifestReply());
    const head = await app.request("/v2/proj/app/manifests/v1", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("docker-content-digest")).toBe(digest);

    local()
      .intercept({ path: `/v2/proj/app/manifests/${otherDigest}`, method: "HEAD" })
      .reply(200, "", manifestReply());
    const bad = await app.request(`/v2/proj/app/manifests/${otherDigest}`, { method: "HEAD" });
    expect(bad.status).toBe(502);
  });

  it("relays an upstream OCI error with its code and status", async () => {
    local()
      .intercept({ path: "/v2/proj/app/manifests/nope", method: "GET" })
      .reply(404, {
        errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "nope" } }],
      });
    const res = await app.request("/v2/proj/app/manifests/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "nope" } }],
    });
  });
});

describe("validation before upstream", () => {
  it.each([
    ["/v2/Proj/app/manifests/v1", "NAME_INVALID"],
    ["/v2/proj//app/manifests/v1", "NAME_INVALID"],
    ["/v2/proj%2Fapp/manifests/v1", "NAME_INVALID"],
    ["/v2/proj/app/manifests/-v1", "TAG_INVALID"],
    ["/v2/proj/app/manifests/sha256:abc", "DIGEST_INVALID"],
    ["/v2/proj/app/blobs/sha256:xyz", "DIGEST_INVALID"],
    ["/v2/proj/app/referrers/v1", "DIGEST_INVALID"],
  ])("%s → 400 %s", async (path, code) => {
    const res = await app.request(path);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe(code);
    expect(
      deps.config.upstreams.every((u) => deps.metrics.upstreamRequests.value({ upstream: u.name }) === 0),
    ).toBe(true);
  });

  it("reads the raw node request target, so dot segments cannot be normalized away", async () => {
    const res = await app.request(
      "/v2/proj/x/manifests/v1",
      {},
      { incoming: { url: "/v2/proj/../other/manifests/v1" } },
    );
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("NAME_INVALID");
    const enc = await app.request(
      "/v2/x/manifests/v1",
      {},
      { incoming: { url: "/v2/proj/%2e%2e/other/manifests/v1" } },
    );
    expect(enc.status).toBe(400);
  });

  it.each(["POST", "PUT", "PATCH", "DELETE"])("%s → 405 UNSUPPORTED", async (method) => {
    const res = await app.request("/v2/proj/app/manifests/v1", {
      method,
      body: method === "DELETE" ? null : "x",
    });
    expect(res.status).toBe(405);
    expect(await errorCode(res)).toBe("UNSUPPORTED");
    expect(res.headers.get("allow")).toBe("GET, HEAD");
  });

  it("answers unknown endpoints with a 404 envelope", async () => {
    const res = await app.request("/v2/proj/app/whatever/x");
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("UNSUPPORTED");
    expect((await app.request("/metrics")).status).toBe(404);
  });
});

describe("routing", () => {
  it("routes ?ns=docker.io and a path prefix to the hub upstream, normalizing one-segment names", async () => {
    const hub = agent.get(HUB);
    hub
      .intercept({ path: "/v2/library/nginx/manifests/latest", method: "GET" })
      .reply(200, manifest, manifestReply())
      .times(2);
    expect((await app.request("/v2/nginx/manifests/latest?ns=docker.io")).status).toBe(200);
    expect((await app.request("/v2/hub/nginx/manifests/latest")).status).toBe(200);
    expect(deps.metrics.upstreamRequests.value({ upstream: "hub" })).toBe(2);
    expect(deps.metrics.upstreamRequests.value({ upstream: "local" })).toBe(0);
  });

  it("refuses an ns with no upstream instead of asking the default", async () => {
    const res = await app.request("/v2/proj/app/manifests/v1?ns=ghcr.io");
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("NAME_UNKNOWN");
    expect(deps.metrics.upstreamRequests.value({ upstream: deps.config.upstreams[0]?.name ?? "" })).toBe(0);
  });

  it("refuses an ns that only case folding would turn into a configured registry (Kelvin sign)", async () => {
    const res = await app.request(`/v2/nginx/manifests/latest?ns=${encodeURIComponent("\u212a.docker.io")}`);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("NAME_INVALID");
    const folded = await app.request(
      `/v2/nginx/manifests/latest?ns=${encodeURIComponent("docker.io\u212a")}`,
    );
    expect(folded.status).toBe(400);
  });
});

describe("tags and referrers", () => {
  it("validates n/last and rewrites Link to pullgate's path for the client's name", async () => {
    agent
      .get(HUB)
      .intercept({ path: "/v2/library/nginx/tags/list?n=2", method: "GET" })
      .reply(
        200,
        { name: "library/nginx", tags: ["a", "b"] },
        {
          headers: {
            "content-type": "application/json",
            link: '<https://hub.test/v2/library/nginx/tags/list?last=b&n=2>; rel="next"',
          },
        },
      );
    const res = await app.request("/v2/hub/nginx/tags/list?n=2");
    expect(res.status).toBe(200);
    expect(res.headers.get("link")).toBe('</v2/hub/nginx/tags/list?n=2&last=b>; rel="next"');
    expect((await app.request("/v2/proj/app/tags/list?n=-1")).status).toBe(400);
    expect((await app.request("/v2/proj/app/tags/list?n=abc")).status).toBe(400);
    expect((await app.request("/v2/proj/app/tags/list?last=..%2f")).status).toBe(400);
  });

  it("passes referrers with artifactType through and relays an upstream 404 as is", async () => {
    const index = { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] };
    local()
      .intercept({
        path: `/v2/proj/app/referrers/${digest}?artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson`,
        method: "GET",
      })
      .reply(200, index, {
        headers: {
          "content-type": "application/vnd.oci.image.index.v1+json",
          "oci-filters-applied": "artifactType",
        },
      });
    const res = await app.request(
      `/v2/proj/app/referrers/${digest}?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson`,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("oci-filters-applied")).toBe("artifactType");
    expect(await res.json()).toEqual(index);

    local()
      .intercept({ path: `/v2/proj/app/referrers/${digest}`, method: "GET" })
      .reply(404, "404 page not found\n");
    const missing = await app.request(`/v2/proj/app/referrers/${digest}`);
    expect(missing.status).toBe(404);
    expect((await app.request(`/v2/proj/app/referrers/${digest}?artifactType=not a type`)).status).toBe(400);
  });
});

describe("blobs", () => {
  it("passes Range and 206 through, and follows a redirect without sending credentials to the new origin", async () => {
    const blobDigest = `sha256:${"b".repeat(64)}`;
    local()
      .intercept({ path: `/v2/proj/app/blobs/${blobDigest}`, method: "GET" })
      .reply(307, "", { headers: { location: "http://storage.test/obj?sig=1" } });
    let storageAuth: string | undefined = "unset";
    let storageRange: string | undefined;
    agent
      .get("http://storage.test")
      .intercept({ path: "/obj?sig=1", method: "GET" })
      .reply((opts) => {
        const h = opts.headers as Record<string, string>;
        storageAuth = h.authorization;
        storageRange = h.range;
        return {
          statusCode: 206,
          data: "cd",
          responseOptions: { headers: { "content-range": "bytes 2-3/10", "content-length": "2" } },
        };
      });
    const res = await app.request(`/v2/proj/app/blobs/${blobDigest}`, {
      headers: { range: "bytes=2-3", authorization: "Bearer client-token" },
    });
    expect(res.status).toBe(206);
    expect(await res.text()).toBe("cd");
    expect(res.headers.get("content-range")).toBe("bytes 2-3/10");
    expect(storageAuth).toBeUndefined();
    expect(storageRange).toBe("bytes=2-3");
  });
});

describe("blob redirects passed to the client", () => {
  it("returns the upstream's 307 and Location when the upstream is configured with redirects: pass", async () => {
    const config = parseConfig(`upstreams:\n  - name: local\n    url: "${UP}"\n    redirects: pass\n`, {
      source: "test",
      baseDir: ".",
      env: {},
    });
    const passApp = createApps(await createDeps(config, { logger, dispatcherFor: () => agent })).proxy;
    const blobDigest = `sha256:${"c".repeat(64)}`;
    local()
      .intercept({ path: `/v2/proj/app/blobs/${blobDigest}`, method: "GET" })
      .reply(307, "", { headers: { location: "https://storage.test/obj?sig=2" } });
    const res = await passApp.request(`/v2/proj/app/blobs/${blobDigest}`);
    expect(res.status).toBe(307);
    expect(res.headers.get("location")).toBe("https://storage.test/obj?sig=2");
  });
});

describe("errors never leak internals", () => {
  it("maps an unreachable upstream to 502 UNAVAILABLE with no stack", async () => {
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .replyWithError(
        Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:5000 secret-path"), { code: "ECONNREFUSED" }),
      );
    const res = await app.request("/v2/proj/app/manifests/v1");
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text).errors[0].code).toBe("UNAVAILABLE");
    expect(text).not.toContain("ECONNREFUSED");
    expect(text).not.toContain("secret-path");
  });

  it("maps a timeout to 504", async () => {
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .replyWithError(Object.assign(new Error("Headers Timeout Error"), { code: "UND_ERR_HEADERS_TIMEOUT" }));
    const res = await app.request("/v2/proj/app/manifests/v1");
    expect(res.status).toBe(504);
  });

  it("writes one access log line per request without the Authorization header", async () => {
    local()
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(200, manifest, manifestReply());
    await app.request("/v2/proj/app/manifests/v1", { headers: { authorization: "Bearer sekrit-token" } });
    const lines = logger.records.filter((r) => r.event === "access");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      method: "GET",
      kind: "manifest",
      repository: "proj/app",
      upstream: "local",
      status: 200,
      bytes: manifest.length,
    });
    expect(JSON.stringify(logger.records)).not.toContain("sekrit");
  });
});
