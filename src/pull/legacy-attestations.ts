import { computeDigest, isDigest, MediaType, readManifest } from "../oci/index.ts";
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  type LegacyAttestationEvidence,
  type LegacyLayerEvidence,
  legacyAttestationTag,
  MAX_ATTESTATION_LAYERS,
} from "../verify/index.ts";
import { mapLimited } from "./map-limited.ts";
import {
  matchesClaim,
  none,
  PARALLEL_FETCHES,
  type SignatureSource,
  unavailableOnly,
} from "./signature-source.ts";
import { attempt } from "./upstream-attempt.ts";

/** Layer annotation cosign writes on a `.att` layer: the statement's predicate type (unsigned: a fetch filter only). */
const PREDICATE_TYPE_ANNOTATION = "predicateType";

/**
 * cosign's legacy attestations: the `sha256-<hex>.att` tag, a DSSE envelope per layer. Asked only
 * when the policy requires attestations; only layers whose (unsigned) predicateType annotation names
 * a required type, or that have none, are fetched: what counts is the signed statement's own type.
 */
export const legacyAttestations: SignatureSource = async (place) => {
  const { client, repository, digest, limits, ctx, counter, blobs, attestationTypes } = place;
  if (attestationTypes.length === 0) return none();
  const tag = legacyAttestationTag(digest);
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
  if (!matchesClaim(bytes, m.value.claimedDigest))
    return unavailableOnly(`${tag}: bytes do not match their digest`);
  const reading = readManifest(bytes, m.value.contentType);
  if (!reading.ok) return unavailableOnly(`${tag}: unreadable attestation manifest (${reading.problem})`);
  const wanted = (reading.manifest.layers ?? []).filter((layer) => {
    const type = layer.annotations[PREDICATE_TYPE_ANNOTATION];
    return type === undefined || attestationTypes.includes(type);
  });
  let unavailable: string | undefined;
  const layers: LegacyLayerEvidence[] = await mapLimited(
    wanted.slice(0, MAX_ATTESTATION_LAYERS),
    PARALLEL_FETCHES,
    async (layer) => {
      const evidence: LegacyLayerEvidence = {
        mediaType: layer.mediaType ?? "",
        digest: layer.digest ?? "",
        annotations: layer.annotations,
        payload: undefined,
      };
      if (layer.mediaType !== DSSE_ENVELOPE_MEDIA_TYPE || !isDigest(evidence.digest)) return evidence;
      const blob = await blobs.fetch(repository, evidence.digest, limits.maxBundleBytes);
      if (blob.ok) evidence.payload = blob.value;
      else if (blob.outcome === "unavailable") unavailable = `${layer.digest}: ${blob.detail}`;
      return evidence;
    },
  );
  const evidence: LegacyAttestationEvidence = {
    format: "cosign-legacy-attestation",
    source: computeDigest(bytes),
    layers,
  };
  return { evidence: [evidence], unavailable };
};
