import { computeDigest, type Digest, isDigest, MediaType } from "../oci/index.ts";
import type { RegistryClient, RequestContext } from "../upstream/index.ts";
import { UpstreamError } from "../upstream/index.ts";
import {
  BUNDLE_V03_MEDIA_TYPE,
  type BundleEvidence,
  type LegacyLayerEvidence,
  type LegacySignatureEvidence,
  legacySignatureTag,
  MAX_BUNDLES,
  MAX_LEGACY_LAYERS,
  referrersTagSchemaTag,
  SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX,
  SIMPLESIGNING_MEDIA_TYPE,
  type SignatureEvidence,
} from "../verify/index.ts";

/** Blob fetches in flight per lookup. */
const PARALLEL_FETCHES = 8;

export interface LookupLimits {
  maxManifestBytes: number;
  maxPayloadBytes: number;
  maxBundleBytes: number;
}

export interface SignatureLookup {
  evidence: SignatureEvidence[];
  /** Set when part of the lookup could not be done (upstream 401/403/429/5xx, timeout, unreachable). */
  unavailable: string | undefined;
  /** Upstream requests made (cold-pull round trips). */
  requests: number;
}

type Attempt<T> =
  | { ok: true; value: T }
  | { ok: false; missing: true }
  | { ok: false; missing: false; detail: string };

/**
 * Gathers every candidate signature for `digest` in `repository` on the upstream, in both formats
 * at once: cosign's legacy `sha256-<hex>.sig` tag, and Sigstore bundles as OCI 1.1 referrers (the
 * referrers API, else the referrers tag schema `sha256-<hex>`). Everything fetched is size-capped
 * and digest-checked before verify/ sees it. "Not found" is an empty answer; "could not look" is
 * reported separately and never confused with "unsigned".
 */
export async function lookupSignatures(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  limits: LookupLimits,
  ctx: RequestContext,
): Promise<SignatureLookup> {
  const counter = { requests: 0 };
  const [legacy, bundles] = await Promise.all([
    lookupLegacy(client, repository, digest, limits, ctx, counter),
    lookupBundles(client, repository, digest, limits, ctx, counter),
  ]);
  const unavailable = [legacy.unavailable, bundles.unavailable].filter(Boolean).join("; ") || undefined;
  return { evidence: [...legacy.evidence, ...bundles.evidence], unavailable, requests: counter.requests };
}

interface Partial {
  evidence: SignatureEvidence[];
  unavailable: string | undefined;
}

async function lookupLegacy(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  limits: LookupLimits,
  ctx: RequestContext,
  counter: { requests: number },
): Promise<Partial> {
  const tag = legacySignatureTag(digest);
  const m = await attempt(counter, () =>
    client.getManifest(repository, tag, {
      ...ctx,
      method: "GET",
      accept: `${MediaType.ociManifest}, ${MediaType.dockerManifest}`,
      maxBytes: limits.maxManifestBytes,
    }),
  );
  if (!m.ok) return m.missing ? none() : unavailableOnly(`${tag}: ${m.detail}`);
  const bytes = m.value.bytes as Buffer;
  const manifest = parseJson(bytes) as { layers?: unknown } | undefined;
  const layers = Array.isArray(manifest?.layers) ? manifest.layers.slice(0, MAX_LEGACY_LAYERS) : [];
  let unavailable: string | undefined;
  const out: LegacyLayerEvidence[] = await mapLimited(layers, PARALLEL_FETCHES, async (raw) => {
    const layer = toDescriptor(raw);
    const evidence: LegacyLayerEvidence = {
      mediaType: layer.mediaType,
      digest: layer.digest,
      annotations: layer.annotations,
      payload: undefined,
    };
    if (layer.mediaType !== SIMPLESIGNING_MEDIA_TYPE || !isDigest(layer.digest)) return evidence;
    const blob = await fetchBlob(client, repository, layer.digest, limits.maxPayloadBytes, ctx, counter);
    if (blob.ok) evidence.payload = blob.value;
    else if (!blob.missing) unavailable = `${layer.digest}: ${blob.detail}`;
    return evidence;
  });
  const evidence: LegacySignatureEvidence = {
    format: "cosign-legacy",
    source: computeDigest(bytes),
    layers: out,
  };
  return { evidence: [evidence], unavailable };
}

async function lookupBundles(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  limits: LookupLimits,
  ctx: RequestContext,
  counter: { requests: number },
): Promise<Partial> {
  let index: Buffer;
  const api = await attempt(counter, () =>
    client.getReferrers(
      repository,
      digest,
      `?artifactType=${encodeURIComponent(BUNDLE_V03_MEDIA_TYPE)}`,
      ctx,
    ),
  );
  if (api.ok) index = api.value.bytes;
  else if (!api.missing) return unavailableOnly(`referrers: ${api.detail}`);
  else {
    // No referrers API (distribution 2.8 answers 404): the referrers tag schema.
    const tag = referrersTagSchemaTag(digest);
    const fallback = await attempt(counter, () =>
      client.getManifest(repository, tag, {
        ...ctx,
        method: "GET",
        accept: MediaType.ociIndex,
        maxBytes: limits.maxManifestBytes,
      }),
    );
    if (!fallback.ok) return fallback.missing ? none() : unavailableOnly(`${tag}: ${fallback.detail}`);
    index = fallback.value.bytes as Buffer;
  }
  const parsed = parseJson(index) as { manifests?: unknown } | undefined;
  const candidates = (Array.isArray(parsed?.manifests) ? parsed.manifests : [])
    .map(toDescriptor)
    .filter((d) => d.artifactType?.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX) && isDigest(d.digest))
    .slice(0, MAX_BUNDLES);
  let unavailable: string | undefined;
  const found = await mapLimited(
    candidates,
    PARALLEL_FETCHES,
    async (desc): Promise<BundleEvidence | undefined> => {
      const m = await attempt(counter, () =>
        client.getManifest(repository, desc.digest, {
          ...ctx,
          method: "GET",
          accept: MediaType.ociManifest,
          maxBytes: limits.maxManifestBytes,
        }),
      );
      if (!m.ok) {
        if (!m.missing) unavailable = `${desc.digest}: ${m.detail}`;
        return undefined;
      }
      const bytes = m.value.bytes as Buffer;
      if (computeDigest(bytes) !== desc.digest) return undefined;
      const manifest = parseJson(bytes) as { subject?: unknown; layers?: unknown } | undefined;
      const subject = manifest?.subject ? toDescriptor(manifest.subject) : undefined;
      if (subject && subject.digest !== digest) return undefined;
      const layer = (Array.isArray(manifest?.layers) ? manifest.layers : [])
        .map(toDescriptor)
        .find((l) => l.mediaType.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX) && isDigest(l.digest));
      if (!layer) return undefined;
      const blob = await fetchBlob(
        client,
        repository,
        layer.digest as Digest,
        limits.maxBundleBytes,
        ctx,
        counter,
      );
      if (!blob.ok) {
        if (!blob.missing) unavailable = `${layer.digest}: ${blob.detail}`;
        return undefined;
      }
      return {
        format: "sigstore-bundle",
        source: desc.digest,
        artifactType: desc.artifactType,
        bundle: blob.value,
      };
    },
  );
  return { evidence: found.filter((e): e is BundleEvidence => e !== undefined), unavailable };
}

/** A blob read whole and checked against its digest; a wrong or oversized blob counts as missing. */
async function fetchBlob(
  client: RegistryClient,
  repository: string,
  digest: Digest,
  maxBytes: number,
  ctx: RequestContext,
  counter: { requests: number },
): Promise<Attempt<Uint8Array>> {
  const r = await attempt(counter, () => client.getBlobBytes(repository, digest, { ...ctx, maxBytes }));
  if (r.ok && computeDigest(r.value) !== digest) return { ok: false, missing: true };
  return r;
}

/**
 * Runs one upstream read. 404 (and an oversized or inconsistent answer, which cannot be a valid
 * signature) is "missing"; 401/403/429/5xx, timeouts and unreachable upstreams are "could not look".
 * A client that went away aborts the whole lookup.
 */
async function attempt<T>(counter: { requests: number }, fn: () => Promise<T>): Promise<Attempt<T>> {
  counter.requests++;
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    switch (err.code) {
      case "ABORTED":
        throw err;
      case "STATUS":
        if (err.status === 404 || err.status === 400 || err.status === 405 || err.status === 501) {
          // 400/405/501 from a referrers endpoint: the registry has no referrers API.
          return { ok: false, missing: true };
        }
        return { ok: false, missing: false, detail: `upstream answered ${err.status}` };
      case "TOO_LARGE":
      case "DIGEST_MISMATCH":
        return { ok: false, missing: true };
      case "TIMEOUT":
      case "UNREACHABLE":
      case "BAD_RESPONSE":
      case "AUTH_FAILED":
        return { ok: false, missing: false, detail: err.code.toLowerCase() };
      default: {
        const never: never = err.code;
        return never;
      }
    }
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  artifactType: string | undefined;
  annotations: Record<string, string>;
}

function toDescriptor(raw: unknown): Descriptor {
  const d = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const annotations: Record<string, string> = {};
  if (d.annotations && typeof d.annotations === "object") {
    for (const [k, v] of Object.entries(d.annotations as Record<string, unknown>)) {
      if (typeof v === "string") annotations[k] = v;
    }
  }
  return {
    mediaType: typeof d.mediaType === "string" ? d.mediaType : "",
    digest: typeof d.digest === "string" ? d.digest : "",
    artifactType: typeof d.artifactType === "string" ? d.artifactType : undefined,
    annotations,
  };
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}

function none(): Partial {
  return { evidence: [], unavailable: undefined };
}

function unavailableOnly(detail: string): Partial {
  return { evidence: [], unavailable: detail };
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
