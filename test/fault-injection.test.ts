import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../src/local/index.ts";
import { type FaultAction, type FaultProxy, startFaultProxy } from "./support/fault-proxy.ts";
import { redisYaml, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy, type TestKey } from "./support/signer.ts";

// Security issue, "Beyond the findings": pullgate in enforce mode in front of a real docker-registry reached
// through a fault-injecting proxy (test/support/fault-proxy.ts), and with a real Redis that is stopped,
// restarted, paused, hung and filled. For every fault: what the client gets (status, OCI code, reason), that
// nothing unsigned is ever served, that pullgate survives (/v2/ and /healthz), that it lets go of the
// connections a fault holds (the proxy sees them closed), and that it recovers once the fault is gone (the
// signed image pulls, the unsigned one is denied). Timeouts are small on purpose (upstream headers/body idle
// 1 s, a whole upstream exchange 3 s, signature lookups 2 s), and every request has a generous bound: a request
// past it hangs, and fails.

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json`;
const ADMIN_TOKEN = "fault-admin-token";
/** Past this a request counts as hanging (every fault here is bounded well below it). */
const REQUEST_BOUND_MS = 15_000;
/** Longest wait for pullgate to let go of a connection a fault holds. */
const RELEASE_BOUND_MS = 10_000;
/** Whole upstream exchange (headers and body) of a manifest, listing or signature blob in these tests. */
const TOTAL_MS = 3_000;
/** Denials are cached this long in these tests (default 60 s), so recovery after a cached deny is observable. */
const DENY_TTL_S = 2;

let registry: Registry;
let redis: RedisServer;
let redisClient: Redis;
let proxy: FaultProxy;
let writer: RegistryWriter;
let key: TestKey;
/** Upstream faults: pullgate with its in-process cache only. */
let pg: TestPullgate;
/** Redis faults: pullgate with Redis (its upstream is the fault proxy too, without rules). */
let pgR: TestPullgate;

/** Every manifest GET of an unsigned image, whatever the test: none may be a 200 (enforce mode). */
const unsignedGets: Array<{ path: string; status: number }> = [];
const unsignedDigests = new Set<string>();

type Image = { repository: string; digest: string; layer: string; layerBytes: Buffer };
type Pair = { signed: Image; unsigned: Image };

function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

let imageCount = 0;

/** A small OCI image (its own layer and config), pushed straight to the registry (not through the proxy). */
async function pushSmallImage(repository: string, tag: string): Promise<Image> {
  imageCount++;
  const layerBytes = Buffer.from(`fault-injection layer ${imageCount} ${repository}\n`.repeat(64));
  const layer = await writer.pushBlob(repository, layerBytes);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Labels: { image: String(imageCount) } },
      rootfs: { type: "layers", diff_ids: [layer] },
    }),
  );
  const configDigest = await writer.pushBlob(repository, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        size: config.length,
        digest: configDigest,
      },
      layers: [
        { mediaType: "application/vnd.oci.image.layer.v1.tar", size: layerBytes.length, digest: layer },
      ],
    }),
  );
  const digest = await writer.pushManifest(repository, tag, manifest, OCI_MANIFEST);
  return { repository, digest, layer, layerBytes };
}

/** `proj/<name>-s:v1`, signed by the trusted key (legacy `.sig`), and `proj/<name>-u:v1`, unsigned. */
async function freshPair(name: string): Promise<Pair> {
  const signed = await pushSmallImage(`proj/${name}-s`, "v1");
  await signLegacy({ writer, repository: signed.repository, digest: signed.digest, key });
  const unsigned = await pushSmallImage(`proj/${name}-u`, "v1");
  unsignedDigests.add(unsigned.digest);
  return { signed, unsigned };
}

/** Both repositories of a pair, as a path regex fragment. */
const both = (name: string) => `proj/${name}-[su]`;
const PATHS = {
  manifestTag: (repo: string) => new RegExp(`^/v2/${repo}/manifests/v1$`),
  manifestDigest: (repo: string, digest: string) => new RegExp(`^/v2/${repo}/manifests/${digest}$`),
  /** cosign's legacy signature tag. */
  sig: (repo: string) => new RegExp(`^/v2/${repo}/manifests/sha256-[0-9a-f]{64}\\.sig$`),
  /** The OCI 1.1 referrers API (distribution 2.8 answers 404 there). */
  referrersApi: (repo: string) => new RegExp(`^/v2/${repo}/referrers/`),
  /** The referrers tag schema index, asked when there is no referrers API. */
  referrersTag: (repo: string) => new RegExp(`^/v2/${repo}/manifests/sha256-[0-9a-f]{64}$`),
  blobs: (repo: string) => new RegExp(`^/v2/${repo}/blobs/`),
};

type Pulled = {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The whole response arrived (its end, not a cut connection). */
  complete: boolean;
  /** Not answered (or not finished) within the bound: the client gave up. */
  timedOut: boolean;
  error: string | undefined;
  code: string | undefined;
  reason: string | undefined;
};

/**
 * One request on its own connection (so no client connection outlives it), given up after `boundMs`. Never
 * rejects: the outcome is in the result.
 */
function pull(
  target: TestPullgate,
  path: string,
  opts: { method?: "GET" | "HEAD"; boundMs?: number } = {},
): Promise<Pulled> {
  const method = opts.method ?? "GET";
  const url = new URL(target.proxyUrl);
  return new Promise((resolve) => {
    let settled = false;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const finish = (complete: boolean, timedOut: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const body = Buffer.concat(chunks);
      let code: string | undefined;
      let reason: string | undefined;
      if (status >= 400) {
        try {
          const e = (
            JSON.parse(body.toString("utf8")) as {
              errors: Array<{ code: string; detail?: { reason?: string } }>;
            }
          ).errors[0];
          code = e?.code;
          reason = e?.detail?.reason;
        } catch {
          // not an OCI envelope
        }
      }
      const result: Pulled = { status, headers, body, complete, timedOut, error, code, reason };
      if (method === "GET" && /^\/v2\/proj\/[^/]+-u\/manifests\//.test(path))
        unsignedGets.push({ path, status });
      resolve(result);
    };
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method, headers: { accept: ACCEPT }, agent: false },
      (res) => {
        status = res.statusCode ?? 0;
        headers = res.headers;
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => finish(res.complete, false));
        res.on("close", () => finish(res.complete, false, res.complete ? undefined : "cut"));
        res.on("error", (err) => finish(false, false, (err as NodeJS.ErrnoException).code ?? err.message));
      },
    );
    const timer = setTimeout(() => {
      finish(false, true, "client gave up");
      req.destroy();
    }, opts.boundMs ?? REQUEST_BOUND_MS);
    req.on("error", (err) => finish(false, false, (err as NodeJS.ErrnoException).code ?? err.message));
    req.end();
  });
}

const manifestPath = (image: Image, ref = "v1") => `/v2/${image.repository}/manifests/${ref}`;
const blobPath = (image: Image) => `/v2/${image.repository}/blobs/${image.layer}`;

/** Still serving: the proxy's /v2/ and the admin's /healthz. */
async function expectAlive(target: TestPullgate): Promise<void> {
  expect((await pull(target, "/v2/")).status).toBe(200);
  const health = await fetch(`${target.adminUrl}/healthz`, { signal: AbortSignal.timeout(REQUEST_BOUND_MS) });
  expect(health.status).toBe(200);
  await health.body?.cancel();
}

/** Every connection a fault held was closed, and nothing is in flight at the proxy. */
async function expectReleased(): Promise<void> {
  await waitFor(() => proxy.heldConnections() === 0 && proxy.busyConnections() === 0, {
    timeoutMs: RELEASE_BOUND_MS,
    description: "pullgate to close the connections the fault held",
  });
}

/** The fault is gone: the signed image pulls (by tag and by digest), the unsigned one is denied. */
async function expectRecovered(target: TestPullgate, pair: Pair): Promise<void> {
  const signed = await pull(target, manifestPath(pair.signed));
  expect(signed.status).toBe(200);
  expect(signed.headers["docker-content-digest"]).toBe(pair.signed.digest);
  expect(sha256(signed.body)).toBe(pair.signed.digest);
  expect((await pull(target, manifestPath(pair.signed, pair.signed.digest))).status).toBe(200);
  const unsigned = await pull(target, manifestPath(pair.unsigned));
  expect(unsigned.status).toBe(403);
  expect(unsigned).toMatchObject({ code: "DENIED", reason: "NO_SIGNATURE" });
}

function expectAnswered(r: Pulled, status: number, code?: string, reason?: string): void {
  expect(r.timedOut, `answered within ${REQUEST_BOUND_MS} ms`).toBe(false);
  expect({ status: r.status, code: r.code, reason: r.reason }).toEqual({ status, code, reason });
}

beforeAll(async () => {
  [registry, redis] = await Promise.all([startRegistry(), startRedis()]);
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  redisClient.on("error", () => {});
  await redisClient.connect();
  proxy = await startFaultProxy(registry.url);
  writer = new RegistryWriter(registry.url);
  key = generateTestKey();
  const upstream = `  - name: local
    url: "${proxy.url}"
    timeouts: { connectMs: 1000, headersMs: 1000, bodyIdleMs: 1000, totalMs: ${TOTAL_MS} }`;
  const config = `verification: { lookupTimeoutMs: 2000 }
cache: { denyTtlSeconds: ${DENY_TTL_S} }
projects:
  proj:
    mode: enforce
    keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]
`;
  pg = await startTestPullgate(upstream, config, { adminToken: ADMIN_TOKEN });
  pgR = await startTestPullgate(upstream, `${redisYaml(redis.url)}${config}`, { adminToken: ADMIN_TOKEN });
}, 120_000);

afterAll(async () => {
  redis?.resume();
  await Promise.all([pg?.stop(), pgR?.stop()]);
  redisClient?.disconnect();
  await proxy?.close();
  await Promise.all([registry?.stop(), redis?.stop()]);
});

type ManifestFault = {
  name: string;
  action: FaultAction;
  times?: number;
  status: number;
  code: string;
  retryAfter?: string;
  /** Upstream requests one pull may make under this fault (a retry, redirects): bounded. */
  maxHitsPerPull?: number;
  /** The fault holds the connection until pullgate gives up on it. */
  holds?: boolean;
};

describe("faults on the image manifest (GET by tag): the client gets an error, never the image", () => {
  const faults: ManifestFault[] = [
    {
      name: "m-429",
      action: { kind: "status", status: 429, retryAfter: "7" },
      times: 2,
      status: 429,
      code: "TOOMANYREQUESTS",
      retryAfter: "7",
    },
    {
      name: "m-500",
      action: { kind: "status", status: 500, body: "html" },
      status: 500,
      code: "UNAVAILABLE",
    },
    { name: "m-503", action: { kind: "status", status: 503 }, status: 503, code: "UNAVAILABLE" },
    {
      name: "m-slow-headers",
      action: { kind: "delay-headers", ms: 5_000 },
      status: 504,
      code: "UNAVAILABLE",
      holds: true,
    },
    {
      name: "m-reset",
      action: { kind: "reset" },
      status: 502,
      code: "UNAVAILABLE",
      maxHitsPerPull: 2, // one retry after a reset, no more
    },
    { name: "m-reset-mid-body", action: { kind: "reset", afterBytes: 10 }, status: 502, code: "UNAVAILABLE" },
    { name: "m-short-body", action: { kind: "wrong-length", delta: 10 }, status: 502, code: "UNAVAILABLE" },
    {
      name: "m-long-body",
      action: { kind: "wrong-length", delta: -10 },
      status: 502,
      code: "DIGEST_INVALID",
    },
    { name: "m-corrupt", action: { kind: "corrupt" }, status: 502, code: "DIGEST_INVALID" },
    {
      name: "m-redirect-loop",
      action: { kind: "redirect-loop" },
      status: 502,
      code: "UNAVAILABLE",
      maxHitsPerPull: 6, // the first request and 5 redirects
    },
    {
      name: "m-4gib",
      action: { kind: "huge-length", after: "hang" },
      status: 502,
      code: "MANIFEST_INVALID",
      holds: true,
    },
  ];

  it.each(faults)("$name → $status $code", async (f) => {
    const pair = await freshPair(f.name);
    const rule = proxy.add({
      method: "GET",
      path: PATHS.manifestTag(both(f.name)),
      action: f.action,
      ...(f.times === undefined ? {} : { times: f.times }),
    });
    try {
      for (const image of [pair.signed, pair.unsigned]) {
        const r = await pull(pg, manifestPath(image));
        expectAnswered(r, f.status, f.code);
        if (f.retryAfter) expect(r.headers["retry-after"]).toBe(f.retryAfter);
      }
      expect(rule.hits.length).toBeGreaterThanOrEqual(2);
      if (f.maxHitsPerPull) expect(rule.hits.length).toBeLessThanOrEqual(2 * f.maxHitsPerPull);
    } finally {
      rule.remove();
    }
    await expectReleased();
    if (f.holds) expect(rule.hits.every((h) => h.closedByClient)).toBe(true);
    await expectAlive(pg);
    await expectRecovered(pg, pair);
  });

  it("by digest too: a corrupt or failing upstream answer is never served", async () => {
    const pair = await freshPair("m-digest");
    for (const action of [{ kind: "corrupt" }, { kind: "status", status: 503 }] as FaultAction[]) {
      const rule = proxy.add({
        method: "GET",
        path: PATHS.manifestDigest(both("m-digest"), "sha256:[0-9a-f]{64}"),
        action,
      });
      try {
        for (const image of [pair.signed, pair.unsigned]) {
          const r = await pull(pg, manifestPath(image, image.digest));
          expect(r.timedOut).toBe(false);
          expect(r.status).toBe(action.kind === "corrupt" ? 502 : 503);
        }
      } finally {
        rule.remove();
      }
    }
    await expectReleased();
    await expectRecovered(pg, pair);
  });

  it("a dead upstream (connection refused) is 502 UNAVAILABLE, and pullgate comes back with it", async () => {
    const pair = await freshPair("m-dead");
    await proxy.halt();
    try {
      for (const image of [pair.signed, pair.unsigned]) {
        expectAnswered(await pull(pg, manifestPath(image)), 502, "UNAVAILABLE");
        expectAnswered(await pull(pg, manifestPath(image, image.digest)), 502, "UNAVAILABLE");
        expectAnswered(await pull(pg, blobPath(image)), 502, "UNAVAILABLE");
      }
      await expectAlive(pg);
    } finally {
      await proxy.restart();
    }
    await expectRecovered(pg, pair);
  });
});

describe("an upstream that drips a manifest forever (a byte every 200 ms, never idle): bounded by the total deadline", () => {
  const drip: FaultAction = { kind: "drip", intervalMs: 200 };

  it("GET by tag → 504 UNAVAILABLE, and the connection is let go", async () => {
    const pair = await freshPair("d-tag");
    const rule = proxy.add({ method: "GET", path: PATHS.manifestTag(both("d-tag")), action: drip });
    try {
      for (const image of [pair.signed, pair.unsigned])
        expectAnswered(await pull(pg, manifestPath(image)), 504, "UNAVAILABLE");
    } finally {
      rule.remove();
    }
    await expectReleased();
    expect(rule.hits.length).toBe(2);
    expect(rule.hits.every((h) => h.closedByClient)).toBe(true);
    await expectRecovered(pg, pair);
  });

  it("GET by digest (one upstream fetch shared by every client) → 504, let go, and pullable once the fault is gone", async () => {
    const pair = await freshPair("d-digest");
    const rule = proxy.add({
      method: "GET",
      path: PATHS.manifestDigest(both("d-digest"), "sha256:[0-9a-f]{64}"),
      action: drip,
    });
    try {
      for (const image of [pair.signed, pair.unsigned]) {
        expectAnswered(await pull(pg, manifestPath(image, image.digest)), 504, "UNAVAILABLE");
      }
    } finally {
      rule.remove();
    }
    await expectReleased();
    expect(rule.hits.every((h) => h.closedByClient)).toBe(true);
    await expectRecovered(pg, pair);
  });

  it("containerd's HEAD by tag, then GET by digest while the digest drips: the GET fails, nothing is held", async () => {
    const pair = await freshPair("d-head");
    const rule = proxy.add({
      method: "GET",
      path: PATHS.manifestDigest(both("d-head"), "sha256:[0-9a-f]{64}"),
      action: drip,
    });
    try {
      for (const image of [pair.signed, pair.unsigned]) {
        expect((await pull(pg, manifestPath(image), { method: "HEAD" })).status).toBe(200);
        const get = await pull(pg, manifestPath(image, image.digest));
        expect(get.timedOut).toBe(false);
        expect([503, 504]).toContain(get.status);
        expect(get.code).toBe("UNAVAILABLE");
      }
    } finally {
      rule.remove();
    }
    await expectReleased();
    await expectRecovered(pg, pair);
  });

  it("a 404 whose error body drips is answered within the bound", async () => {
    const rule = proxy.add({ method: "GET", path: /^\/v2\/proj\/d-missing\/manifests\/v1$/, action: drip });
    try {
      const r = await pull(pg, "/v2/proj/d-missing/manifests/v1");
      expect(r.timedOut).toBe(false);
      expect([404, 504]).toContain(r.status);
      console.log(`404 with a dripping body: ${r.status} ${r.code}`);
    } finally {
      rule.remove();
    }
    await expectReleased();
    await expectAlive(pg);
  });
});

type LookupFault = {
  name: string;
  path: (repo: string) => RegExp;
  action: FaultAction;
  signed: [number, string | undefined, string | undefined];
  unsigned: [number, string | undefined, string | undefined];
  holds?: boolean;
};

const UNAVAILABLE: [number, string, string] = [503, "UNAVAILABLE", "SIGNATURE_UNAVAILABLE"];
const NO_SIGNATURE: [number, string, string] = [403, "DENIED", "NO_SIGNATURE"];
const SERVED: [number, undefined, undefined] = [200, undefined, undefined];

describe("faults on the signature lookup: 'could not look' is 503 SIGNATURE_UNAVAILABLE, never an allow", () => {
  const faults: LookupFault[] = [
    {
      name: "s-500",
      path: PATHS.sig,
      action: { kind: "status", status: 500, body: "html" },
      signed: UNAVAILABLE,
      unsigned: UNAVAILABLE,
    },
    {
      name: "s-429",
      path: PATHS.sig,
      action: { kind: "status", status: 429, retryAfter: "3" },
      signed: UNAVAILABLE,
      unsigned: UNAVAILABLE,
    },
    // A valid legacy signature is enough; the unsigned image cannot be called unsigned without the bundles.
    {
      name: "s-referrers-429",
      path: PATHS.referrersApi,
      action: { kind: "status", status: 429 },
      signed: SERVED,
      unsigned: UNAVAILABLE,
    },
    {
      name: "s-referrers-tag-503",
      path: PATHS.referrersTag,
      action: { kind: "status", status: 503 },
      signed: SERVED,
      unsigned: UNAVAILABLE,
    },
    {
      name: "s-slow-headers",
      path: PATHS.sig,
      action: { kind: "delay-headers", ms: 5_000 },
      signed: UNAVAILABLE,
      unsigned: UNAVAILABLE,
      holds: true,
    },
    {
      name: "s-drip",
      path: PATHS.sig,
      action: { kind: "drip", intervalMs: 200 },
      signed: UNAVAILABLE,
      unsigned: UNAVAILABLE,
      holds: true,
    },
    // The unsigned image has no signature blob to fetch.
    {
      name: "s-drip-payload",
      path: PATHS.blobs,
      action: { kind: "drip", intervalMs: 200 },
      signed: UNAVAILABLE,
      unsigned: NO_SIGNATURE,
      holds: true,
    },
    // A signature verified in one format admits the image however slowly the other format fails.
    {
      name: "s-drip-referrers-tag",
      path: PATHS.referrersTag,
      action: { kind: "drip", intervalMs: 200 },
      signed: SERVED,
      unsigned: UNAVAILABLE,
      holds: true,
    },
    {
      name: "s-reset",
      path: PATHS.sig,
      action: { kind: "reset" },
      signed: UNAVAILABLE,
      unsigned: UNAVAILABLE,
    },
    {
      name: "s-redirect-loop",
      path: PATHS.sig,
      action: { kind: "redirect-loop" },
      signed: UNAVAILABLE,
      unsigned: UNAVAILABLE,
    },
  ];

  it.each(faults)("$name → signed $signed.0, unsigned $unsigned.0", async (f) => {
    const pair = await freshPair(f.name);
    const rule = proxy.add({ method: "GET", path: f.path(both(f.name)), action: f.action });
    try {
      const signed = await pull(pg, manifestPath(pair.signed));
      expectAnswered(signed, ...f.signed);
      const unsigned = await pull(pg, manifestPath(pair.unsigned));
      expectAnswered(unsigned, ...f.unsigned);
      expect(rule.hits.length).toBeGreaterThan(0);
    } finally {
      rule.remove();
    }
    await expectReleased();
    if (f.holds) expect(rule.hits.every((h) => h.closedByClient)).toBe(true);
    await expectAlive(pg);
    // "Could not look" was not cached: the next pulls look again.
    await expectRecovered(pg, pair);
  });

  it("containerd's HEAD by tag then GET by digest: the HEAD is answered, the GET is 503, then recovers", async () => {
    const pair = await freshPair("s-head-get");
    const rule = proxy.add({
      method: "GET",
      path: PATHS.sig(both("s-head-get")),
      action: { kind: "status", status: 500 },
    });
    try {
      for (const image of [pair.signed, pair.unsigned]) {
        const head = await pull(pg, manifestPath(image), { method: "HEAD" });
        expect(head.status).toBe(200); // HEAD reveals only the digest (gateHead: false)
        expect(head.headers["docker-content-digest"]).toBe(image.digest);
        expectAnswered(await pull(pg, manifestPath(image, image.digest)), ...UNAVAILABLE);
      }
    } finally {
      rule.remove();
    }
    await expectReleased();
    await expectRecovered(pg, pair);
  });

  // Signature evidence whose bytes do not match their digest (truncated, bit-flipped) is a broken answer:
  // "could not look" (503, never cached), so the signed image pulls again as soon as the fault is gone.
  it.each([
    { name: "e-sig-long-body", path: PATHS.sig, action: { kind: "wrong-length", delta: -10 } },
    { name: "e-sig-corrupt", path: PATHS.sig, action: { kind: "corrupt" } },
    { name: "e-payload-corrupt", path: PATHS.blobs, action: { kind: "corrupt" } },
  ] as Array<{ name: string; path: (repo: string) => RegExp; action: FaultAction }>)(
    "$name: broken signature evidence is 'could not look' (503, not cached)",
    async (f) => {
      const pair = await freshPair(f.name);
      const rule = proxy.add({ method: "GET", path: f.path(both(f.name)), action: f.action });
      try {
        expectAnswered(await pull(pg, manifestPath(pair.signed)), ...UNAVAILABLE);
        const unsigned = await pull(pg, manifestPath(pair.unsigned));
        expect([403, 503]).toContain(unsigned.status);
        expect(rule.hits.length).toBeGreaterThan(0);
      } finally {
        rule.remove();
      }
      await expectReleased();
      await expectAlive(pg);
      await expectRecovered(pg, pair); // at once, not after denyTtlSeconds
    },
  );

  // A `.sig` claiming 4 GiB is over the size cap: nothing that large is judged, so it holds no signature
  // (a denial, cached for denyTtlSeconds); the signed image pulls again after that.
  it("e-sig-4gib: an oversized signature manifest never admits", async () => {
    const pair = await freshPair("e-sig-4gib");
    const rule = proxy.add({
      method: "GET",
      path: PATHS.sig(both("e-sig-4gib")),
      action: { kind: "huge-length", after: "close" },
    });
    try {
      for (const image of [pair.signed, pair.unsigned]) {
        const r = await pull(pg, manifestPath(image));
        expect(r.timedOut).toBe(false);
        expect([403, 503]).toContain(r.status);
      }
      expect(rule.hits.length).toBeGreaterThan(0);
    } finally {
      rule.remove();
    }
    await expectReleased();
    await expectAlive(pg);
    await waitFor(async () => (await pull(pg, manifestPath(pair.signed))).status === 200, {
      timeoutMs: DENY_TTL_S * 1000 + 8_000,
      intervalMs: 250,
      description: "the signed image to pull again once the fault is gone",
    });
    await expectRecovered(pg, pair);
  });
});

describe("faults on a blob download: the client never gets a complete wrong blob, and nothing hangs", () => {
  it.each([
    { name: "corrupt", action: { kind: "corrupt" } },
    { name: "reset mid-body", action: { kind: "reset", afterBytes: 100 } },
    { name: "body shorter than Content-Length", action: { kind: "wrong-length", delta: 10 } },
    { name: "body longer than Content-Length", action: { kind: "wrong-length", delta: -10 } },
    { name: "4 GiB Content-Length, then closed", action: { kind: "huge-length", after: "close" } },
    { name: "4 GiB Content-Length, then silence", action: { kind: "huge-length", after: "hang" } },
  ] as Array<{ name: string; action: FaultAction }>)("$name: a broken transfer", async ({ action }) => {
    const image = await pushSmallImage("proj/blob-faults", "v1");
    const rule = proxy.add({ method: "GET", path: new RegExp(`/blobs/${image.layer}$`), action });
    try {
      const r = await pull(pg, blobPath(image));
      expect(r.timedOut).toBe(false);
      // Either an error status, or a transfer that is cut: never a complete 200 the client would accept.
      expect(r.status === 200 && r.complete).toBe(false);
      expect(r.body.equals(image.layerBytes)).toBe(false);
      expect(rule.hits.length).toBe(1);
    } finally {
      rule.remove();
    }
    await expectReleased();
    await expectAlive(pg);
    const ok = await pull(pg, blobPath(image));
    expect(ok.status).toBe(200);
    expect(ok.complete).toBe(true);
    expect(sha256(ok.body)).toBe(image.layer);
  });

  it.each([
    { name: "redirect loop", action: { kind: "redirect-loop" }, status: 502 },
    { name: "503", action: { kind: "status", status: 503 }, status: 503 },
    { name: "headers too slow", action: { kind: "delay-headers", ms: 5_000 }, status: 504 },
  ] as Array<{ name: string; action: FaultAction; status: number }>)("$name → $status", async (f) => {
    const image = await pushSmallImage("proj/blob-faults", "v1");
    const rule = proxy.add({ method: "GET", path: new RegExp(`/blobs/${image.layer}$`), action: f.action });
    try {
      expectAnswered(await pull(pg, blobPath(image)), f.status, "UNAVAILABLE");
      expect(rule.hits.length).toBeGreaterThan(0);
    } finally {
      rule.remove();
    }
    await expectReleased();
    expect((await pull(pg, blobPath(image))).status).toBe(200);
  });

  it("a blob dripping forever: when the client gives up, pullgate closes the upstream connection", async () => {
    const image = await pushSmallImage("proj/blob-faults", "v1");
    const rule = proxy.add({
      method: "GET",
      path: new RegExp(`/blobs/${image.layer}$`),
      action: { kind: "drip", intervalMs: 100 },
    });
    try {
      const r = await pull(pg, blobPath(image), { boundMs: 3_000 });
      expect(r.timedOut).toBe(true); // nothing ends a drip but the client
      expect(r.status).toBe(200);
      expect(r.body.length).toBeGreaterThan(0); // the bytes flow as they come
    } finally {
      rule.remove();
    }
    await expectReleased();
    expect(rule.hits[0]?.closedByClient).toBe(true);
    expect((await pull(pg, blobPath(image))).status).toBe(200);
  });
});

/** Active handles of this process (pullgate runs in it) by type, e.g. { TCPSocketWrap: 7, Timeout: 3 }. */
function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

describe("a burst of faulty requests leaks nothing", () => {
  it("handles and upstream connections return to the baseline; RSS is printed", async () => {
    const pairs = [await freshPair("burst-a"), await freshPair("burst-b")];
    await expectRecovered(pg, pairs[0] as Pair);
    await expectReleased();
    const baseline = handleCounts();
    const baselineOpen = proxy.openConnections();
    const rssBefore = process.memoryUsage().rss;
    const actions: Array<{ path: RegExp; action: FaultAction }> = [
      { path: PATHS.sig("proj/burst-a-[su]"), action: { kind: "drip", intervalMs: 200 } },
      { path: PATHS.sig("proj/burst-b-[su]"), action: { kind: "status", status: 503 } },
      { path: PATHS.manifestTag("proj/burst-a-[su]"), action: { kind: "reset", afterBytes: 5 } },
      { path: PATHS.manifestTag("proj/burst-b-[su]"), action: { kind: "delay-headers", ms: 3_000 } },
      { path: /\/blobs\//, action: { kind: "huge-length", after: "hang" } },
    ];
    const opensAfterRound: number[] = [];
    for (let round = 0; round < 3; round++) {
      const rules = actions.map((a) => proxy.add({ method: "GET", ...a }));
      const requests: string[] = [];
      for (const pair of pairs) {
        for (const image of [pair.signed, pair.unsigned]) {
          requests.push(manifestPath(image), manifestPath(image, image.digest), blobPath(image));
        }
      }
      // 12 distinct requests, twice, at most 8 at a time.
      const queue = [...requests, ...requests];
      const results: Array<{ path: string; r: Pulled }> = [];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let path = queue.shift(); path !== undefined; path = queue.shift())
            results.push({ path, r: await pull(pg, path) });
        }),
      );
      for (const { path, r } of results) {
        expect(r.timedOut, path).toBe(false);
        if (path.includes("-u/manifests/")) expect(r.status, path).not.toBe(200);
        if (path.includes("/blobs/")) expect(r.status === 200 && r.complete, path).toBe(false);
      }
      for (const r of rules) r.remove();
      await expectReleased();
      opensAfterRound.push(proxy.openConnections());
    }
    await expectAlive(pg);
    for (const pair of pairs) await expectRecovered(pg, pair);
    // Idle keep-alive connections stay pooled (at most as many as requests ran at once); a leak would grow
    // with every round.
    await expectReleased();
    const afterOpen = proxy.openConnections();
    expect(afterOpen).toBeLessThanOrEqual(baselineOpen + 16);
    expect(opensAfterRound[2]).toBeLessThanOrEqual((opensAfterRound[0] as number) + 4);
    let after = handleCounts();
    await waitFor(
      () => {
        after = handleCounts();
        return total(after) <= total(baseline) + 20;
      },
      { timeoutMs: 15_000, description: "handles to return near the baseline" },
    ).catch(() => {});
    const rssAfter = process.memoryUsage().rss;
    console.log(
      `burst: handles before ${JSON.stringify(baseline)} after ${JSON.stringify(after)}; upstream connections open before ${baselineOpen}, after each round ${opensAfterRound.join("/")}, at the end ${afterOpen}; RSS ${Math.round(rssBefore / 2 ** 20)} → ${Math.round(rssAfter / 2 ** 20)} MiB`,
    );
    for (const [type, n] of Object.entries(after)) {
      expect(n, `${type} handles`).toBeLessThanOrEqual((baseline[type] ?? 0) + 16);
    }
    expect(total(after)).toBeLessThanOrEqual(total(baseline) + 20);
  }, 180_000);
});

/** Does Redis answer a PING right now (a fresh connection, given up after a moment)? */
async function redisAnswers(): Promise<boolean> {
  const probe = new Redis(redis.url, {
    lazyConnect: true,
    connectTimeout: 500,
    commandTimeout: 500,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Verdict keys in Redis for a digest (any policy fingerprint). */
async function verdictKeys(digest: string): Promise<string[]> {
  return redisClient.keys(`pullgate:v1:verdict:*:${digest}`);
}

/** Pulls of fresh images (nothing cached anywhere) while Redis misbehaves: decided live, and correctly. */
async function expectDecidedLive(name: string, opts: { boundMs?: number } = {}): Promise<Pair> {
  const pair = await freshPair(name);
  const [signed, unsigned, signedByDigest] = await Promise.all([
    pull(pgR, manifestPath(pair.signed), opts),
    pull(pgR, manifestPath(pair.unsigned), opts),
    pull(pgR, manifestPath(pair.signed, pair.signed.digest), opts),
  ]);
  expect(signed.timedOut).toBe(false);
  expect(signed.status).toBe(200);
  expect(signedByDigest.status).toBe(200);
  expectAnswered(unsigned, ...NO_SIGNATURE);
  return pair;
}

/**
 * Redis is back: fresh images are decided correctly on every try, and within a bound (reconnect backoff) their
 * verdicts reach Redis again. (A verdict decided while the connection was still down is not written later.)
 */
async function expectVerdictsWrittenAgain(name: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (let i = 0; ; i++) {
    const pair = await expectDecidedLive(`${name}-${i}`);
    if ((await verdictKeys(pair.signed.digest)).length > 0) return;
    if (Date.now() > deadline) throw new Error(`no verdict written to Redis again (${name})`);
    await sleep(500);
  }
}

describe("Redis faults: decisions stay correct, nothing hangs, verdicts are written again after", () => {
  let warm: Pair;

  beforeAll(async () => {
    warm = await freshPair("r-warm");
    await expectRecovered(pgR, warm);
    await waitFor(async () => (await verdictKeys(warm.signed.digest)).length > 0, {
      description: "the verdict to reach Redis",
    });
  });

  it("Redis stopped mid-run: cached verdicts from memory, fresh ones verified live, never fail open", async () => {
    await redis.halt();
    try {
      expect(await redisAnswers()).toBe(false);
      await expectRecovered(pgR, warm);
      const warmDecision = pgR.logs
        .filter((r) => r.event === "audit" && r.digest === warm.signed.digest)
        .at(-1);
      expect(warmDecision).toMatchObject({ outcome: "allow", tier: "memory" });
      await expectDecidedLive("r-stopped");
      // A runtime policy change cannot be stored: refused, and enforcement stays on.
      const put = await fetch(`${pgR.adminUrl}/admin/v1/projects/proj/policy`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ mode: "off" }),
        signal: AbortSignal.timeout(REQUEST_BOUND_MS),
      });
      expect(put.status).toBe(503);
      await put.body?.cancel();
      expectAnswered(await pull(pgR, manifestPath(warm.unsigned)), ...NO_SIGNATURE);
      await expectAlive(pgR);
    } finally {
      await redis.restart();
      await redisClient.ping().catch(() => {});
    }
  });

  it("Redis restarted (empty): pullgate reconnects and writes verdicts again", async () => {
    const ups = () => pgR.logs.filter((r) => r.event === "redis connection up" && r.connection === "cache");
    await waitFor(() => ups().some((r) => r.downMs !== undefined), {
      timeoutMs: 15_000,
      description: "pullgate's cache connection to come back",
    });
    await expectVerdictsWrittenAgain("r-restarted");
    await expectRecovered(pgR, warm);
  });

  it("Redis paused (CLIENT PAUSE): decided without it, no request waits for it", async () => {
    // Paused for longer than these requests' bound: a request that waited for Redis would be given up.
    const pauseMs = 8_000;
    const pausedUntil = Date.now() + pauseMs;
    await redisClient.call("CLIENT", "PAUSE", String(pauseMs), "ALL");
    expect(await redisAnswers()).toBe(false);
    await expectDecidedLive("r-paused", { boundMs: 5_000 });
    await expectRecovered(pgR, warm);
    await expectAlive(pgR);
    await sleep(Math.max(0, pausedUntil - Date.now()) + 200);
    await expectVerdictsWrittenAgain("r-unpaused");
  });

  it("Redis hung (SIGSTOP: connections open, nothing answers): decided without it, then it comes back", async () => {
    redis.pause();
    try {
      expect(await redisAnswers()).toBe(false);
      await expectDecidedLive("r-hung");
      await expectRecovered(pgR, warm);
      await expectAlive(pgR);
    } finally {
      redis.resume();
    }
    await expectVerdictsWrittenAgain("r-resumed");
  });

  it("Redis full (maxmemory, noeviction): writes fail, decisions stay correct, writes resume after", async () => {
    await redisClient.config("SET", "maxmemory-policy", "noeviction");
    await redisClient.config("SET", "maxmemory", "1mb");
    try {
      // Fill it until a write is refused (an empty Redis may be just under 1 MB).
      for (let i = 0; ; i++) {
        const refused = await redisClient.set(`filler:${i}`, "x".repeat(64 * 1024)).then(
          () => false,
          (err: Error) => /OOM/.test(err.message),
        );
        if (refused) break;
        if (i > 200) throw new Error("Redis never refused a write");
      }
      expect(await redisAnswers()).toBe(true); // up, answering, and full
      const pair = await expectDecidedLive("r-full");
      expect(await verdictKeys(pair.signed.digest)).toEqual([]);
      await expectRecovered(pgR, pair);
      await expectRecovered(pgR, warm);
      await expectAlive(pgR);
    } finally {
      await redisClient.config("SET", "maxmemory", "0");
      const fillers = await redisClient.keys("filler:*");
      if (fillers.length > 0) await redisClient.del(...fillers);
    }
    await expectVerdictsWrittenAgain("r-not-full");
  });
});

describe("across every fault above", () => {
  it("no unsigned image was ever served in enforce mode", () => {
    expect(unsignedGets.length).toBeGreaterThan(0);
    expect(unsignedGets.filter((g) => g.status === 200)).toEqual([]);
    const allowed = [...pg.logs, ...pgR.logs].filter(
      (r) =>
        r.event === "audit" &&
        r.kind === "manifest-decision" &&
        unsignedDigests.has(r.digest as string) &&
        r.outcome !== "deny",
    );
    expect(allowed).toEqual([]);
  });
});
