import type { Digest } from "../oci/index.ts";
import { OciError } from "../oci/index.ts";
import type { DenyReason } from "../verify/index.ts";

// The OCI errors of pullgate's own refusals, in words an operator can act on.

export function denied(
  project: string,
  repository: string,
  digest: Digest,
  reason: DenyReason,
  detail: string | undefined,
  /** A denial answered from the verdict cache: when it was decided, and until when it holds. */
  cached?: { decidedAt: number; expiresAt: number },
): OciError {
  const image = `${repository}@${digest}`;
  const found = detail ? `: ${detail}` : "";
  const why: Record<DenyReason, string> = {
    NO_SIGNATURE: `${image} has no signature`,
    UNTRUSTED_SIGNATURE: `${image} has signatures, but none is by a key or keyless identity the project trusts${found}`,
    DIGEST_MISMATCH: `${image} carries a valid signature by a trusted signer, but for a different digest${found}`,
    REPOSITORY_MISMATCH: `${image} carries a valid signature by a trusted signer for this digest, but naming another repository (the project requires matchRepository)`,
    NOT_ENOUGH_SIGNERS: `${image} is signed by trusted signers, but not by enough of them${found}`,
    MISSING_ATTESTATION: `${image} lacks an attestation the project requires${found}`,
    ATTESTATION_REJECTED: `${image} has the attestation the project requires, but it does not meet the project's condition${found}`,
    AMBIGUOUS_MANIFEST: `${image} is ambiguous JSON that container clients could read differently from pullgate (${detail ?? "ambiguous"}); it is refused whatever signs it`,
  };
  const when = cached
    ? ` (a verdict cached at ${iso(cached.decidedAt)}: it is checked again after ${iso(cached.expiresAt)}, or at once after a dry run that allows it or DELETE /admin/v1/cache/${digest})`
    : "";
  return new OciError("DENIED", `project "${project}" admits only signed images: ${why[reason]}${when}`, {
    detail: {
      project,
      repository,
      digest,
      reason,
      ...(cached ? { cachedUntil: iso(cached.expiresAt) } : {}),
    },
  });
}

export function blobNotAdmitted(project: string, repository: string, digest: Digest): OciError {
  return new OciError(
    "DENIED",
    `project "${project}" serves only blobs of images it admitted: ${repository} blob ${digest} is not listed by an admitted manifest (pull the image's manifest through pullgate first)`,
    { detail: { project, repository, digest, reason: "BLOB_NOT_ADMITTED" } },
  );
}

export function signatureUnavailable(
  project: string,
  repository: string,
  digest: Digest,
  /** Set when the project's own keys are the cause (a KMS key not fetched): which, and why. */
  keys?: string,
): OciError {
  const why = keys
    ? `${repository}@${digest} cannot be judged: the project's ${keys}`
    : `the signatures of ${repository}@${digest} could not be looked up (upstream error)`;
  return new OciError(
    "UNAVAILABLE",
    `project "${project}" admits only signed images, and ${why}; try again`,
    { detail: { project, repository, digest, reason: "SIGNATURE_UNAVAILABLE" } },
  );
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
