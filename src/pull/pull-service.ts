import type { Readable } from "node:stream";
import type { ManifestCache } from "../cache/index.ts";
import {
  ALL_MANIFEST_TYPES,
  type Digest,
  type ImageReference,
  isValidMediaType,
  OciError,
  parseImageReference,
  parseTag,
  type Reference,
  referenceToString,
} from "../oci/index.ts";
import type { EffectivePolicy, PolicyRegistry } from "../policy/index.ts";
import {
  type AuditLog,
  type AuditOutcome,
  activeSpan,
  type Logger,
  type ManifestDecisionRecord,
  type PullgateMetrics,
  SPAN_ATTR,
  withSpan,
} from "../telemetry/index.ts";
import { projectLabel } from "../telemetry/pullgate-metrics.ts";
import {
  type Headers,
  header,
  type RegistryClient,
  type Route,
  UpstreamError,
  type UpstreamRouter,
  upstreamToOciError,
} from "../upstream/index.ts";
import type { Decision, Enforcer } from "./enforcer.ts";
import { ManifestSource } from "./manifest-source.ts";
import type { PullTarget } from "./pull-target.ts";
import type { ManifestRequest, ServedManifest } from "./pull-types.ts";
import { Readiness, type ReadinessOptions, type ReadinessResult } from "./readiness.ts";
import { blobNotAdmitted, denied, signatureUnavailable } from "./refusals.ts";
import { parsePageSize, rewriteTagsLink } from "./tag-listing.ts";
import { verifyingDigest } from "./verifying-digest.ts";

/** What the client sent besides the path: its own Authorization (forwarded when pullgate does not authenticate clients) and its connection's signal. */
export interface ClientContext {
  clientAuthorization?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface ManifestPull extends ClientContext {
  target: PullTarget;
  reference: Reference;
  method: "GET" | "HEAD";
  accept: string | undefined;
}

/** An upstream answer to relay: status, the upstream's headers (first value of each), and the body. */
export interface RelayedBlob {
  status: number;
  headers: Readonly<Record<string, string>>;
  /** undefined for HEAD and for a passed-through redirect. */
  body: Readable | undefined;
  /** true: the body is checked against the digest as it streams (cut before its end if it does not match). */
  verified: boolean;
}

export interface RelayedListing {
  headers: Readonly<Record<string, string>>;
  bytes: Buffer;
}

export interface PullServiceOptions {
  router: UpstreamRouter;
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
  /**
   * Clients authenticate to pullgate (clientAuth): their Authorization is never forwarded, the base
   * check does not ask the upstream, and an upstream 401 means pullgate's own login does not reach.
   */
  clientsAuthenticate?: boolean;
  readiness?: ReadinessOptions;
  /** The proxy's own host:port names: a dry-run reference may name pullgate itself as its registry. */
  ownHosts?: () => readonly string[];
}

/** What pullgate asks for when it fetches a manifest for itself. */
const ALL_MANIFEST_ACCEPT = ALL_MANIFEST_TYPES.join(", ");

/** How long the anonymous answer of the default upstream's /v2/ is reused for clients' pings. */
const BASE_CHECK_TTL_MS = 30_000;

/**
 * The pull use cases, and the only door to the upstreams: http/ and admin/ hand in what the client
 * sent and get back bytes, a stream to relay, or an OciError (upstream failures are mapped before
 * they leave). The only place that composes upstream + policy + verify + cache. Decides on the
 * digest of the exact bytes it serves, and serves exactly those bytes (one upstream fetch).
 */
export class PullService {
  readonly #opts: PullServiceOptions;
  readonly #router: UpstreamRouter;
  readonly #routes = new WeakMap<PullTarget, Route>();
  readonly #manifests: ManifestSource;
  readonly #readiness: Readiness;
  readonly #baseChecks = new WeakMap<RegistryClient, { at: number; challenge: string | undefined }>();

  constructor(opts: PullServiceOptions) {
    this.#opts = opts;
    this.#router = opts.router;
    this.#manifests = new ManifestSource({
      maxBytes: opts.manifestMaxBytes,
      tagTtlSeconds: opts.tagTtlSeconds,
      manifests: opts.manifests,
      metrics: opts.metrics,
    });
    this.#readiness = new Readiness(opts.router.defaultClient ?? opts.router.clients[0], opts.readiness);
  }

  /** The target of a /v2 request: `name` (already a valid repository name) and the raw `?ns=`. */
  resolve(name: string, ns: string | undefined): PullTarget {
    return this.#target(this.#router.route(name, ns));
  }

  /**
   * The admin dry run's reference ("registry/proj/app:v1", "proj/app@sha256:…"): routed by its
   * registry, or on the upstream called `upstream`.
   */
  resolveImage(reference: string, upstream?: string): { target: PullTarget; reference: Reference } {
    const ref: ImageReference = parseImageReference(reference);
    // The reference a user just pulled through pullgate (`127.0.0.1:5050/proj/app:v1`) names pullgate
    // as its registry: that is the proxy's own routing, as for a client without ?ns=.
    const registry =
      ref.registry !== undefined && this.#opts.ownHosts?.().includes(ref.registry) ? undefined : ref.registry;
    const route =
      upstream === undefined
        ? this.#router.route(ref.name, registry)
        : this.#router.routeVia(upstream, ref.name);
    return { target: this.#target(route), reference: ref.reference };
  }

  /** Readiness: the default upstream answers /v2/ (cached briefly). */
  ready(): Promise<ReadinessResult> {
    return this.#readiness.check();
  }

  /**
   * GET /v2/. Clients that ping first (containers/image, dockerd) only send credentials after the
   * ping answered 401 with a challenge, so: a client that sends Authorization has it checked by the
   * default upstream (its 401 relayed); without Authorization, the ping answers 401 with the
   * upstream's challenge only when pullgate itself cannot get in (no credentials of its own and the
   * upstream refuses anonymous access). An unreachable upstream does not fail an anonymous ping.
   * With client authentication the client only asks whether it may talk to pullgate: pullgate's own
   * upstream access is not its business (and an upstream challenge would send it to the wrong realm).
   */
  async checkBase(ctx: ClientContext): Promise<void> {
    const client = this.#router.defaultClient;
    if (!client || this.#opts.clientsAuthenticate) return;
    try {
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
    } catch (err) {
      throw this.#clientError(err, "NAME_UNKNOWN", undefined);
    }
  }

  async getManifest(pull: ManifestPull): Promise<ServedManifest> {
    const req = this.#manifestRequest(pull);
    const attributes = {
      [SPAN_ATTR.repository]: pull.target.repository,
      [SPAN_ATTR.upstream]: pull.target.upstream,
    };
    return withSpan("pullgate.manifest", attributes, async () => {
      try {
        return await this.#getManifest(req);
      } catch (err) {
        throw this.#clientError(err, "MANIFEST_UNKNOWN", pull.target);
      }
    });
  }

  /**
   * The admin dry run: the decision pullgate would make for a reference, with the signatures it
   * considered, from a fresh lookup (no cache read or write).
   */
  async dryRun(pull: Omit<ManifestPull, "method" | "accept">): Promise<{
    manifest: ServedManifest;
    policy: EffectivePolicy;
    decision: Decision | undefined;
    outcome: string;
  }> {
    const req = this.#manifestRequest({ ...pull, method: "GET", accept: ALL_MANIFEST_ACCEPT });
    try {
      return await this.#dryRun(req);
    } catch (err) {
      // The admin is authenticated to pullgate: an upstream 401 is pullgate's own access failing.
      throw this.#clientError(err, "MANIFEST_UNKNOWN", pull.target, true);
    }
  }

  async getBlob(
    pull: ClientContext & {
      target: PullTarget;
      digest: Digest;
      method: "GET" | "HEAD";
      range: string | undefined;
    },
  ): Promise<RelayedBlob> {
    const route = this.#route(pull.target);
    try {
      const policy = this.#opts.policies.forRepository(route.name, route.upstream.name);
      if (policy.strictBlobs && policy.mode !== "off" && !policy.isExempt(route.name)) {
        const { admitted } = await this.#opts.enforcer.isBlobAdmitted(policy, pull.digest);
        if (!admitted) {
          if (policy.mode === "enforce") throw blobNotAdmitted(policy.project, route.name, pull.digest);
          this.#opts.logger.log("info", "blob would be denied", {
            project: policy.project,
            digest: pull.digest,
          });
        }
      }
      const res = await route.client.getBlob(route.name, pull.digest, pull);
      const headers = firstValues(res.headers);
      // A whole blob is hashed as it streams and cut off before its end if it does not match its
      // digest: the client never receives a complete wrong blob, and only then is it labelled.
      if (res.status === 200 && res.body && pull.range === undefined) {
        return { status: res.status, headers, body: verifyingDigest(res.body, pull.digest), verified: true };
      }
      return { status: res.status, headers, body: res.body ?? undefined, verified: false };
    } catch (err) {
      throw this.#clientError(err, "BLOB_UNKNOWN", pull.target);
    }
  }

  /** tags/list with n/last validated, and a Link header that points back at pullgate. */
  async listTags(
    pull: ClientContext & { target: PullTarget; n: string | undefined; last: string | undefined },
  ): Promise<RelayedListing & { link: string | undefined }> {
    const route = this.#route(pull.target);
    const query = new URLSearchParams();
    if (pull.n !== undefined) query.set("n", String(parsePageSize(pull.n)));
    if (pull.last !== undefined) query.set("last", parseTag(pull.last));
    const qs = query.size > 0 ? `?${query}` : "";
    try {
      const res = await route.client.listTags(route.name, qs, pull);
      const link = rewriteTagsLink(header(res.headers, "link"), pull.target);
      return { headers: firstValues(res.headers), bytes: res.bytes, link };
    } catch (err) {
      throw this.#clientError(err, "NAME_UNKNOWN", pull.target);
    }
  }

  async getReferrers(
    pull: ClientContext & { target: PullTarget; digest: Digest; artifactType: string | undefined },
  ): Promise<RelayedListing> {
    const route = this.#route(pull.target);
    let qs = "";
    if (pull.artifactType !== undefined) {
      if (!isValidMediaType(pull.artifactType)) {
        throw new OciError("UNSUPPORTED", "invalid artifactType", { status: 400 });
      }
      qs = `?artifactType=${encodeURIComponent(pull.artifactType)}`;
    }
    try {
      const res = await route.client.getReferrers(route.name, pull.digest, qs, pull);
      return { headers: firstValues(res.headers), bytes: res.bytes };
    } catch (err) {
      throw this.#clientError(err, "NAME_UNKNOWN", pull.target);
    }
  }

  async #getManifest(req: ManifestRequest): Promise<ServedManifest> {
    const started = performance.now();
    const { route, reference } = req;
    const ref = referenceToString(reference);
    const ctx = { clientAuthorization: req.clientAuthorization, signal: req.signal };
    const policy = this.#opts.policies.forRepository(route.name, route.upstream.name);
    activeSpan()?.setAttribute(SPAN_ATTR.project, policy.project);
    const enforced = policy.mode !== "off" && !policy.isExempt(route.name);
    if (req.method === "HEAD" && !(enforced && policy.gateHead)) {
      const head = await this.#manifests.head(req, ref, ctx);
      activeSpan()?.setAttribute(SPAN_ATTR.digest, head.digest);
      // HEAD reveals only a digest: answer it, and have the verdict ready for the GET that follows.
      if (enforced) this.#prefetchVerdict(req, policy, head.digest);
      return head;
    }
    const m = await this.#manifests.fetch(req, ref, ctx);
    const record = (outcome: AuditOutcome, extra: Partial<ManifestDecisionRecord> = {}) =>
      this.#record(req, policy, m.digest, started, outcome, extra);
    const served = req.method === "HEAD" ? { ...m, bytes: undefined } : m;
    if (policy.mode === "off") {
      record("off");
      return served;
    }
    if (!enforced) {
      record("exempt");
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
    await this.#enforce(decision, req, policy, m, record);
    return served;
  }

  /** Acts on a decision under the policy's mode: returns when the manifest is served, throws the refusal otherwise. */
  async #enforce(
    decision: Decision,
    req: ManifestRequest,
    policy: EffectivePolicy,
    m: ServedManifest,
    record: (outcome: AuditOutcome, extra?: Partial<ManifestDecisionRecord>) => void,
  ): Promise<void> {
    const { route } = req;
    switch (decision.outcome) {
      case "allow":
        record("allow", {
          via: decision.via,
          key: decision.key,
          keyFingerprint: decision.keyFingerprint,
          tier: decision.tier,
        });
        if (policy.strictBlobs)
          await this.#opts.enforcer.admitBlobsOf(policy, m.bytes as Buffer, m.contentType);
        return;
      case "deny":
        if (policy.mode === "audit") {
          record("would-deny", { reason: decision.reason, tier: decision.tier, detail: decision.detail });
          return;
        }
        record("deny", {
          reason: decision.reason,
          tier: decision.tier,
          detail: decision.detail,
          ...(decision.cached ? { cachedUntil: new Date(decision.cached.expiresAt).toISOString() } : {}),
        });
        throw denied(policy.project, route.name, m.digest, decision.reason, decision.detail, decision.cached);
      case "unavailable":
        if (policy.mode === "audit") {
          record("would-deny", { reason: "SIGNATURE_UNAVAILABLE", tier: decision.tier });
          return;
        }
        if (policy.onLookupError === "allow" && decision.cause !== "keys") {
          record("allow", { reason: "SIGNATURE_UNAVAILABLE", tier: decision.tier });
          // Admitted on an error: its blobs are admitted only for as long as a denial would be cached.
          if (policy.strictBlobs)
            await this.#opts.enforcer.admitBlobsOf(policy, m.bytes as Buffer, m.contentType, "short");
          return;
        }
        record("deny", { reason: "SIGNATURE_UNAVAILABLE", tier: decision.tier, detail: decision.detail });
        this.#opts.logger.log(
          "warn",
          decision.cause === "keys" ? "policy keys unavailable" : "signature lookup failed",
          {
            upstream: route.upstream.name,
            detail: decision.detail,
          },
        );
        throw signatureUnavailable(
          policy.project,
          route.name,
          m.digest,
          decision.cause === "keys" ? decision.detail : undefined,
        );
      default: {
        const never: never = decision;
        return never;
      }
    }
  }

  /** One decision: counted in the metrics and written to the audit log. */
  #record(
    req: ManifestRequest,
    policy: EffectivePolicy,
    digest: Digest,
    started: number,
    outcome: AuditOutcome,
    extra: Partial<ManifestDecisionRecord>,
  ): void {
    activeSpan()?.setAttributes({
      [SPAN_ATTR.digest]: digest,
      [SPAN_ATTR.outcome]: outcome,
      ...(extra.reason ? { [SPAN_ATTR.reason]: extra.reason } : {}),
      ...(extra.tier ? { [SPAN_ATTR.cacheTier]: extra.tier } : {}),
    });
    const metrics = this.#opts.metrics;
    if (metrics) {
      metrics.decisions.inc({ project: projectLabel(policy), outcome, reason: extra.reason ?? "none" });
      if (extra.tier === "memory" || extra.tier === "redis")
        metrics.verdictCacheHits.inc({ tier: extra.tier });
      else if (extra.tier === "verified") metrics.verdictCacheMisses.inc();
    }
    this.#opts.audit.decision({
      project: policy.project,
      repository: req.route.name,
      upstream: req.route.upstream.name,
      reference: referenceToString(req.reference),
      digest,
      method: req.method,
      mode: policy.mode,
      outcome,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      ...extra,
    });
  }

  async #dryRun(req: ManifestRequest) {
    const ctx = { clientAuthorization: req.clientAuthorization, signal: req.signal };
    const m = await this.#manifests.fetch(req, referenceToString(req.reference), ctx);
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
          : decision.outcome === "unavailable" &&
              policy.onLookupError === "allow" &&
              decision.cause !== "keys"
            ? "allow"
            : "deny";
    // An image signed after it was denied: its cached denial must not outlive this answer.
    if (decision.outcome === "allow") await this.#opts.enforcer.forget(m.digest);
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
      const manifest = this.#manifests
        .fetch(
          {
            ...req,
            ...ctx,
            reference: { kind: "digest", digest },
            method: "GET",
            accept: ALL_MANIFEST_ACCEPT,
          },
          digest,
          ctx,
        )
        .then((m) => ({ bytes: m.bytes as Buffer, contentType: m.contentType }));
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

  #target(route: Route): PullTarget {
    const target: PullTarget = Object.freeze({
      repository: route.name,
      upstream: route.upstream.name,
      clientName: route.clientName,
      ns: route.ns,
    });
    this.#routes.set(target, route);
    return target;
  }

  #route(target: PullTarget): Route {
    const route = this.#routes.get(target);
    if (!route) throw new TypeError("not a target this PullService resolved");
    return route;
  }

  #manifestRequest(pull: ManifestPull): ManifestRequest {
    return {
      route: this.#route(pull.target),
      reference: pull.reference,
      method: pull.method,
      accept: pull.accept,
      clientAuthorization: pull.clientAuthorization,
      signal: pull.signal,
    };
  }

  /**
   * An error on its way out of pull/: upstream failures become the OCI error the client sees (a 404
   * as `notFound`). With client authentication an upstream 401 means pullgate's own login does not
   * reach the repository: the client is already authenticated, and relaying the upstream's
   * challenge would send it to the upstream's token service for credentials pullgate would refuse,
   * so it becomes 403 DENIED.
   */
  #clientError(
    err: unknown,
    notFound: OciError["code"],
    target: PullTarget | undefined,
    authenticated = this.#opts.clientsAuthenticate === true,
  ): unknown {
    if (authenticated && err instanceof UpstreamError && err.code === "STATUS" && err.status === 401) {
      return new OciError(
        "DENIED",
        `the upstream registry refused pullgate's access to ${target?.repository ?? "this repository"}`,
        { detail: { upstream: err.upstream }, cause: err },
      );
    }
    return upstreamToOciError(err, notFound);
  }
}

function firstValues(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers)) {
    const v = header(headers, name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

function unauthorized(client: RegistryClient, challenge: string | undefined): UpstreamError {
  return new UpstreamError("STATUS", client.config.name, "upstream requires authentication", {
    status: 401,
    ...(challenge ? { challenge } : {}),
  });
}
