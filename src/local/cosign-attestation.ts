import { sign } from "node:crypto";
import { computeDigest, type Digest, MediaType, parseDigest } from "../oci/index.ts";
import {
  COSIGN_SIGNATURE_ANNOTATION,
  DSSE_ENVELOPE_MEDIA_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  legacyAttestationTag,
} from "../verify/index.ts";
import {
  legacySignatureConfig,
  type SignatureLayer,
  type SigningKey,
  signatureLayersOf,
} from "./cosign-signing.ts";
import { pushArtifact, type RegistryWriter } from "./registry-push.ts";
import { ociImageManifest } from "./tiny-image.ts";

/**
 * What `cosign attest` writes in its legacy layout: an in-toto statement about the image, in a DSSE
 * envelope signed over its pre-authentication encoding, as a layer of the `sha256-<hex>.att` manifest
 * (media type `application/vnd.dsse.envelope.v1+json`, annotations `predicateType` and an empty
 * signature annotation; a keyless one adds the certificate and Rekor annotations).
 */

/** An in-toto statement (v0.1, as cosign's legacy attest writes) about `digest`. */
export function inTotoStatement(opts: {
  digest: string;
  predicateType: string;
  predicate: unknown;
  /** The subject's name (cosign: the repository). */
  name?: string;
  statementType?: string;
}): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: opts.statementType ?? "https://in-toto.io/Statement/v0.1",
      predicateType: opts.predicateType,
      subject: [
        { name: opts.name ?? "registry.test/repo", digest: { sha256: opts.digest.slice("sha256:".length) } },
      ],
      predicate: opts.predicate,
    }),
  );
}

/**
 * DSSE's pre-authentication encoding (what a DSSE signature signs), for every test signer (bundles,
 * `.att` layers, the private Sigstore). Written here on purpose, not taken from @sigstore/core: the
 * signers must not share the verifier's library, or they would share its misreadings.
 */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    Buffer.from(payload),
  ]);
}

/** A DSSE envelope (JSON bytes) of `statement`, signed with `key`. */
export function dsseEnvelope(statement: Uint8Array, key: SigningKey): Buffer {
  const sig = sign("sha256", preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement), key.privateKey);
  return Buffer.from(
    JSON.stringify({
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      payload: Buffer.from(statement).toString("base64"),
      signatures: [{ keyid: "", sig: sig.toString("base64") }],
    }),
  );
}

/**
 * Appends one attestation layer (a DSSE envelope, with extra annotations for keyless ones) to
 * `<repository>:sha256-<hex>.att` in a real registry, as `cosign attest` does.
 */
export async function attestLegacy(opts: {
  writer: RegistryWriter;
  repository: string;
  digest: string;
  predicateType: string;
  /** The envelope blob (see dsseEnvelope). */
  envelope: Buffer;
  /** Certificate and Rekor annotations of a keyless or logged attestation. */
  annotations?: Readonly<Record<string, string>>;
}): Promise<{ attManifestDigest: Digest }> {
  const tag = legacyAttestationTag(parseDigest(opts.digest));
  const existing = await opts.writer.getManifest(opts.repository, tag, MediaType.ociManifest);
  const envelopeDigest = computeDigest(opts.envelope);
  const layer: SignatureLayer = {
    mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
    size: opts.envelope.length,
    digest: envelopeDigest,
    annotations: {
      [COSIGN_SIGNATURE_ANNOTATION]: "",
      predicateType: opts.predicateType,
      ...opts.annotations,
    },
  };
  const layers = [...signatureLayersOf(existing), layer];
  const config = legacySignatureConfig(layers);
  const configDigest = computeDigest(config);
  const manifest = ociImageManifest(
    { mediaType: MediaType.ociConfig, size: config.length, digest: configDigest },
    layers,
  );
  const manifestDigest = computeDigest(manifest);
  await pushArtifact(opts.writer, opts.repository, tag, {
    blobs: [
      { digest: envelopeDigest, bytes: opts.envelope },
      { digest: configDigest, bytes: config },
    ],
    manifest,
    manifestDigest,
    manifestMediaType: MediaType.ociManifest,
  });
  return { attManifestDigest: manifestDigest };
}
