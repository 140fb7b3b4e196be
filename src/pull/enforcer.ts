import type { CachedVerdict, CacheTier, VerdictCache } from "../cache/index.ts";
import { type Digest, isDigest, MediaType } from "../oci/index.ts";
import type { EffectivePolicy } from "../policy/index.ts";
import type { RequestContext, Route } from "../upstream/index.ts";
import {
  type DenyReason,
  isSignatureArtifactManifest,
  judgeSignatures,
  parseTrustedKey,
  type SignatureReport,
  type TrustedKey,
} from "../verify/index.ts";
import { type LookupLimits, lookupSignatures, type SignatureLookup } from "./signature-lookup.ts";
import { SingleFlight } from "./single-flight.ts";

export type DecisionTier = CacheTier | "verified" | "content";

export type Decision =
  | {
      outcome: "allow";
      via: "signature" | "index" | "signature-artifact";
      tier: DecisionTier;
      key?: string | undefined;
      keyFingerprint?: string | undefined;
      indexDigest?: string | undefined;
      signatures?: readonly SignatureReport[];
    }
  | { outcome: "deny"; reason: DenyReason; tier: DecisionTier; signatures?: readonly SignatureReport[] }
  | { outcome: "unavailable"; detail: string; tier: "verified"; signatures?: readonly SignatureReport[] };

export interface EnforcerOptions {
  cache: VerdictCache;
  limits: LookupLimits;
  allowTtlSeconds: number;
  denyTtlSeconds: number;
  now?: () => number;
}

export interface DecideInput {
  route: Route;
  policy: EffectivePolicy;
  digest: Digest;
  /** The exact manifest bytes being served (hashed to `digest`). */
  bytes: Uint8Array;
  ctx: RequestContext;
}

/**
 * Decides whether a manifest is admitted under a policy: signature artifacts pass by content; every
 * other manifest needs a verdict, from the cache or from one signature lookup per (policy, digest)
 * at a time. Verified indexes admit the children they list. "Could not look" is never cached.
 */
export class Enforcer {
  readonly #opts: EnforcerOptions;
  readonly #now: () => number;
  readonly #flights = new SingleFlight<Decision>();
  /** Parsed keys per policy fingerprint (a policy change makes a new fingerprint). */
  readonly #keys = new Map<string, TrustedKey[]>();
  /** Signature lookups made (tests and the bench count them). */
  lookups = 0;
  /** Upstream requests those lookups made. */
  lookupRequests = 0;

  constructor(opts: EnforcerOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  async decide(input: DecideInput): Promise<Decision> {
    const manifest = parseManifest(input.bytes);
    if (isSignatureArtifactManifest(manifest))
      return { outcome: "allow", via: "signature-artifact", tier: "content" };
    // The cache read happens inside the flight: a request that missed the cache just before a
    // concurrent verification stored its verdict joins that verification or finds the verdict.
    return this.#flights.run(`${input.policy.fingerprint}:${input.digest}`, async () => {
      const hit = await this.#opts.cache.get(input.policy.fingerprint, input.digest);
      if (hit) return fromCache(hit.verdict, hit.tier);
      return this.#verify(input, manifest, true, this.#lookup(input));
    });
  }

  /**
   * Like decide(), for a digest whose manifest bytes are still on their way (the verification a
   * HEAD starts): the signature lookup does not need them, so it runs alongside the manifest fetch
   * and a cold pull waits for the slower of the two, not for both in a row.
   */
  async decideEarly(input: Omit<DecideInput, "bytes"> & { bytes: Promise<Uint8Array> }): Promise<Decision> {
    return this.#flights.run(`${input.policy.fingerprint}:${input.digest}`, async () => {
      const hit = await this.#opts.cache.get(input.policy.fingerprint, input.digest);
      if (hit) return fromCache(hit.verdict, hit.tier);
      const lookup = this.#lookup(input);
      let bytes: Uint8Array;
      try {
        bytes = await input.bytes;
      } catch (err) {
        lookup.catch(() => {});
        throw err;
      }
      const manifest = parseManifest(bytes);
      if (isSignatureArtifactManifest(manifest)) {
        lookup.catch(() => {});
        return { outcome: "allow", via: "signature-artifact", tier: "content" };
      }
      return this.#verify({ ...input, bytes }, manifest, true, lookup);
    });
  }

  /** A fresh verification that reads and writes no cache (the admin dry run). */
  async evaluate(input: DecideInput): Promise<Decision> {
    const manifest = parseManifest(input.bytes);
    if (isSignatureArtifactManifest(manifest))
      return { outcome: "allow", via: "signature-artifact", tier: "content" };
    return this.#verify(input, manifest, false, this.#lookup(input));
  }

  /** Is this blob listed by a manifest admitted under the policy? (strictBlobs) */
  async isBlobAdmitted(
    policy: EffectivePolicy,
    digest: Digest,
  ): Promise<{ admitted: boolean; tier?: CacheTier }> {
    const hit = await this.#opts.cache.get(policy.fingerprint, `blob:${digest}`);
    return hit?.verdict.outcome === "allow" ? { admitted: true, tier: hit.tier } : { admitted: false };
  }

  get inflight(): number {
    return this.#flights.size;
  }

  #lookup(input: Omit<DecideInput, "bytes">): Promise<SignatureLookup> {
    const { policy, route, digest } = input;
    this.lookups++;
    // Shared by every request in the flight: not tied to the first client's connection (its
    // disconnect must not fail the others); undici's own timeouts bound each upstream request.
    return lookupSignatures(
      route.client,
      policy.signatureRepository ?? route.name,
      digest,
      this.#opts.limits,
      {
        clientAuthorization: input.ctx.clientAuthorization,
      },
    );
  }

  async #verify(
    input: DecideInput,
    manifest: unknown,
    store: boolean,
    pending: Promise<SignatureLookup>,
  ): Promise<Decision> {
    const { policy, digest } = input;
    const lookup = await pending;
    this.lookupRequests += lookup.requests;
    const verdict = judgeSignatures({ digest, keys: this.#keysFor(policy), evidence: lookup.evidence });
    const decidedAt = this.#now();
    if (verdict.status === "verified") {
      if (store) {
        const allow: CachedVerdict = {
          outcome: "allow",
          via: "signature",
          key: verdict.key,
          keyFingerprint: verdict.keyFingerprint,
          decidedAt,
        };
        await this.#opts.cache.set(policy.fingerprint, digest, allow, this.#opts.allowTtlSeconds);
        // A verified index admits the platform manifests it lists, for this policy (any replica).
        for (const child of childDigests(manifest)) {
          const viaIndex: CachedVerdict = { outcome: "allow", via: "index", indexDigest: digest, decidedAt };
          await this.#opts.cache.set(policy.fingerprint, child, viaIndex, this.#opts.allowTtlSeconds);
        }
      }
      return {
        outcome: "allow",
        via: "signature",
        tier: "verified",
        key: verdict.key,
        keyFingerprint: verdict.keyFingerprint,
        signatures: verdict.signatures,
      };
    }
    if (lookup.unavailable !== undefined) {
      return {
        outcome: "unavailable",
        detail: lookup.unavailable,
        tier: "verified",
        signatures: verdict.signatures,
      };
    }
    if (store) {
      const deny: CachedVerdict = { outcome: "deny", reason: verdict.reason, decidedAt };
      await this.#opts.cache.set(policy.fingerprint, digest, deny, this.#opts.denyTtlSeconds);
    }
    return { outcome: "deny", reason: verdict.reason, tier: "verified", signatures: verdict.signatures };
  }

  /** Records the config and layer blobs of an admitted manifest, so strictBlobs serves them. */
  async admitBlobsOf(
    policy: EffectivePolicy,
    bytes: Uint8Array,
    lifetime: "long" | "short" = "long",
  ): Promise<void> {
    const decidedAt = this.#now();
    const ttl = lifetime === "long" ? this.#opts.allowTtlSeconds : this.#opts.denyTtlSeconds;
    for (const blob of blobDigests(parseManifest(bytes))) {
      await this.#opts.cache.set(
        policy.fingerprint,
        `blob:${blob}`,
        { outcome: "allow", via: "signature", decidedAt },
        ttl,
      );
    }
  }

  /** True when a verdict for (policy, digest) is cached: a HEAD then needs no background lookup. */
  async hasVerdict(policy: EffectivePolicy, digest: Digest): Promise<boolean> {
    return (await this.#opts.cache.get(policy.fingerprint, digest)) !== undefined;
  }

  #keysFor(policy: EffectivePolicy): TrustedKey[] {
    let keys = this.#keys.get(policy.fingerprint);
    if (!keys) {
      keys = policy.keys.map((k) => parseTrustedKey({ name: k.name, pem: k.pem }));
      if (this.#keys.size > 1000) this.#keys.clear();
      this.#keys.set(policy.fingerprint, keys);
    }
    return keys;
  }
}

function fromCache(v: CachedVerdict, tier: CacheTier): Decision {
  if (v.outcome === "allow") {
    return {
      outcome: "allow",
      via: v.via === "index" ? "index" : "signature",
      tier,
      key: v.key,
      keyFingerprint: v.keyFingerprint,
      indexDigest: v.indexDigest,
    };
  }
  return { outcome: "deny", reason: (v.reason as DenyReason | undefined) ?? "NO_SIGNATURE", tier };
}

function parseManifest(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}

const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList]);

/** The child manifests an index lists (never for image manifests). */
export function childDigests(manifest: unknown): Digest[] {
  const m = manifest as { mediaType?: unknown; manifests?: unknown } | undefined;
  if (!m || !Array.isArray(m.manifests)) return [];
  if (m.mediaType !== undefined && !INDEX_TYPES.has(String(m.mediaType))) return [];
  return m.manifests
    .map((d) => (d as { digest?: unknown })?.digest)
    .filter((d): d is Digest => typeof d === "string" && isDigest(d));
}

/** Config and layer digests of an image manifest. */
export function blobDigests(manifest: unknown): Digest[] {
  const m = manifest as { config?: { digest?: unknown }; layers?: unknown } | undefined;
  const out: Digest[] = [];
  const add = (d: unknown) => {
    if (typeof d === "string" && isDigest(d)) out.push(d);
  };
  add(m?.config?.digest);
  if (Array.isArray(m?.layers)) for (const l of m.layers) add((l as { digest?: unknown })?.digest);
  return out;
}
