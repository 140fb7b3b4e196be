import { join } from "node:path";
import { expect } from "vitest";
import { createImage, type ImageResult, pushImage } from "./oci-images.ts";
import { makeTempDir, removeDir } from "./process.ts";
import { rawRequest, type TestPullgate } from "./pullgate.ts";
import { type Registry, startRegistry } from "./registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./signer.ts";

/**
 * What the Redis tests (topologies, TLS) share: a registry holding `proj/signed:v1` (signed with a key) and
 * `proj/unsigned:v1`, the project config that enforces that key, and the checks two pullgate replicas sharing
 * one Redis must pass.
 */
export type ImageName = "signed" | "unsigned";

export interface SignedAndUnsigned {
  work: string;
  registry: Registry;
  img: Record<ImageName, ImageResult>;
  /** The `upstreams:` list entry for the registry. */
  upstreamsYaml: string;
  /** `projects:` with `proj` in enforce mode, trusting the key (no transparency log). */
  projectsYaml: string;
  stop(): Promise<void>;
}

export async function startSignedAndUnsigned(name: string): Promise<SignedAndUnsigned> {
  const work = await makeTempDir(name);
  const layout = join(work, "layout");
  const registry = await startRegistry();
  const key = generateTestKey();
  const img = {} as Record<ImageName, ImageResult>;
  for (const tag of ["signed", "unsigned"] as const) {
    img[tag] = await createImage({
      dir: layout,
      tag,
      layers: [{ size: 256, seed: `${name}-${tag}` }],
      labels: { tag },
    });
    await pushImage({ layoutDir: layout, tag, dest: `${registry.host}/proj/${tag}:v1` });
  }
  const writer = new RegistryWriter(registry.url);
  await signLegacy({ writer, repository: "proj/signed", digest: img.signed.manifestDigest, key });
  return {
    work,
    registry,
    img,
    upstreamsYaml: `  - name: local\n    url: "${registry.url}"`,
    projectsYaml: `projects:
  proj:
    mode: enforce
    keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]
`,
    async stop() {
      await registry.stop();
      await removeDir(work);
    },
  };
}

const ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

export const pullImage = (pg: TestPullgate, name: ImageName) =>
  rawRequest(pg.proxyUrl, `/v2/proj/${name}/manifests/v1`, { headers: { accept: ACCEPT } });

export const projFingerprint = (pg: TestPullgate) => pg.deps.policies.forProject("proj").fingerprint;

export const lookupsOf = (pg: TestPullgate) => pg.deps.metrics.signatureLookups.value();

/** An admin API call with `token`; its status. */
export async function adminStatus(
  pg: TestPullgate,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<number> {
  const res = await fetch(`${pg.adminUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** A verdict made on `a` is read from Redis by `b` (no lookup of its own): 200 for signed, 403 for unsigned. */
export async function expectVerdictsShared(a: TestPullgate, b: TestPullgate): Promise<void> {
  expect((await pullImage(a, "signed")).status).toBe(200);
  expect((await pullImage(a, "unsigned")).status).toBe(403);
  const before = lookupsOf(b);
  expect((await pullImage(b, "signed")).status).toBe(200);
  expect((await pullImage(b, "unsigned")).status).toBe(403);
  expect(lookupsOf(b) - before, "b verified nothing: both verdicts came from Redis").toBe(0);
}
