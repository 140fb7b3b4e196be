import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";

// The access log names the client by the remote address of its TCP connection, on a real listener, for
// buffered and streamed responses alike; a client cannot choose what is logged with X-Forwarded-For.

const ACCEPT = "application/vnd.oci.image.manifest.v1+json";

let work: string;
let registry: Registry;
let pg: TestPullgate;
let image: ImageResult;

beforeAll(async () => {
  work = await makeTempDir("access-log-test");
  const layout = join(work, "layout");
  registry = await startRegistry();
  image = await createImage({ dir: layout, tag: "v1", layers: [{ size: 64 * 1024, seed: "access-log" }] });
  await pushImage({ layoutDir: layout, tag: "v1", dest: `${registry.host}/proj/app:v1` });
  pg = await startTestPullgate(`  - name: local\n    url: "${registry.url}"`);
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

/** A GET from `localAddress` (any 127.0.0.0/8 address reaches the loopback listener). */
function getFrom(localAddress: string, path: string, headers: Record<string, string> = {}) {
  const url = new URL(pg.proxyUrl);
  return new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, localAddress, headers: { accept: ACCEPT, ...headers } },
      (res) => {
        let bytes = 0;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The access line of a request, once written (a streamed body is logged when it ends). */
async function accessLineFor(path: string, client: string) {
  await expect
    .poll(() => pg.logs.some((r) => r.event === "access" && r.client === client && r.digest !== undefined))
    .toBe(true);
  return pg.logs
    .filter((r) => r.event === "access" && r.client === client)
    .find((r) => path.endsWith(String(r.digest)));
}

describe("access log", () => {
  it("records the connection's remote address as `client`, for a manifest and a streamed blob", async () => {
    const manifestPath = `/v2/proj/app/manifests/${image.manifestDigest}`;
    expect((await getFrom("127.0.0.2", manifestPath)).status).toBe(200);
    expect(await accessLineFor(manifestPath, "127.0.0.2")).toMatchObject({
      client: "127.0.0.2",
      kind: "manifest",
      status: 200,
    });

    const blobPath = `/v2/proj/app/blobs/${image.layerDigests[0]}`;
    const blob = await getFrom("127.0.0.3", blobPath);
    expect(blob).toEqual({ status: 200, bytes: image.layerSizes[0] });
    expect(await accessLineFor(blobPath, "127.0.0.3")).toMatchObject({
      client: "127.0.0.3",
      kind: "blob",
      status: 200,
      bytes: image.layerSizes[0],
    });
  });

  it("ignores X-Forwarded-For and similar headers", async () => {
    const path = `/v2/proj/app/manifests/${image.manifestDigest}`;
    const res = await getFrom("127.0.0.4", path, {
      "x-forwarded-for": "203.0.113.9",
      "x-real-ip": "203.0.113.10",
      forwarded: "for=203.0.113.11",
    });
    expect(res.status).toBe(200);
    expect(await accessLineFor(path, "127.0.0.4")).toMatchObject({ client: "127.0.0.4" });
    expect(JSON.stringify(pg.logs)).not.toMatch(/203\.0\.113\./);
  });
});
