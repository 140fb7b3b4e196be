import {
  computeDigest,
  type Digest,
  digestMatches,
  isDigest,
  MediaType,
  readManifest,
} from "../oci/index.ts";
import type { RegistryClient, RequestContext } from "../upstream/index.ts";
import {
  BUNDLE_PREDICATE_ANNOTATION,
  BUNDLE_V03_MEDIA_TYPE,
  type BundleEvidence,
  COSIGN_SIGN_PREDICATE,
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
import { BlobBudget, type BlobBudgetLimits } from "./blob-budget.ts";
import { mapLimited } from "./map-limited.ts";
import { attempt } from "./upstream-attempt.ts";

/** Blob fetches in flight per lookup. */
const PARALLEL_FETCHES = 8;

export interface LookupLimits extends BlobBudgetLimits {
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
  /** Stop early: a format whose evidence satisfies this ends the lookup without waiting for the other. */
  enough?: (evidence: readonly SignatureEvidence[]) => boolean,
): Promise<SignatureLookup> {
  const counter = { requests: 0 };
  const blobs = new BlobBudget(client, limits, ctx, counter);
  const parts = [
    lookupLegacy(client, repository, digest, limits, ctx, counter, blobs),
    lookupBundles(client, repository, digest, limits, ctx, counter, blobs),
  ];
  if (enough) {
    // A signature that verifies in one format admits the image however slow or broken the other
    // format's lookup is: a slow failure must not deny what a fast one lets through.
    const first = await Promise.race(parts.map((p, i) => p.then((part) => ({ part, i }))));
    if (enough(first.part.evidence)) {
      parts[1 - first.i]?.catch(() => {});
      return { evidence: first.part.evidence, unavailable: undefined, requests: counter.requests };
    }
  }
  const [legacy, bundles] = (await Promise.all(parts)) as [Partial, Partial];
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
  blobs: BlobBudget,
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
  if (!m.ok) return m.outcome === "unavailable" ? unavailableOnly(`${tag}: ${m.detail}`) : none();
  const bytes = m.value.bytes as Buffer;
  // Bytes that are not what the upstream said it sent are a broken answer ("could not look"),
  // never "no signature": a denial would be cached and outlive the fault.
  if (!matchesClaim(bytes, m.value.claimedDigest))
    return unavailableOnly(`${tag}: bytes do not match their digest`);
  // Read as Go clients read it; a `.sig` that cannot be read unambiguously is not looked into.
  const reading = readManifest(bytes, m.value.contentType);
  if (!reading.ok) return unavailableOnly(`${tag}: unreadable signature manifest (${reading.problem})`);
  const layers = (reading.manifest.layers ?? []).slice(0, MAX_LEGACY_LAYERS);
  let unavailable: string | undefined;
  const out: LegacyLayerEvidence[] = await mapLimited(layers, PARALLEL_FETCHES, async (layer) => {
    const evidence: LegacyLayerEvidence = {
      mediaType: layer.mediaType ?? "",
      digest: layer.digest ?? "",
      annotations: layer.annotations,
      payload: undefined,
    };
    if (layer.mediaType !== SIMPLESIGNING_MEDIA_TYPE || !isDigest(evidence.digest)) return evidence;
    const blob = await blobs.fetch(repository, evidence.digest, limits.maxPayloadBytes);
    if (blob.ok) evidence.payload = blob.value;
    else if (blob.outcome === "unavailable") unavailable = `${layer.digest}: ${blob.detail}`;
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
  blobs: BlobBudget,
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
  else if (api.outcome === "unavailable") return unavailableOnly(`referrers: ${api.detail}`);
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
    if (!fallback.ok)
      return fallback.outcome === "unavailable" ? unavailableOnly(`${tag}: ${fallback.detail}`) : none();
    index = fallback.value.bytes as Buffer;
    if (!matchesClaim(index, fallback.value.claimedDigest)) {
      return unavailableOnly(`${tag}: bytes do not match their digest`);
    }
  }
  const listing = readManifest(index, MediaType.ociIndex);
  // An entry that says it carries another predicate (an attestation: SBOMs can be megabytes) is not
  // fetched; one that says nothing is fetched and judged.
  const candidates = (listing.ok ? (listing.manifest.manifests ?? []) : [])
    .filter((d) => d.artifactType?.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX) && isDigest(d.digest ?? ""))
    .filter(
      (d) => (d.annotations[BUNDLE_PREDICATE_ANNOTATION] ?? COSIGN_SIGN_PREDICATE) === COSIGN_SIGN_PREDICATE,
    )
    .slice(0, MAX_BUNDLES);
  let unavailable: string | undefined;
  const found = await mapLimited(
    candidates,
    PARALLEL_FETCHES,
    async (desc): Promise<BundleEvidence | undefined> => {
      const m = await attempt(counter, () =>
        client.getManifest(repository, desc.digest as string, {
          ...ctx,
          method: "GET",
          accept: MediaType.ociManifest,
          maxBytes: limits.maxManifestBytes,
        }),
      );
      if (!m.ok) {
        if (m.outcome === "unavailable") unavailable = `${desc.digest}: ${m.detail}`;
        return undefined;
      }
      const bytes = m.value.bytes as Buffer;
      if (!digestMatches(bytes, desc.digest as Digest)) {
        unavailable = `${desc.digest}: bytes do not match their digest`;
        return undefined;
      }
      const reading = readManifest(bytes, m.value.contentType);
      if (!reading.ok) return undefined;
      const subject = reading.manifest.subject;
      if (subject && subject.digest !== digest) return undefined;
      const layer = (reading.manifest.layers ?? []).find(
        (l) => l.mediaType?.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX) && isDigest(l.digest ?? ""),
      );
      if (!layer) return undefined;
      const blob = await blobs.fetch(repository, layer.digest as Digest, limits.maxBundleBytes);
      if (!blob.ok) {
        if (blob.outcome === "unavailable") unavailable = `${layer.digest}: ${blob.detail}`;
        return undefined;
      }
      return {
        format: "sigstore-bundle",
        source: desc.digest as Digest,
        artifactType: desc.artifactType,
        bundle: blob.value,
      };
    },
  );
  return { evidence: found.filter((e): e is BundleEvidence => e !== undefined), unavailable };
}

/** True unless the upstream claimed a digest (of a supported algorithm) that the bytes do not have. */
function matchesClaim(bytes: Uint8Array, claimed: string | undefined): boolean {
  return claimed === undefined || !isDigest(claimed) || digestMatches(bytes, claimed);
}

function none(): Partial {
  return { evidence: [], unavailable: undefined };
}

function unavailableOnly(detail: string): Partial {
  return { evidence: [], unavailable: detail };
}
