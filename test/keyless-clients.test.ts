import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attachBundle,
  legacySignatureConfig,
  legacySignatureManifest,
  RegistryWriter,
  type SignatureLayer,
  simpleSigningPayload,
} from "../src/local/index.ts";
import { computeDigest } from "../src/oci/index.ts";
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, legacySignatureTag } from "../src/verify/index.ts";
import { type Containerd, startContainerd, writeHostsToml } from "./support/containerd.ts";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { createPrivateSigstore, type PrivateSigstore } from "./support/private-sigstore.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { skopeoCopy } from "./support/skopeo.ts";

// Keyless signatures made by a private Sigstore in the test (a CA with a CT log, a Rekor log, their
// trusted root), pulled through pullgate with skopeo and containerd: the release workflow's image
// passes; another identity, a certificate logged after it expired, and a key signature without the log
// entry its key requires are denied with the reason in the client's output.

const RELEASE = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
const NIGHTLY = "https://github.com/acme/app/.github/workflows/nightly.yml@refs/heads/main";
const GITHUB = "https://token.actions.githubusercontent.com";

let work: string;
let registry: Registry;
let containerd: Containerd;
let pg: TestPullgate;
let hostsDir: string;
let writer: RegistryWriter;
const images: Record<string, ImageResult> = {};

/** Pushes a `.sig` for `image` whose one layer carries `annotations` over the simple-signing payload. */
async function pushSignature(
  repository: string,
  image: ImageResult,
  sign: (payload: Buffer) => Promise<Record<string, string>>,
) {
  const payload = simpleSigningPayload(image.manifestDigest, `${registry.host}/${repository}`);
  const payloadDigest = await writer.pushBlob(repository, payload);
  const layers: SignatureLayer[] = [
    {
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      size: payload.length,
      digest: payloadDigest,
      annotations: await sign(payload),
    },
  ];
  const config = legacySignatureConfig(layers);
  const configDigest = await writer.pushBlob(repository, config);
  const manifest = legacySignatureManifest(layers, config, configDigest);
  await writer.pushManifest(
    repository,
    legacySignatureTag(image.manifestDigest as `sha256:${string}`),
    manifest,
    "application/vnd.oci.image.manifest.v1+json",
  );
  expect(computeDigest(manifest)).toMatch(/^sha256:/);
}

/**
 * Attaches a keyless Sigstore bundle v0.3 for `image`, as `cosign sign` v3 does: a referrer listed in the
 * referrers tag schema index, with `descriptorArtifactType` null as on registries without the
 * referrers API (GHCR, distribution 2.8), where cosign leaves the descriptor's artifactType out.
 */
async function attachKeylessBundle(
  repository: string,
  image: ImageResult,
  sigstore: PrivateSigstore,
  subject: string,
  descriptorArtifactType?: null,
) {
  const statement = Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v1",
      subject: [
        { name: `${registry.host}/${repository}`, digest: { sha256: image.manifestDigest.slice(7) } },
      ],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  );
  const bundle = await sigstore.signKeylessBundle(
    statement,
    IN_TOTO_PAYLOAD_TYPE,
    { subject, issuer: GITHUB },
    "v0.3",
  );
  await attachBundle({
    writer,
    repository,
    digest: image.manifestDigest,
    subjectMediaType: image.manifestMediaType,
    subjectSize: image.manifestBytes.length,
    bundle: Buffer.from(bundle),
    ...(descriptorArtifactType === null ? { descriptorArtifactType: null } : {}),
  });
}

beforeAll(async () => {
  work = await makeTempDir("keyless-clients");
  const layout = join(work, "layout");
  [registry, containerd] = await Promise.all([startRegistry(), startContainerd()]);
  writer = new RegistryWriter(registry.url);
  const sigstore: PrivateSigstore = await createPrivateSigstore();
  // The same CA's certificates, logged an hour after they were issued (10 minutes of validity).
  const late = await createPrivateSigstore({
    caClock: new Date(Date.now() - 3_600_000),
    logClock: new Date(),
  });
  writeFileSync(join(work, "private.json"), sigstore.trustedRootJson);
  writeFileSync(join(work, "late.json"), late.trustedRootJson);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const keyPem = publicKey.export({ type: "spki", format: "pem" }).toString();

  const build = async (name: string, repository: string) => {
    images[name] = await createImage({
      dir: layout,
      tag: name,
      layers: [{ size: 1024, seed: `keyless-${name}` }],
    });
    await pushImage({ layoutDir: layout, tag: name, dest: `${registry.host}/${repository}:v1` });
    return images[name] as ImageResult;
  };
  const release = await build("release", "ci/release");
  await pushSignature("ci/release", release, (p) =>
    sigstore.signKeyless(p, { subject: RELEASE, issuer: GITHUB }),
  );
  const nightly = await build("nightly", "ci/nightly");
  await pushSignature("ci/nightly", nightly, (p) =>
    sigstore.signKeyless(p, { subject: NIGHTLY, issuer: GITHUB }),
  );
  const expired = await build("expired", "old/app");
  await pushSignature("old/app", expired, (p) => late.signKeyless(p, { subject: RELEASE, issuer: GITHUB }));
  const unlogged = await build("unlogged", "keyed/app");
  await pushSignature("keyed/app", unlogged, async (p) => {
    const { "dev.sigstore.cosign/bundle": _set, ...rest } = await sigstore.signWithKeyLogged(
      p,
      privateKey,
      keyPem,
    );
    return rest;
  });
  // Bundles only (no .sig): the release workflow's, one in the GHCR shape, and the nightly workflow's.
  await attachKeylessBundle("ci/bundled", await build("bundled", "ci/bundled"), sigstore, RELEASE);
  await attachKeylessBundle("ci/ghcr", await build("ghcr", "ci/ghcr"), sigstore, RELEASE, null);
  await attachKeylessBundle(
    "ci/bundled-nightly",
    await build("bundled-nightly", "ci/bundled-nightly"),
    sigstore,
    NIGHTLY,
  );
  const logged = await build("logged", "keyed/logged");
  await pushSignature("keyed/logged", logged, (p) => sigstore.signWithKeyLogged(p, privateKey, keyPem));

  const release_ = (root: string) =>
    `[{ name: release-workflow, issuer: "${GITHUB}", subjectRegExp: "https://github\\\\.com/acme/app/\\\\.github/workflows/release\\\\.yml@refs/tags/v.*", trustedRoot: ${root} }]`;
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"`,
    [
      "trustedRoots:",
      `  private: { path: ${JSON.stringify(join(work, "private.json"))} }`,
      `  late: { path: ${JSON.stringify(join(work, "late.json"))} }`,
      "projects:",
      `  ci: { mode: enforce, keyless: ${release_("private")} }`,
      `  old: { mode: enforce, keyless: ${release_("late")} }`,
      `  keyed: { mode: enforce, keys: [{ name: ci-key, pem: ${JSON.stringify(keyPem)}, trustedRoot: private }] }`,
      "",
    ].join("\n"),
  );
  hostsDir = join(work, "hosts");
  await writeHostsToml(hostsDir, registry.host, pg.proxyUrl);
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  await Promise.all([containerd?.stop(), registry?.stop()]);
  if (work) await removeDir(work);
});

function copy(repository: string) {
  return skopeoCopy(pg.host, repository, work);
}

describe("skopeo through pullgate, keyless", () => {
  it("copies the image the release workflow signed", async () => {
    const r = await copy("ci/release");
    expect(r.code, r.stderr).toBe(0);
  });

  it("is denied the image another workflow signed, with the signer in the message", async () => {
    const r = await copy("ci/nightly");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("nightly.yml@refs/heads/main");
    expect(r.stderr).toContain("matches no accepted identity (release-workflow)");
  });

  it("is denied an image whose certificate was logged after it expired", async () => {
    const r = await copy("old/app");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("not valid at the logged time");
  });

  it("is denied a key signature without a log entry (transparencyLog: required), and copies a logged one", async () => {
    const denied = await copy("keyed/app");
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain("the key requires one");
    const r = await copy("keyed/logged");
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("skopeo through pullgate, keyless Sigstore bundles (cosign v3's format)", () => {
  it("copies an image whose only signature is the release workflow's bundle, also in the GHCR shape", async () => {
    for (const repository of ["ci/bundled", "ci/ghcr"]) {
      const r = await copy(repository);
      expect(r.code, `${repository}: ${r.stderr}`).toBe(0);
    }
  });

  it("is denied an image whose bundle another workflow signed, with the signer in the message", async () => {
    const r = await copy("ci/bundled-nightly");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("nightly.yml@refs/heads/main");
  });
});

describe("containerd through pullgate, keyless", () => {
  it("pulls the release workflow's image and fails another workflow's with the reason", async () => {
    const ok = await containerd.pull(`${registry.host}/ci/release:v1`, { hostsDir, unpack: true });
    expect(ok.code, ok.stderr).toBe(0);
    const denied = await containerd.pull(`${registry.host}/ci/nightly:v1`, { hostsDir, unpack: true });
    expect(denied.code).not.toBe(0);
    expect(`${denied.stdout}${denied.stderr}`).toContain("403 Forbidden");
  });

  it("pulls an image signed only by a keyless bundle, and fails one bundled by another workflow", async () => {
    const ok = await containerd.pull(`${registry.host}/ci/ghcr:v1`, { hostsDir, unpack: true });
    expect(ok.code, ok.stderr).toBe(0);
    const denied = await containerd.pull(`${registry.host}/ci/bundled-nightly:v1`, {
      hostsDir,
      unpack: true,
    });
    expect(denied.code).not.toBe(0);
    expect(`${denied.stdout}${denied.stderr}`).toContain("403 Forbidden");
  });
});
