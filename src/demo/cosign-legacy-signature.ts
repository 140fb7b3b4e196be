import { type KeyObject, sign } from "node:crypto";
import { computeDigest, type Digest, MediaType } from "../oci/index.ts";
import {
  COSIGN_SIGNATURE_ANNOTATION,
  legacySignatureTag,
  SIMPLESIGNING_MEDIA_TYPE,
} from "../verify/index.ts";
import type { BuiltArtifact } from "./tiny-image.ts";

/**
 * What `cosign sign --key` writes in its legacy layout, for one image digest: the simple-signing
 * payload as a blob, an image manifest under the tag `sha256-<hex>.sig` whose one layer is that payload
 * with the base64 signature (ECDSA over SHA-256 of the payload bytes) in the cosign annotation, and
 * cosign's dummy config (diff_ids = the payload digests).
 */

export interface LegacySignature extends BuiltArtifact {
  /** `sha256-<hex>.sig` */
  tag: string;
  payload: Buffer;
}

/** cosign's simple-signing payload (the exact bytes that are signed). */
export function createSimpleSigningPayload(manifestDigest: string, dockerReference: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": dockerReference },
        image: { "docker-manifest-digest": manifestDigest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
}

export function createLegacySignature(opts: {
  manifestDigest: Digest;
  /** The repository as the signer named it, e.g. "127.0.0.1:5000/demo/signed". */
  dockerReference: string;
  privateKey: KeyObject;
}): LegacySignature {
  const payload = createSimpleSigningPayload(opts.manifestDigest, opts.dockerReference);
  const payloadDigest = computeDigest(payload);
  const layer = {
    mediaType: SIMPLESIGNING_MEDIA_TYPE,
    size: payload.length,
    digest: payloadDigest,
    annotations: {
      [COSIGN_SIGNATURE_ANNOTATION]: sign("sha256", payload, opts.privateKey).toString("base64"),
    },
  };
  const config = Buffer.from(
    JSON.stringify({
      architecture: "",
      os: "",
      config: {},
      rootfs: { type: "layers", diff_ids: [payloadDigest] },
    }),
  );
  const configDigest = computeDigest(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        size: config.length,
        digest: configDigest,
      },
      layers: [layer],
    }),
  );
  return {
    tag: legacySignatureTag(opts.manifestDigest),
    payload,
    blobs: [
      { digest: payloadDigest, bytes: payload },
      { digest: configDigest, bytes: config },
    ],
    manifest,
    manifestDigest: computeDigest(manifest),
    manifestMediaType: MediaType.ociManifest,
  };
}
