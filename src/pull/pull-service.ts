import { createHash } from "node:crypto";
import type { ManifestCache } from "../cache/index.ts";
import {
  ALL_MANIFEST_TYPES,
  computeDigest,
  type Digest,
  digestAlgorithm,
  isDigest,
  isValidMediaType,
  OciError,
  parseTag,
  type Reference,
  referenceToString,
} from "../oci/index.ts";
import type { EffectivePolicy, PolicyRegistry } from "../policy/index.ts";
import type {
  AuditLog,
  AuditOutcome,
  Logger,
  ManifestDecisionRecord,
  PullgateMetrics,
} from "../telemetry/index.ts";
import {
  type BlobResponse,
  header,
  type ListingResponse,
  type RegistryClient,
  type RequestContext,
  type Route,
  UpstreamError,
} from "../upstream/index.ts";
import type { DenyReason } from "../verify/index.ts";
import type { Decision, Enforcer } from "./enforcer.ts";
import { SingleFlight } from "./single-flight.ts";
import { verifyingDigest } from "./verifying-digest.ts";

export interface ServedManifest {
  contentType: string;
  digest: Digest;
  length: number;
  /** The exact bytes hashed to `digest`; undefined for HEAD. */
  bytes: Buffer | undefined;
}

export interface ManifestRequest extends RequestContext {
  route: Route;
  reference: Reference;
  method: "GET" | "HEAD";
  accept: string | undefined;
}

export interface PullServiceOptions {
  manifestMaxBytes: number;
  /** > 0: a tag's digest is remembered this long (requests without their own Authorization only). */
  tagTtlSeconds?: number;
  manifests: ManifestCache;
  metrics?: Pick<
    PullgateMetrics,
    "decisions" | "verdictCacheHits" | "verdictCacheMisses" | "manifestCacheHits"
  >;
  policies: PolicyRegistry;
  enforcer: Enforcer;
  audit: AuditLog;
  logger: Logger;
}

/** What pullgate asks for when it fetches a manifest for itself. */
const ALL_MANIFEST_ACCEPT = ALL_MANIFEST_TYPES.join(", ");

/** How long the anonymous answer of the default upstream's /v2/ is reused for clients' pings. */
const BASE_CHECK_TTL_MS = 30_000;

/** Largest page a client may ask for in tags/list; distribution caps at 1000 by default too. */
const MAX_TAGS_PAGE = 10_000;

/**
 * The pull use cases: the only place that composes upstream + policy + verify + cache. Decides on
 * the digest of the exact bytes it serves, and serves exactly those bytes (one upstream fetch).
 */
export class PullService {
  readonly #opts: PullServiceOptions;
  readonly #baseChecks = new WeakMap<RegistryClient, { at: number; challenge: string | undefined }>();
  readonly #manifestFlights = new SingleFlight<ServedManifest>();
  readonly #tags = new Map<
    string,
    { digest: Digest; contentType: string; length: number; expiresAt: number }
  >();

  constructor(opts: PullServiceOptions) {
    this.#opts = opts;
  }

  /**
   * GET /v2/. Clients that ping first (containers/image, dockerd) only send credentials after the
   * ping answered 401 with a challenge, so: a client that sends Authorization has it checked by the
   * default upstream (its 401 relayed); without Authorization, the ping answers 401 with the
   * upstream's challenge only when pullgate itself cannot get in (no credentials of its own and the
   * upstream refuses anonymous access). An unreachable upstream does not fail an anonymous ping.
   */
  async checkBase(client: RegistryClient | undefined, ctx: RequestContext): Promise<void> {
    if (!client) return;
    if (ctx.clientAuthorization) {
      const r = await client.ping(ctx);
      if (r.status === 401) throw unauthorized(client, r.challenge);
      return;
    }
    if (client.config.credentials) return;
    const now = Date.now();
    let cached = this.#baseChecks.get(client);
    if (!cached || now - cached.at > BASE_CHECK_TTL_MS) {
      const r = await client.ping({ signal: ctx.signal }).catch(() => undefined);
      cached = { at: now, challenge: r?.status === 401 ? (r.challenge ?? "") : undefined };
      this.#baseChecks.set(client, cached);
    }
    if (cached.challenge !== undefined) throw unauthorized(client, cached.challenge || undefined);
  }

  async getManifest(req: ManifestRequest): Promise<ServedManifest> {
    const started = performance.now();
    const { route, reference } = req;
    const ref = referenceToString(reference);
    const ctx = { clientAuthorization: req.clientAuthorization, signal: req.signal };
    const policy = this.#opts.policies.forRepository(route.name, route.upstream.name);
    const enforced = policy.mode !== "off" && !policy.isExempt(route.name);
    if (req.method === "HEAD" && !(enforced && policy.gateHead)) {
      const head = await this.#headManifest(req, ref, ctx);
      // HEAD reveals only a digest: answer it, and have the verdict ready for the GET that follows.
      if (enforced) this.#prefetchVerdict(req, policy, head.digest);
      return head;
    }
    const m = await this.#fetchManifest(req, ref, ctx);
    const audit = (outcome: AuditOutcome, extra: Partial<ManifestDecisionRecord> = {}) => {
      const metrics = this.#opts.metrics;
      if (metrics) {
        metrics.decisions.inc({ outcome });
        if (extra.tier === "memory" || extra.tier === "redis")
          metrics.verdictCacheHits.inc({ tier: extra.tier });
        else if (extra.tier === "verified") metrics.verdictCacheMisses.inc();
      }
      this.#opts.audit.decision({
        project: policy.project,
        repository: route.name,
        upstream: route.upstream.name,
        reference: ref,
        digest: m.digest,
        method: req.method,
        mode: policy.mode,
        outcome,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        ...extra,
      });
    };
    const served = req.method === "HEAD" ? { ...m, bytes: undefined } : m;
    if (policy.mode === "off") {
      audit("off");
      return served;
    }
    if (!enforced) {
      audit("exempt");
      return served;
    }
    const decision = await this.#opts.enforcer.decide({
      route,
      policy,
      digest: m.digest,
      bytes: m.bytes as Buffer,
      contentType: m.contentType,
      ctx,
    });
    switch (decision.outcome) {
      case "allow":
        audit("allow", {
          via: decision.via,
          key: decision.key,
          keyFingerprint: decision.keyFingerprint,
          tier: decision.tier,
        });
        if (policy.strictBlobs)
          await this.#opts.enforcer.admitBlobsOf(policy, m.bytes as Buffer, m.contentType);
        return served;
      case "deny":
        if (policy.mode === "audit") {
          audit("would-deny", { reason: decision.reason, tier: decision.tier, detail: decision.detail });
          return served;
        }
        audit("deny", { reason: decision.reason, tier: decision.tier, detail: decision.detail });
        throw denied(policy.project, route.name, m.digest, decision.reason, decision.detail);
      case "unavailable":
        if (policy.mode === "audit") {
          audit("would-deny", { reason: "SIGNATURE_UNAVAILABLE", tier: decision.tier });
          return served;
        }
        if (policy.onLookupError === "allow") {
          audit("allow", { reason: "SIGNATURE_UNAVAILABLE", tier: decision.tier });
          // Admitted on an error: its blobs are admitted only for as long as a denial would be cached.
          if (policy.strictBlobs)
            await this.#opts.enforcer.admitBlobsOf(policy, m.bytes as Buffer, m.contentType, "short");
          return served;
        }
        audit("deny", { reason: "SIGNATURE_UNAVAILABLE", tier: decision.tier });
        this.#opts.logger.log("warn", "signature lookup failed", {
          upstream: route.upstream.name,
          detail: decision.detail,
        });
        throw signatureUnavailable(policy.project, route.name, m.digest);
      default: {
        const never: never = decision;
        return never;
      }
    }
  }

  /**
   * The admin dry run: the decision pullgate would make for a reference, with the signatures it
   * considered, from a fresh lookup (no cache read or write).
   */
  async dryRun(req: ManifestRequest): Promise<{
    manifest: ServedManifest;
    policy: EffectivePolicy;
    decision: Decision | undefined;
    outcome: string;
  }> {
    const ctx = { clientAuthorization: req.clientAuthorization, signal: req.signal };
    const m = await this.#fetchManifest(
      { ...req, method: "GET", accept: req.accept ?? ALL_MANIFEST_ACCEPT },
      referenceToString(req.reference),
      ctx,
    );
    const policy = this.#opts.policies.forRepository(req.route.name, req.route.upstream.name);
    if (policy.mode === "off") return { manifest: m, policy, decision: undefined, outcome: "off" };
    if (policy.isExempt(req.route.name))
      return { manifest: m, policy, decision: undefined, outcome: "exempt" };
    const decision = await this.#opts.enforcer.evaluate({
      route: req.route,
      policy,
      digest: m.digest,
      bytes: m.bytes as Buffer,
      contentType: m.contentType,
      ctx,
    });
    const outcome =
      decision.outcome === "allow"
        ? "allow"
        : policy.mode === "audit"
          ? "would-deny"
          : decision.outcome === "unavailable" && policy.onLookupError === "allow"
            ? "allow"
            : "deny";
    return { manifest: m, policy, decision, outcome };
  }

  /** Verifies a digest in the background after a HEAD, so the GET that follows finds its verdict. */
  #prefetchVerdict(req: ManifestRequest, policy: EffectivePolicy, digest: Digest): void {
    const task = async () => {
      const place = {
        route: req.route,
        policy,
        digest,
        ctx: { clientAuthorization: req.clientAuthorization },
      };
      if (await this.#opts.enforcer.hasVerdict(place)) return;
      // Not tied to the HEAD's connection: the client hangs up as soon as it has the headers.
      const ctx = { clientAuthorization: req.clientAuthorization, signal: AbortSignal.timeout(60_000) };
      const manifest = this.#fetchManifest(
        { ...req, ...ctx, reference: { kind: "digest", digest }, method: "GET", accept: ALL_MANIFEST_ACCEPT },
        digest,
        ctx,
      ).then((m) => ({ bytes: m.bytes as Buffer, contentType: m.contentType }));
      await this.#opts.enforcer.decideEarly({ ...place, ctx, manifest });
    };
    task().catch((err: unknown) => {
      this.#opts.logger.log("info", "background verification failed", {
        repository: req.route.name,
        digest,
        code: (err as { code?: string }).code ?? "error",
      });
    });
  }

  async #headManifest(req: ManifestRequest, ref: string, ctx: RequestContext): Promise<ServedManifest> {
    const cached = this.#cachedManifest(req, ctx);
    if (cached) return { ...cached, bytes: undefined };
    const known = this.#knownTag(req, ctx);
    if (known)
      return { contentType: known.contentType, digest: known.digest, length: known.length, bytes: undefined };
    const { route, reference } = req;
    const head = await route.client.getManifest(route.name, ref, {
      ...ctx,
      method: "HEAD",
      accept: req.accept,
      maxBytes: this.#opts.manifestMaxBytes,
    });
    // A HEAD answer is usable only when the upstream told us everything a GET would have.
    if (head.contentType && head.length !== undefined && head.claimedDigest && isDigest(head.claimedDigest)) {
      if (reference.kind === "digest" && head.claimedDigest !== reference.digest) {
        throw digestMismatch(route, reference.digest);
      }
      if (head.length > this.#opts.manifestMaxBytes) throw tooLarge(route, this.#opts.manifestMaxBytes);
      const served = {
        contentType: head.contentType,
        digest: head.claimedDigest,
        length: head.length,
        bytes: undefined,
      };
      this.#rememberTag(req, ctx, served);
      return served;
    }
    const full = await this.#fetchManifest(req, ref, ctx);
    return { ...full, bytes: undefined };
  }

  /**
   * A manifest by digest from the in-process cache, when that cannot leak anything: the request
   * carries no Authorization of its own (so pullgate's own access applies, as it would upstream),
   * the entry is for the same upstream and repository, and the client accepts its media type.
   */
  #cachedManifest(req: ManifestRequest, ctx: RequestContext): ServedManifest | undefined {
    const { route, reference } = req;
    if (reference.kind !== "digest" || ctx.clientAuthorization) return undefined;
    const hit = this.#opts.manifests.get(route.upstream.name, route.name, reference.digest);
    if (!hit || !accepts(req.accept, hit.contentType)) return undefined;
    this.#opts.metrics?.manifestCacheHits.inc();
    return {
      contentType: hit.contentType,
      digest: reference.digest,
      length: hit.bytes.length,
      bytes: hit.bytes,
    };
  }

  #tagKey(req: ManifestRequest, ctx: RequestContext): string | undefined {
    if (!this.#opts.tagTtlSeconds || req.reference.kind !== "tag" || ctx.clientAuthorization)
      return undefined;
    // The client's Accept (up to node's header limit) enters the key only as a short hash: 10 000
    // entries stay a few megabytes whatever clients send.
    const accept = createHash("sha256")
      .update(req.accept ?? "")
      .digest("base64url")
      .slice(0, 22);
    return `${req.route.upstream.name}\u0000${req.route.name}\u0000${req.reference.tag}\u0000${accept}`;
  }

  #rememberTag(req: ManifestRequest, ctx: RequestContext, m: ServedManifest): void {
    const key = this.#tagKey(req, ctx);
    if (!key) return;
    if (this.#tags.size >= 10_000) this.#tags.delete(this.#tags.keys().next().value as string);
    const expiresAt = Date.now() + (this.#opts.tagTtlSeconds ?? 0) * 1000;
    this.#tags.set(key, { digest: m.digest, contentType: m.contentType, length: m.length, expiresAt });
  }

  #knownTag(req: ManifestRequest, ctx: RequestContext) {
    const key = this.#tagKey(req, ctx);
    const hit = key ? this.#tags.get(key) : undefined;
    if (!hit) return undefined;
    if (hit.expiresAt <= Date.now()) {
      this.#tags.delete(key as string);
      return undefined;
    }
    return hit;
  }

  async #fetchManifest(req: ManifestRequest, ref: string, ctx: RequestContext): Promise<ServedManifest> {
    const cached = this.#cachedManifest(req, ctx);
    if (cached) return cached;
    const known = this.#knownTag(req, ctx);
    if (known) {
      const byDigest: ManifestRequest = { ...req, reference: { kind: "digest", digest: known.digest } };
      return this.#fetchManifest(byDigest, known.digest, ctx);
    }
    const { route, reference } = req;
    if (reference.kind === "digest" && !ctx.clientAuthorization) {
      // A herd of first pulls of one digest makes one upstream fetch, also when it joins the fetch a
      // HEAD's background verification started with another Accept list (a digest names one set of
      // bytes; a client that does not accept their type gets its own upstream answer). Shared, so
      // not tied to one client's connection; undici's timeouts bound it.
      const key = `${route.upstream.name}\u0000${route.name}\u0000${reference.digest}`;
      const shared = await this.#manifestFlights.run(key, () => this.#fetchManifestUpstream(req, ref, {}));
      if (!req.accept || accepts(req.accept, shared.contentType)) return shared;
      return this.#fetchManifestUpstream(req, ref, {});
    }
    return this.#fetchManifestUpstream(req, ref, ctx);
  }

  async #fetchManifestUpstream(
    req: ManifestRequest,
    ref: string,
    ctx: RequestContext,
  ): Promise<ServedManifest> {
    const { route, reference } = req;
    const res = await route.client.getManifest(route.name, ref, {
      ...ctx,
      method: "GET",
      accept: req.accept,
      maxBytes: this.#opts.manifestMaxBytes,
    });
    const bytes = res.bytes as Buffer;
    const algorithm = reference.kind === "digest" ? digestAlgorithm(reference.digest) : "sha256";
    const digest = computeDigest(bytes, algorithm);
    if (reference.kind === "digest" && digest !== reference.digest)
      throw digestMismatch(route, reference.digest);
    // A tag answer whose claimed digest disagrees with its bytes is corrupt or tampered: never serve it.
    if (res.claimedDigest?.startsWith(`${algorithm}:`) && res.claimedDigest !== digest) {
      throw digestMismatch(route, res.claimedDigest);
    }
    if (!res.contentType) {
      throw new UpstreamError(
        "BAD_RESPONSE",
        route.upstream.name,
        "upstream sent a manifest without Content-Type",
      );
    }
    const served = { contentType: res.contentType, digest, length: bytes.length, bytes };
    if (!ctx.clientAuthorization) {
      this.#opts.manifests.set(route.upstream.name, route.name, digest, {
        bytes,
        contentType: res.contentType,
      });
    }
    this.#rememberTag(req, ctx, served);
    return served;
  }

  async getBlob(
    req: RequestContext & { route: Route; digest: Digest; method: "GET" | "HEAD"; range: string | undefined },
  ): Promise<BlobResponse & { verified: boolean }> {
    const policy = this.#opts.policies.forRepository(req.route.name, req.route.upstream.name);
    if (policy.strictBlobs && policy.mode !== "off" && !policy.isExempt(req.route.name)) {
      const { admitted } = await this.#opts.enforcer.isBlobAdmitted(policy, req.digest);
      if (!admitted) {
        if (policy.mode === "enforce") throw blobNotAdmitted(policy.project, req.route.name, req.digest);
        this.#opts.logger.log("info", "blob would be denied", {
          project: policy.project,
          digest: req.digest,
        });
      }
    }
    const res = await req.route.client.getBlob(req.route.name, req.digest, req);
    // A whole blob is hashed as it streams and cut off before its end if it does not match its
    // digest: the client never receives a complete wrong blob, and only then is it labelled.
    if (res.status === 200 && res.body && req.range === undefined) {
      return { ...res, body: verifyingDigest(res.body, req.digest), verified: true };
    }
    return { ...res, verified: false };
  }

  /** tags/list with n/last validated, and a Link header that points back at pullgate. */
  async listTags(
    req: RequestContext & { route: Route; n: string | undefined; last: string | undefined },
  ): Promise<ListingResponse & { link: string | undefined }> {
    const query = new URLSearchParams();
    if (req.n !== undefined) query.set("n", String(parsePageSize(req.n)));
    if (req.last !== undefined) query.set("last", parseTag(req.last));
    const qs = query.size > 0 ? `?${query}` : "";
    const res = await req.route.client.listTags(req.route.name, qs, req);
    return { ...res, link: rewriteTagsLink(header(res.headers, "link"), req.route) };
  }

  async getReferrers(
    req: RequestContext & { route: Route; digest: Digest; artifactType: string | undefined },
  ): Promise<ListingResponse> {
    let qs = "";
    if (req.artifactType !== undefined) {
      if (!isValidMediaType(req.artifactType)) {
        throw new OciError("UNSUPPORTED", "invalid artifactType", { status: 400 });
      }
      qs = `?artifactType=${encodeURIComponent(req.artifactType)}`;
    }
    return req.route.client.getReferrers(req.route.name, req.digest, qs, req);
  }
}

function parsePageSize(n: string): number {
  if (!/^\d{1,6}$/.test(n) || Number(n) > MAX_TAGS_PAGE) {
    throw new OciError("PAGINATION_NUMBER_INVALID", `n must be an integer from 0 to ${MAX_TAGS_PAGE}`);
  }
  return Number(n);
}

/**
 * The upstream's `Link: </v2/<upstream name>/tags/list?n=..&last=..>; rel="next"` rewritten to
 * pullgate's own path for the client's name (keeping ?ns=). Only n and last are carried over.
 */
export function rewriteTagsLink(link: string | undefined, route: Route): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
  if (!m) return undefined;
  let target: URL;
  try {
    target = new URL(m[1] as string, "http://upstream.invalid");
  } catch {
    return undefined;
  }
  const query = new URLSearchParams();
  const n = target.searchParams.get("n");
  const last = target.searchParams.get("last");
  if (n !== null && /^\d{1,6}$/.test(n) && Number(n) <= MAX_TAGS_PAGE) query.set("n", n);
  if (last !== null) {
    try {
      query.set("last", parseTag(last));
    } catch {
      return undefined;
    }
  }
  if (route.ns !== undefined) query.set("ns", route.ns);
  const qs = query.size > 0 ? `?${query}` : "";
  return `</v2/${route.clientName}/tags/list${qs}>; rel="next"`;
}

/** Does an Accept header admit `contentType`? A missing header admits nothing (registries differ). */
export function accepts(accept: string | undefined, contentType: string): boolean {
  if (!accept) return false;
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  const major = type.split("/")[0];
  for (const part of accept.split(",")) {
    const t = part.split(";")[0]?.trim().toLowerCase();
    if (t === type || t === "*/*" || t === `${major}/*`) return true;
  }
  return false;
}

function denied(
  project: string,
  repository: string,
  digest: Digest,
  reason: DenyReason,
  detail: string | undefined,
): OciError {
  const image = `${repository}@${digest}`;
  const why: Record<DenyReason, string> = {
    NO_SIGNATURE: `${image} has no signature`,
    UNTRUSTED_SIGNATURE: `${image} has signatures, but none verifies with a key the project trusts`,
    DIGEST_MISMATCH: `${image} carries a valid signature by a trusted key, but for a different digest`,
    REPOSITORY_MISMATCH: `${image} carries a valid signature by a trusted key for this digest, but naming another repository (the project requires matchRepository)`,
    AMBIGUOUS_MANIFEST: `${image} is ambiguous JSON that container clients could read differently from pullgate (${detail ?? "ambiguous"}); it is refused whatever signs it`,
  };
  return new OciError("DENIED", `project "${project}" admits only signed images: ${why[reason]}`, {
    detail: { project, repository, digest, reason },
  });
}

function blobNotAdmitted(project: string, repository: string, digest: Digest): OciError {
  return new OciError(
    "DENIED",
    `project "${project}" serves only blobs of images it admitted: ${repository} blob ${digest} is not listed by an admitted manifest (pull the image's manifest through pullgate first)`,
    { detail: { project, repository, digest, reason: "BLOB_NOT_ADMITTED" } },
  );
}

function signatureUnavailable(project: string, repository: string, digest: Digest): OciError {
  return new OciError(
    "UNAVAILABLE",
    `project "${project}" admits only signed images, and the signatures of ${repository}@${digest} could not be looked up (upstream error); try again`,
    { detail: { project, repository, digest, reason: "SIGNATURE_UNAVAILABLE" } },
  );
}

function unauthorized(client: RegistryClient, challenge: string | undefined): UpstreamError {
  return new UpstreamError("STATUS", client.config.name, "upstream requires authentication", {
    status: 401,
    ...(challenge ? { challenge } : {}),
  });
}

function digestMismatch(route: Route, digest: string): UpstreamError {
  return new UpstreamError(
    "DIGEST_MISMATCH",
    route.upstream.name,
    `upstream served a manifest whose content does not match ${digest}`,
  );
}

function tooLarge(route: Route, max: number): UpstreamError {
  return new UpstreamError("TOO_LARGE", route.upstream.name, `manifest is larger than ${max} bytes`);
}
