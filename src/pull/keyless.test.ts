import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPrivateSigstore } from "../../test/support/private-sigstore.ts";
import { generateTestKey } from "../../test/support/signer.ts";
import { FIXTURES, PGI_ROOT, readDirSignature, vectorBytes } from "../../test/support/vectors.ts";
import { createApps, createDeps, type Deps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { legacySignatureTag } from "../verify/index.ts";
import { FakeRegistry, fakeLegacySignature, pushImage } from "./fake-registry.test-helpers.ts";

// Keyless signers and the transparency-log rule for keys, through the proxy (real cosign signatures).

const UP = "http://up.test:5000";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const KEYLESS = `${FIXTURES}/dir-img-cosign-fulcio-rekor-valid`;
const key = generateTestKey();

let agent: MockAgent;
let registry: FakeRegistry;
let deps: Deps;
let app: ReturnType<typeof createApps>["proxy"];

async function start(projects: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  const config = parseConfig(
    JSON.stringify({
      ...extra,
      upstreams: [{ name: "up", url: UP }],
      // cosign's test root: the 2023 signature's Fulcio CA and Rekor key (the current public-good root has them too).
      trustedRoots: { pgi: { path: PGI_ROOT } },
      projects,
    }),
    { source: "test", baseDir: `${import.meta.dirname}/../../test/vectors`, env: {} },
  );
  deps = await createDeps(config, { dispatcherFor: () => agent });
  app = createApps(deps).proxy;
}

/** The real keyless-signed image: its manifest and its `.sig` layer exactly as cosign wrote them. */
function pushKeylessImage(repository: string): string {
  const digest = registry.putManifest(
    repository,
    "v1",
    vectorBytes(`${KEYLESS}/manifest.json`),
    DOCKER_MANIFEST,
  );
  const signature = readDirSignature(`${KEYLESS}/signature-1`);
  const payloadDigest = registry.putBlob(repository, signature.payload);
  const emptyConfig = registry.putBlob(repository, Buffer.from("{}"));
  registry.putManifest(
    repository,
    legacySignatureTag(digest as `sha256:${string}`),
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", size: 2, digest: emptyConfig },
        layers: [
          {
            mediaType: signature.mimeType,
            size: signature.payload.length,
            digest: payloadDigest,
            annotations: signature.annotations,
          },
        ],
      }),
    ),
    "application/vnd.oci.image.manifest.v1+json",
  );
  return digest;
}

async function pull(repository: string): Promise<{ status: number; message: string }> {
  const res = await app.request(`/v2/${repository}/manifests/v1`, { headers: { accept: DOCKER_MANIFEST } });
  const body =
    res.status === 200 ? undefined : ((await res.json()) as { errors: Array<{ message: string }> });
  return { status: res.status, message: body?.errors[0]?.message ?? "" };
}

beforeEach(() => {
  agent = new MockAgent();
  agent.disableNetConnect();
  registry = new FakeRegistry(agent, UP);
});

afterEach(async () => {
  await deps?.close();
});

const mitr = (subject: Record<string, string>) => ({
  name: "release",
  issuer: "https://github.com/login/oauth",
  trustedRoot: "pgi",
  ...subject,
});

describe("keyless early admit", () => {
  it("a verified .sig admits the image while the referrers lookup still hangs, judged once in the pool", async () => {
    // An upstream whose referrers API never answers within the lookup's deadline (registered before
    // the fake registry's catch-all, so it is matched first).
    agent = new MockAgent();
    agent.disableNetConnect();
    agent
      .get(UP)
      .intercept({ path: /\/referrers\//, method: "GET" })
      .reply(200, "{}")
      .delay(3_000)
      .persist();
    registry = new FakeRegistry(agent, UP);
    await start(
      { proj: { mode: "enforce", keyless: [mitr({ subject: "mitr@redhat.com" })] } },
      { verification: { lookupTimeoutMs: 1_000 } },
    );
    pushKeylessImage("proj/app");
    expect(await pull("proj/app")).toEqual({ status: 200, message: "" });
    expect(deps.metrics.workerJudgements.value()).toBe(1);
    // Control: the same hang with nothing verified to admit early is "could not look", not a deny.
    pushImage(registry, "proj/unsigned", "v1");
    const unsigned = await app.request("/v2/proj/unsigned/manifests/v1");
    expect(unsigned.status).toBe(503);
  });
});

describe("keyless signers", () => {
  it("admits an image signed by an accepted identity, and records who signed it", async () => {
    await start({ proj: { mode: "enforce", keyless: [mitr({ subject: "mitr@redhat.com" })] } });
    pushKeylessImage("proj/app");
    expect(await pull("proj/app")).toEqual({ status: 200, message: "" });
    // Judged in a worker thread, off the event loop.
    expect(deps.metrics.workerJudgements.value()).toBe(1);
  });

  it("denies another identity, saying which subject and issuer signed", async () => {
    await start({ proj: { mode: "enforce", keyless: [mitr({ subjectRegExp: ".*@example\\.com" })] } });
    pushKeylessImage("proj/app");
    const r = await pull("proj/app");
    expect(r.status).toBe(403);
    expect(r.message).toContain("none is by a key or keyless identity the project trusts");
    expect(r.message).toContain("subject mitr@redhat.com, issuer https://github.com/login/oauth");
    expect(r.message).toContain("matches no accepted identity (release)");
  });

  it("denies under the built-in public-good root too when the identity is wrong, and admits when it is right", async () => {
    await start({
      proj: {
        mode: "enforce",
        keyless: [{ name: "mitr", issuer: "https://github.com/login/oauth", subject: "mitr@redhat.com" }],
      },
      other: {
        mode: "enforce",
        keyless: [{ name: "x", issuer: "https://github.com/login/oauth", subject: "x@redhat.com" }],
      },
    });
    pushKeylessImage("proj/app");
    pushKeylessImage("other/app");
    expect((await pull("proj/app")).status).toBe(200);
    expect((await pull("other/app")).status).toBe(403);
  });

  it("the dry run names the signer and its log entry", async () => {
    await start({ proj: { mode: "enforce", keyless: [mitr({ subject: "mitr@redhat.com" })] } });
    const digest = pushKeylessImage("proj/app");
    const r = await deps.pull.dryRun({ ...deps.pull.resolveImage("proj/app:v1"), signal: undefined });
    expect(r.outcome).toBe("allow");
    expect(r.manifest.digest).toBe(digest);
    expect(r.decision?.signatures?.[0]).toMatchObject({
      result: "verified",
      key: "release",
      subject: "mitr@redhat.com",
      issuer: "https://github.com/login/oauth",
      logEntry: { logIndex: expect.any(String), integratedTime: "2023-01-20T20:51:33.000Z" },
    });
  });
});

describe("keys and the transparency log", () => {
  it("by default a key needs a log entry: a signature made without Rekor is denied, with the fix in the message", async () => {
    await start({ proj: { mode: "enforce", keys: [{ name: "ci", pem: key.publicKeyPem }] } });
    const image = pushImage(registry, "proj/app", "v1");
    fakeLegacySignature(registry, "proj/app", image.digest, key);
    const r = await pull("proj/app");
    expect(r.status).toBe(403);
    expect(r.message).toContain("without a transparency-log entry, and the key requires one");
    expect(r.message).toContain("set optional for signatures made without Rekor");
  });

  it("transparencyLog: optional admits it", async () => {
    await start({
      proj: { mode: "enforce", keys: [{ name: "ci", pem: key.publicKeyPem, transparencyLog: "optional" }] },
    });
    const image = pushImage(registry, "proj/app", "v1");
    fakeLegacySignature(registry, "proj/app", image.digest, key);
    expect((await pull("proj/app")).status).toBe(200);
  });
});

describe("trusted roots are re-read when their file changes", () => {
  it("a replaced root changes the fingerprint and the verdict; a broken file keeps the previous root", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pg-roots-"));
    const rootFile = join(dir, "corp.json");
    writeFileSync(rootFile, readFileSync(join(`${import.meta.dirname}/../../test/vectors`, PGI_ROOT)));
    const config = parseConfig(
      JSON.stringify({
        upstreams: [{ name: "up", url: UP }],
        trustedRoots: { corp: { path: rootFile } },
        projects: {
          proj: { mode: "enforce", keyless: [mitr({ subject: "mitr@redhat.com", trustedRoot: "corp" })] },
        },
      }),
      { source: "test", baseDir: dir, env: {} },
    );
    deps = await createDeps(config, { dispatcherFor: () => agent, trustRootReloadIntervalMs: 20 });
    app = createApps(deps).proxy;
    pushKeylessImage("proj/app");
    const before = deps.policies.forProject("proj").fingerprint;
    expect((await pull("proj/app")).status).toBe(200);

    // A half-written file: ignored, the root and the verdict stay.
    writeFileSync(rootFile, "{ half");
    await new Promise((r) => setTimeout(r, 200));
    expect(deps.policies.forProject("proj").fingerprint).toBe(before);

    // Another root (one without this signer's Fulcio CA): new fingerprint, and the image is denied.
    const other = (await createPrivateSigstore()).trustedRootJson;
    writeFileSync(rootFile, other);
    await vi.waitFor(() => expect(deps.policies.forProject("proj").fingerprint).not.toBe(before), {
      timeout: 5_000,
      interval: 50,
    });
    expect(config.trustedRoots.get("corp")?.json).toBe(other);
    expect((await pull("proj/app")).status).toBe(403);
    rmSync(dir, { recursive: true, force: true });
  });
});
