import { computeDigest } from "../oci/index.ts";
import {
  type LegacySignatureEvidence,
  legacySignatureTag,
  MAX_LEGACY_LAYERS,
  SIMPLESIGNING_MEDIA_TYPE,
} from "../verify/index.ts";
import { legacyLayerEvidence, readLegacyTag } from "./legacy-tag.ts";
import type { SignatureSource } from "./signature-source.ts";

/** cosign's legacy layout: the `sha256-<hex>.sig` tag, a simple-signing payload per layer. */
export const legacySignatures: SignatureSource = async (place) => {
  const read = await readLegacyTag(place, legacySignatureTag(place.digest));
  if (!("manifest" in read)) return read;
  const { layers, unavailable } = await legacyLayerEvidence(
    place,
    (read.manifest.layers ?? []).slice(0, MAX_LEGACY_LAYERS),
    SIMPLESIGNING_MEDIA_TYPE,
    place.limits.maxPayloadBytes,
  );
  const evidence: LegacySignatureEvidence = {
    format: "cosign-legacy",
    source: computeDigest(read.bytes),
    layers,
  };
  return { evidence: [evidence], unavailable };
};
