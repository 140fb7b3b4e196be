import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOk, waitFor } from "../src/local/index.ts";
import {
  createDockerSchema2Image,
  createImage,
  createIndex,
  type ImageResult,
  type IndexResult,
  inspectRaw,
  pushImage,
  sha256Digest,
} from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { errorCodeOf, rawRequest, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";

// The proxy against a real CNCF distribution registry, with skopeo and raw HTTP as clients.

const MiB = 1024 * 1024;
/** containerd's resolve Accept list (see ../shared/docs/clients.md). */
const CD_ACCEPT =
  "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";
const PAGE_TAGS = ["t01", "t02", "t03", "t04", "t05"];

let work: string;
let registry: Registry;
let pg: TestPullgate;
let app: ImageResult;
let docker: ImageResult;
let multi: IndexResult;
let big: ImageResult;
let fat: ImageResult;
let tamper: ImageResult;

beforeAll(async () => {
  work = await makeTempDir("proxy-test");
  const layout = join(work, "layout");
  registry = await startRegistry();
  app = await createImage({ dir: layout, tag: "v1", layers: [{ size: 4096, seed: "app" }] });
  docker = await createDockerSchema2Image({
    dir: layout,
    tag: "v1-docker",
    layers: [Buffer.from("docker\n")],
  });
  multi = await createIndex({ dir: layout, tag: "multi" });
  big = await createImage({ dir: layout, tag: "big", layers: [{ size: 50 * MiB, seed: "big" }] });
  // 12 layers make a manifest of a few KiB: over the 1 KiB cap of the second pullgate below.
  fat = await createImage({
    dir: layout,
    tag: "fat",
    layers: Array.from({ length: 12 }, (_, i) => Buffer.from(`layer ${i}\n`)),
  });
  // Its own blobs: tampering with its storage must not touch the other images.
  tamper = await createImage({ dir: layout, tag: "tamper", layers: [{ size: 1000, seed: "tamper" }] });
  const dest = (name: string) => `${registry.host}/${name}`;
  await pushImage({ layoutDir: layout, tag: "v1", dest: dest("proj/app:v1") });
  for (const t of PAGE_TAGS) await pushImage({ layoutDir: layout, tag: "v1", dest: dest(`proj/app:${t}`) });
  await pushImage({ layoutDir: layout, tag: "v1-docker", dest: dest("proj/app:v1-docker") });
  await pushImage({ layoutDir: layout, tag: "multi", dest: dest("proj/multi:v1") });
  await pushImage({ layoutDir: layout, tag: "big", dest: dest("proj/big:v1") });
  await pushImage({ layoutDir: layout, tag: "fat", dest: dest("proj/fat:v1") });
  await pushImage({ layoutDir: layout, tag: "tamper", dest: dest("proj/tamper:v1") });
  pg = await startTestPullgate(`  - name: local\n    url: "${registry.url}"\n    default: true`);
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

/** Requests the registry received since `before` (a count from an earlier requests() call). */
async function upstreamRequestsSince(before: number) {
  return (await registry.requests()).slice(before);
}

function skopeo(args: string[]) {
  return runOk("skopeo", ["--insecure-policy", ...args], { timeoutMs: 120_000 });
}

async function hashDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) out[name] = sha256Digest(await readFile(join(dir, name)));
  return out;
}

describe("skopeo through pullgate", () => {
  it("inspect --raw gives the exact bytes of OCI, Docker schema2 and index manifests", async () => {
    for (const [ref, digest] of [
      ["proj/app:v1", app.manifestDigest],
      ["proj/app:v1-docker", docker.manifestDigest],
      ["proj/multi:v1", multi.indexDigest],
      ["proj/big:v1", big.manifestDigest],
    ] as const) {
      const via = await inspectRaw(`${pg.host}/${ref}`);
      const direct = await inspectRaw(`${registry.host}/${ref}`);
      expect(via.digest, ref).toBe(digest);
      expect(via.bytes.equals(direct.bytes), ref).toBe(true);
    }
  });

  it("copy --all of a multi-arch index, and of the 50 MiB image, is byte-identical to a direct copy", async () => {
    for (const ref of ["proj/multi:v1", "proj/big:v1"]) {
      const viaDir = await makeTempDir("copy-via");
      const directDir = await makeTempDir("copy-direct");
      try {
        const args = (host: string, dir: string) => [
          "copy",
          "--quiet",
          "--all",
          "--preserve-digests",
          "--src-tls-verify=false",
          "--src-no-creds",
          `docker://${host}/${ref}`,
          `dir:${dir}`,
        ];
        await skopeo(args(pg.host, viaDir));
        await skopeo(args(registry.host, directDir));
        const via = await hashDir(viaDir);
        expect(via).toEqual(await hashDir(directDir));
        if (ref === "proj/big:v1")
          expect(via[(big.layerDigests[0] as string).slice(7)]).toBe(big.layerDigests[0]);
        else
          for (const child of multi.childDigests) expect(via[`${child.slice(7)}.manifest.json`]).toBe(child);
      } finally {
        await removeDir(viaDir);
        await removeDir(directDir);
      }
    }
  });
});

describe("manifests", () => {
  const MANIFEST_HEADERS = ["content-type", "docker-content-digest", "content-length"];

  it("HEAD answers with the status and headers GET gives, by tag and by digest, matching the registry", async () => {
    const cases: Array<[string, string]> = [
      ["proj/app/manifests/v1", app.manifestDigest],
      [`proj/app/manifests/${app.manifestDigest}`, app.manifestDigest],
      ["proj/app/manifests/v1-docker", docker.manifestDigest],
      ["proj/multi/manifests/v1", multi.indexDigest],
      [`proj/multi/manifests/${multi.childDigests[1]}`, multi.childDigests[1] as string],
    ];
    for (const [path, digest] of cases) {
      const headers = { accept: CD_ACCEPT };
      const get = await rawRequest(pg.proxyUrl, `/v2/${path}`, { headers });
      const head = await rawRequest(pg.proxyUrl, `/v2/${path}`, { method: "HEAD", headers });
      const direct = await rawRequest(registry.url, `/v2/${path}`, { headers });
      expect(get.status, path).toBe(200);
      expect(head.status, path).toBe(200);
      expect(sha256Digest(get.body), path).toBe(digest);
      expect(get.body.equals(direct.body), path).toBe(true);
      expect(head.body.length).toBe(0);
      for (const h of MANIFEST_HEADERS) {
        expect(head.headers[h], `${path} ${h}`).toBe(get.headers[h]);
        expect(get.headers[h], `${path} ${h} vs registry`).toBe(direct.headers[h]);
      }
      expect(head.headers.etag).toBe(`"${digest}"`);
      expect(get.headers.etag).toBe(`"${digest}"`);
    }
  });

  it("keeps upstream connections alive across HEADs and GETs (containerd resolves every pull with a HEAD)", async () => {
    const connections = () =>
      pg.deps.metrics.upstreamConnections.value({ upstream: pg.deps.config.upstreams[0]?.name ?? "" });
    const before = connections();
    for (let i = 0; i < 20; i++) {
      const method = i % 2 === 0 ? "HEAD" : "GET";
      const res = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/v1", {
        method,
        headers: { accept: CD_ACCEPT },
      });
      expect(res.status).toBe(200);
    }
    expect(connections() - before).toBeLessThanOrEqual(1);
  });

  it("a missing manifest is 404 MANIFEST_UNKNOWN for GET and 404 for HEAD", async () => {
    const get = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/nope");
    expect(get.status).toBe(404);
    expect(errorCodeOf(get)).toBe("MANIFEST_UNKNOWN");
    const head = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/nope", { method: "HEAD" });
    expect(head.status).toBe(404);
  });

  it("refuses a manifest over the configured size cap", async () => {
    const small = await startTestPullgate(
      `  - name: local\n    url: "${registry.url}"`,
      "manifests:\n  maxBytes: 1024\n",
    );
    try {
      expect(fat.manifestBytes.length).toBeGreaterThan(1024);
      const res = await rawRequest(small.proxyUrl, "/v2/proj/fat/manifests/v1", {
        headers: { accept: CD_ACCEPT },
      });
      expect(res.status).toBe(502);
      expect(errorCodeOf(res)).toBe("MANIFEST_INVALID");
      const head = await rawRequest(small.proxyUrl, "/v2/proj/fat/manifests/v1", {
        method: "HEAD",
        headers: { accept: CD_ACCEPT },
      });
      expect(head.status).toBe(502);
      const ok = await rawRequest(small.proxyUrl, "/v2/proj/app/manifests/v1", {
        headers: { accept: CD_ACCEPT },
      });
      expect(ok.status).toBe(200);
    } finally {
      await small.stop();
    }
  });
});

describe("blobs", () => {
  const layer = () => big.layerDigests[0] as string;
  const size = () => big.layerSizes[0] as number;

  it("streams the 50 MiB layer byte for byte, with HEAD giving the same headers", async () => {
    const res = await fetch(`${pg.proxyUrl}/v2/proj/big/blobs/${layer()}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(size()));
    expect(res.headers.get("docker-content-digest")).toBe(layer());
    const hash = createHash("sha256");
    let n = 0;
    for await (const chunk of res.body as ReadableStream<Uint8Array>) {
      hash.update(chunk);
      n += chunk.byteLength;
    }
    expect(n).toBe(size());
    expect(`sha256:${hash.digest("hex")}`).toBe(layer());
    const head = await rawRequest(pg.proxyUrl, `/v2/proj/big/blobs/${layer()}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(String(size()));
    expect(head.body.length).toBe(0);
    const line = pg.logs.find((r) => r.event === "access" && r.method === "GET" && r.digest === layer());
    expect(line).toMatchObject({ status: 200, bytes: size(), repository: "proj/big", upstream: "local" });
  });

  it("passes Range through: 206 with the same bytes and Content-Range as the registry", async () => {
    const headers = { range: "bytes=1000-1999" };
    const via = await rawRequest(pg.proxyUrl, `/v2/proj/big/blobs/${layer()}`, { headers });
    const direct = await rawRequest(registry.url, `/v2/proj/big/blobs/${layer()}`, { headers });
    expect(via.status).toBe(206);
    expect(via.headers["content-range"]).toBe(`bytes 1000-1999/${size()}`);
    expect(via.headers["content-range"]).toBe(direct.headers["content-range"]);
    expect(via.body.length).toBe(1000);
    expect(via.body.equals(direct.body)).toBe(true);
  });

  it("a missing blob is 404 BLOB_UNKNOWN", async () => {
    const res = await rawRequest(pg.proxyUrl, `/v2/proj/big/blobs/sha256:${"0".repeat(64)}`);
    expect(res.status).toBe(404);
    expect(errorCodeOf(res)).toBe("BLOB_UNKNOWN");
  });

  it("a client that stops reading applies backpressure, and its disconnect aborts the upstream request", async () => {
    const before = (await registry.requests()).length;
    await new Promise<void>((resolve, reject) => {
      const url = new URL(pg.proxyUrl);
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: `/v2/proj/big/blobs/${layer()}` },
        (res) => {
          res.once("data", () => {
            res.pause();
            // Give pullgate time to fill the socket buffers, then hang up.
            setTimeout(() => {
              req.destroy();
              resolve();
            }, 300);
          });
        },
      );
      req.on("error", () => {});
      req.on("close", () => resolve());
      setTimeout(() => reject(new Error("no response")), 10_000);
      req.end();
    });
    await waitFor(
      () => pg.logs.some((r) => r.event === "access" && r.kind === "blob" && r.aborted === true),
      {
        description: "pullgate to log the aborted blob",
      },
    );
    const aborted = pg.logs.find((r) => r.event === "access" && r.aborted === true) as { bytes: number };
    expect(aborted.bytes).toBeLessThan(size());
    let upstream: Array<{ path: string; bytes: number }> = [];
    await waitFor(
      async () => {
        upstream = (await upstreamRequestsSince(before)).filter((r) => r.path.includes(layer()));
        return upstream.length === 1;
      },
      { description: "the registry to log the blob request" },
    );
    // The registry stopped writing early: pullgate neither buffered the blob nor kept reading it.
    expect(upstream[0]?.bytes).toBeLessThan(size());
  });
});

describe("tags", () => {
  it("lists tags like the registry, forwarding only validated n and last", async () => {
    const direct = await rawRequest(registry.url, "/v2/proj/app/tags/list");
    const via = await rawRequest(pg.proxyUrl, "/v2/proj/app/tags/list");
    expect(via.status).toBe(200);
    expect(via.body.equals(direct.body)).toBe(true);
    expect(JSON.parse(via.body.toString()).tags).toEqual(
      expect.arrayContaining(["v1", "v1-docker", ...PAGE_TAGS]),
    );
    const before = (await registry.requests()).length;
    const page = await rawRequest(pg.proxyUrl, "/v2/proj/app/tags/list?n=2&last=t02&junk=1");
    expect(page.status).toBe(200);
    const sent = (await upstreamRequestsSince(before)).map((r) => r.path);
    expect(sent).toEqual(["/v2/proj/app/tags/list?n=2&last=t02"]);
    // distribution 2.8 does not paginate tags (it ignores n and last and sends no Link); the Link
    // rewriting to pullgate's own path is covered by the unit tests against an upstream that does.
    expect(page.body.equals(direct.body)).toBe(true);
  });
});

describe("referrers", () => {
  it("passes the registry's answer through (distribution 2.8 has no referrers API: 404 as is)", async () => {
    const path = `/v2/proj/app/referrers/${app.manifestDigest}?artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson`;
    const via = await rawRequest(pg.proxyUrl, path);
    const direct = await rawRequest(registry.url, path);
    expect(direct.status).toBe(404);
    expect(via.status).toBe(404);
  });
});

describe("validation: nothing invalid reaches the upstream", () => {
  it.each([
    ["/v2/proj/../other/manifests/v1", "NAME_INVALID"],
    ["/v2/proj/%2e%2e/other/manifests/v1", "NAME_INVALID"],
    ["/v2/proj%2Fapp/manifests/v1", "NAME_INVALID"],
    ["/v2/proj//app/manifests/v1", "NAME_INVALID"],
    ["/v2/Proj/app/manifests/v1", "NAME_INVALID"],
    ["/v2/proj/app/manifests/..", "TAG_INVALID"],
    ["/v2/proj/app/manifests/v1%00", "TAG_INVALID"],
    ["/v2/proj/app/manifests/sha256:1234", "DIGEST_INVALID"],
    [`/v2/proj/app/blobs/sha256:${"G".repeat(64)}`, "DIGEST_INVALID"],
    ["/v2/proj/app/blobs/..%2F..%2Fetc%2Fpasswd", "DIGEST_INVALID"],
    ["/v2/proj/app/tags/list?n=99999999", "PAGINATION_NUMBER_INVALID"],
    ["/v2/proj/app/manifests/v1?ns=not%20a%20host", "NAME_INVALID"],
    ["/v2/proj\\app/manifests/v1", "NAME_INVALID"],
  ])("%s → 400 %s", async (path, code) => {
    const before = (await registry.requests()).length;
    const res = await rawRequest(pg.proxyUrl, path);
    expect(res.status).toBe(400);
    expect(errorCodeOf(res)).toBe(code);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(await upstreamRequestsSince(before)).toEqual([]);
  });

  it.each([
    ["POST", "/v2/proj/app/blobs/uploads/"],
    ["PUT", "/v2/proj/app/manifests/v9"],
    ["PATCH", "/v2/proj/app/blobs/uploads/abc"],
    ["DELETE", `/v2/proj/app/manifests/${"sha256:".padEnd(71, "a")}`],
  ])("%s %s → 405 UNSUPPORTED, nothing written upstream", async (method, path) => {
    const before = (await registry.requests()).length;
    const res = await rawRequest(pg.proxyUrl, path, { method, body: "{}" });
    expect(res.status).toBe(405);
    expect(errorCodeOf(res)).toBe("UNSUPPORTED");
    expect(await upstreamRequestsSince(before)).toEqual([]);
  });
});

describe("a misbehaving upstream", () => {
  it("serving a manifest whose bytes do not match its digest is refused, never served", async () => {
    const hex = tamper.manifestDigest.slice("sha256:".length);
    const file = join(registry.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    // Same length, different content: the registry now serves other bytes under the old digest.
    // Same length, still valid JSON, other bytes: the first layer's size gets another last digit.
    const text = tamper.manifestBytes.toString("utf8");
    const m = /"size":(\d+)/.exec(text) as RegExpExecArray;
    const lastDigit = Number(m[1]?.slice(-1));
    const changed = `"size":${m[1]?.slice(0, -1)}${(lastDigit + 1) % 10}`;
    const tampered = Buffer.from(text.replace(m[0], changed));
    expect(tampered.length).toBe(tamper.manifestBytes.length);
    try {
      await writeFile(file, tampered);
      const direct = await rawRequest(registry.url, `/v2/proj/tamper/manifests/${tamper.manifestDigest}`, {
        headers: { accept: CD_ACCEPT },
      });
      expect(direct.status).toBe(200);
      expect(direct.body.equals(tampered)).toBe(true);
      for (const ref of [tamper.manifestDigest, "v1"]) {
        const res = await rawRequest(pg.proxyUrl, `/v2/proj/tamper/manifests/${ref}`, {
          headers: { accept: CD_ACCEPT },
        });
        expect(res.status, ref).toBe(502);
        expect(errorCodeOf(res), ref).toBe("DIGEST_INVALID");
        expect(res.body.includes(tampered)).toBe(false);
      }
    } finally {
      await writeFile(file, tamper.manifestBytes);
    }
  });
});

describe("upstream down", () => {
  it("answers 502 UNAVAILABLE as JSON while the registry is stopped, and recovers when it is back", async () => {
    await registry.halt();
    try {
      const res = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/v1", {
        headers: { accept: CD_ACCEPT },
      });
      expect(res.status).toBe(502);
      expect(res.headers["content-type"]).toMatch(/^application\/json/);
      expect(errorCodeOf(res)).toBe("UNAVAILABLE");
      expect(res.body.toString()).not.toMatch(/ECONNREFUSED|at .*\.ts:\d+/);
      const blob = await rawRequest(pg.proxyUrl, `/v2/proj/big/blobs/${big.layerDigests[0]}`);
      expect(blob.status).toBe(502);
      const ready = await fetch(`${pg.adminUrl}/readyz`);
      expect(ready.status).toBe(503);
    } finally {
      await registry.restart();
    }
    const res = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/v1", {
      headers: { accept: CD_ACCEPT },
    });
    expect(res.status).toBe(200);
  });
});
