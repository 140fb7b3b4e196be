import { createHash } from "node:crypto";
import type { ManifestCache } from "../cache/index.ts";
import { computeDigest, type Digest, digestAlgorithm, isDigest } from "../oci/index.ts";
import type { PullgateMetrics } from "../telemetry/index.ts";
import { type RequestContext, type Route, UpstreamError } from "../upstream/index.ts";
import type { ManifestRequest, ServedManifest } from "./pull-types.ts";
import { SingleFlight } from "./single-flight.ts";

export interface ManifestSourceOptions {
  /** Manifests larger than this are refused (manifests.maxBytes). */
  maxBytes: number;
  /** > 0: a tag's digest is remembered this long (requests without their own Authorization only). */
  tagTtlSeconds?: number | undefined;
  manifests: ManifestCache;
  metrics?: Pick<PullgateMetrics, "manifestCacheHits"> | undefined;
}

/**
 * Where manifests come from: the in-process cache by digest, the tag memory, one shared upstream
 * fetch per digest, or the upstream. Every manifest is hashed on its exact bytes; a digest that
 * does not match is never served.
 */
export class ManifestSource {
  readonly #opts: ManifestSourceOptions;
  readonly #manifestFlights = new SingleFlight<ServedManifest>();
  readonly #tags = new Map<
    string,
    { digest: Digest; contentType: string; length: number; expiresAt: number }
  >();

  constructor(opts: ManifestSourceOptions) {
    this.#opts = opts;
  }

  /** A HEAD: the upstream's HEAD answer when it says everything a GET would, else a GET without the body. */
  async head(req: ManifestRequest, ref: string, ctx: RequestContext): Promise<ServedManifest> {
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
      maxBytes: this.#opts.maxBytes,
    });
    // A HEAD answer is usable only when the upstream told us everything a GET would have.
    if (head.contentType && head.length !== undefined && head.claimedDigest && isDigest(head.claimedDigest)) {
      if (reference.kind === "digest" && head.claimedDigest !== reference.digest) {
        throw digestMismatch(route, reference.digest);
      }
      if (head.length > this.#opts.maxBytes) throw tooLarge(route, this.#opts.maxBytes);
      const served = {
        contentType: head.contentType,
        digest: head.claimedDigest,
        length: head.length,
        bytes: undefined,
      };
      this.#rememberTag(req, ctx, served);
      return served;
    }
    const full = await this.fetch(req, ref, ctx);
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

  /** The manifest's exact bytes (from the in-process cache, a shared fetch, or the upstream). */
  async fetch(req: ManifestRequest, ref: string, ctx: RequestContext): Promise<ServedManifest> {
    const cached = this.#cachedManifest(req, ctx);
    if (cached) return cached;
    const known = this.#knownTag(req, ctx);
    if (known) {
      const byDigest: ManifestRequest = { ...req, reference: { kind: "digest", digest: known.digest } };
      return this.fetch(byDigest, known.digest, ctx);
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
      maxBytes: this.#opts.maxBytes,
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
