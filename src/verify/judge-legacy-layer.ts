import { createHash } from "node:crypto";
import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_RFC3161_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
  SIMPLESIGNING_MEDIA_TYPE,
  SIMPLESIGNING_PAYLOAD_TYPE,
} from "./cosign-format.ts";
import { decodeBase64 } from "./decode-base64.ts";
import { annotationProblem, type InTotoStatement } from "./in-toto-statement.ts";
import { field } from "./json-field.ts";
import { legacyLayerBundle } from "./legacy-bundle.ts";
import { quote } from "./quote.ts";
import { type PulledRepository, payloadRepositoryProblem } from "./signed-repository.ts";
import type { CertificateSigner } from "./signer-identity.ts";
import type { DigestString, LegacyLayerEvidence, SignatureResult } from "./types.ts";
import {
  type Authority,
  type KeyAuthority,
  type LogEntryInfo,
  validityProblem,
  verifyAgainstAuthorities,
} from "./verify-authorities.ts";
import { verifySignatureBytes } from "./verify-signature-bytes.ts";

export interface Judgement {
  result: SignatureResult;
  /** Set for an attestation: its verified statement (verified / digest-mismatch). */
  attestation?: InTotoStatement;
  /** The key or keyless identity whose signature verified (verified / digest-mismatch / repository-mismatch). */
  authority?: Authority;
  /** A keyless signer's certificate (also when it did not count: the message says who it was). */
  certificate?: CertificateSigner;
  /** The transparency-log entry that was verified with it. */
  logEntry?: LogEntryInfo;
  detail?: string;
}

/** Keyless verifications (about 7 ms of CPU each) one decision may run; the rest are not considered. */
export interface CertificateBudget {
  remaining: number;
}

/** What a policy asks of each signature beyond its signer, and the time of judging. */
export interface JudgeOptions {
  /** `cosign verify -a`: annotations every counted signature must carry. */
  annotations?: Readonly<Record<string, string>> | undefined;
  /** Epoch ms, for key validity windows when a signature has no verified time. */
  now?: number | undefined;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One layer of a legacy `.sig` manifest (cosign-formats.md §1.2, §1.3, §1.5). The signature is checked
 * first, over the exact payload bytes, by an authority the project trusts: a key (with its log rule:
 * a `dev.sigstore.cosign/bundle` SET from a log of its root, naming the key), or a keyless identity
 * (the `dev.sigstore.cosign/certificate` leaf, chained to its root's Fulcio CAs at the logged time,
 * with its SCT and SET, naming that identity). Only a payload an authority signed is read: its
 * `critical.type` must be the simple-signing type and `critical.image["docker-manifest-digest"]` must
 * be exactly `digest`. `docker-reference` is ignored, as cosign does, unless `repository` is given
 * (the policy's matchRepository): then it must name that repository.
 */
export function judgeLegacyLayer(
  layer: LegacyLayerEvidence,
  digest: DigestString,
  authorities: readonly Authority[],
  repository?: PulledRepository,
  budget: CertificateBudget = { remaining: Number.POSITIVE_INFINITY },
  options: JudgeOptions = {},
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
  const signer = signerOf(layer, payload, encoded, signature, authorities, budget, options.now);
  if (signer.result !== "verified") return signer;
  const { result: _verified, ...who } = signer;
  const claims = readClaims(payload);
  if (typeof claims === "string") return { result: "invalid", detail: claims };
  if (claims.manifestDigest !== digest) {
    return { result: "digest-mismatch", ...who, detail: `payload names ${quote(claims.manifestDigest)}` };
  }
  if (repository) {
    const problem = payloadRepositoryProblem(claims.payload, repository);
    if (problem) return { result: "repository-mismatch", ...who, detail: problem };
  }
  const unannotated = annotationProblem(options.annotations ?? {}, field(claims.payload, "optional"));
  if (unannotated) return { result: "annotation-mismatch", ...who, detail: unannotated };
  return { result: "verified", ...who };
}

/** Who stands behind the signature: "verified" with the authority, else why nobody the project trusts does. */
function signerOf(
  layer: LegacyLayerEvidence,
  payload: Uint8Array,
  encoded: string,
  signature: Uint8Array,
  authorities: readonly Authority[],
  budget: CertificateBudget,
  now: number | undefined,
): Judgement {
  const annotated = (name: string) => (layer.annotations[name] ?? "") !== "";
  const certified = annotated(COSIGN_CERTIFICATE_ANNOTATION);
  if (!certified && !annotated(COSIGN_REKOR_BUNDLE_ANNOTATION) && !annotated(COSIGN_RFC3161_ANNOTATION)) {
    // A plain key signature (made without Rekor): one signature check per key, no log to verify.
    const keys = authorities.filter((a): a is KeyAuthority => a.kind === "key");
    const signedBy = keys.filter((a) => verifySignatureBytes(a.key, payload, signature));
    const unlogged = signedBy.filter((a) => a.transparencyLog === "optional");
    const accepted = unlogged.find((a) => validityProblem(a, [], now) === undefined);
    if (accepted) return { result: "verified", authority: accepted };
    if (unlogged[0])
      return {
        result: "untrusted",
        detail: `signed by key ${unlogged[0].name}, but ${validityProblem(unlogged[0], [], now)}`,
      };
    if (signedBy[0])
      return {
        result: "untrusted",
        detail: `signed by key ${signedBy[0].name} without a transparency-log entry, and the key requires one (transparencyLog: required; set optional for signatures made without Rekor)`,
      };
    return {
      result: "untrusted",
      detail:
        keys.length > 0
          ? "no trusted key verifies the signature over the payload"
          : "signed with a key, and the project trusts no key",
    };
  }
  if (certified) {
    if (budget.remaining <= 0)
      return { result: "not-considered", detail: "over the cap of keyless verifications for one decision" };
    budget.remaining -= 1;
  }
  const sha = createHash("sha256").update(payload).digest();
  const bundle = legacyLayerBundle(encoded, layer.annotations, sha);
  if (typeof bundle === "string") return { result: "invalid", detail: bundle };
  const r = verifyAgainstAuthorities(bundle, payload, authorities, now);
  if (!r.ok)
    return {
      result: "untrusted",
      detail: r.detail,
      ...(r.certificate ? { certificate: r.certificate } : {}),
    };
  return {
    result: "verified",
    authority: r.authority,
    ...(r.certificate ? { certificate: r.certificate } : {}),
    ...(r.logEntry ? { logEntry: r.logEntry } : {}),
  };
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
