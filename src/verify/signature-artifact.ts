import { MediaType } from "../oci/index.ts";
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX,
  SIMPLESIGNING_MEDIA_TYPE,
} from "./cosign-format.ts";
import { field, isRecord } from "./json-field.ts";

const LEGACY_LAYER_TYPES: readonly string[] = [SIMPLESIGNING_MEDIA_TYPE, DSSE_ENVELOPE_MEDIA_TYPE];
const IMAGE_MANIFEST_TYPES: readonly (string | undefined)[] = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
  undefined,
];

/**
 * Is this manifest (parsed JSON) a signature artifact, which passes without a signature of its own?
 * Decided by content only, never by the tag it was pulled by, so that a runnable image pushed as
 * `sha256-….sig` is still checked. What makes an image runnable is its layers, so the layers decide:
 * - a legacy cosign `.sig` / `.att` manifest: an image manifest (OCI or Docker v2) with at least one
 *   layer and every layer a simple-signing payload or a DSSE envelope (cosign-formats.md §1.2, §1.8);
 *   no runtime can unpack such a layer into a filesystem, whatever the config says;
 * - a cosign v3 bundle referrer: an image manifest whose `artifactType` (or, OCI 1.1 artifact style,
 *   `config.mediaType`) is a Sigstore bundle type AND whose layers (at least one) all are (§1.9): an
 *   artifactType on a manifest with ordinary layers does not count, since runtimes ignore artifactType;
 * - a referrers index (the `sha256-<hex>` tag schema fallback, or a referrers API answer): an OCI
 *   index whose entries all carry an `artifactType` and none a `platform` (possibly none at all).
 *   Such an index lists artifacts of any type (SBOMs too): it runs nothing itself, and each listed
 *   manifest is judged on its own when pulled. pull/ must NOT treat it like a verified index: its
 *   children are not admitted through it.
 * Everything else (images, platform indexes, Docker manifest lists, schema 1, junk) is false.
 */
export function isSignatureArtifactManifest(manifestJson: unknown): boolean {
  if (!isRecord(manifestJson) || manifestJson.schemaVersion !== 2) return false;
  const mediaType = manifestJson.mediaType;
  if (mediaType !== undefined && typeof mediaType !== "string") return false;
  if (Object.hasOwn(manifestJson, "manifests")) {
    return mediaType === MediaType.ociIndex && isReferrersIndex(manifestJson);
  }
  if (!IMAGE_MANIFEST_TYPES.includes(mediaType)) return false;
  const layerTypes = layerMediaTypes(manifestJson.layers);
  if (layerTypes === undefined || layerTypes.length === 0) return false;
  if (layerTypes.every((type) => LEGACY_LAYER_TYPES.includes(type))) return true;
  const artifactType = manifestJson.artifactType;
  const configType = field(manifestJson.config, "mediaType");
  const saysBundle = [artifactType, configType].some(isBundleType);
  return saysBundle && layerTypes.every(isBundleType);
}

function isReferrersIndex(index: Record<string, unknown>): boolean {
  if (Object.hasOwn(index, "layers") || Object.hasOwn(index, "config")) return false;
  const entries = index.manifests;
  if (!Array.isArray(entries)) return false;
  return entries.every(
    (entry) =>
      isRecord(entry) &&
      typeof entry.artifactType === "string" &&
      entry.artifactType !== "" &&
      !Object.hasOwn(entry, "platform"),
  );
}

function layerMediaTypes(layers: unknown): string[] | undefined {
  if (!Array.isArray(layers)) return undefined;
  const types: string[] = [];
  for (const layer of layers) {
    const type = field(layer, "mediaType");
    if (typeof type !== "string") return undefined;
    types.push(type);
  }
  return types;
}

function isBundleType(value: unknown): boolean {
  return typeof value === "string" && value.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX);
}
