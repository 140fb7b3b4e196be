import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { computeDigest, type Digest, MediaType, parseDigest } from "../oci/index.ts";
import {
  COSIGN_SIGNATURE_ANNOTATION,
  type LegacySignatureEvidence,
  legacySignatureTag,
  SIMPLESIGNING_MEDIA_TYPE,
} from "../verify/index.ts";
import { pushArtifact, type RegistryWriter } from "./registry-push.ts";
import { type BuiltArtifact, type Descriptor, ociImageManifest } from "./tiny-image.ts";

/**
 * What `cosign sign --key` writes in its legacy layout, for one image digest: the simple-signing
 * payload as a blob, an image manifest under the tag `sha256-<hex>.sig` whose layers are such payloads
 * with the base64 signature (ECDSA over SHA-256 of the payload bytes) in the cosign annotation, and
 * cosign's dummy config (diff_ids = the payload digests). Signing again appends a layer.
 */

/** An ECDSA P-256 key pair: the private half signs, the PEM goes into a pullgate config. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string };
}

/** A layer of a `.sig` manifest (a descriptor with annotations). */
export type SignatureLayer = Descriptor;

/** cosign's simple-signing payload (the exact bytes that are signed). */
export function simpleSigningPayload(
  manifestDigest: string,
  dockerReference = "registry.test/repo",
  /** `cosign sign -a k=v`: the payload's `optional` claims (null without any). */
  annotations?: Readonly<Record<string, string>>,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": dockerReference },
        image: { "docker-manifest-digest": manifestDigest },
        type: "cosign container image signature",
      },
      optional: annotations ?? null,
    }),
  );
}

/** One legacy signature layer: the payload's descriptor with the base64 signature annotation. */
export function legacySignatureLayer(
  payload: Buffer,
  payloadDigest: string,
  key: SigningKey,
): SignatureLayer {
  return {
    mediaType: SIMPLESIGNING_MEDIA_TYPE,
    size: payload.length,
    digest: payloadDigest,
    annotations: {
      [COSIGN_SIGNATURE_ANNOTATION]: sign("sha256", payload, key.privateKey).toString("base64"),
    },
  };
}

/**
 * What pull/ hands verify/ for a `.sig` whose layers sign `payload`, one layer per key (as several
 * `cosign sign` make): for judging signatures without a registry (unit tests, benchmarks).
 */
export function legacySignatureEvidence(
  source: string,
  payload: Buffer,
  keys: readonly SigningKey[],
): LegacySignatureEvidence {
  const payloadDigest = computeDigest(payload);
  return {
    format: "cosign-legacy",
    source,
    layers: keys.map((key) => {
      const layer = legacySignatureLayer(payload, payloadDigest, key);
      return {
        mediaType: layer.mediaType,
        digest: layer.digest,
        annotations: layer.annotations ?? {},
        payload,
      };
    }),
  };
}

/** The dummy image config cosign writes for a `.sig` manifest (diff_ids = the payload digests). */
export function legacySignatureConfig(layers: readonly SignatureLayer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: "",
      os: "",
      config: {},
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    }),
  );
}

/** The `.sig` manifest: an OCI image manifest over the signature layers. */
export function legacySignatureManifest(
  layers: readonly SignatureLayer[],
  config: Buffer,
  configDigest: string,
): Buffer {
  return ociImageManifest(
    { mediaType: MediaType.ociConfig, size: config.length, digest: configDigest },
    layers,
  );
}

export interface LegacySignature extends BuiltArtifact {
  /** `sha256-<hex>.sig` */
  tag: string;
  payload: Buffer;
  payloadDigest: Digest;
}

export interface LegacySignatureOptions {
  /** The signed image. */
  manifestDigest: string;
  key: SigningKey;
  /** The repository as the signer named it, e.g. "127.0.0.1:5000/demo/signed" (default "registry.test/repo"). */
  dockerReference?: string;
  /** The digest the payload names, when it is not `manifestDigest` (a signature copied from elsewhere). */
  payloadDigest?: string;
  /** Layers of the `.sig` manifest already there, which the new one is appended to. */
  existingLayers?: readonly SignatureLayer[];
  /** `cosign sign -a k=v` annotations, in the payload's `optional`. */
  annotations?: Readonly<Record<string, string>>;
}

/** The `.sig` artifact for one image, built in memory: its blobs (payload, config) and manifest. */
export function createLegacySignature(opts: LegacySignatureOptions): LegacySignature {
  const payload = simpleSigningPayload(
    opts.payloadDigest ?? opts.manifestDigest,
    opts.dockerReference,
    opts.annotations,
  );
  const payloadDigest = computeDigest(payload);
  const layers = [...(opts.existingLayers ?? []), legacySignatureLayer(payload, payloadDigest, opts.key)];
  const config = legacySignatureConfig(layers);
  const configDigest = computeDigest(config);
  const manifest = legacySignatureManifest(layers, config, configDigest);
  return {
    tag: legacySignatureTag(parseDigest(opts.manifestDigest)),
    payload,
    payloadDigest,
    blobs: [
      { digest: payloadDigest, bytes: payload },
      { digest: configDigest, bytes: config },
    ],
    manifest,
    manifestDigest: computeDigest(manifest),
    manifestMediaType: MediaType.ociManifest,
  };
}

/** The layers of a `.sig` manifest (none when there is none). */
export function signatureLayersOf(sigManifest: Buffer | undefined): SignatureLayer[] {
  return sigManifest ? (JSON.parse(sigManifest.toString()) as { layers: SignatureLayer[] }).layers : [];
}

/**
 * Signs `digest` the legacy way and appends the signature to `<repository>:sha256-<hex>.sig` in a real
 * registry. `payloadDigest` signs a payload naming another digest (a copied signature).
 */
export async function signLegacy(opts: {
  writer: RegistryWriter;
  repository: string;
  digest: string;
  key: SigningKey;
  payloadDigest?: string;
  dockerReference?: string;
  annotations?: Readonly<Record<string, string>>;
}): Promise<{ sigManifestDigest: Digest }> {
  const tag = legacySignatureTag(parseDigest(opts.digest));
  const existing = await opts.writer.getManifest(opts.repository, tag, MediaType.ociManifest);
  const signature = createLegacySignature({
    manifestDigest: opts.digest,
    key: opts.key,
    dockerReference: opts.dockerReference,
    payloadDigest: opts.payloadDigest,
    existingLayers: signatureLayersOf(existing),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  });
  await pushArtifact(opts.writer, opts.repository, signature.tag, signature);
  return { sigManifestDigest: signature.manifestDigest };
}
