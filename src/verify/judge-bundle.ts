import { type Bundle, bundleFromJSON, type Envelope } from "@sigstore/bundle";
import {
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX,
} from "./cosign-format.ts";
import { annotationProblem, namesDigest, readStatement, subjectAnnotations } from "./in-toto-statement.ts";
import type { CertificateBudget, Judgement, JudgeOptions } from "./judge-legacy-layer.ts";
import { quote } from "./quote.ts";
import { type PulledRepository, subjectRepositoryProblem } from "./signed-repository.ts";
import type { BundleEvidence, DigestString } from "./types.ts";
import {
  type Authority,
  type AuthorityVerification,
  verifyAgainstAuthorities,
} from "./verify-authorities.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One Sigstore bundle found as a referrer (cosign-formats.md §1.9). It must hold a DSSE envelope of an
 * in-toto statement that an authority the project trusts stands behind (verify-authorities.ts: a key
 * with its log rule, or a keyless identity with its certificate, SCTs and log entries, all against
 * the authority's trusted root); only then is the statement read: `_type` in-toto v1/v0.1,
 * `predicateType` cosign's sign predicate (any other predicate is an attestation: not-a-signature),
 * and a subject naming `digest`.
 */
export function judgeBundle(
  evidence: BundleEvidence,
  digest: DigestString,
  authorities: readonly Authority[],
  repository?: PulledRepository,
  budget: CertificateBudget = { remaining: Number.POSITIVE_INFINITY },
  options: JudgeOptions = {},
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
  return judgeDsseBundle(bundle, content.dsseEnvelope, digest, authorities, repository, budget, options);
}

/**
 * A bundle whose content is a DSSE envelope (a referrer's, or a legacy `.att` layer converted): an
 * in-toto payload type and a signature, the signer verified against the authorities (a keyless one
 * draws on `budget`), then the statement's claims (judgeStatement).
 */
export function judgeDsseBundle(
  bundle: Bundle,
  envelope: Envelope,
  digest: DigestString,
  authorities: readonly Authority[],
  repository: PulledRepository | undefined,
  budget: CertificateBudget,
  options: JudgeOptions,
): Judgement {
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return { result: "invalid", detail: `DSSE payloadType ${quote(envelope.payloadType)}` };
  }
  const signature = envelope.signatures[0]?.sig;
  if (signature === undefined || signature.length === 0)
    return { result: "invalid", detail: "no DSSE signature" };
  if (bundle.verificationMaterial.content.$case !== "publicKey") {
    if (budget.remaining <= 0)
      return { result: "not-considered", detail: "over the cap of keyless verifications for one decision" };
    budget.remaining -= 1;
  }
  const r = verifyAgainstAuthorities(bundle, undefined, authorities, options.now);
  if (!r.ok)
    return {
      result: "untrusted",
      detail: r.detail,
      ...(r.certificate ? { certificate: r.certificate } : {}),
    };
  return judgeStatement(envelope.payload, digest, r, repository, options);
}

/**
 * The claims of a DSSE in-toto statement an authority stands behind (`who`): cosign's sign predicate
 * is a signature (a subject names `digest`; with matchRepository a subject names the repository; the
 * policy's annotations on that subject); any other predicate is an attestation, which carries its
 * statement (verified when a subject names `digest`).
 */
export function judgeStatement(
  payload: Uint8Array,
  digest: DigestString,
  verified: Extract<AuthorityVerification, { ok: true }>,
  repository: PulledRepository | undefined,
  options: JudgeOptions,
): Judgement {
  const who = {
    authority: verified.authority,
    ...(verified.certificate ? { certificate: verified.certificate } : {}),
    ...(verified.logEntry ? { logEntry: verified.logEntry } : {}),
  };
  const statement = readStatement(payload);
  if (typeof statement === "string") return { result: "invalid", detail: statement };
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    return namesDigest(statement.subjects, digest)
      ? { result: "verified", ...who, attestation: statement }
      : {
          result: "digest-mismatch",
          ...who,
          attestation: statement,
          detail: "no statement subject names the digest",
        };
  }
  if (!namesDigest(statement.subjects, digest)) {
    return { result: "digest-mismatch", ...who, detail: "no statement subject names the digest" };
  }
  if (repository) {
    const problem = subjectRepositoryProblem(statement.subjects, repository);
    if (problem) return { result: "repository-mismatch", ...who, detail: problem };
  }
  const unannotated = annotationProblem(
    options.annotations ?? {},
    subjectAnnotations(statement.subjects, digest),
  );
  if (unannotated) return { result: "annotation-mismatch", ...who, detail: unannotated };
  return { result: "verified", ...who };
}

function unreachable(value: never): never {
  throw new Error(`unhandled bundle content ${JSON.stringify(value)}`);
}
