import { computeDigest, isDigest, MediaType, readManifest } from "../oci/index.ts";
import {
  type LegacyLayerEvidence,
  type LegacySignatureEvidence,
  legacySignatureTag,
  MAX_LEGACY_LAYERS,
  SIMPLESIGNING_MEDIA_TYPE,
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

/** cosign's legacy layout: the `sha256-<hex>.sig` tag, a simple-signing payload per layer. */
export const legacySignatures: SignatureSource = async (place) => {
  const { client, repository, digest, limits, ctx, counter, blobs } = place;
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
};
