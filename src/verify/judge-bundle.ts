import { type Bundle, bundleFromJSON } from "@sigstore/bundle";
import { dsse } from "@sigstore/core";
import {
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX,
} from "./cosign-format.ts";
import { namesDigest, readStatement } from "./in-toto-statement.ts";
import type { Judgement } from "./judge-legacy-layer.ts";
import { quote } from "./quote.ts";
import { type PulledRepository, subjectRepositoryProblem } from "./signed-repository.ts";
import { orderKeysByHint } from "./trusted-key.ts";
import type { BundleEvidence, DigestString, TrustedKey } from "./types.ts";
import { verifySignatureBytes } from "./verify-signature-bytes.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One Sigstore bundle found as a referrer (cosign-formats.md §1.9). It must hold a DSSE envelope of an
 * in-toto statement whose signature (over PAE(payloadType, payload)) a trusted key verifies; only then
 * is the statement read: `_type` in-toto v1/v0.1, `predicateType` cosign's sign predicate (any other
 * predicate is an attestation: not-a-signature), and a subject naming `digest`. Transparency-log
 * entries, certificates and timestamps in the bundle are not used here (key-based policy).
 */
export function judgeBundle(
  evidence: BundleEvidence,
  digest: DigestString,
  keys: readonly TrustedKey[],
  repository?: PulledRepository,
): Judgement {
  if (
    evidence.artifactType !== undefined &&
    !evidence.artifactType.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX)
  ) {
    return { result: "not-a-signature", detail: `artifactType ${quote(evidence.artifactType)}` };
  }
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(utf8.decode(evidence.bundle)));
  } catch {
    return { result: "invalid", detail: "not a Sigstore bundle" };
  }
  const content = bundle.content;
  switch (content.$case) {
    case "messageSignature":
      return {
        result: "not-a-signature",
        detail: "a message-signature (blob) bundle, not an image signature",
      };
    case "dsseEnvelope":
      break;
    default:
      return unreachable(content);
  }
  const envelope = content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return { result: "invalid", detail: `DSSE payloadType ${quote(envelope.payloadType)}` };
  }
  const signature = envelope.signatures[0]?.sig;
  if (signature === undefined || signature.length === 0)
    return { result: "invalid", detail: "no DSSE signature" };
  const pae = dsse.preAuthEncoding(envelope.payloadType, envelope.payload);
  const key = orderKeysByHint(keys, hintOf(bundle)).find((candidate) =>
    verifySignatureBytes(candidate, pae, signature),
  );
  if (key === undefined) {
    return { result: "untrusted", detail: "no trusted key verifies the DSSE signature" };
  }
  const statement = readStatement(envelope.payload);
  if (typeof statement === "string") return { result: "invalid", detail: statement };
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    return {
      result: "not-a-signature",
      detail: `an attestation: predicateType ${quote(statement.predicateType)}`,
    };
  }
  if (!namesDigest(statement.subjects, digest)) {
    return { result: "digest-mismatch", key, detail: "no statement subject names the digest" };
  }
  if (repository) {
    const problem = subjectRepositoryProblem(statement.subjects, repository);
    if (problem) return { result: "repository-mismatch", key, detail: problem };
  }
  return { result: "verified", key };
}

/** The bundle's key hint (base64 sha256 of the signer's SPKI), "" when it has none. */
function hintOf(bundle: Bundle): string {
  const material = bundle.verificationMaterial.content;
  return material.$case === "publicKey" ? material.publicKey.hint : "";
}

function unreachable(value: never): never {
  throw new Error(`unhandled bundle content ${JSON.stringify(value)}`);
}
