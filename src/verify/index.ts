// Public surface of verify/: pure cosign / Sigstore verification (data in, verdict out).

export {
  BUNDLE_PREDICATE_ANNOTATION,
  BUNDLE_V03_MEDIA_TYPE,
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_CHAIN_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_SIGN_PREDICATE,
  COSIGN_SIGNATURE_ANNOTATION,
  DSSE_ENVELOPE_MEDIA_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  MAX_ATTESTATION_LAYERS,
  MAX_BUNDLES,
  MAX_KEYLESS_CHECKS,
  MAX_LEGACY_LAYERS,
  MAX_SIGNATURE_CHECKS,
  SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX,
  SIMPLESIGNING_MEDIA_TYPE,
} from "./cosign-format.ts";
export { judgeSignatures } from "./judge-signatures.ts";
export { legacyLayerBundle } from "./legacy-bundle.ts";
export {
  type AttestationRequirement,
  type AttestationRequirementSpec,
  compileRequirements,
  mayMeetRequirements,
  NO_REQUIREMENTS,
  type Requirements,
  type RequirementsSpec,
} from "./policy-requirements.ts";
export { rekorBodySigners } from "./rekor-body-signer.ts";
export {
  type ArtifactBlobKind,
  type ArtifactClaim,
  checkArtifactBlob,
  readsAsTar,
  signatureArtifactClaim,
} from "./signature-artifact.ts";
export { legacyAttestationTag, legacySignatureTag, referrersTagSchemaTag } from "./signature-tags.ts";
export {
  type PulledRepository,
  sameRepository,
  toSignedRepository,
} from "./signed-repository.ts";
export {
  type CertificateSigner,
  certificateSigner,
  compileSignerIdentity,
  FULCIO_EXTENSIONS,
  matchesIdentity,
  type SignerIdentity,
  type SignerIdentitySpec,
} from "./signer-identity.ts";
export { parseTrustRoot, TrustRoot, TrustRootError } from "./trust-root.ts";
export { keyHint, parseTrustedKey } from "./trusted-key.ts";
export * from "./types.ts";
export {
  type Authority,
  type AuthorityVerification,
  describeCertificate,
  type KeyAuthority,
  type KeylessAuthority,
  type LogEntryInfo,
  type TransparencyLogMode,
  verifyAgainstAuthorities,
} from "./verify-authorities.ts";
export { verifySignatureBytes } from "./verify-signature-bytes.ts";
