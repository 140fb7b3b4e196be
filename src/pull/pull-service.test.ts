import { MockAgent } from "undici";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { createApps, createDeps, type Deps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";
import {
  FakeRegistry,
  fakeBundleReferrer,
  fakeLegacySignature,
  hexOf,
  OCI_MANIFEST,
  type PushedImage,
  pushImage,
  pushIndex,
} from "./fake-registry.test-helpers.ts";

const UP = "http://up.test:5000";
const HUB = "https://hub.test";
const trusted = generateTestKey();
const keys = [{ name: "trusted", pem: trusted.publicKeyPem, transparencyLog: "optional" }];

const CONFIG = {
  upstreams: [
    { name: "local", url: UP, default: true },
    { name: "hub", url: HUB, registry: "docker.io", pathPrefix: "hub" },
  ],
  defaults: { mode: "enforce", keys },
  projects: {
    enf: { upstreams: ["local"], mode: "enforce" },
    aud: { upstreams: ["local"], mode: "audit" },
    off: { upstreams: ["local"], mode: "off" },
    exm: { upstreams: ["local"], mode: "enforce", exempt: ["exm/tools/*", "exm/vendor/**"] },
    lax: { upstreams: ["local"], mode: "enforce", onLookupError: "allow" },
    gated: { upstreams: ["local"], mode: "enforce", gateHead: true },
    strict: { upstreams: ["local"], mode: "enforce", strictBlobs: true },
    laxstrict: { upstreams: ["local"], mode: "enforce", strictBlobs: true, onLookupError: "allow" },
  },
};

let agent: MockAgent;
let registry: FakeRegistry;
let hub: FakeRegistry;
let deps: Deps;
let logger: ReturnType<typeof createMemoryLogger>;
let app: ReturnType<typeof createApps>["proxy"];

beforeEach(async () => {
  agent = new MockAgent();
  agent.disableNetConnect();
  registry = new FakeRegistry(agent, UP);
  hub = new FakeRegistry(agent, HUB);
  logger = createMemoryLogger();
  const config = parseConfig(JSON.stringify(CONFIG), { source: "test", baseDir: ".", env: {} });
  deps = await createDeps(config, { logger, dispatcherFor: () => agent });
  app = createApps(deps).proxy;
});

afterEach(async () => {
  await deps.close(); // closes the upstream clients' dispatcher: the MockAgent
});

interface ErrorBody {
  errors: Array<{ code: string; detail?: Record<string, unknown> }>;
}

async function firstError(res: Response): Promise<{ code: string; detail?: Record<string, unknown> }> {
  return ((await res.json()) as ErrorBody).errors[0] ?? { code: "" };
}

function decisions(): Array<Record<string, unknown>> {
  return logger.records.filter((r) => r.event === "audit" && r.kind === "manifest-decision");
}

const SIGNATURE_PATH = /\.sig$|\/referrers\/|manifests\/sha256-[0-9a-f]{64}$/;

function signed(repository: string, tag = "v1"): PushedImage {
  const image = pushImage(registry, repository, tag);
  fakeLegacySignature(registry, repository, image.digest, trusted);
  return image;
}

describe("enforce", () => {
  it("denies an unsigned image: 403 DENIED with project, repository, digest and reason", async () => {
    const image = pushImage(registry, "enf/app", "v1");
    const res = await app.request("/v2/enf/app/manifests/v1");
    expect(res.status).toBe(403);
    const err = await firstError(res);
    expect(err.code).toBe("DENIED");
    expect(err.detail).toEqual({
      project: "enf",
      repository: "enf/app",
      digest: image.digest,
      reason: "NO_SIGNATURE",
    });
    expect(decisions()).toEqual([
      expect.objectContaining({
        project: "enf",
        repository: "enf/app",
        digest: image.digest,
        reference: "v1",
        mode: "enforce",
        outcome: "deny",
        reason: "NO_SIGNATURE",
        tier: "verified",
      }),
    ]);
  });

  it("a denial from the cache says so and until when; a dry run that allows the image drops it", async () => {
    const image = pushImage(registry, "enf/late", "v1");
    expect((await app.request("/v2/enf/late/manifests/v1")).status).toBe(403);
    const again = await app.request("/v2/enf/late/manifests/v1");
    expect(again.status).toBe(403);
    const body = (await again.json()) as {
      errors: Array<{ message: string; detail: Record<string, unknown> }>;
    };
    const [err] = body.errors;
    expect(err?.message).toMatch(
      /\(a verdict cached at \d{4}-\d\d-\d\dT[\d:]+Z: it is checked again after [\d:TZ-]+, or at once after a dry run that allows it or DELETE \/admin\/v1\/cache\/sha256:[0-9a-f]{64}\)$/,
    );
    expect(err?.detail.cachedUntil).toMatch(/Z$/);
    expect(decisions().at(-1)).toMatchObject({
      outcome: "deny",
      tier: "memory",
      cachedUntil: expect.stringMatching(/Z$/),
    });
    // Signed now: the dry run says allow and drops the cached denial, so the next pull is allowed.
    fakeLegacySignature(registry, "enf/late", image.digest, trusted);
    const { target, reference } = deps.pull.resolveImage("enf/late:v1");
    expect((await deps.pull.dryRun({ target, reference })).outcome).toBe("allow");
    expect((await app.request("/v2/enf/late/manifests/v1")).status).toBe(200);
  });

  it("serves a signed image's exact bytes and audits the key", async () => {
    const image = signed("enf/app");
    const res = await app.request("/v2/enf/app/manifests/v1");
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(image.bytes)).toBe(true);
    expect(res.headers.get("docker-content-digest")).toBe(image.digest);
    expect(decisions()).toEqual([
      expect.objectContaining({ outcome: "allow", via: "signature", key: "trusted", tier: "verified" }),
    ]);
    // The second pull is decided from the cache: one manifest request, no signature request.
    const before = registry.requests.length;
    expect((await app.request(`/v2/enf/app/manifests/${image.digest}`)).status).toBe(200);
    expect(registry.requests.slice(before)).toEqual([`GET /v2/enf/app/manifests/${image.digest}`]);
    expect(decisions()[1]).toMatchObject({ outcome: "allow", tier: "memory" });
  });

  it("resolves the project from the routed name (docker.io library/nginx → library, under defaults)", async () => {
    pushImage(hub, "library/nginx", "latest");
    const res = await app.request("/v2/hub/nginx/manifests/latest");
    expect(res.status).toBe(403);
    expect((await firstError(res)).detail).toMatchObject({ project: "library", repository: "library/nginx" });
    expect(hub.count(/library\/nginx\/manifests\/sha256-.*\.sig$/)).toBe(1);
  });

  it("admits the platform manifests of a signed index", async () => {
    const amd = pushImage(registry, "enf/multi");
    const arm = pushImage(registry, "enf/multi");
    const index = pushIndex(registry, "enf/multi", "v1", [amd, arm]);
    fakeLegacySignature(registry, "enf/multi", index.digest, trusted);
    expect((await app.request("/v2/enf/multi/manifests/v1")).status).toBe(200);
    const res = await app.request(`/v2/enf/multi/manifests/${arm.digest}`);
    expect(res.status).toBe(200);
    expect(decisions()[1]).toMatchObject({ outcome: "allow", via: "index", digest: arm.digest });
    expect(deps.metrics.signatureLookups.value()).toBe(1);
  });

  it("passes a signature artifact by content, but checks a runnable image pushed under a .sig tag", async () => {
    const image = pushImage(registry, "enf/app", "v1");
    fakeLegacySignature(registry, "enf/app", image.digest, trusted);
    const sigTag = `sha256-${hexOf(image.digest)}.sig`;
    const sig = await app.request(`/v2/enf/app/manifests/${sigTag}`);
    expect(sig.status).toBe(200);
    expect(decisions()[0]).toMatchObject({ outcome: "allow", via: "signature-artifact", tier: "verified" });
    expect(deps.metrics.signatureLookups.value()).toBe(0);

    const disguised = pushImage(registry, "enf/app");
    registry.putManifest("enf/app", `sha256-${"c".repeat(64)}.sig`, disguised.bytes, OCI_MANIFEST);
    const res = await app.request(`/v2/enf/app/manifests/sha256-${"c".repeat(64)}.sig`);
    expect(res.status).toBe(403);
    expect((await firstError(res)).detail).toMatchObject({
      digest: disguised.digest,
      reason: "NO_SIGNATURE",
    });
  });
  it("cosign v3 on a registry without the referrers API (GHCR): an untyped tag-schema entry counts, and the index passes", async () => {
    registry.referrersApi = false;
    const image = pushImage(registry, "enf/ghcr", "v1");
    const ref = fakeBundleReferrer(registry, "enf/ghcr", image.digest, trusted, {
      tagSchema: true,
      descriptorArtifactType: null,
    });
    const res = await app.request("/v2/enf/ghcr/manifests/v1", { headers: { accept: OCI_MANIFEST } });
    expect(res.status).toBe(200);
    expect(decisions().at(-1)).toMatchObject({ outcome: "allow", via: "signature", key: "trusted" });
    // What `cosign verify` reads through pullgate: the tag-schema index, then the referrer.
    const tag = `sha256-${hexOf(image.digest)}`;
    const index = await app.request(`/v2/enf/ghcr/manifests/${tag}`, {
      headers: { accept: "application/vnd.oci.image.index.v1+json" },
    });
    expect(index.status).toBe(200);
    expect(decisions().at(-1)).toMatchObject({ outcome: "allow", via: "signature-artifact" });
    const referrer = await app.request(`/v2/enf/ghcr/manifests/${ref.referrerDigest}`, {
      headers: { accept: OCI_MANIFEST },
    });
    expect(referrer.status).toBe(200);
  });
});

describe("modes", () => {
  it("audit: serves an unsigned image and records would-deny", async () => {
    const image = pushImage(registry, "aud/app", "v1");
    const res = await app.request("/v2/aud/app/manifests/v1");
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(image.bytes)).toBe(true);
    expect(decisions()).toEqual([
      expect.objectContaining({
        mode: "audit",
        outcome: "would-deny",
        reason: "NO_SIGNATURE",
        digest: image.digest,
      }),
    ]);
  });

  it("audit: a lookup error is would-deny too", async () => {
    pushImage(registry, "aud/app", "v1");
    registry.fail(/\.sig$/, 503);
    expect((await app.request("/v2/aud/app/manifests/v1")).status).toBe(200);
    expect(decisions()[0]).toMatchObject({ outcome: "would-deny", reason: "SIGNATURE_UNAVAILABLE" });
  });

  it("off: serves without asking for any signature", async () => {
    pushImage(registry, "off/app", "v1");
    expect((await app.request("/v2/off/app/manifests/v1")).status).toBe(200);
    expect((await app.request("/v2/off/app/manifests/v1", { method: "HEAD" })).status).toBe(200);
    expect(registry.count(SIGNATURE_PATH)).toBe(0);
    expect(registry.requests).toEqual(["GET /v2/off/app/manifests/v1", "HEAD /v2/off/app/manifests/v1"]);
    expect(deps.metrics.signatureLookups.value()).toBe(0);
    expect(decisions()).toEqual([expect.objectContaining({ mode: "off", outcome: "off" })]);
  });

  it("exempt repositories are served and audited as exempt; the rest of the project is enforced", async () => {
    pushImage(registry, "exm/tools/curl", "v1");
    pushImage(registry, "exm/vendor/a/b", "v1");
    pushImage(registry, "exm/tools/a/b", "v1");
    pushImage(registry, "exm/app", "v1");
    expect((await app.request("/v2/exm/tools/curl/manifests/v1")).status).toBe(200);
    expect((await app.request("/v2/exm/vendor/a/b/manifests/v1")).status).toBe(200);
    expect(registry.count(SIGNATURE_PATH)).toBe(0);
    expect(decisions().map((d) => d.outcome)).toEqual(["exempt", "exempt"]);
    expect((await app.request("/v2/exm/tools/a/b/manifests/v1")).status).toBe(403);
    expect((await app.request("/v2/exm/app/manifests/v1")).status).toBe(403);
  });

  it("a project reaches only its upstreams: its exemption does not admit the same names from another upstream", async () => {
    pushImage(hub, "exm/tools/evil", "v1");
    pushImage(hub, "off/app", "v1");
    const res = await app.request("/v2/hub/exm/tools/evil/manifests/v1");
    expect(res.status).toBe(403);
    expect((await firstError(res)).detail).toMatchObject({ reason: "NO_SIGNATURE" });
    // `off` is off on `local` only: on hub the project is under defaults (enforce).
    expect((await app.request("/v2/hub/off/app/manifests/v1")).status).toBe(403);
    expect(decisions().map((d) => d.outcome)).toEqual(["deny", "deny"]);
  });
});

describe("signature lookup errors", () => {
  it("onLookupError deny: 503 UNAVAILABLE with reason SIGNATURE_UNAVAILABLE, and nothing cached", async () => {
    const image = signed("enf/app");
    registry.fail(/\.sig$/, 503, 1);
    const res = await app.request("/v2/enf/app/manifests/v1");
    expect(res.status).toBe(503);
    const err = await firstError(res);
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.detail).toEqual({
      project: "enf",
      repository: "enf/app",
      digest: image.digest,
      reason: "SIGNATURE_UNAVAILABLE",
    });
    expect(decisions()[0]).toMatchObject({ outcome: "deny", reason: "SIGNATURE_UNAVAILABLE" });
    // The upstream recovered: the next pull looks again and is allowed.
    expect((await app.request("/v2/enf/app/manifests/v1")).status).toBe(200);
    expect(deps.metrics.signatureLookups.value()).toBe(2);
  });

  it.each([429, 500, 401])("a %i on the referrers API fails closed too", async (status) => {
    pushImage(registry, "enf/app", "v1");
    registry.fail(/\/referrers\//, status);
    const res = await app.request("/v2/enf/app/manifests/v1");
    expect(res.status).toBe(503);
    expect((await firstError(res)).detail).toMatchObject({ reason: "SIGNATURE_UNAVAILABLE" });
  });

  it("onLookupError allow: 200, audited as allow with reason SIGNATURE_UNAVAILABLE", async () => {
    const image = pushImage(registry, "lax/app", "v1");
    registry.fail(/\.sig$/, 503);
    const res = await app.request("/v2/lax/app/manifests/v1");
    expect(res.status).toBe(200);
    expect(decisions()).toEqual([
      expect.objectContaining({ outcome: "allow", reason: "SIGNATURE_UNAVAILABLE", digest: image.digest }),
    ]);
  });

  it("onLookupError allow does not admit an image that is known to be unsigned", async () => {
    pushImage(registry, "lax/app", "v1");
    expect((await app.request("/v2/lax/app/manifests/v1")).status).toBe(403);
  });
});

describe("HEAD", () => {
  it("gateHead false: HEAD answers 200 for an unsigned image and verifies in the background; the GET hits the cache", async () => {
    const image = pushImage(registry, "enf/app", "v1");
    const head = await app.request("/v2/enf/app/manifests/v1", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("docker-content-digest")).toBe(image.digest);
    await vi.waitFor(() => {
      expect(deps.metrics.signatureLookups.value()).toBe(1);
      expect(deps.enforcer.inflight).toBe(0);
    });
    expect(registry.count(new RegExp(`^GET /v2/enf/app/manifests/${image.digest}$`))).toBe(1);
    const signatureRequests = registry.count(SIGNATURE_PATH);
    const res = await app.request("/v2/enf/app/manifests/v1");
    expect(res.status).toBe(403);
    expect(deps.metrics.signatureLookups.value()).toBe(1);
    expect(registry.count(SIGNATURE_PATH)).toBe(signatureRequests);
    expect(decisions()).toEqual([expect.objectContaining({ outcome: "deny", tier: "memory" })]);
  });

  it("gateHead false: a HEAD whose verdict is cached starts no background work", async () => {
    signed("enf/app");
    expect((await app.request("/v2/enf/app/manifests/v1")).status).toBe(200);
    const before = registry.requests.length;
    expect((await app.request("/v2/enf/app/manifests/v1", { method: "HEAD" })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
    expect(registry.requests.slice(before)).toEqual(["HEAD /v2/enf/app/manifests/v1"]);
  });

  it("gateHead true: HEAD gets the decision a GET would (403 unsigned, 200 signed with no body)", async () => {
    pushImage(registry, "gated/app", "v1");
    const image = signed("gated/app", "v2");
    const denied = await app.request("/v2/gated/app/manifests/v1", { method: "HEAD" });
    expect(denied.status).toBe(403);
    const allowed = await app.request("/v2/gated/app/manifests/v2", { method: "HEAD" });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("docker-content-digest")).toBe(image.digest);
    expect(allowed.headers.get("content-length")).toBe(String(image.size));
    expect(await allowed.text()).toBe("");
    expect(decisions().map((d) => [d.method, d.outcome])).toEqual([
      ["HEAD", "deny"],
      ["HEAD", "allow"],
    ]);
  });
});

describe("strictBlobs", () => {
  it("serves a blob only once a manifest listing it was admitted", async () => {
    const image = signed("strict/app");
    const before = await app.request(`/v2/strict/app/blobs/${image.layerDigest}`);
    expect(before.status).toBe(403);
    const err = await firstError(before);
    expect(err.code).toBe("DENIED");
    expect(err.detail).toMatchObject({ digest: image.layerDigest, reason: "BLOB_NOT_ADMITTED" });
    expect(registry.count(new RegExp(`blobs/${image.layerDigest}`))).toBe(0);
    expect((await app.request("/v2/strict/app/manifests/v1")).status).toBe(200);
    for (const blob of [image.layerDigest, image.configDigest]) {
      const res = await app.request(`/v2/strict/app/blobs/${blob}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  });

  it("does not admit the blobs of a denied manifest", async () => {
    const image = pushImage(registry, "strict/app", "v1");
    expect((await app.request("/v2/strict/app/manifests/v1")).status).toBe(403);
    expect((await app.request(`/v2/strict/app/blobs/${image.layerDigest}`)).status).toBe(403);
    expect(registry.count(new RegExp(`blobs/${image.layerDigest}`))).toBe(0);
  });

  it("projects without strictBlobs stream blobs straight through", async () => {
    const image = pushImage(registry, "enf/app", "v1");
    const res = await app.request(`/v2/enf/app/blobs/${image.layerDigest}`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  // Regression (was a bug): with onLookupError "allow" the manifest of an image whose signatures could not be looked
  // up is served (PullService.getManifest, case "unavailable" → `audit("allow", …); return served;`)
  // but admitBlobsOf is only called in the "allow" case, so under strictBlobs every blob of that
  // image then answers 403 BLOB_NOT_ADMITTED: the pull fails although the policy said "allow".
  it("onLookupError allow + strictBlobs: the blobs of a manifest allowed on a lookup error are served", async () => {
    const image = pushImage(registry, "laxstrict/app", "v1");
    registry.fail(/\.sig$/, 503);
    expect((await app.request("/v2/laxstrict/app/manifests/v1")).status).toBe(200);
    const res = await app.request(`/v2/laxstrict/app/blobs/${image.layerDigest}`);
    expect(res.status).toBe(200);
  });
});

// Regression (was a bug): PolicyRegistry#build reads `this.#config.projects[project]` and `this.#overrides[project]` on
// plain objects, so a project named like an Object.prototype member ("constructor" is a valid
// repository name component) gets `Object` as its config and override: `keysIn` is `Object.keys`
// (a function), `for (const k of keysIn)` throws TypeError and every pull answers 500.
it("a project named 'constructor' is enforced under defaults like any other", async () => {
  signed("constructor/app");
  const res = await app.request("/v2/constructor/app/manifests/v1");
  expect(res.status).toBe(200);
});
