import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../src/local/index.ts";
import {
  createImage,
  createIndex,
  type ImageResult,
  type IndexResult,
  pushImage,
} from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import {
  errorCodeOf,
  rawRequest,
  redisYaml,
  startTestPullgate,
  type TestPullgate,
} from "./support/pullgate.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import {
  attachBundle,
  generateTestKey,
  makeBundle,
  RegistryWriter,
  signLegacy,
  type TestKey,
} from "./support/signer.ts";

// Signed-only enforcement against a real docker-registry and a real Redis shared by two pullgate
// processes' worth of state (two in-process instances), with images signed by test code in both
// cosign formats (legacy `.sig` tags; Sigstore bundles through the referrers tag schema).

const ACCEPT =
  "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const ADMIN = { authorization: "Bearer s3cret-admin" };

let work: string;
let layout: string;
let registry: Registry;
let redis: RedisServer;
let writer: RegistryWriter;
let trusted: TestKey;
let stranger: TestKey;
let pgA: TestPullgate;
let pgB: TestPullgate;
const img: Record<string, ImageResult> = {};
let multi: IndexResult;
let projectsYaml: string;

async function image(name: string, repo: string, extra: Partial<Parameters<typeof createImage>[0]> = {}) {
  const result = await createImage({
    dir: layout,
    tag: name,
    layers: [{ size: 512, seed: `enf-${name}` }],
    labels: { name },
    ...extra,
  });
  await pushImage({ layoutDir: layout, tag: name, dest: `${registry.host}/${repo}` });
  img[name] = result;
  return result;
}

function pem(key: TestKey): string {
  return JSON.stringify(key.publicKeyPem);
}

beforeAll(async () => {
  work = await makeTempDir("enforcement-test");
  layout = join(work, "layout");
  [registry, redis] = await Promise.all([startRegistry(), startRedis()]);
  writer = new RegistryWriter(registry.url);
  trusted = generateTestKey();
  stranger = generateTestKey();

  const signed = await image("signed", "proj/signed:v1");
  await signLegacy({ writer, repository: "proj/signed", digest: signed.manifestDigest, key: trusted });
  const bundled = await image("bundled", "proj/bundled:v1");
  await attachBundle({
    writer,
    repository: "proj/bundled",
    digest: bundled.manifestDigest,
    subjectMediaType: bundled.manifestMediaType,
    subjectSize: bundled.manifestBytes.length,
    bundle: makeBundle({ digest: bundled.manifestDigest, key: trusted }),
  });
  // cosign v3 on a registry without the referrers API (GHCR): the tag-schema entry has no artifactType.
  const ghcr = await image("ghcr", "proj/ghcr:v1");
  await attachBundle({
    writer,
    repository: "proj/ghcr",
    digest: ghcr.manifestDigest,
    subjectMediaType: ghcr.manifestMediaType,
    subjectSize: ghcr.manifestBytes.length,
    bundle: makeBundle({ digest: ghcr.manifestDigest, key: trusted }),
    descriptorArtifactType: null,
  });
  await image("unsigned", "proj/unsigned:v1");
  const untrusted = await image("untrusted", "proj/untrusted:v1");
  await signLegacy({ writer, repository: "proj/untrusted", digest: untrusted.manifestDigest, key: stranger });
  const copied = await image("copied", "proj/copied:v1");
  // The signed image's valid signature, copied next to another image.
  await signLegacy({
    writer,
    repository: "proj/copied",
    digest: copied.manifestDigest,
    key: trusted,
    payloadDigest: signed.manifestDigest,
  });
  // A runnable image pushed under a signature-looking tag name.
  await image("sneaky", `proj/sneaky:sha256-${"5".repeat(64)}.sig`);
  multi = await createIndex({ dir: layout, tag: "multi" });
  await pushImage({ layoutDir: layout, tag: "multi", dest: `${registry.host}/proj/multi:v1` });
  await signLegacy({ writer, repository: "proj/multi", digest: multi.indexDigest, key: trusted });
  await image("lonely", "proj/multi:lonely");
  await image("audited", "aud/app:v1");
  await image("free", "free/app:v1");
  await image("tool", "proj/tools/x:v1");
  await image("toggled", "toggle/app:v1");
  for (let i = 0; i < 3; i++) await image(`fresh${i}`, `proj/fresh:v${i}`);
  await image("flaky", "proj/flaky:v1");
  const strictSigned = await image("strict", "strict/app:v1");
  await signLegacy({ writer, repository: "strict/app", digest: strictSigned.manifestDigest, key: trusted });

  const projects = `
${redisYaml(redis.url)}projects:
  proj:
    mode: enforce
    keys: [{ name: release, pem: ${pem(trusted)}, transparencyLog: optional }]
    exempt: ["proj/tools/*"]
  aud:
    mode: audit
    keys: [{ name: release, pem: ${pem(trusted)}, transparencyLog: optional }]
  free:
    mode: "off"
  toggle:
    mode: "off"
    keys: [{ name: release, pem: ${pem(trusted)}, transparencyLog: optional }]
  strict:
    mode: enforce
    strictBlobs: true
    keys: [{ name: release, pem: ${pem(trusted)}, transparencyLog: optional }]
`;
  const upstream = `  - name: local\n    url: "${registry.url}"`;
  projectsYaml = projects;
  pgA = await startTestPullgate(upstream, projects, { adminToken: "s3cret-admin" });
  pgB = await startTestPullgate(upstream, projects, { adminToken: "s3cret-admin" });
}, 240_000);

afterAll(async () => {
  await pgA?.stop();
  await pgB?.stop();
  await registry?.stop();
  await redis?.stop();
  if (work) await removeDir(work);
});

function get(pg: TestPullgate, path: string, method = "GET") {
  return rawRequest(pg.proxyUrl, path, { method, headers: { accept: ACCEPT } });
}

function decisions(pg: TestPullgate, digest: string) {
  return pg.logs.filter((r) => r.event === "audit" && r.kind === "manifest-decision" && r.digest === digest);
}

function denial(res: { body: Buffer }) {
  return (
    JSON.parse(res.body.toString()) as {
      errors: Array<{ code: string; message: string; detail: Record<string, string> }>;
    }
  ).errors[0];
}

describe("signed images pass", () => {
  it("a legacy cosign signature by a trusted key admits the image by tag and by digest, then from the cache", async () => {
    const d = img.signed?.manifestDigest as string;
    const lookups = pgA.deps.metrics.signatureLookups.value();
    const byTag = await get(pgA, "/v2/proj/signed/manifests/v1");
    expect(byTag.status).toBe(200);
    expect(byTag.headers["docker-content-digest"]).toBe(d);
    expect((await get(pgA, `/v2/proj/signed/manifests/${d}`)).status).toBe(200);
    expect(pgA.deps.metrics.signatureLookups.value() - lookups).toBe(1);
    const audit = decisions(pgA, d);
    expect(audit[0]).toMatchObject({
      outcome: "allow",
      via: "signature",
      key: "release",
      tier: "verified",
      project: "proj",
    });
    expect(audit[1]).toMatchObject({ outcome: "allow", tier: "memory" });
  });

  it("a Sigstore bundle found through the referrers tag schema admits the image", async () => {
    const res = await get(pgA, "/v2/proj/bundled/manifests/v1");
    expect(res.status).toBe(200);
    expect(decisions(pgA, img.bundled?.manifestDigest as string)[0]).toMatchObject({
      outcome: "allow",
      key: "release",
    });
  });

  it("a bundle whose tag-schema entry has no artifactType (cosign v3 on GHCR) admits the image, and its index passes", async () => {
    const res = await get(pgA, "/v2/proj/ghcr/manifests/v1");
    expect(res.status).toBe(200);
    expect(decisions(pgA, img.ghcr?.manifestDigest as string)[0]).toMatchObject({
      outcome: "allow",
      key: "release",
    });
    const index = await get(pgA, `/v2/proj/ghcr/manifests/sha256-${img.ghcr?.manifestDigest.slice(7)}`);
    expect(index.status).toBe(200);
    const entry = (JSON.parse(index.body.toString()) as { manifests: Array<Record<string, unknown>> })
      .manifests[0];
    expect(entry?.artifactType).toBeUndefined();
  });

  it("signature artifacts pass by content: the .sig manifest, the referrers index and the bundle referrer", async () => {
    const sigTag = `sha256-${img.signed?.manifestDigest.slice(7)}.sig`;
    expect((await get(pgA, `/v2/proj/signed/manifests/${sigTag}`)).status).toBe(200);
    const indexTag = `sha256-${img.bundled?.manifestDigest.slice(7)}`;
    const index = await get(pgA, `/v2/proj/bundled/manifests/${indexTag}`);
    expect(index.status).toBe(200);
    const referrer = (JSON.parse(index.body.toString()) as { manifests: Array<{ digest: string }> })
      .manifests[0];
    expect((await get(pgA, `/v2/proj/bundled/manifests/${referrer?.digest}`)).status).toBe(200);
  });
});

describe("everything else is denied with a reason", () => {
  it.each([
    ["unsigned", "proj/unsigned", "NO_SIGNATURE"],
    ["untrusted", "proj/untrusted", "UNTRUSTED_SIGNATURE"],
    ["copied", "proj/copied", "DIGEST_MISMATCH"],
  ])("%s → 403 DENIED %s", async (name, repo, reason) => {
    const res = await get(pgA, `/v2/${repo}/manifests/v1`);
    expect(res.status).toBe(403);
    const e = denial(res);
    expect(e?.code).toBe("DENIED");
    expect(e?.detail).toEqual({
      project: "proj",
      repository: repo,
      digest: img[name]?.manifestDigest,
      reason,
    });
    expect(e?.message).toContain('project "proj"');
    expect(decisions(pgA, img[name]?.manifestDigest as string)[0]).toMatchObject({ outcome: "deny", reason });
  });

  it("a runnable image pushed under a `.sig` tag name is checked like any image", async () => {
    const res = await get(pgA, `/v2/proj/sneaky/manifests/sha256-${"5".repeat(64)}.sig`);
    expect(res.status).toBe(403);
    expect(denial(res)?.detail.reason).toBe("NO_SIGNATURE");
  });

  it("HEAD answers without a decision and verifies in the background; the GET that follows is denied with the message", async () => {
    const d = img.fresh0?.manifestDigest as string;
    const lookups = pgA.deps.metrics.signatureLookups.value();
    const head = await get(pgA, "/v2/proj/fresh/manifests/v0", "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers["docker-content-digest"]).toBe(d);
    const res = await get(pgA, `/v2/proj/fresh/manifests/${d}`);
    expect(res.status).toBe(403);
    expect(denial(res)?.message).toContain("has no signature");
    // The background verification and the GET shared one signature lookup.
    expect(pgA.deps.metrics.signatureLookups.value() - lookups).toBe(1);
  });

  it("concurrent first pulls of one digest cost one signature lookup", async () => {
    const lookups = pgA.deps.metrics.signatureLookups.value();
    const all = await Promise.all(Array.from({ length: 20 }, () => get(pgA, "/v2/proj/fresh/manifests/v1")));
    expect(all.every((r) => r.status === 403)).toBe(true);
    expect(pgA.deps.metrics.signatureLookups.value() - lookups).toBe(1);
  });
});

describe("could not look", () => {
  it("an upstream error while fetching signatures is 503 SIGNATURE_UNAVAILABLE, and is not cached", async () => {
    const d = img.flaky?.manifestDigest as string;
    // A tag whose link names no valid digest: distribution answers 500 for the `.sig` lookup.
    const tagDir = join(registry.storageDir, "docker/registry/v2/repositories/proj/flaky/_manifests/tags");
    const linkDir = join(tagDir, `sha256-${d.slice(7)}.sig`, "current");
    await mkdir(linkDir, { recursive: true });
    await writeFile(join(linkDir, "link"), "not-a-digest");
    const direct = await rawRequest(registry.url, `/v2/proj/flaky/manifests/sha256-${d.slice(7)}.sig`, {
      headers: { accept: ACCEPT },
    });
    expect(direct.status).toBeGreaterThanOrEqual(500);
    const res = await get(pgA, "/v2/proj/flaky/manifests/v1");
    expect(res.status).toBe(503);
    expect(denial(res)).toMatchObject({
      code: "UNAVAILABLE",
      detail: { reason: "SIGNATURE_UNAVAILABLE", digest: d },
    });
    expect(decisions(pgA, d)[0]).toMatchObject({ outcome: "deny", reason: "SIGNATURE_UNAVAILABLE" });
    // Fixed upstream: looked up again (nothing was cached), now a plain "no signature".
    await rm(join(tagDir, `sha256-${d.slice(7)}.sig`), { recursive: true });
    const again = await get(pgA, "/v2/proj/flaky/manifests/v1");
    expect(again.status).toBe(403);
    expect(denial(again)?.detail.reason).toBe("NO_SIGNATURE");
  });
});

describe("multi-arch", () => {
  it("an index signed only at the top admits every platform manifest it lists", async () => {
    expect((await get(pgA, "/v2/proj/multi/manifests/v1")).status).toBe(200);
    for (const child of multi.childDigests) {
      const res = await get(pgA, `/v2/proj/multi/manifests/${child}`);
      expect(res.status, child).toBe(200);
      expect(decisions(pgA, child).at(-1)).toMatchObject({ outcome: "allow", via: "index" });
    }
  });

  it("the admission is shared through Redis: another replica admits the children without a lookup", async () => {
    const lookups = pgB.deps.metrics.signatureLookups.value();
    for (const child of multi.childDigests) {
      expect((await get(pgB, `/v2/proj/multi/manifests/${child}`)).status).toBe(200);
      expect(decisions(pgB, child).at(-1)).toMatchObject({ outcome: "allow", via: "index", tier: "redis" });
    }
    expect(pgB.deps.metrics.signatureLookups.value() - lookups).toBe(0);
  });

  it("a manifest no verified index lists needs its own signature", async () => {
    const res = await get(pgA, `/v2/proj/multi/manifests/${img.lonely?.manifestDigest}`);
    expect(res.status).toBe(403);
  });
});

describe("modes", () => {
  it("audit serves an unsigned image and logs would-deny", async () => {
    expect((await get(pgA, "/v2/aud/app/manifests/v1")).status).toBe(200);
    expect(decisions(pgA, img.audited?.manifestDigest as string)[0]).toMatchObject({
      outcome: "would-deny",
      reason: "NO_SIGNATURE",
      mode: "audit",
    });
  });

  it("off serves without any signature lookup", async () => {
    const before = (await registry.requests()).length;
    expect((await get(pgA, "/v2/free/app/manifests/v1")).status).toBe(200);
    const seen = (await registry.requests()).slice(before).map((r) => r.path);
    expect(seen).toEqual(["/v2/free/app/manifests/v1"]);
    expect(decisions(pgA, img.free?.manifestDigest as string)[0]).toMatchObject({ outcome: "off" });
  });

  it("exempt repositories are served and logged as exempt", async () => {
    expect((await get(pgA, "/v2/proj/tools/x/manifests/v1")).status).toBe(200);
    expect(decisions(pgA, img.tool?.manifestDigest as string)[0]).toMatchObject({ outcome: "exempt" });
  });

  it("strictBlobs serves a blob only after a manifest listing it was admitted", async () => {
    const layer = img.strict?.layerDigests[0] as string;
    const before = await rawRequest(pgA.proxyUrl, `/v2/strict/app/blobs/${layer}`);
    expect(before.status).toBe(403);
    expect(denial(before)?.detail.reason).toBe("BLOB_NOT_ADMITTED");
    expect((await get(pgA, "/v2/strict/app/manifests/v1")).status).toBe(200);
    expect((await rawRequest(pgA.proxyUrl, `/v2/strict/app/blobs/${layer}`)).status).toBe(200);
  });
});

describe("admin API", () => {
  it("refuses requests without the token", async () => {
    const res = await fetch(`${pgA.adminUrl}/admin/v1/projects`);
    expect(res.status).toBe(401);
    const wrong = await fetch(`${pgA.adminUrl}/admin/v1/projects`, {
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);
  });

  it("lists effective policies with key fingerprints and never key material", async () => {
    const res = await fetch(`${pgA.adminUrl}/admin/v1/projects`, { headers: ADMIN });
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text) as {
      projects: Array<{ project: string; keys: Array<{ name: string; fingerprint: string }> }>;
    };
    const proj = body.projects.find((p) => p.project === "proj");
    expect(proj?.keys).toEqual([
      {
        name: "release",
        fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        transparencyLog: expect.stringMatching(/^(required|optional)$/),
        trustedRoot: "public-good",
      },
    ]);
    expect(text).not.toContain("BEGIN PUBLIC KEY");
  });

  it("a policy change on one replica reaches the other through Redis and survives restarts", async () => {
    expect((await get(pgB, "/v2/toggle/app/manifests/v1")).status).toBe(200);
    const put = await fetch(`${pgA.adminUrl}/admin/v1/projects/toggle/policy`, {
      method: "PUT",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ mode: "enforce" }),
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ project: "toggle", mode: "enforce", source: "runtime" });
    await waitFor(async () => (await get(pgB, "/v2/toggle/app/manifests/v1")).status === 403, {
      timeoutMs: 1_000,
      intervalMs: 50,
      description: "replica B to enforce",
    });
    // It survives a restart: a pullgate started now against the same Redis has it.
    const restarted = await startTestPullgate(`  - name: local\n    url: "${registry.url}"`, projectsYaml);
    try {
      expect((await get(restarted, "/v2/toggle/app/manifests/v1")).status).toBe(403);
    } finally {
      await restarted.stop();
    }
    const change = pgA.logs.find(
      (r) => r.event === "audit" && r.kind === "admin-change" && r.target === "toggle",
    );
    expect(change).toMatchObject({
      actor: "token",
      action: "policy.update",
      before: { mode: "off" },
      after: { mode: "enforce" },
    });
  });

  it("rejects an invalid policy with what is wrong", async () => {
    const res = await fetch(`${pgA.adminUrl}/admin/v1/projects/toggle/policy`, {
      method: "PUT",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ mode: "strict", keys: [{ name: "k", pem: "not a key" }] }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: Array<{ code: string; detail: { problems: string[] } }> };
    expect(body.errors[0]?.code).toBe("POLICY_INVALID");
    expect(body.errors[0]?.detail.problems.some((p) => p.startsWith("mode"))).toBe(true);
  });

  it("dry-runs a verification with the reasons and the signatures it considered", async () => {
    const res = await fetch(`${pgA.adminUrl}/admin/v1/verify`, {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ reference: "proj/untrusted:v1" }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      outcome: string;
      reason: string;
      signatures: Array<{ result: string }>;
    };
    expect(body).toMatchObject({
      outcome: "deny",
      reason: "UNTRUSTED_SIGNATURE",
      digest: img.untrusted?.manifestDigest,
    });
    expect(body.signatures.map((s) => s.result)).toEqual(["untrusted"]);
    const ok = await fetch(`${pgA.adminUrl}/admin/v1/verify`, {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ reference: "proj/bundled:v1" }),
    });
    expect(await ok.json()).toMatchObject({ outcome: "allow", key: "release" });
  });

  it("drops cached verdicts for a digest", async () => {
    const d = img.signed?.manifestDigest as string;
    const res = await fetch(`${pgA.adminUrl}/admin/v1/cache/${d}`, { method: "DELETE", headers: ADMIN });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { deleted: number }).deleted).toBeGreaterThanOrEqual(1);
    const lookups = pgA.deps.metrics.signatureLookups.value();
    expect((await get(pgA, `/v2/proj/signed/manifests/${d}`)).status).toBe(200);
    expect(pgA.deps.metrics.signatureLookups.value() - lookups).toBe(1);
  });
});

describe("Redis down", () => {
  it("keeps enforcing from memory and live verification, and recovers", async () => {
    await redis.halt();
    try {
      // Not cached anywhere: verified live, still denied.
      const res = await get(pgA, "/v2/proj/fresh/manifests/v2");
      expect(res.status).toBe(403);
      expect(errorCodeOf(res)).toBe("DENIED");
      // Cached in memory: still allowed.
      expect((await get(pgA, "/v2/proj/bundled/manifests/v1")).status).toBe(200);
      // The admin API cannot store a change and says so.
      const put = await fetch(`${pgA.adminUrl}/admin/v1/projects/free/policy`, {
        method: "PUT",
        headers: { ...ADMIN, "content-type": "application/json" },
        body: JSON.stringify({ mode: "enforce" }),
      });
      expect(put.status).toBe(503);
      expect((await get(pgA, "/v2/free/app/manifests/v1")).status).toBe(200);
    } finally {
      await redis.restart();
    }
    expect((await get(pgA, "/v2/proj/unsigned/manifests/v1")).status).toBe(403);
  });
});
