import type { KeyObject } from "node:crypto";

/**
 * verify/ is pure: data in, Verdict out. No network, Redis, clock or env access; pull/ gathers the
 * evidence (signature manifests, payload blobs, bundles) and hands it over with the trusted keys.
 * Policy ("who may sign": which keys a project trusts) is separate from cryptography ("is it valid").
 */

/** sha256 or sha512 digest string, e.g. "sha256:<64 hex>". */
export type DigestString = string;

export type KeyAlgorithm = "ecdsa-p256" | "ecdsa-p384" | "ecdsa-p521" | "rsa" | "ed25519";

export interface TrustedKey {
  name: string;
  /** "sha256:<hex>" of the DER SubjectPublicKeyInfo: stable, printable, safe to show. */
  fingerprint: string;
  algorithm: KeyAlgorithm;
  /** RSA modulus bits, EC curve bits, 256 for Ed25519. */
  bits: number;
  key: KeyObject;
}

/** What a `.sig` manifest (cosign's legacy tag-based layout) holds, one entry per layer. */
export interface LegacyLayerEvidence {
  mediaType: string;
  /** The layer descriptor's digest (the payload blob). */
  digest: DigestString;
  annotations: Readonly<Record<string, string>>;
  /**
   * The payload blob bytes, already checked by pull/ to hash to `digest` and to fit the size cap;
   * undefined when pull/ did not fetch it (not a simplesigning layer, or over the cap).
   */
  payload: Uint8Array | undefined;
}

export interface LegacySignatureEvidence {
  format: "cosign-legacy";
  /** Digest of the `.sig` manifest the layers came from (for reports). */
  source: DigestString;
  layers: readonly LegacyLayerEvidence[];
}

/** One Sigstore bundle found as a referrer (referrers API or the referrers tag schema). */
export interface BundleEvidence {
  format: "sigstore-bundle";
  /** Digest of the referrer manifest that carried the bundle (for reports). */
  source: DigestString;
  /** The referrer manifest's artifactType (e.g. application/vnd.dev.sigstore.bundle.v0.3+json). */
  artifactType: string | undefined;
  /** The bundle JSON bytes (the referrer's single layer), digest-checked and size-capped by pull/. */
  bundle: Uint8Array;
}

/** What a `.att` manifest (cosign's legacy attestations) holds, one entry per layer. */
export interface LegacyAttestationEvidence {
  format: "cosign-legacy-attestation";
  /** Digest of the `.att` manifest the layers came from (for reports). */
  source: DigestString;
  /** `payload`: the DSSE envelope blob, digest-checked and size-capped by pull/. */
  layers: readonly LegacyLayerEvidence[];
}

export type SignatureEvidence = LegacySignatureEvidence | LegacyAttestationEvidence | BundleEvidence;

/** The formats a candidate can come in (reports name it). */
export type EvidenceFormat = SignatureEvidence["format"];

export type DenyReason =
  | "NO_SIGNATURE"
  | "UNTRUSTED_SIGNATURE"
  | "DIGEST_MISMATCH"
  /** The manifest's JSON can be read differently by Go clients and by pullgate (decided before any signature). */
  | "AMBIGUOUS_MANIFEST"
  /** matchRepository: a trusted key signed the digest, but for another repository. */
  | "REPOSITORY_MISMATCH"
  /** Trusted signers signed, but fewer than `threshold`, or a required signer is missing. */
  | "NOT_ENOUGH_SIGNERS"
  /** A required attestation: no verified attestation of its type by a signer allowed for it. */
  | "MISSING_ATTESTATION"
  /** A required attestation was found and verified, but its condition is false (or fails). */
  | "ATTESTATION_REJECTED";

/** What was concluded about one candidate signature (a legacy layer or a bundle). */
export type SignatureResult =
  /** valid signature by a trusted key, over a payload naming the digest being judged */
  | "verified"
  /** valid signature by a trusted key, but the payload names another digest (or no matching subject) */
  | "digest-mismatch"
  /** matchRepository: valid signature by a trusted key for this digest, but naming another repository */
  | "repository-mismatch"
  /** a signature that no trusted key verifies (unknown key, bad signature bytes, tampered payload) */
  | "untrusted"
  /** valid signature by a trusted signer for this digest, but without the annotations the policy requires */
  | "annotation-mismatch"
  /** shaped like a signature but malformed (bad base64, unparsable payload/bundle, wrong payload type) */
  | "invalid"
  /** an artifact that is not an image signature (other layer media type, an attestation's predicate) */
  | "not-a-signature"
  /**
   * not looked at: over the per-call cap (MAX_LEGACY_LAYERS legacy layers, MAX_BUNDLES bundles). One
   * report stands for all the skipped candidates of one `.sig` manifest (or for all skipped bundles).
   */
  | "not-considered";

export interface SignatureReport {
  format: EvidenceFormat;
  /** Set for an attestation (an in-toto statement with another predicate than cosign's signature). */
  kind?: "attestation";
  /** An attestation's predicateType (from its verified statement). */
  predicateType?: string;
  /** For a verified attestation: each required attestation of its type, and what it made of it. */
  requirements?: readonly AttestationCheck[];
  /** Manifest digest the candidate came from, and for legacy layers the payload digest. */
  source: DigestString;
  payloadDigest?: DigestString;
  result: SignatureResult;
  /**
   * Name of the key or keyless identity that verified it (verified / digest-mismatch), and for a key
   * its fingerprint.
   */
  key?: string;
  keyFingerprint?: string;
  /** A keyless signer's certificate subject and OIDC issuer (also when it did not count). */
  subject?: string | undefined;
  issuer?: string | undefined;
  /** The transparency-log entry verified with it. */
  logEntry?: { logId: string; logIndex: string; integratedTime: string | undefined };
  /** Short human-readable explanation; never secret material. */
  detail?: string;
}

/** What one required attestation made of one verified attestation of its type. */
export interface AttestationCheck {
  /** The requirement's name (policy `attestations[].name`). */
  attestation: string;
  /** met: signer allowed and condition true; rejected: condition false or failed; signer-not-allowed. */
  result: "met" | "rejected" | "signer-not-allowed";
  detail?: string;
}

export type Verdict =
  | {
      status: "verified";
      digest: DigestString;
      format: EvidenceFormat;
      /** The first counted signer's name (a key's or keyless identity's). */
      key: string;
      /** Every distinct signer (by name) whose signature counted. */
      signers?: readonly string[];
      /** For a key. */
      keyFingerprint?: string;
      signatures: readonly SignatureReport[];
    }
  | {
      status: "denied";
      digest: DigestString;
      reason: DenyReason;
      /** What was found and why it did not count (the report that decided the reason). */
      detail?: string;
      signatures: readonly SignatureReport[];
    };

export type VerificationErrorCode = "KEY_INVALID" | "KEY_UNSUPPORTED" | "KEY_TOO_WEAK";

export class VerificationError extends Error {
  readonly code: VerificationErrorCode;
  constructor(code: VerificationErrorCode, message: string) {
    super(message);
    this.name = "VerificationError";
    this.code = code;
  }
}
