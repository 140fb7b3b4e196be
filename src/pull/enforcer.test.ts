import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { createMemoryVerdictCache, type MemoryVerdictCache } from "../cache/index.ts";
import { parseConfig } from "../config/index.ts";
import type { Digest } from "../oci/index.ts";
import { createMemoryPolicyStore, type EffectivePolicy, PolicyRegistry } from "../policy/index.ts";
import {
  createPullgateMetrics,
  createTracer,
  type PullgateMetrics,
  silentLogger,
} from "../telemetry/index.ts";
import { RegistryClient, type Route, UpstreamRouter } from "../upstream/index.ts";
import { parseTrustedKey } from "../verify/index.ts";
import { Enforcer } from "./enforcer.ts";
import {
  FakeRegistry,
  fakeBundleReferrer,
  fakeLegacySignature,
  hexOf,
  type PushedImage,
  pushImage,
  pushIndex,
} from "./fake-registry.test-helpers.ts";

const UP = "http://up.test:5000";
const REPO = "proj/app";
const ALLOW_TTL = 3600;
const DENY_TTL = 60;
const trusted = generateTestKey();
const stranger = generateTestKey();

let agent: MockAgent;
let registry: FakeRegistry;
let policies: PolicyRegistry;
let cache: MemoryVerdictCache;
let enforcer: Enforcer;
let route: Route;
let t: number;
let metrics: PullgateMetrics;

beforeEach(async () => {
  agent = new MockAgent();
  agent.disableNetConnect();
  registry = new FakeRegistry(agent, UP);
  const config = parseConfig(
    JSON.stringify({
      upstreams: [{ name: "up", url: UP }],
      defaults: {
        mode: "enforce",
        keys: [{ name: "trusted", pem: trusted.publicKeyPem, transparencyLog: "optional" }],
      },
    }),
    { source: "t", baseDir: ".", env: {} },
  );
  const client = new RegistryClient(config.upstreams[0] as never, {
    tracer: createTracer(),
    dispatcher: agent,
  });
  route = new UpstreamRouter([client]).route(REPO, undefined);
  policies = new PolicyRegistry(config, {
    store: createMemoryPolicyStore(),
    logger: silentLogger,
  });
  await policies.start();
  t = 1_000_000;
  cache = createMemoryVerdictCache({ now: () => t });
  metrics = createPullgateMetrics();
  enforcer = new Enforcer({
    metrics,
    cache,
    limits: {
      maxManifestBytes: 64 * 1024,
      maxPayloadBytes: 64 * 1024,
      maxBundleBytes: 64 * 1024,
      maxBlobs: 64,
      maxTotalBytes: 8 * 1024 * 1024,
    },
    allowTtlSeconds: ALLOW_TTL,
    denyTtlSeconds: DENY_TTL,
    now: () => t,
  });
});

afterEach(async () => {
  await agent.close();
});

const policy = (): EffectivePolicy => policies.forRepository(REPO);
/** The Content-Type a manifest is served with: its own mediaType (as a registry serves it). */
const typeOf = (bytes: Buffer): string =>
  (JSON.parse(bytes.toString()) as { mediaType?: string }).mediaType ??
  "application/vnd.oci.image.manifest.v1+json";
const input = (m: { digest: string; bytes: Buffer }, p: EffectivePolicy = policy()) => ({
  route,
  policy: p,
  digest: m.digest as Digest,
  bytes: m.bytes,
  contentType: typeOf(m.bytes),
  ctx: {},
});
const place = (digest: string) => ({ route, policy: policy(), digest: digest as Digest, ctx: {} });
const decide = (m: { digest: string; bytes: Buffer }, p?: EffectivePolicy) => enforcer.decide(input(m, p));

/** A tar header block for one empty regular file (what archive/tar reads). */
function tarHeader(name: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write("0000755\0", 100);
  h.write("00000000000\0", 124);
  h.write("        ", 148);
  h.write("0", 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return h;
}

function signedImage(): PushedImage {
  const image = pushImage(registry, REPO);
  fakeLegacySignature(registry, REPO, image.digest, trusted);
  return image;
}

describe("decide", () => {
  it("admits a signature artifact once its blobs prove it inert, with no signature lookup", async () => {
    const image = pushImage(registry, REPO);
    const sig = fakeLegacySignature(registry, REPO, image.digest, trusted);
    const bundle = fakeBundleReferrer(registry, REPO, image.digest, trusted, { tagSchema: true });
    const referrersIndex = registry.getManifest(REPO, `sha256-${hexOf(image.digest)}`) as Buffer;
    const before = registry.requests.length;
    for (const artifact of [
      { digest: sig.sigDigest, bytes: sig.sigBytes },
      { digest: bundle.referrerDigest, bytes: bundle.referrerBytes },
      { digest: `sha256:${"a".repeat(64)}`, bytes: referrersIndex },
    ]) {
      expect(await decide(artifact)).toEqual({
        outcome: "allow",
        via: "signature-artifact",
        tier: "verified",
      });
      expect(await decide(artifact)).toMatchObject({
        outcome: "allow",
        via: "signature-artifact",
        tier: "memory",
      });
    }
    // The .sig's payload and config blobs, and the bundle blob (the empty config is known by its digest).
    const fetched = registry.requests.slice(before);
    expect(fetched.every((r) => r.includes("/blobs/"))).toBe(true);
    expect(fetched).toHaveLength(3);
    expect(metrics.signatureLookups.value()).toBe(0);
    // A referrers index is not a verified index: what it lists is not admitted through it.
    expect(await cache.get(policy().fingerprint, bundle.referrerDigest)).toMatchObject({
      verdict: { via: "signature-artifact" },
    });
  });

  it("checks a runnable image shaped like a .sig, .att or bundle referrer (a tarball layer) like any image", async () => {
    const tar = Buffer.concat([tarHeader("bin/sh"), Buffer.alloc(1024)]);
    for (const [layerType, extra] of [
      ["application/vnd.dev.cosign.simplesigning.v1+json", {}],
      ["application/vnd.dsse.envelope.v1+json", {}],
      [
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        { artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json" },
      ],
    ] as const) {
      const layerDigest = registry.putBlob(REPO, tar);
      const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: {} }));
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...extra,
          config: {
            mediaType: "application/vnd.oci.image.config.v1+json",
            digest: registry.putBlob(REPO, config),
            size: config.length,
          },
          layers: [{ mediaType: layerType, digest: layerDigest, size: tar.length }],
        }),
      );
      const digest = registry.putManifest(
        REPO,
        undefined,
        bytes,
        "application/vnd.oci.image.manifest.v1+json",
      );
      expect(await decide({ digest, bytes }), layerType).toMatchObject({
        outcome: "deny",
        reason: "NO_SIGNATURE",
      });
    }
  });

  it("fetches a blob listed hundreds of times once, and judges the identical layers once", async () => {
    const image = pushImage(registry, REPO);
    const payload = Buffer.alloc(60 * 1024, 0x20);
    payload.write('{"critical":{"type":"cosign container image signature","image":{}}}');
    const payloadDigest = registry.putBlob(REPO, payload);
    const layers = Array.from({ length: 200 }, () => ({
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      digest: payloadDigest,
      size: payload.length,
      annotations: { "dev.cosignproject.cosign/signature": "MEUCIQ==" },
    }));
    const emptyConfig = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const sigBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.empty.v1+json", digest: emptyConfig, size: 2 },
        layers,
      }),
    );
    registry.putManifest(
      REPO,
      `sha256-${hexOf(image.digest)}.sig`,
      sigBytes,
      "application/vnd.oci.image.manifest.v1+json",
    );
    const before = registry.requests.length;
    const d = await decide(image);
    expect(d).toMatchObject({ outcome: "deny", reason: "UNTRUSTED_SIGNATURE" });
    const blobFetches = registry.requests.slice(before).filter((r) => r.includes(`/blobs/${payloadDigest}`));
    expect(blobFetches).toHaveLength(1);
    expect(d.outcome === "deny" && d.signatures?.length).toBe(200);
    // The .sig manifest itself, pulled by cosign: one fetch of the shared payload blob as well.
    const sigDigest = registry.putManifest(
      REPO,
      undefined,
      sigBytes,
      "application/vnd.oci.image.manifest.v1+json",
    );
    const mark = registry.requests.length;
    expect(await decide({ digest: sigDigest, bytes: sigBytes })).toMatchObject({ via: "signature-artifact" });
    expect(registry.requests.slice(mark).filter((r) => r.includes("/blobs/"))).toHaveLength(1);
  });

  it("denies an ambiguous manifest even when a trusted key signed it, and admits nothing through it", async () => {
    const child = pushImage(registry, REPO);
    const index = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: child.digest, size: 1 }],
      Manifests: [],
    };
    const bytes = Buffer.from(JSON.stringify(index));
    const digest = registry.putManifest(REPO, "amb", bytes, "application/vnd.oci.image.index.v1+json");
    fakeLegacySignature(registry, REPO, digest, trusted);
    const d = await decide({ digest, bytes });
    expect(d).toMatchObject({ outcome: "deny", reason: "AMBIGUOUS_MANIFEST", tier: "content" });
    expect(d.outcome === "deny" && d.detail).toMatch(/"Manifests".*Go clients read as "manifests"/);
    expect(await decide(child)).toMatchObject({ outcome: "deny", reason: "NO_SIGNATURE" });
    expect(metrics.signatureLookups.value()).toBe(1);
  });

  it("allows a signed image after one lookup, then answers from the cache without looking again", async () => {
    const image = signedImage();
    const first = await decide(image);
    expect(first).toMatchObject({ outcome: "allow", via: "signature", tier: "verified", key: "trusted" });
    expect(first.outcome === "allow" && first.keyFingerprint).toBe(
      parseTrustedKey({ name: "k", pem: trusted.publicKeyPem }).fingerprint,
    );
    const requests = registry.requests.length;
    expect(requests).toBe(3); // .sig, payload, referrers
    expect(metrics.signatureLookupRequests.value()).toBe(3);
    const second = await decide(image);
    expect(second).toMatchObject({ outcome: "allow", via: "signature", tier: "memory", key: "trusted" });
    expect(registry.requests.length).toBe(requests);
    expect(metrics.signatureLookups.value()).toBe(1);
  });

  it("allows an image signed with a Sigstore bundle", async () => {
    const image = pushImage(registry, REPO);
    fakeBundleReferrer(registry, REPO, image.digest, trusted);
    expect(await decide(image)).toMatchObject({ outcome: "allow", via: "signature", key: "trusted" });
  });

  it.each([
    ["NO_SIGNATURE", () => pushImage(registry, REPO)],
    [
      "UNTRUSTED_SIGNATURE",
      () => {
        const image = pushImage(registry, REPO);
        fakeLegacySignature(registry, REPO, image.digest, stranger);
        return image;
      },
    ],
    [
      "DIGEST_MISMATCH",
      () => {
        const image = pushImage(registry, REPO);
        fakeLegacySignature(registry, REPO, image.digest, trusted, {
          payloadDigest: `sha256:${"e".repeat(64)}`,
        });
        return image;
      },
    ],
  ])("denies with %s", async (reason, make) => {
    expect(await decide(make())).toMatchObject({ outcome: "deny", reason, tier: "verified" });
  });

  it("runs one lookup for concurrent decisions on the same (policy, digest)", async () => {
    const image = signedImage();
    const decisions = await Promise.all(Array.from({ length: 8 }, () => decide(image)));
    expect(decisions.every((d) => d.outcome === "allow")).toBe(true);
    expect(metrics.signatureLookups.value()).toBe(1);
    expect(registry.requests).toHaveLength(3);
    expect(enforcer.inflight).toBe(0);
  });

  it("looks again under a changed policy (the fingerprint is part of the cache key)", async () => {
    const image = signedImage();
    expect((await decide(image)).outcome).toBe("allow");
    await policies.update("proj", {
      keys: [{ name: "stranger", pem: stranger.publicKeyPem, transparencyLog: "optional" }],
    });
    expect(await decide(image)).toMatchObject({
      outcome: "deny",
      reason: "UNTRUSTED_SIGNATURE",
      tier: "verified",
    });
    expect(metrics.signatureLookups.value()).toBe(2);
  });

  it("looks for signatures in the policy's signatureRepository", async () => {
    const image = pushImage(registry, REPO);
    fakeLegacySignature(registry, "proj/signatures", image.digest, trusted);
    await policies.update("proj", { signatureRepository: "proj/signatures" });
    expect((await decide(image)).outcome).toBe("allow");
    expect(registry.count(new RegExp(`/v2/${REPO}/`))).toBe(0);
    expect(registry.count(/\/v2\/proj\/signatures\/manifests\/sha256-.*\.sig$/)).toBe(1);
  });

  it("admits the children a verified index lists (allow via index), for that policy only", async () => {
    const amd = pushImage(registry, REPO);
    const arm = pushImage(registry, REPO);
    const index = pushIndex(registry, REPO, "v1", [amd, arm]);
    fakeLegacySignature(registry, REPO, index.digest, trusted);
    expect(await decide(index)).toMatchObject({ outcome: "allow", via: "signature", tier: "verified" });
    const fp = policy().fingerprint;
    for (const child of [amd, arm]) {
      const hit = await cache.get(fp, child.digest);
      expect(hit?.verdict).toMatchObject({ outcome: "allow", via: "index", indexDigest: index.digest });
    }
    const requests = registry.requests.length;
    expect(await decide(amd)).toMatchObject({
      outcome: "allow",
      via: "index",
      indexDigest: index.digest,
      tier: "memory",
    });
    expect(registry.requests.length).toBe(requests);
    expect(metrics.signatureLookups.value()).toBe(1);
    // Under another policy the child is judged on its own.
    await policies.update("proj", { exempt: ["proj/other"] });
    expect(await decide(arm)).toMatchObject({ outcome: "deny", reason: "NO_SIGNATURE" });
  });

  it("does not admit the children of an unsigned index", async () => {
    const amd = pushImage(registry, REPO);
    const index = pushIndex(registry, REPO, "v1", [amd]);
    expect((await decide(index)).outcome).toBe("deny");
    expect(await cache.get(policy().fingerprint, amd.digest)).toBeUndefined();
  });

  it("never caches 'unavailable': the next decision looks again", async () => {
    const image = signedImage();
    registry.fail(/\.sig$/, 503, 1);
    expect(await decide(image)).toMatchObject({ outcome: "unavailable", tier: "verified" });
    expect(await cache.get(policy().fingerprint, image.digest)).toBeUndefined();
    expect(await decide(image)).toMatchObject({ outcome: "allow", tier: "verified" });
    expect(metrics.signatureLookups.value()).toBe(2);
  });

  it("'unavailable' wins over a deny, but not over a verified signature", async () => {
    const unsigned = pushImage(registry, REPO);
    registry.fail(/\/referrers\//, 503);
    expect((await decide(unsigned)).outcome).toBe("unavailable");
    const signed = signedImage();
    expect((await decide(signed)).outcome).toBe("allow");
  });

  it("a deny found in one repository does not deny the same digest where it is signed (no deny poisoning)", async () => {
    const image = pushImage(registry, REPO);
    const elsewhere = new UpstreamRouter([route.client]).route("proj/copy", undefined);
    registry.putManifest("proj/copy", "v1", image.bytes, "application/vnd.oci.image.manifest.v1+json");
    fakeLegacySignature(registry, REPO, image.digest, trusted);
    // The same bytes, unsigned in proj/copy: denied there, and the deny is cached for that place only.
    expect(await enforcer.decide({ ...input(image), route: elsewhere })).toMatchObject({ outcome: "deny" });
    expect(await decide(image)).toMatchObject({ outcome: "allow", tier: "verified" });
    // Once allowed by a verified signature, the digest is allowed wherever it is pulled.
    expect(await enforcer.decide({ ...input(image), route: elsewhere })).toMatchObject({
      outcome: "allow",
      tier: "memory",
    });
  });

  it("matchRepository: a signature counts only where its docker-reference names the pulled repository", async () => {
    await policies.update("proj", { matchRepository: true });
    const elsewhere = pushImage(registry, REPO);
    fakeLegacySignature(registry, REPO, elsewhere.digest, trusted, {
      dockerReference: "registry.test/other/app",
    });
    expect(await decide(elsewhere)).toMatchObject({ outcome: "deny", reason: "REPOSITORY_MISMATCH" });
    const here = pushImage(registry, REPO);
    fakeLegacySignature(registry, REPO, here.digest, trusted, { dockerReference: `up.test:5000/${REPO}:v1` });
    expect(await decide(here)).toMatchObject({ outcome: "allow", via: "signature" });
    // The allow holds for this repository only: the same digest from another repository looks again.
    const copy = new UpstreamRouter([route.client]).route("proj/copy", undefined);
    expect(await enforcer.decide({ ...input(here), route: copy })).toMatchObject({ outcome: "deny" });
    // Off (the default, as in cosign): docker-reference is ignored.
    await policies.update("proj", { matchRepository: false });
    expect(await decide(elsewhere)).toMatchObject({ outcome: "allow" });
  });

  it("caches a deny for denyTtlSeconds and an allow for allowTtlSeconds", async () => {
    const unsigned = pushImage(registry, REPO);
    const signed = signedImage();
    const start = t;
    expect((await decide(unsigned)).outcome).toBe("deny");
    expect((await decide(signed)).outcome).toBe("allow");
    // A deny is kept for the place it was found (upstream and repository), never for the bare digest.
    expect(await cache.get(policy().fingerprint, unsigned.digest)).toBeUndefined();
    expect(
      (await cache.get(`${policy().fingerprint}/deny/up/${REPO}`, unsigned.digest))?.verdict,
    ).toMatchObject({
      outcome: "deny",
      reason: "NO_SIGNATURE",
      decidedAt: start,
    });
    expect((await cache.get(policy().fingerprint, signed.digest))?.verdict.decidedAt).toBe(start);

    t = start + (DENY_TTL - 1) * 1000;
    expect(await decide(unsigned)).toMatchObject({ outcome: "deny", tier: "memory" });
    expect(metrics.signatureLookups.value()).toBe(2);

    t = start + DENY_TTL * 1000;
    expect(await decide(unsigned)).toMatchObject({ outcome: "deny", tier: "verified" });
    expect(await decide(signed)).toMatchObject({ outcome: "allow", tier: "memory" });
    expect(metrics.signatureLookups.value()).toBe(3);

    t = start + (ALLOW_TTL - 1) * 1000;
    expect(await decide(signed)).toMatchObject({ outcome: "allow", tier: "memory" });
    t = start + ALLOW_TTL * 1000;
    expect(await decide(signed)).toMatchObject({ outcome: "allow", tier: "verified" });
    expect(metrics.signatureLookups.value()).toBe(4);
  });
});

describe("evaluate (dry run)", () => {
  it("ignores a cached verdict and looks itself", async () => {
    const unsigned = pushImage(registry, REPO);
    const planted = { outcome: "allow" as const, via: "signature" as const, key: "planted", decidedAt: t };
    await cache.set(policy().fingerprint, unsigned.digest, planted, ALLOW_TTL);
    expect(await decide(unsigned)).toMatchObject({ outcome: "allow", tier: "memory" });
    expect(await enforcer.evaluate(input(unsigned))).toMatchObject({ outcome: "deny", tier: "verified" });
    expect((await cache.get(policy().fingerprint, unsigned.digest))?.verdict).toEqual(planted);
  });

  it("writes no verdict, neither for the image nor for the children of an index", async () => {
    const child = pushImage(registry, REPO);
    const index = pushIndex(registry, REPO, undefined, [child]);
    fakeLegacySignature(registry, REPO, index.digest, trusted);
    const unsigned = pushImage(registry, REPO);
    expect((await enforcer.evaluate(input(index))).outcome).toBe("allow");
    expect((await enforcer.evaluate(input(unsigned))).outcome).toBe("deny");
    expect(cache.size()).toBe(0);
    expect((await enforcer.evaluate(input(index))).outcome).toBe("allow");
    expect(metrics.signatureLookups.value()).toBe(3);
  });

  it("reports the signatures it considered", async () => {
    const image = pushImage(registry, REPO);
    fakeLegacySignature(registry, REPO, image.digest, stranger);
    const d = await enforcer.evaluate(input(image));
    expect(d.signatures?.map((s) => s.result)).toEqual(["untrusted"]);
  });
});

describe("strictBlobs admission", () => {
  it("records the config and layers of an admitted manifest, per policy", async () => {
    const image = pushImage(registry, REPO);
    expect((await enforcer.isBlobAdmitted(policy(), image.layerDigest as Digest)).admitted).toBe(false);
    await enforcer.admitBlobsOf(policy(), image.bytes, typeOf(image.bytes));
    expect(await enforcer.isBlobAdmitted(policy(), image.layerDigest as Digest)).toEqual({
      admitted: true,
      tier: "memory",
    });
    expect((await enforcer.isBlobAdmitted(policy(), image.configDigest as Digest)).admitted).toBe(true);
    expect((await enforcer.isBlobAdmitted(policy(), image.digest as Digest)).admitted).toBe(false);
    await policies.update("proj", { strictBlobs: true });
    expect((await enforcer.isBlobAdmitted(policy(), image.layerDigest as Digest)).admitted).toBe(false);
  });

  it("hasVerdict is true once a verdict is cached", async () => {
    const image = pushImage(registry, REPO);
    expect(await enforcer.hasVerdict(place(image.digest))).toBe(false);
    await decide(image);
    expect(await enforcer.hasVerdict(place(image.digest))).toBe(true);
  });
});

describe("decideEarly (the verification a HEAD starts)", () => {
  it("starts the signature lookup before the manifest bytes arrive, and decides like decide()", async () => {
    const image = signedImage();
    let release: (b: Buffer) => void = () => {};
    const manifest = new Promise<Buffer>((resolve) => {
      release = resolve;
    }).then((bytes) => ({ bytes, contentType: typeOf(bytes) }));
    const pending = enforcer.decideEarly({ ...place(image.digest), manifest });
    // The `.sig` lookup goes out while the manifest is still "on its way".
    await new Promise((r) => setTimeout(r, 50));
    expect(registry.requests.some((r) => r.includes(".sig"))).toBe(true);
    release(image.bytes);
    expect(await pending).toMatchObject({ outcome: "allow", via: "signature", key: "trusted" });
    expect(await decide(image)).toMatchObject({ outcome: "allow", tier: "memory" });
  });

  it("fails with the manifest fetch and leaves nothing cached", async () => {
    const image = signedImage();
    const failed = Promise.reject(new Error("upstream gone"));
    await expect(enforcer.decideEarly({ ...place(image.digest), manifest: failed })).rejects.toThrow(
      "upstream gone",
    );
    expect(await cache.get(policy().fingerprint, image.digest)).toBeUndefined();
  });
});
