import { createHash } from "node:crypto";
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCodeOf, rawRequest, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { generateTestKey } from "./support/signer.ts";

// Security issue items 5, 7, 8, 9 against a hostile upstream (a small HTTP server of the test's own
// that answers like a registry, then misbehaves): redirects into pullgate's own admin listener,
// token realms on other origins, credentials asked for by a redirect target, bytes that do not
// match their digest, bodies dripped forever, signature lookups that hang, and clients that open
// downloads and never read them.

const OCI = "application/vnd.oci.image.manifest.v1+json";
const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

interface Seen {
  path: string;
  authorization: string | undefined;
  port: number;
}

/** A hostile registry: `routes` decide per request; every request is recorded with the port it hit. */
async function hostile(routes: (req: IncomingMessage, res: ServerResponse, port: number) => void) {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  const start = async () => {
    const server = createServer((req, res) => {
      const port = (req.socket.localPort as number) ?? 0;
      seen.push({ path: req.url ?? "", authorization: req.headers.authorization, port });
      routes(req, res, port);
    });
    server.on("connection", (s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  };
  return {
    seen,
    sockets,
    start,
    async stop() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

const blob = Buffer.alloc(4 * 1024 * 1024, 7);
const blobDigest = sha(blob);
const unsignedManifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha("{}"), size: 2 },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: blobDigest, size: blob.length }],
  }),
);

let evil: Awaited<ReturnType<typeof hostile>>;
let evilPort: number;
let sidePort: number;
let pg: TestPullgate;
let adminPort: number;

beforeAll(async () => {
  evil = await hostile((req, res, port) => {
    const path = req.url ?? "";
    if (port === sidePort) {
      // The "object storage" a redirect names: asks for credentials with a realm of its own.
      res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.1:${sidePort}/token"` }).end();
      return;
    }
    if (path === "/v2/") return void res.writeHead(200).end("{}");
    if (path.startsWith("/v2/ssrf/app/blobs/")) {
      res.writeHead(307, { location: `http://127.0.0.1:${adminPort}/admin/v1/projects` }).end();
      return;
    }
    if (path.startsWith("/v2/leak/app/blobs/")) {
      res.writeHead(307, { location: `http://127.0.0.1:${sidePort}/bucket/blob` }).end();
      return;
    }
    if (path.startsWith("/v2/realm/app/")) {
      res
        .writeHead(401, {
          "www-authenticate": `Bearer realm="http://127.0.0.1:${adminPort}/admin/v1/projects"`,
        })
        .end();
      return;
    }
    if (path.startsWith("/v2/tampered/app/blobs/")) {
      const wrong = Buffer.from(blob);
      wrong[wrong.length - 1] = 0;
      res
        .writeHead(200, { "content-length": String(wrong.length), "docker-content-digest": blobDigest })
        .end(wrong);
      return;
    }
    if (path.startsWith("/v2/drip/app/manifests/")) {
      res.writeHead(200, { "content-type": OCI, "content-length": "100000" });
      const timer = setInterval(() => res.write(" "), 100);
      res.on("close", () => clearInterval(timer));
      return;
    }
    if (path.startsWith("/v2/hang/app/manifests/") && path.endsWith(".sig")) return; // never answers
    if (path.includes("/manifests/")) {
      res
        .writeHead(200, { "content-type": OCI, "docker-content-digest": sha(unsignedManifest) })
        .end(unsignedManifest);
      return;
    }
    if (path.includes("/referrers/")) return void res.writeHead(404).end();
    if (path.includes("/blobs/")) {
      res.writeHead(200, { "content-length": String(blob.length) }).end(blob);
      return;
    }
    res.writeHead(404).end();
  });
  evilPort = await evil.start();
  sidePort = await evil.start();
  pg = await startTestPullgate(
    `  - name: evil
    url: "http://127.0.0.1:${evilPort}"
    credentials: { username: robot, password: "robot-secret" }
    connections: 8
    redirectOrigins: ["http://127.0.0.1:${sidePort}"]
    timeouts: { headersMs: 30000, bodyIdleMs: 1000, totalMs: 2500 }`,
    `clientAuth:
  open: true
limits:
  blobStreamsPerClient: 3
  clientIdleMs: 1500
verification:
  lookupTimeoutMs: 1500
projects:
  hang:
    mode: enforce
    keys: [{ name: k, pem: ${JSON.stringify(generateTestKey().publicKeyPem)}, transparencyLog: optional }]
`,
  );
  adminPort = Number(new URL(pg.adminUrl).port);
}, 60_000);

afterAll(async () => {
  await pg?.stop();
  await evil?.stop();
});

describe("SSRF: redirects and token realms (item 8)", () => {
  it("refuses a blob redirect into pullgate's own admin listener", async () => {
    const res = await rawRequest(pg.proxyUrl, `/v2/ssrf/app/blobs/${blobDigest}`);
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(res.body.toString()).not.toContain("projects");
    expect(errorCodeOf(res)).toBe("UNAVAILABLE");
  });

  it("never fetches a token realm on another origin", async () => {
    const before = evil.seen.length;
    const res = await rawRequest(pg.proxyUrl, "/v2/realm/app/manifests/v1", { headers: { accept: OCI } });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(evil.seen.slice(before).every((s) => s.port === evilPort)).toBe(true);
  });
});

describe("credentials go only to the upstream (item 9)", () => {
  it("does not answer a redirect target's 401 with the upstream credentials", async () => {
    const before = evil.seen.length;
    const res = await rawRequest(pg.proxyUrl, `/v2/leak/app/blobs/${blobDigest}`);
    expect(res.status).toBeGreaterThanOrEqual(500);
    const side = evil.seen.slice(before).filter((s) => s.port === sidePort);
    expect(side.length).toBeGreaterThan(0);
    expect(side.every((s) => s.authorization === undefined && !s.path.includes("token"))).toBe(true);
  });
});

describe("unverified bytes are never labelled with a digest (item 8)", () => {
  it("cuts off a blob whose bytes do not hash to its digest before its end", async () => {
    const got = await new Promise<{ bytes: number; complete: boolean; digestHeader: unknown }>((resolve) => {
      const req = httpRequest(`${pg.proxyUrl}/v2/tampered/app/blobs/${blobDigest}`, (res) => {
        let bytes = 0;
        res.on("data", (c: Buffer) => {
          bytes += c.length;
        });
        res.on("end", () =>
          resolve({ bytes, complete: res.complete, digestHeader: res.headers["docker-content-digest"] }),
        );
        res.on("error", () =>
          resolve({ bytes, complete: false, digestHeader: res.headers["docker-content-digest"] }),
        );
        res.on("aborted", () =>
          resolve({ bytes, complete: false, digestHeader: res.headers["docker-content-digest"] }),
        );
      });
      req.on("error", () => resolve({ bytes: 0, complete: false, digestHeader: undefined }));
      req.end();
    });
    expect(got.complete).toBe(false);
    expect(got.bytes).toBeLessThan(blob.length);
  });

  it("labels a blob that streamed and matched", async () => {
    const res = await rawRequest(pg.proxyUrl, `/v2/good/app/blobs/${blobDigest}`);
    expect(res.status).toBe(200);
    expect(res.headers["docker-content-digest"]).toBe(blobDigest);
    expect(sha(res.body)).toBe(blobDigest);
  });
});

describe("total deadlines (item 7)", () => {
  it("a manifest dripped just under the idle timeout ends at the total deadline with 504", async () => {
    const res = await rawRequest(pg.proxyUrl, "/v2/drip/app/manifests/v1", { headers: { accept: OCI } });
    expect(res.status).toBe(504);
    expect(errorCodeOf(res)).toBe("UNAVAILABLE");
  });

  it("a hung shared signature lookup gives every joiner SIGNATURE_UNAVAILABLE and releases its socket", async () => {
    const pulls = await Promise.all(
      Array.from({ length: 3 }, () =>
        rawRequest(pg.proxyUrl, "/v2/hang/app/manifests/v1", { headers: { accept: OCI } }),
      ),
    );
    for (const res of pulls) {
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body.toString()).errors[0].detail.reason).toBe("SIGNATURE_UNAVAILABLE");
    }
    const sigRequests = evil.seen.filter(
      (s) => s.path.startsWith("/v2/hang/app/manifests/") && s.path.endsWith(".sig"),
    );
    expect(sigRequests).toHaveLength(1); // one shared lookup for the three pulls
    // The lookup's upstream request was aborted: no socket of pullgate's is left waiting on it.
    await waitUntil(() => evil.sockets.size <= 8);
  });
});

describe("slow readers cannot starve other clients (item 5)", () => {
  it("a client opening downloads it never reads is capped, then cut off; others keep pulling", async () => {
    const stalled: IncomingMessage[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await new Promise<IncomingMessage>((resolve) => {
        const req = httpRequest(`${pg.proxyUrl}/v2/good/app/blobs/${blobDigest}`, resolve);
        req.end();
      });
      statuses.push(res.statusCode ?? 0);
      res.pause(); // never read
      stalled.push(res);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(3);
    // Another client (another loopback address) still gets manifests and blobs.
    const other = await requestFrom("127.0.0.2", `/v2/good/app/manifests/v1`, { accept: OCI });
    expect(other.status).toBe(200);
    const otherBlob = await requestFrom("127.0.0.2", `/v2/good/app/blobs/${blobDigest}`);
    expect(otherBlob.status).toBe(200);
    expect(otherBlob.bytes).toBe(blob.length);
    // The stalled downloads are cut by pullgate after clientIdleMs without progress, which frees
    // the client's slots: a new download from the same address is served again.
    let again = { status: 0, bytes: 0 };
    await waitUntilAsync(async () => {
      again = await requestFrom("127.0.0.1", `/v2/good/app/blobs/${blobDigest}`);
      return again.status === 200;
    });
    expect(again.bytes).toBe(blob.length);
    for (const r of stalled) r.destroy();
  }, 30_000);
});

function requestFrom(localAddress: string, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const req = httpRequest(`${pg.proxyUrl}${path}`, { localAddress, headers }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        bytes += c.length;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function waitUntilAsync(cond: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitUntil(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
