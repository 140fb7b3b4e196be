import {
  type Descriptor,
  type Digest,
  digestMatches,
  isDigest,
  MediaType,
  readManifest,
} from "../oci/index.ts";
import {
  BUNDLE_PREDICATE_ANNOTATION,
  BUNDLE_V03_MEDIA_TYPE,
  type BundleEvidence,
  COSIGN_SIGN_PREDICATE,
  MAX_BUNDLES,
  referrersTagSchemaTag,
  SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX,
} from "../verify/index.ts";
import { mapLimited } from "./map-limited.ts";
import {
  type FormatFindings,
  type LookupPlace,
  matchesClaim,
  none,
  PARALLEL_FETCHES,
  type SignatureSource,
  unavailableOnly,
} from "./signature-source.ts";
import { attempt } from "./upstream-attempt.ts";

/** Sigstore bundles as OCI 1.1 referrers (the referrers API, else the referrers tag schema). */
export const bundleSignatures: SignatureSource = async (place) => {
  const read = await readReferrers(place);
  if (!("index" in read)) return read;
  const listing = readManifest(read.index, MediaType.ociIndex);
  // An entry that says it carries another predicate (an attestation: SBOMs can be megabytes) is not
  // fetched; one that says nothing is fetched and judged. Entries typed as bundles come first; then
  // those with no type (or the empty type): cosign v3 writes them so under the referrers tag schema
  // on registries without the referrers API (GHCR, distribution 2.8), and each is judged by its own
  // manifest.
  // Attestations the policy requires are fetched too (after the signatures: the cap counts both).
  const listed = (listing.ok ? (listing.manifest.manifests ?? []) : []).filter((d) =>
    isDigest(d.digest ?? ""),
  );
  const predicate = (d: Descriptor) => d.annotations[BUNDLE_PREDICATE_ANNOTATION] ?? COSIGN_SIGN_PREDICATE;
  const typed = (entries: Descriptor[]) => [
    ...entries.filter((d) => isBundleType(d.artifactType)),
    ...entries.filter((d) => d.artifactType === undefined || d.artifactType === MediaType.ociEmpty),
  ];
  const candidates = [
    ...typed(listed.filter((d) => predicate(d) === COSIGN_SIGN_PREDICATE)),
    ...typed(
      listed.filter(
        (d) => predicate(d) !== COSIGN_SIGN_PREDICATE && place.attestationTypes.includes(predicate(d)),
      ),
    ),
  ].slice(0, MAX_BUNDLES);
  let unavailable: string | undefined;
  const found = await mapLimited(candidates, PARALLEL_FETCHES, (desc) =>
    fetchBundle(place, desc, (detail) => {
      unavailable = detail;
    }),
  );
  return { evidence: found.filter((e): e is BundleEvidence => e !== undefined), unavailable };
};

/**
 * The referrers index of `place.digest`: from the referrers API (filtered to bundles), or, where the
 * registry has none (distribution 2.8 answers 404), from the referrers tag schema.
 */
async function readReferrers(place: LookupPlace): Promise<{ index: Buffer } | FormatFindings> {
  const { client, repository, digest, limits, ctx, counter } = place;
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
  return { index };
}

/** One referrer: its manifest (digest-checked, naming `place.digest` as subject) and its bundle layer. */
async function fetchBundle(
  place: LookupPlace,
  desc: Descriptor,
  problem: (detail: string) => void,
): Promise<BundleEvidence | undefined> {
  const { client, repository, digest, limits, ctx, counter, blobs } = place;
  const m = await attempt(counter, () =>
    client.getManifest(repository, desc.digest as string, {
      ...ctx,
      method: "GET",
      accept: MediaType.ociManifest,
      maxBytes: limits.maxManifestBytes,
    }),
  );
  if (!m.ok) {
    if (m.outcome === "unavailable") problem(`${desc.digest}: ${m.detail}`);
    return undefined;
  }
  const bytes = m.value.bytes as Buffer;
  if (!digestMatches(bytes, desc.digest as Digest)) {
    problem(`${desc.digest}: bytes do not match their digest`);
    return undefined;
  }
  const reading = readManifest(bytes, m.value.contentType);
  if (!reading.ok) return undefined;
  const subject = reading.manifest.subject;
  if (subject && subject.digest !== digest) return undefined;
  // What the referrer is, by its own manifest when its index entry did not say.
  const artifactType = isBundleType(desc.artifactType)
    ? desc.artifactType
    : [reading.manifest.artifactType, reading.manifest.config?.mediaType].find(isBundleType);
  if (artifactType === undefined) return undefined;
  const layer = (reading.manifest.layers ?? []).find(
    (l) => l.mediaType?.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX) && isDigest(l.digest ?? ""),
  );
  if (!layer) return undefined;
  const blob = await blobs.fetch(repository, layer.digest as Digest, limits.maxBundleBytes);
  if (!blob.ok) {
    if (blob.outcome === "unavailable") problem(`${layer.digest}: ${blob.detail}`);
    return undefined;
  }
  return {
    format: "sigstore-bundle",
    source: desc.digest as Digest,
    artifactType,
    bundle: blob.value,
  };
}

function isBundleType(value: string | undefined): value is string {
  return value?.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX) === true;
}
