import type { CachedVerdict, CacheHit, CacheTier, VerdictCache } from "../cache/index.ts";
import {
  ALL_MANIFEST_TYPES,
  type Digest,
  isDigest,
  isIndexMediaType,
  type Manifest,
  mediaTypeEssence,
  readManifest,
} from "../oci/index.ts";
import type { EffectivePolicy } from "../policy/index.ts";
import { type PullgateMetrics, SPAN_ATTR, type Span, withSpan } from "../telemetry/index.ts";
import type { RequestContext, Route } from "../upstream/index.ts";
import {
  type DenyReason,
  judgeSignatures,
  mayMeetRequirements,
  type PulledRepository,
  type SignatureEvidence,
  type SignatureReport,
  signatureArtifactClaim,
  type Verdict,
} from "../verify/index.ts";
import { proveSignatureArtifact } from "./artifact-proof.ts";
import { Deadline, DeadlineExceeded } from "./deadline.ts";
import { Semaphore } from "./semaphore.ts";
import { type LookupLimits, lookupSignatures, type SignatureLookup } from "./signature-lookup.ts";
import { SingleFlight } from "./single-flight.ts";

/** A lookup, with the verdict of the early admit when a format's evidence ended it. */
type JudgedLookup = SignatureLookup & { verdict?: Verdict };

import type { VerificationPool } from "./verification-pool.ts";

export type DecisionTier = CacheTier | "verified" | "content";

export type Decision =
  | {
      outcome: "allow";
      via: "signature" | "index" | "signature-artifact";
      tier: DecisionTier;
      key?: string | undefined;
      keyFingerprint?: string | undefined;
      /** Every distinct signer whose signature counted (fresh verdicts). */
      signers?: readonly string[] | undefined;
      indexDigest?: string | undefined;
      signatures?: readonly SignatureReport[];
    }
  | {
      outcome: "deny";
      reason: DenyReason;
      tier: DecisionTier;
      /** For AMBIGUOUS_MANIFEST: what makes it ambiguous. */
      detail?: string;
      signatures?: readonly SignatureReport[];
      /** A cached deny: when it was decided and until when it holds (ms since epoch). */
      cached?: { decidedAt: number; expiresAt: number };
    }
  | {
      outcome: "unavailable";
      detail: string;
      tier: "verified";
      signatures?: readonly SignatureReport[];
      /** keys: a key of the policy could not be fetched (KMS); never admitted, whatever onLookupError says. */
      cause?: "keys";
    };

export interface EnforcerOptions {
  cache: VerdictCache;
  limits: LookupLimits;
  allowTtlSeconds: number;
  denyTtlSeconds: number;
  /** Total deadline of one shared decision (signature lookup or artifact proof). */
  lookupTimeoutMs?: number;
  /** Lookups in flight at once (distinct digests); more wait, within their deadline. */
  maxConcurrentLookups?: number;
  now?: () => number;
  /** Counts the lookups made and the upstream requests they needed. */
  metrics: Pick<
    PullgateMetrics,
    "signatureLookups" | "signatureLookupRequests" | "singleFlightJoins" | "verificationSeconds"
  >;
  /** Worker threads for keyless verification; without it everything is judged in process (unit tests). */
  pool?: VerificationPool | undefined;
}

export interface DecideInput {
  route: Route;
  policy: EffectivePolicy;
  digest: Digest;
  /** The exact manifest bytes being served (hashed to `digest`). */
  bytes: Uint8Array;
  /** The Content-Type they are served with (clients choose their parser from it). */
  contentType: string;
  ctx: RequestContext;
}

export const DEFAULT_LOOKUP_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_CONCURRENT_LOOKUPS = 32;

/**
 * Decides whether a manifest is admitted under a policy. Every decision is made on the manifest as
 * Go clients read it (oci/manifest.ts): an ambiguous manifest is denied whatever signs it. Signature
 * artifacts pass once their content proves nothing in them can run (verify/signature-artifact.ts);
 * every other manifest needs a verdict, from the cache or from one signature lookup per
 * (policy, digest) at a time, bounded by a deadline. Verified indexes admit the children they list.
 * Allows hold wherever the digest is pulled; a deny holds only where its signatures were looked at
 * (upstream and signature repository). "Could not look" is never cached.
 */
export class Enforcer {
  readonly #opts: EnforcerOptions;
  readonly #now: () => number;
  readonly #flights: SingleFlight<Decision>;
  readonly #lookupSlots: Semaphore;
  readonly #timeoutMs: number;

  constructor(opts: EnforcerOptions) {
    this.#opts = opts;
    this.#flights = new SingleFlight<Decision>(() => opts.metrics.singleFlightJoins.inc());
    this.#now = opts.now ?? Date.now;
    this.#timeoutMs = opts.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    this.#lookupSlots = new Semaphore(opts.maxConcurrentLookups ?? DEFAULT_MAX_CONCURRENT_LOOKUPS);
  }

  async decide(input: DecideInput): Promise<Decision> {
    return withSpan("pullgate.decide", decisionAttributes(input), async (span) => {
      const decision = await this.#decide(input);
      recordDecision(span, decision);
      return decision;
    });
  }

  async #decide(input: DecideInput): Promise<Decision> {
    const reading = readManifest(input.bytes, input.contentType);
    if (!reading.ok) return ambiguous(reading.problem);
    const manifest = reading.manifest;
    // The cache read happens inside the flight: a request that missed the cache just before a
    // concurrent verification stored its verdict joins that verification or finds the verdict.
    return this.#flights.run(flightKey(input), async () => {
      const hit = await this.#cached(input);
      if (hit && this.#usable(hit.verdict, manifest, input.contentType)) return fromCache(hit, this.#now());
      return this.#decideFresh(input, manifest, true, Promise.resolve(undefined));
    });
  }

  /**
   * Like decide(), for a digest whose manifest bytes are still on their way (the verification a
   * HEAD starts): the signature lookup does not need them, so it runs alongside the manifest fetch
   * and a cold pull waits for the slower of the two, not for both in a row.
   */
  async decideEarly(
    input: Omit<DecideInput, "bytes" | "contentType"> & {
      manifest: Promise<{ bytes: Uint8Array; contentType: string }>;
    },
  ): Promise<Decision> {
    return this.#flights.run(flightKey(input), async () => {
      const hit = await this.#cached(input);
      if (hit && hit.verdict.via !== "signature-artifact") return fromCache(hit, this.#now());
      const missingKeys = keysUnavailable(input.policy);
      if (missingKeys) return missingKeys;
      const deadline = new Deadline(this.#timeoutMs);
      const lookup = this.#lookup(input, deadline);
      lookup.catch(() => {});
      try {
        const { bytes, contentType } = await deadline.race(input.manifest);
        const reading = readManifest(bytes, contentType);
        if (!reading.ok) return ambiguous(reading.problem);
        return await this.#decideFresh(
          { ...input, bytes, contentType },
          reading.manifest,
          true,
          lookup,
          deadline,
        );
      } finally {
        deadline.clear();
      }
    });
  }

  /** A fresh verification that reads and writes no cache (the admin dry run). */
  async evaluate(input: DecideInput): Promise<Decision> {
    const reading = readManifest(input.bytes, input.contentType);
    if (!reading.ok) return ambiguous(reading.problem);
    return this.#decideFresh(input, reading.manifest, false, Promise.resolve(undefined));
  }

  /** Is this blob listed by a manifest admitted under the policy? (strictBlobs) */
  async isBlobAdmitted(
    policy: EffectivePolicy,
    digest: Digest,
  ): Promise<{ admitted: boolean; tier?: CacheTier }> {
    const hit = await this.#opts.cache.get(policy.fingerprint, `blob:${digest}`);
    return hit?.verdict.outcome === "allow" ? { admitted: true, tier: hit.tier } : { admitted: false };
  }

  /**
   * Drops every cached verdict of `digest` (the dry run found it allowed: a denial cached before it
   * was signed must not outlive that answer).
   */
  forget(digest: Digest): Promise<number> {
    return this.#opts.cache.deleteDigest(digest);
  }

  get inflight(): number {
    return this.#flights.size;
  }

  /** The verdict for this digest under this policy at this place: an allow anywhere, a deny here. */
  async #cached(input: Omit<DecideInput, "bytes" | "contentType">): Promise<CacheHit | undefined> {
    return withSpan("pullgate.cache.lookup", { [SPAN_ATTR.digest]: input.digest }, async (span) => {
      const allow = await this.#opts.cache.get(allowScope(input), input.digest);
      const hit =
        allow?.verdict.outcome === "allow"
          ? allow
          : await this.#opts.cache.get(denyScope(input), input.digest);
      span.setAttribute(SPAN_ATTR.cacheTier, hit?.tier ?? "miss");
      if (hit) span.setAttribute(SPAN_ATTR.outcome, hit.verdict.outcome);
      return hit;
    });
  }

  /** A cached signature-artifact allow holds only while the manifest, served this way, still claims to be one. */
  #usable(verdict: CachedVerdict, manifest: Manifest, contentType: string): boolean {
    if (verdict.via !== "signature-artifact") return true;
    return signatureArtifactClaim(manifest, mediaTypeEssence(contentType)) !== undefined;
  }

  /** True when a verdict for (policy, digest) at this place is cached: a HEAD then needs no background lookup. */
  async hasVerdict(input: Omit<DecideInput, "bytes" | "contentType">): Promise<boolean> {
    return (await this.#cached(input)) !== undefined;
  }

  async #decideFresh(
    input: DecideInput,
    manifest: Manifest,
    store: boolean,
    earlyLookup: Promise<JudgedLookup | undefined>,
    existing?: Deadline,
  ): Promise<Decision> {
    const deadline = existing ?? new Deadline(this.#timeoutMs);
    try {
      const claim = signatureArtifactClaim(manifest, mediaTypeEssence(input.contentType));
      if (claim) {
        const proof = await this.#withSlot(deadline, () =>
          proveSignatureArtifact(input.route, claim, this.#opts.limits, {
            clientAuthorization: input.ctx.clientAuthorization,
            signal: deadline.signal,
          }),
        );
        if (proof.outcome === "proven") {
          if (store) {
            const verdict: CachedVerdict = {
              outcome: "allow",
              via: "signature-artifact",
              decidedAt: this.#now(),
            };
            await this.#opts.cache.set(allowScope(input), input.digest, verdict, this.#opts.allowTtlSeconds);
          }
          return { outcome: "allow", via: "signature-artifact", tier: "verified" };
        }
        if (proof.outcome === "unavailable") {
          return { outcome: "unavailable", detail: `signature artifact: ${proof.detail}`, tier: "verified" };
        }
        // Not proven inert: it is an image like any other and needs a signature of its own.
      }
      const missingKeys = keysUnavailable(input.policy);
      if (missingKeys) return missingKeys;
      const lookup = (await earlyLookup) ?? (await this.#lookup(input, deadline));
      return await this.#judge(input, manifest, store, lookup, deadline);
    } catch (err) {
      if (err instanceof DeadlineExceeded) {
        return {
          outcome: "unavailable",
          detail: `the signature lookup did not finish within ${this.#timeoutMs} ms`,
          tier: "verified",
        };
      }
      throw err;
    } finally {
      if (!existing) deadline.clear();
    }
  }

  async #withSlot<T>(deadline: Deadline, fn: () => Promise<T>): Promise<T> {
    const release = await deadline.race(this.#lookupSlots.acquire(deadline.signal));
    try {
      return await deadline.race(fn());
    } finally {
      release();
    }
  }

  #lookup(input: Omit<DecideInput, "bytes" | "contentType">, deadline: Deadline): Promise<JudgedLookup> {
    const { policy, route, digest } = input;
    // Early admit: a format whose evidence verifies ends the lookup. Its verdict travels with the
    // lookup, so the evidence is judged once (in the pool, for keyless policies).
    let early: { evidence: readonly SignatureEvidence[]; verdict: Verdict } | undefined;
    const enough = async (evidence: readonly SignatureEvidence[]) => {
      // Nothing that could meet the policy alone (no evidence; a `.att` alone; a `.sig` alone when
      // attestations are required): no judgement, no thread hop; all the evidence is judged at the end.
      if (!mayMeetRequirements(evidence, policy.requirements)) return false;
      const verdict = await this.#verdictOf(input, evidence, deadline);
      if (verdict.status !== "verified") return false;
      early ??= { evidence, verdict };
      return true;
    };
    // Shared by every request in the flight: not tied to the first client's connection (its
    // disconnect must not fail the others), but bounded by the flight's own deadline.
    return this.#withSlot(deadline, async () => {
      this.#opts.metrics.signatureLookups.inc();
      const lookup = await lookupSignatures(
        route.client,
        policy.signatureRepository ?? route.name,
        digest,
        this.#opts.limits,
        {
          clientAuthorization: input.ctx.clientAuthorization,
          signal: deadline.signal,
        },
        enough,
        undefined,
        policy.attestations.map((a) => a.predicateType),
      );
      return early?.evidence === lookup.evidence ? { ...lookup, verdict: early.verdict } : lookup;
    });
  }

  /** judgeSignatures for the policy, in the verification pool when there is one (keyless policies). */
  #verdictOf(
    input: Omit<DecideInput, "bytes" | "contentType">,
    evidence: readonly SignatureEvidence[],
    deadline: Deadline,
  ): Promise<Verdict> {
    const judged = {
      digest: input.digest,
      authorities: input.policy.authorities,
      evidence,
      repository: pulledRepository(input),
      requirements: input.policy.requirements,
      now: this.#now(),
    };
    const pool = this.#opts.pool;
    const keyless = judged.authorities.some((a) => a.kind === "keyless");
    const labels = { signer: keyless ? "keyless" : "key", thread: pool && keyless ? "worker" : "in_process" };
    const attributes = {
      [SPAN_ATTR.digest]: input.digest,
      "pullgate.verify.signer": labels.signer,
      "pullgate.verify.thread": labels.thread,
      "pullgate.verify.evidence": evidence.length,
    };
    return withSpan("pullgate.verify", attributes, async (span) => {
      const started = performance.now();
      const v = await (pool
        ? deadline.race(pool.judge({ ...judged, signal: deadline.signal }))
        : Promise.resolve(judgeSignatures(judged)));
      this.#opts.metrics.verificationSeconds.observe(labels, (performance.now() - started) / 1000);
      span.setAttribute(SPAN_ATTR.verifyStatus, v.status);
      if (v.status !== "verified") span.setAttribute(SPAN_ATTR.reason, v.reason);
      return v;
    });
  }

  async #judge(
    input: DecideInput,
    manifest: Manifest,
    store: boolean,
    lookup: JudgedLookup,
    deadline: Deadline,
  ): Promise<Decision> {
    const { digest } = input;
    this.#opts.metrics.signatureLookupRequests.inc(undefined, lookup.requests);
    const verdict = lookup.verdict ?? (await this.#verdictOf(input, lookup.evidence, deadline));
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
        await this.#opts.cache.set(allowScope(input), digest, allow, this.#opts.allowTtlSeconds);
        // A verified index admits the platform manifests it lists, for this policy (any replica).
        for (const child of childDigests(manifest, input.contentType)) {
          const viaIndex: CachedVerdict = { outcome: "allow", via: "index", indexDigest: digest, decidedAt };
          await this.#opts.cache.set(allowScope(input), child, viaIndex, this.#opts.allowTtlSeconds);
        }
      }
      return {
        outcome: "allow",
        via: "signature",
        tier: "verified",
        key: verdict.key,
        keyFingerprint: verdict.keyFingerprint,
        signers: verdict.signers,
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
      const deny: CachedVerdict = {
        outcome: "deny",
        reason: verdict.reason,
        ...(verdict.detail ? { detail: verdict.detail } : {}),
        decidedAt,
      };
      await this.#opts.cache.set(denyScope(input), digest, deny, this.#opts.denyTtlSeconds);
    }
    return {
      outcome: "deny",
      reason: verdict.reason,
      tier: "verified",
      ...(verdict.detail ? { detail: verdict.detail } : {}),
      signatures: verdict.signatures,
    };
  }

  /** Records the config and layer blobs of an admitted manifest, so strictBlobs serves them. */
  async admitBlobsOf(
    policy: EffectivePolicy,
    bytes: Uint8Array,
    contentType: string,
    lifetime: "long" | "short" = "long",
  ): Promise<void> {
    const reading = readManifest(bytes, contentType);
    if (!reading.ok) return; // never admits anything
    const decidedAt = this.#now();
    const ttl = lifetime === "long" ? this.#opts.allowTtlSeconds : this.#opts.denyTtlSeconds;
    for (const blob of blobDigests(reading.manifest)) {
      await this.#opts.cache.set(
        policy.fingerprint,
        `blob:${blob}`,
        { outcome: "allow", via: "signature", decidedAt },
        ttl,
      );
    }
  }
}

/**
 * The cache scope of an allow: the policy, and with matchRepository also the repository it was
 * pulled from (the signature named it; another repository needs its own).
 */
function decisionAttributes(input: DecideInput): Record<string, string> {
  return {
    [SPAN_ATTR.repository]: input.route.name,
    [SPAN_ATTR.upstream]: input.route.upstream.name,
    [SPAN_ATTR.digest]: input.digest,
    [SPAN_ATTR.project]: input.policy.project,
  };
}

function recordDecision(span: Span, decision: Decision): void {
  span.setAttributes({
    [SPAN_ATTR.outcome]: decision.outcome,
    [SPAN_ATTR.cacheTier]: decision.tier,
    ...(decision.outcome === "deny" ? { [SPAN_ATTR.reason]: decision.reason } : {}),
    ...(decision.outcome === "unavailable" ? { [SPAN_ATTR.reason]: "SIGNATURE_UNAVAILABLE" } : {}),
  });
}

function allowScope(input: Omit<DecideInput, "bytes" | "contentType">): string {
  const { policy, route } = input;
  return policy.matchRepository
    ? `${policy.fingerprint}/allow/${route.upstream.name}/${route.name}`
    : policy.fingerprint;
}

function pulledRepository(input: Omit<DecideInput, "bytes" | "contentType">): PulledRepository | undefined {
  return input.policy.matchRepository
    ? { registry: input.route.upstream.registry, name: input.route.name }
    : undefined;
}

function flightKey(input: Omit<DecideInput, "bytes" | "contentType">): string {
  return `${denyScope(input)}:${input.digest}`;
}

/**
 * The cache scope of a deny: the policy plus where it was found, the upstream and the repository
 * whose signatures were looked at. The same bytes unsigned elsewhere must not deny them here. (The
 * digest stays the cache's digest, so dropping a digest's verdicts drops its denials too.)
 */
export function denyScope(input: Omit<DecideInput, "bytes" | "contentType">): string {
  const place = input.policy.signatureRepository ?? input.route.name;
  return `${input.policy.fingerprint}/deny/${input.route.upstream.name}/${place}`;
}

/** A policy with a key that cannot be fetched decides nothing: which keys, and why. */
function keysUnavailable(policy: EffectivePolicy): Decision | undefined {
  if (policy.unavailableKeys.length === 0) return undefined;
  return {
    outcome: "unavailable",
    cause: "keys",
    tier: "verified",
    detail: `key(s) could not be fetched: ${policy.unavailableKeys.join("; ")}`.slice(0, 1000),
  };
}

function ambiguous(problem: string): Decision {
  return { outcome: "deny", reason: "AMBIGUOUS_MANIFEST", tier: "content", detail: problem };
}

function fromCache(hit: CacheHit, now: number): Decision {
  const { verdict: v, tier } = hit;
  if (v.outcome === "allow") {
    return {
      outcome: "allow",
      via: v.via ?? "signature",
      tier,
      key: v.key,
      keyFingerprint: v.keyFingerprint,
      indexDigest: v.indexDigest,
    };
  }
  const reason = (v.reason as DenyReason | undefined) ?? "NO_SIGNATURE";
  const cached = { decidedAt: v.decidedAt, expiresAt: now + hit.ttlMs };
  return v.detail
    ? { outcome: "deny", reason, tier, detail: v.detail, cached }
    : { outcome: "deny", reason, tier, cached };
}

/**
 * The child manifests an index lists: when it is served as an index, or served with a type that is
 * no manifest type and says it is an index (or says nothing) itself. Never for image manifests.
 */
export function childDigests(manifest: Manifest, contentType: string | undefined): Digest[] {
  const served = mediaTypeEssence(contentType);
  const kind = served !== undefined && ALL_MANIFEST_TYPES.includes(served) ? served : manifest.mediaType;
  if (manifest.manifests === undefined || (kind !== undefined && !isIndexMediaType(kind))) return [];
  return manifest.manifests
    .map((d) => d.digest)
    .filter((d): d is Digest => typeof d === "string" && isDigest(d));
}

/** Config and layer digests of an image manifest. */
export function blobDigests(manifest: Manifest): Digest[] {
  const out: Digest[] = [];
  for (const d of [manifest.config, ...(manifest.layers ?? [])]) {
    if (d?.digest !== undefined && isDigest(d.digest)) out.push(d.digest);
  }
  return out;
}
