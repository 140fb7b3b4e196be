import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Containerd, startContainerd, writeHostsToml } from "./support/containerd.ts";
import {
  createImage,
  createIndex,
  type ImageResult,
  type IndexResult,
  pushImage,
} from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";

// containerd (ctr, with its own root/state/socket) pulling through pullgate with the enforcing
// hosts.toml layout: `server` = pullgate and a [host."<pullgate>"] table, nothing pointing upstream.
// Two registries: the image's own registry (reached only through ?ns=) and an empty default upstream,
// so a routing mistake would pull from the wrong place and fail.

const PULLGATE_UA = "pullgate/0.1.0";

let work: string;
let registry: Registry;
let decoy: Registry;
let pg: TestPullgate;
let containerd: Containerd;
let hostsDir: string;
let app: ImageResult;
let multi: IndexResult;

beforeAll(async () => {
  work = await makeTempDir("clients-test");
  const layout = join(work, "layout");
  [registry, decoy, containerd] = await Promise.all([startRegistry(), startRegistry(), startContainerd()]);
  app = await createImage({ dir: layout, tag: "v1", layers: [{ size: 3 * 1024 * 1024, seed: "ctr-app" }] });
  multi = await createIndex({ dir: layout, tag: "multi" });
  await pushImage({ layoutDir: layout, tag: "v1", dest: `${registry.host}/proj/app:v1` });
  await pushImage({ layoutDir: layout, tag: "multi", dest: `${registry.host}/proj/multi:v1` });
  pg = await startTestPullgate(
    `  - name: decoy\n    url: "${decoy.url}"\n    default: true\n  - name: images\n    url: "${registry.url}"`,
  );
  hostsDir = join(work, "hosts");
  await writeHostsToml(hostsDir, registry.host, pg.proxyUrl);
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  await Promise.all([containerd?.stop(), registry?.stop(), decoy?.stop()]);
  if (work) await removeDir(work);
});

describe("containerd through pullgate", () => {
  it("ctr images pull of a single-arch image succeeds and the registry only ever talked to pullgate", async () => {
    const before = (await registry.requests()).length;
    const res = await containerd.pull(`${registry.host}/proj/app:v1`, { hostsDir, unpack: true });
    expect(res.code, res.stderr).toBe(0);
    const images = await containerd.ctr(["images", "ls", "-q"]);
    expect(images.stdout).toContain(`${registry.host}/proj/app:v1`);
    const seen = (await registry.requests()).slice(before);
    // containerd's sequence: HEAD the tag, GET the manifest by digest, then config and layer blobs.
    expect(seen.map((r) => `${r.method} ${r.path.split("?")[0]}`)).toEqual(
      expect.arrayContaining([
        "HEAD /v2/proj/app/manifests/v1",
        `GET /v2/proj/app/manifests/${app.manifestDigest}`,
        `GET /v2/proj/app/blobs/${app.configDigest}`,
        `GET /v2/proj/app/blobs/${app.layerDigests[0]}`,
      ]),
    );
    expect(seen.every((r) => r.userAgent === PULLGATE_UA)).toBe(true);
    expect((await decoy.requests()).length).toBe(0);
    // pullgate saw containerd's ?ns= and logged each request once, routed to the image's registry.
    const access = pg.logs.filter((r) => r.event === "access" && r.repository === "proj/app");
    expect(access.length).toBeGreaterThanOrEqual(4);
    expect(access.every((r) => r.upstream === "images" && r.status === 200)).toBe(true);
  });

  it("pulls a multi-arch index and the platform child by digest", async () => {
    const before = (await registry.requests()).length;
    const res = await containerd.pull(`${registry.host}/proj/multi:v1`, {
      hostsDir,
      platform: "linux/arm64",
    });
    expect(res.code, res.stderr).toBe(0);
    const paths = (await registry.requests()).slice(before).map((r) => r.path.split("?")[0]);
    expect(paths).toContain(`/v2/proj/multi/manifests/${multi.indexDigest}`);
    expect(paths).toContain(`/v2/proj/multi/manifests/${multi.childDigests[1]}`);
    expect(paths).not.toContain(`/v2/proj/multi/manifests/${multi.childDigests[0]}`);
  });

  it("a missing image fails the pull, and containerd still never goes to the registry directly", async () => {
    const before = (await registry.requests()).length;
    const res = await containerd.pull(`${registry.host}/proj/app:missing`, { hostsDir });
    expect(res.code).not.toBe(0);
    expect(`${res.stdout}${res.stderr}`).toMatch(/not found/);
    const seen = (await registry.requests()).slice(before);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r.userAgent === PULLGATE_UA)).toBe(true);
  });
});
