import { type Descriptor, isDigest, type Manifest, MediaType, readManifest } from "../oci/index.ts";
import type { LegacyLayerEvidence } from "../verify/index.ts";
import { mapLimited } from "./map-limited.ts";
import {
  type FormatFindings,
  type LookupPlace,
  matchesClaim,
  none,
  PARALLEL_FETCHES,
  unavailableOnly,
} from "./signature-source.ts";
import { attempt } from "./upstream-attempt.ts";

/**
 * The manifest under one of cosign's legacy tags (`sha256-<hex>.sig`, `.att`), digest-checked and
 * read as Go clients read it; or what the format found instead: nothing (no such tag) or "could not
 * look" (an upstream error, bytes that are not what the upstream said, an ambiguous manifest).
 */
export async function readLegacyTag(
  place: LookupPlace,
  tag: string,
): Promise<{ bytes: Buffer; manifest: Manifest } | FormatFindings> {
  const { client, repository, limits, ctx, counter } = place;
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
  const reading = readManifest(bytes, m.value.contentType);
  if (!reading.ok) return unavailableOnly(`${tag}: unreadable manifest (${reading.problem})`);
  return { bytes, manifest: reading.manifest };
}

/**
 * Each layer as evidence; the blobs of the layers of `mediaType` are fetched through the lookup's
 * blob budget (capped at `maxBytes` each). `unavailable` says which blob could not be fetched.
 */
export async function legacyLayerEvidence(
  place: LookupPlace,
  layers: readonly Descriptor[],
  mediaType: string,
  maxBytes: number,
): Promise<{ layers: LegacyLayerEvidence[]; unavailable: string | undefined }> {
  let unavailable: string | undefined;
  const out = await mapLimited(layers, PARALLEL_FETCHES, async (layer) => {
    const evidence: LegacyLayerEvidence = {
      mediaType: layer.mediaType ?? "",
      digest: layer.digest ?? "",
      annotations: layer.annotations,
      payload: undefined,
    };
    if (layer.mediaType !== mediaType || !isDigest(evidence.digest)) return evidence;
    const blob = await place.blobs.fetch(place.repository, evidence.digest, maxBytes);
    if (blob.ok) evidence.payload = blob.value;
    else if (blob.outcome === "unavailable") unavailable = `${layer.digest}: ${blob.detail}`;
    return evidence;
  });
  return { layers: out, unavailable };
}
