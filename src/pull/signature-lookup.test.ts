import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BUNDLE_V03, generateTestKey, type TestKey } from "../../test/support/signer.ts";
import { parseConfig } from "../config/index.ts";
import { referrersIndexWith } from "../local/index.ts";
import type { Digest } from "../oci/index.ts";
import { createTracer } from "../telemetry/index.ts";
import { RegistryClient } from "../upstream/index.ts";
import type { BundleEvidence, LegacySignatureEvidence } from "../verify/index.ts";
import {
  FakeRegistry,
  fakeBundleReferrer,
  fakeLegacySignature,
  hexOf,
  OCI_MANIFEST,
  pushImage,
} from "./fake-registry.test-helpers.ts";
import { type LookupLimits, lookupSignatures } from "./signature-lookup.ts";

const UP = "http://up.test:5000";
const REPO = "proj/app";
const LIMITS: LookupLimits = {
  maxManifestBytes: 64 * 1024,
  maxPayloadBytes: 64 * 1024,
  maxBundleBytes: 64 * 1024,
  maxBlobs: 64,
  maxTotalBytes: 8 * 1024 * 1024,
};

let agent: MockAgent;
let registry: FakeRegistry;
let client: RegistryClient;
let key: TestKey;

beforeEach(() => {
  agent = new MockAgent();
  agent.disableNetConnect();
  registry = new FakeRegistry(agent, UP);
  const config = parseConfig(`upstreams:\n  - name: up\n    url: "${UP}"\n`, {
    source: "t",
    baseDir: ".",
    env: {},
  });
  client = new RegistryClient(config.upstreams[0] as never, { tracer: createTracer(), dispatcher: agent });
  key ??= generateTestKey();
});

afterEach(async () => {
  await agent.close();
});

const lookup = (digest: string, limits: LookupLimits = LIMITS) =>
  lookupSignatures(client, REPO, digest as Digest, limits, {});

const legacyOf = (r: { evidence: readonly unknown[] }) =>
  r.evidence.filter(
    (e): e is LegacySignatureEvidence => (e as LegacySignatureEvidence).format === "cosign-legacy",
  );
const bundlesOf = (r: { evidence: readonly unknown[] }) =>
  r.evidence.filter((e): e is BundleEvidence => (e as BundleEvidence).format === "sigstore-bundle");

describe("legacy .sig signatures", () => {
  it("finds the .sig manifest and fetches each simplesigning payload, counting every request", async () => {
    const image = pushImage(registry, REPO, "v1");
    const sig = fakeLegacySignature(registry, REPO, image.digest, key);
    const r = await lookup(image.digest);
    expect(r.unavailable).toBeUndefined();
    const [legacy] = legacyOf(r);
    expect(legacy?.source).toBe(sig.sigDigest);
    expect(legacy?.layers).toHaveLength(1);
    expect(legacy?.layers[0]?.digest).toBe(sig.payloadDigest);
    expect(Buffer.from(legacy?.layers[0]?.payload ?? []).equals(sig.payload)).toBe(true);
    // .sig manifest, its payload blob, the referrers API (empty)
    expect(registry.requests).toHaveLength(3);
    expect(r.requests).toBe(3);
    expect(registry.count(new RegExp(`manifests/sha256-${hexOf(image.digest)}\\.sig$`))).toBe(1);
    expect(registry.count(new RegExp(`blobs/${sig.payloadDigest}$`))).toBe(1);
  });

  it("a payload blob whose bytes do not hash to its digest is a broken answer: unavailable, not unsigned", async () => {
    const image = pushImage(registry, REPO);
    const sig = fakeLegacySignature(registry, REPO, image.digest, key);
    registry.putBlobAt(REPO, sig.payloadDigest, Buffer.concat([sig.payload, Buffer.from(" ")]));
    const r = await lookup(image.digest);
    expect(r.unavailable).toMatch(/do not match their digest/);
    expect(legacyOf(r)[0]?.layers[0]?.payload).toBeUndefined();
  });

  it("drops a payload over maxPayloadBytes", async () => {
    const image = pushImage(registry, REPO);
    const sig = fakeLegacySignature(registry, REPO, image.digest, key);
    const r = await lookup(image.digest, { ...LIMITS, maxPayloadBytes: sig.payload.length - 1 });
    expect(r.unavailable).toBeUndefined();
    expect(legacyOf(r)[0]?.layers[0]?.payload).toBeUndefined();
  });

  it("fetches no blob for a layer that is not a simplesigning payload", async () => {
    const image = pushImage(registry, REPO);
    const other = registry.putBlob(REPO, Buffer.from("an SBOM"));
    registry.putManifest(REPO, `sha256-${hexOf(image.digest)}.sig`, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      layers: [{ mediaType: "application/spdx+json", size: 7, digest: other }],
    });
    const r = await lookup(image.digest);
    expect(legacyOf(r)[0]?.layers).toEqual([
      { mediaType: "application/spdx+json", digest: other, annotations: {}, payload: undefined },
    ]);
    expect(registry.count(/\/blobs\//)).toBe(0);
  });

  it("treats a missing .sig (404) as no evidence, not as unavailable", async () => {
    const image = pushImage(registry, REPO);
    const r = await lookup(image.digest);
    expect(r.evidence).toEqual([]);
    expect(r.unavailable).toBeUndefined();
  });

  it.each([503, 429, 401, 500])(".sig answering %i makes the lookup unavailable", async (status) => {
    const image = pushImage(registry, REPO);
    fakeLegacySignature(registry, REPO, image.digest, key);
    registry.fail(/\.sig$/, status);
    const r = await lookup(image.digest);
    expect(r.unavailable).toBeDefined();
    expect(legacyOf(r)).toEqual([]);
  });

  it("a payload blob answering 503 makes the lookup unavailable", async () => {
    const image = pushImage(registry, REPO);
    const sig = fakeLegacySignature(registry, REPO, image.digest, key);
    registry.fail(new RegExp(`blobs/${sig.payloadDigest}$`), 503);
    const r = await lookup(image.digest);
    expect(r.unavailable).toBeDefined();
  });
});

describe("Sigstore bundles as referrers", () => {
  it("reads bundles through the referrers API, asking for the bundle artifactType", async () => {
    const image = pushImage(registry, REPO);
    const b = fakeBundleReferrer(registry, REPO, image.digest, key);
    const r = await lookup(image.digest);
    expect(r.unavailable).toBeUndefined();
    expect(bundlesOf(r)).toHaveLength(1);
    expect(bundlesOf(r)[0]).toMatchObject({ source: b.referrerDigest, artifactType: BUNDLE_V03 });
    expect(Buffer.from(bundlesOf(r)[0]?.bundle ?? []).equals(b.bundle)).toBe(true);
    const query = `?artifactType=${encodeURIComponent(BUNDLE_V03)}`;
    expect(
      registry.requests.filter((line) => line.endsWith(`/referrers/${image.digest}${query}`)),
    ).toHaveLength(1);
    // .sig (404), referrers, referrer manifest, bundle blob; no tag-schema fallback
    expect(r.requests).toBe(4);
    expect(registry.requests).toHaveLength(4);
    expect(registry.count(new RegExp(`manifests/sha256-${hexOf(image.digest)}$`))).toBe(0);
  });

  it("keeps only bundle-typed referrers whose manifest hashes to its descriptor and whose subject is the image", async () => {
    const image = pushImage(registry, REPO);
    const good = fakeBundleReferrer(registry, REPO, image.digest, key);
    // A referrer of another type (an SBOM): never fetched.
    const sbom = registry.putManifest(REPO, undefined, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: "application/spdx+json",
      layers: [],
      subject: { mediaType: OCI_MANIFEST, size: image.size, digest: image.digest },
    });
    // A descriptor whose manifest bytes hash to something else.
    const lying = `sha256:${"1".repeat(64)}`;
    const liar = fakeBundleReferrer(registry, "proj/elsewhere", image.digest, key);
    registry.putManifestAt(REPO, lying, liar.referrerBytes);
    registry.putBlob(REPO, liar.bundle);
    // A referrer whose subject names another digest.
    const other = pushImage(registry, REPO);
    const foreign = fakeBundleReferrer(registry, REPO, image.digest, key, { subjectDigest: other.digest });
    registry.setReferrers(REPO, image.digest, [
      { mediaType: OCI_MANIFEST, size: 1, digest: sbom, artifactType: "application/spdx+json" },
      { mediaType: OCI_MANIFEST, size: 1, digest: lying, artifactType: BUNDLE_V03 },
      { mediaType: OCI_MANIFEST, size: 1, digest: foreign.referrerDigest, artifactType: BUNDLE_V03 },
      { mediaType: OCI_MANIFEST, size: 1, digest: good.referrerDigest, artifactType: BUNDLE_V03 },
    ]);
    const r = await lookup(image.digest);
    // The lying descriptor is a broken answer (could not look); the others are judged or skipped.
    expect(r.unavailable).toMatch(new RegExp(`${lying}: bytes do not match their digest`));
    expect(bundlesOf(r).map((e) => e.source)).toEqual([good.referrerDigest]);
    expect(registry.count(new RegExp(`manifests/${sbom}$`))).toBe(0);
    expect(registry.count(new RegExp(`blobs/${liar.bundleDigest}$`))).toBe(0);
    expect(registry.count(new RegExp(`blobs/${foreign.bundleDigest}$`))).toBe(0);
    expect(registry.count(new RegExp(`blobs/${good.bundleDigest}$`))).toBe(1);
  });

  it.each([404, 400, 405, 501])(
    "referrers API answering %i: falls back to the referrers tag schema sha256-<hex>",
    async (status) => {
      const image = pushImage(registry, REPO);
      const b = fakeBundleReferrer(registry, REPO, image.digest, key, { tagSchema: true });
      registry.fail(/\/referrers\//, status);
      const r = await lookup(image.digest);
      expect(r.unavailable).toBeUndefined();
      expect(bundlesOf(r).map((e) => e.source)).toEqual([b.referrerDigest]);
      expect(registry.count(new RegExp(`GET /v2/${REPO}/manifests/sha256-${hexOf(image.digest)}$`))).toBe(1);
      // .sig (404), referrers, tag schema index, referrer manifest, bundle blob
      expect(r.requests).toBe(5);
      expect(registry.requests).toHaveLength(5);
    },
  );

  it.each([
    ["no artifactType", null],
    ["the empty artifactType", "application/vnd.oci.empty.v1+json"],
  ])(
    "finds a bundle whose tag-schema index entry has %s (cosign v3 on GHCR), typed by its own manifest",
    async (_, descriptorArtifactType) => {
      registry.referrersApi = false;
      const image = pushImage(registry, REPO);
      const b = fakeBundleReferrer(registry, REPO, image.digest, key, {
        tagSchema: true,
        descriptorArtifactType,
      });
      const r = await lookup(image.digest);
      expect(r.unavailable).toBeUndefined();
      expect(bundlesOf(r).map((e) => [e.source, e.artifactType])).toEqual([
        [b.referrerDigest, "application/vnd.dev.sigstore.bundle.v0.3+json"],
      ]);
    },
  );

  it("an untyped tag-schema entry whose manifest is no bundle is not evidence", async () => {
    registry.referrersApi = false;
    const image = pushImage(registry, REPO);
    const other = pushImage(registry, REPO);
    const tag = `sha256-${hexOf(image.digest)}`;
    registry.putManifest(
      REPO,
      tag,
      referrersIndexWith(undefined, other.bytes, other.digest, null),
      "application/vnd.oci.image.index.v1+json",
    );
    const r = await lookup(image.digest);
    expect(bundlesOf(r)).toEqual([]);
    // The untyped entry's manifest was read, nothing more.
    expect(registry.count(new RegExp(`manifests/${other.digest}$`))).toBe(1);
    expect(registry.count(new RegExp(`blobs/${other.layerDigest}$`))).toBe(0);
  });

  it("no referrers API and no tag schema index: no evidence, not unavailable", async () => {
    registry.referrersApi = false;
    const image = pushImage(registry, REPO);
    const r = await lookup(image.digest);
    expect(r).toEqual({ evidence: [], unavailable: undefined, requests: 3 });
  });

  it.each([503, 429])("referrers API answering %i is unavailable, without a fallback", async (status) => {
    const image = pushImage(registry, REPO);
    fakeBundleReferrer(registry, REPO, image.digest, key, { tagSchema: true });
    registry.fail(/\/referrers\//, status);
    const r = await lookup(image.digest);
    expect(r.unavailable).toBeDefined();
    expect(bundlesOf(r)).toEqual([]);
    expect(registry.count(new RegExp(`manifests/sha256-${hexOf(image.digest)}$`))).toBe(0);
  });

  it("tag schema index answering 503 is unavailable", async () => {
    registry.referrersApi = false;
    const image = pushImage(registry, REPO);
    registry.fail(new RegExp(`manifests/sha256-${hexOf(image.digest)}$`), 503);
    expect((await lookup(image.digest)).unavailable).toBeDefined();
  });

  it("ignores a bundle blob over maxBundleBytes (no evidence, not unavailable)", async () => {
    const image = pushImage(registry, REPO);
    const b = fakeBundleReferrer(registry, REPO, image.digest, key);
    const r = await lookup(image.digest, { ...LIMITS, maxBundleBytes: b.bundle.length - 1 });
    expect(bundlesOf(r)).toEqual([]);
    expect(r.unavailable).toBeUndefined();
    const ok = await lookup(image.digest, { ...LIMITS, maxBundleBytes: b.bundle.length });
    expect(bundlesOf(ok)).toHaveLength(1);
  });

  it("a bundle blob whose bytes do not hash to its digest is unavailable, not unsigned", async () => {
    const image = pushImage(registry, REPO);
    const b = fakeBundleReferrer(registry, REPO, image.digest, key);
    registry.putBlobAt(REPO, b.bundleDigest, Buffer.from("{}"));
    const r = await lookup(image.digest);
    expect(bundlesOf(r)).toEqual([]);
    expect(r.unavailable).toMatch(/do not match their digest/);
  });

  it("a referrer manifest answering 503 is unavailable", async () => {
    const image = pushImage(registry, REPO);
    const b = fakeBundleReferrer(registry, REPO, image.digest, key);
    registry.fail(new RegExp(`manifests/${b.referrerDigest}$`), 503);
    expect((await lookup(image.digest)).unavailable).toBeDefined();
  });
});

it("gathers both formats in one lookup", async () => {
  const image = pushImage(registry, REPO);
  fakeLegacySignature(registry, REPO, image.digest, key);
  fakeBundleReferrer(registry, REPO, image.digest, key);
  const r = await lookup(image.digest);
  expect(r.evidence.map((e) => e.format)).toEqual(["cosign-legacy", "sigstore-bundle"]);
  expect(r.requests).toBe(registry.requests.length);
  expect(r.requests).toBe(5);
});
