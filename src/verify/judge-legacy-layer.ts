import {
  COSIGN_SIGNATURE_ANNOTATION,
  SIMPLESIGNING_MEDIA_TYPE,
  SIMPLESIGNING_PAYLOAD_TYPE,
} from "./cosign-format.ts";
import { decodeBase64 } from "./decode-base64.ts";
import { field } from "./json-field.ts";
import { quote } from "./quote.ts";
import { type PulledRepository, payloadRepositoryProblem } from "./signed-repository.ts";
import type { DigestString, LegacyLayerEvidence, SignatureResult, TrustedKey } from "./types.ts";
import { verifySignatureBytes } from "./verify-signature-bytes.ts";

export interface Judgement {
  result: SignatureResult;
  /** The trusted key whose signature verified (verified / digest-mismatch). */
  key?: TrustedKey;
  detail?: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One layer of a legacy `.sig` manifest (cosign-formats.md §1.2, §1.3, §1.5). The signature is checked
 * first, over the exact payload bytes; only a payload a trusted key signed is read: its
 * `critical.type` must be the simple-signing type and `critical.image["docker-manifest-digest"]` must
 * be exactly `digest`. `docker-reference` is ignored, as cosign does, unless `repository` is given
 * (the policy's matchRepository): then it must name that repository.
 */
export function judgeLegacyLayer(
  layer: LegacyLayerEvidence,
  digest: DigestString,
  keys: readonly TrustedKey[],
  repository?: PulledRepository,
): Judgement {
  if (layer.mediaType !== SIMPLESIGNING_MEDIA_TYPE) {
    return { result: "not-a-signature", detail: `layer media type ${quote(layer.mediaType)}` };
  }
  const encoded = layer.annotations[COSIGN_SIGNATURE_ANNOTATION];
  if (encoded === undefined || encoded === "") {
    return { result: "invalid", detail: `no ${COSIGN_SIGNATURE_ANNOTATION} annotation` };
  }
  const signature = decodeBase64(encoded);
  if (signature === undefined || signature.length === 0) {
    return { result: "invalid", detail: "signature annotation is not base64" };
  }
  if (layer.payload === undefined) {
    return { result: "invalid", detail: "payload blob not fetched (missing or over the size cap)" };
  }
  const payload = layer.payload;
  const key = keys.find((candidate) => verifySignatureBytes(candidate, payload, signature));
  if (key === undefined) {
    return { result: "untrusted", detail: "no trusted key verifies the signature over the payload" };
  }
  const claims = readClaims(payload);
  if (typeof claims === "string") return { result: "invalid", detail: claims };
  if (claims.manifestDigest !== digest) {
    return { result: "digest-mismatch", key, detail: `payload names ${quote(claims.manifestDigest)}` };
  }
  if (repository) {
    const problem = payloadRepositoryProblem(claims.payload, repository);
    if (problem) return { result: "repository-mismatch", key, detail: problem };
  }
  return { result: "verified", key };
}

/** The signed claims, or why the payload is not a simple-signing payload. */
function readClaims(payload: Uint8Array): { manifestDigest: string; payload: unknown } | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(payload));
  } catch {
    return "payload is not JSON";
  }
  const critical = field(parsed, "critical");
  const type = field(critical, "type");
  if (type !== SIMPLESIGNING_PAYLOAD_TYPE) {
    return `payload critical.type is ${typeof type === "string" ? quote(type) : "missing"}`;
  }
  const manifestDigest = field(field(critical, "image"), "docker-manifest-digest");
  if (typeof manifestDigest !== "string") return "payload has no critical.image.docker-manifest-digest";
  return { manifestDigest, payload: parsed };
}
