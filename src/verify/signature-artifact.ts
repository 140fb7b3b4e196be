import {
  type Descriptor,
  EMPTY_JSON_DIGEST,
  foldedKeyProblem,
  isDigest,
  isImageManifestMediaType,
  type JsonObject,
  type Manifest,
  MediaType,
  parseStrictJson,
} from "../oci/index.ts";
import {
  DSSE_ENVELOPE_MEDIA_TYPE,
  SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX,
  SIMPLESIGNING_MEDIA_TYPE,
} from "./cosign-format.ts";
import { isRecord } from "./json-field.ts";
import type { DigestString } from "./types.ts";

/**
 * Signature artifacts (a cosign `.sig`/`.att` manifest, a Sigstore bundle referrer, a referrers
 * index) pass without a signature of their own, so that `cosign verify` works through pullgate. A
 * manifest passes as one only when nothing in it can run, and that is proved on content, never on a
 * tag name or on media types alone (containers/image unpacks any layer it is handed, whatever its
 * media type says):
 * 1. The manifest was read unambiguously (oci/manifest.ts) and is served as an OCI or Docker v2
 *    image manifest (a referrers index: as an OCI index), schema version 2.
 * 2. Its shape is one of the three artifacts: every layer a simple-signing payload or a DSSE envelope
 *    (legacy), or every layer a Sigstore bundle with the manifest's artifactType or config type a
 *    bundle type (cosign v3); no foreign-layer `urls`, no embedded `data`; the config is the OCI empty
 *    blob `{}` or an image config. A referrers index lists only entries without a platform (with an
 *    artifactType or, as cosign v3 writes on GHCR, without), and admits nothing through itself: each
 *    entry is judged when it is pulled.
 * 3. Every blob it lists is fetched (size-capped, digest-checked) and is the JSON document its media
 *    type names (checkArtifactBlob), and none of them reads as a tar archive. The config is the empty
 *    blob or an image config that sets no Entrypoint or Cmd.
 * signatureArtifactClaim() does 1–2 and lists the blobs for 3; pull/ fetches them and asks
 * checkArtifactBlob() about each. Anything short of that is an ordinary image needing a signature.
 */

export type ArtifactBlobKind = "simplesigning" | "dsse-envelope" | "sigstore-bundle" | "image-config";

export interface ArtifactClaim {
  kind: "legacy-signature" | "bundle-referrer" | "referrers-index";
  /** Every blob a client may fetch through this manifest, with what it must be (distinct digests). */
  blobs: readonly { digest: DigestString; kind: ArtifactBlobKind }[];
}

const CONFIG_TYPES: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig, MediaType.ociEmpty];

/**
 * What must hold for this manifest, served as `servedType`, to pass as a signature artifact; undefined
 * when it cannot be one (then it is an image like any other).
 */
export function signatureArtifactClaim(
  manifest: Manifest,
  servedType: string | undefined,
): ArtifactClaim | undefined {
  if (manifest.schemaVersion !== 2 || manifest.schema1) return undefined;
  if (manifest.manifests !== undefined) {
    return servedType === MediaType.ociIndex &&
      manifest.mediaType === MediaType.ociIndex &&
      isReferrersIndex(manifest)
      ? { kind: "referrers-index", blobs: [] }
      : undefined;
  }
  if (!isImageManifestMediaType(servedType)) return undefined;
  const layers = manifest.layers ?? [];
  const config = manifest.config;
  if (layers.length === 0 || config === undefined) return undefined;
  if (![...layers, config].every(isPlainDescriptor)) return undefined;
  const layerKinds = layers.map((l) => layerKind(l.mediaType));
  let kind: ArtifactClaim["kind"];
  if (layerKinds.every((k) => k === "simplesigning" || k === "dsse-envelope")) kind = "legacy-signature";
  else if (
    layerKinds.every((k) => k === "sigstore-bundle") &&
    [manifest.artifactType, config.mediaType].some(isBundleType)
  )
    kind = "bundle-referrer";
  else return undefined;
  if (!(CONFIG_TYPES.includes(config.mediaType ?? "") || isBundleType(config.mediaType))) return undefined;
  const blobs = new Map<string, ArtifactBlobKind>();
  const need = (digest: string, blobKind: ArtifactBlobKind): boolean => {
    const seen = blobs.get(digest);
    if (seen !== undefined && seen !== blobKind) return false; // one blob cannot be two documents
    blobs.set(digest, blobKind);
    return true;
  };
  for (const [i, layer] of layers.entries()) {
    if (!need(layer.digest as string, layerKinds[i] as ArtifactBlobKind)) return undefined;
  }
  // The empty blob is `{}` by its digest; a config with another digest must be shown to be inert.
  if (config.digest !== EMPTY_JSON_DIGEST && !need(config.digest as string, "image-config")) return undefined;
  return { kind, blobs: [...blobs].map(([digest, blobKind]) => ({ digest, kind: blobKind })) };
}

/** Why `bytes` is not the document `kind` names (undefined: it is, and it is not a tar archive). */
export function checkArtifactBlob(kind: ArtifactBlobKind, bytes: Uint8Array): string | undefined {
  if (readsAsTar(bytes)) return "it reads as a tar archive";
  const parsed = parseStrictJson(bytes);
  if (!parsed.ok) return `it is not strict JSON: ${parsed.problem}`;
  const doc = parsed.value;
  if (!isRecord(doc)) return "it is not a JSON object";
  switch (kind) {
    case "simplesigning": {
      const critical = doc.critical;
      if (!isRecord(critical) || typeof critical.type !== "string" || !isRecord(critical.image)) {
        return "it is not a simple-signing payload (critical.type, critical.image)";
      }
      return undefined;
    }
    case "dsse-envelope":
      if (
        typeof doc.payloadType !== "string" ||
        typeof doc.payload !== "string" ||
        !Array.isArray(doc.signatures)
      ) {
        return "it is not a DSSE envelope (payloadType, payload, signatures)";
      }
      return undefined;
    case "sigstore-bundle":
      if (
        typeof doc.mediaType !== "string" ||
        !doc.mediaType.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX) ||
        !isRecord(doc.verificationMaterial)
      ) {
        return "it is not a Sigstore bundle (mediaType, verificationMaterial)";
      }
      return undefined;
    case "image-config":
      return inertConfigProblem(doc as JsonObject);
    default: {
      const never: never = kind;
      return never;
    }
  }
}

const IMAGE_CONFIG_FIELDS = [
  "architecture",
  "os",
  "config",
  "rootfs",
  "history",
  "created",
  "author",
  "variant",
];
const CONTAINER_CONFIG_FIELDS = ["Entrypoint", "Cmd", "Env", "User", "WorkingDir", "Labels", "Volumes"];

/** cosign's placeholder config sets `"config":{}`: nothing to run. Read the way Go clients read it. */
function inertConfigProblem(doc: JsonObject): string | undefined {
  const rootProblem = foldedKeyProblem(doc, IMAGE_CONFIG_FIELDS, "the config");
  if (rootProblem) return rootProblem;
  const config = doc.config;
  if (config === undefined || config === null) return undefined;
  if (!isRecord(config)) return "the config's config is not an object";
  const problem = foldedKeyProblem(config as JsonObject, CONTAINER_CONFIG_FIELDS, "the config's config");
  if (problem) return problem;
  for (const field of ["Entrypoint", "Cmd"]) {
    const v = config[field];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) {
      return `the config sets ${field}: a signature artifact has nothing to run`;
    }
  }
  return undefined;
}

/**
 * Would Go's archive/tar (what containerd and containers/image unpack layers with) read a header from
 * the first 512 bytes? It accepts a block whose checksum field (octal, bytes 148–155, trimmed of
 * spaces and NULs) equals the unsigned or signed byte sum with that field counted as spaces. A JSON
 * text can be built to satisfy that, so it is checked, not assumed.
 */
export function readsAsTar(bytes: Uint8Array): boolean {
  if (bytes.length < 512) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (bytes[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  let field = Buffer.from(bytes.subarray(148, 156)).toString("latin1");
  field = field.replace(/^[ \0]+|[ \0]+$/g, "");
  const nul = field.indexOf("\0");
  if (nul !== -1) field = field.slice(0, nul);
  if (field === "") return unsigned === 0 || signed === 0;
  if (!/^[0-7]+$/.test(field)) return false;
  const stored = Number.parseInt(field, 8);
  return stored === unsigned || stored === signed;
}

/**
 * Entries without a platform: nothing a client picks as "the image for my platform" through this
 * index (it admits nothing anyway: each entry is judged when pulled). Entries need no artifactType:
 * cosign v3 writes none under the referrers tag schema on registries without the referrers API.
 */
function isReferrersIndex(manifest: Manifest): boolean {
  return (manifest.manifests ?? []).every((entry) => !entry.hasPlatform);
}

function isPlainDescriptor(d: Descriptor): boolean {
  return d.digest !== undefined && isDigest(d.digest) && d.urls === undefined && !d.hasData;
}

function layerKind(mediaType: string | undefined): ArtifactBlobKind | undefined {
  if (mediaType === SIMPLESIGNING_MEDIA_TYPE) return "simplesigning";
  if (mediaType === DSSE_ENVELOPE_MEDIA_TYPE) return "dsse-envelope";
  if (isBundleType(mediaType)) return "sigstore-bundle";
  return undefined;
}

function isBundleType(value: unknown): boolean {
  return typeof value === "string" && value.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX);
}
