import { computeDigest } from "../oci/index.ts";
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  type LegacyAttestationEvidence,
  legacyAttestationTag,
  MAX_ATTESTATION_LAYERS,
} from "../verify/index.ts";
import { legacyLayerEvidence, readLegacyTag } from "./legacy-tag.ts";
import { none, type SignatureSource } from "./signature-source.ts";

/** Layer annotation cosign writes on a `.att` layer: the statement's predicate type (unsigned: a fetch filter only). */
const PREDICATE_TYPE_ANNOTATION = "predicateType";

/**
 * cosign's legacy attestations: the `sha256-<hex>.att` tag, a DSSE envelope per layer. Asked only
 * when the policy requires attestations; only layers whose (unsigned) predicateType annotation names
 * a required type, or that have none, are fetched: what counts is the signed statement's own type.
 */
export const legacyAttestations: SignatureSource = async (place) => {
  if (place.attestationTypes.length === 0) return none();
  const read = await readLegacyTag(place, legacyAttestationTag(place.digest));
  if (!("manifest" in read)) return read;
  const wanted = (read.manifest.layers ?? []).filter((layer) => {
    const type = layer.annotations[PREDICATE_TYPE_ANNOTATION];
    return type === undefined || place.attestationTypes.includes(type);
  });
  const { layers, unavailable } = await legacyLayerEvidence(
    place,
    wanted.slice(0, MAX_ATTESTATION_LAYERS),
    DSSE_ENVELOPE_MEDIA_TYPE,
    place.limits.maxBundleBytes,
  );
  const evidence: LegacyAttestationEvidence = {
    format: "cosign-legacy-attestation",
    source: computeDigest(read.bytes),
    layers,
  };
  return { evidence: [evidence], unavailable };
};
