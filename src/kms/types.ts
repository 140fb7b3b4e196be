/**
 * kms/: public keys held in a cloud KMS, referenced as cosign references them (`awskms://…`,
 * `gcpkms://…`), resolved to PEM through the providers' SDKs and kept fresh by the KmsKeyring.
 * No private key material is ever asked for: only GetPublicKey / getPublicKey.
 */

/** `awskms://[ENDPOINT]/KEY` in one of the four forms cosign accepts. */
export interface AwsKmsReference {
  provider: "awskms";
  /** The reference exactly as written. */
  uri: string;
  /** host[:port] of a non-default KMS endpoint (spoken to over HTTPS, as cosign does); undefined: the SDK's. */
  endpoint: string | undefined;
  /** What GetPublicKey is asked for: a key id, `alias/NAME`, or a key or alias ARN. */
  keyId: string;
  /** The ARN's region (ARN forms only); otherwise the SDK's region chain decides. */
  region: string | undefined;
  form: "key-id" | "key-arn" | "alias" | "alias-arn";
}

/** `gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N` (one fixed version). */
export interface GcpKmsReference {
  provider: "gcpkms";
  /** The reference exactly as written (`…/versions/N`, cosign's older spelling, is accepted too). */
  uri: string;
  /** The CryptoKeyVersion resource name: `projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`. */
  versionName: string;
  project: string;
  location: string;
  keyRing: string;
  cryptoKey: string;
  version: string;
}

export type KmsReference = AwsKmsReference | GcpKmsReference;

/** A public key as a KMS returned it, checked by verify/'s `parseTrustedKey`. */
export interface KmsPublicKey {
  /** Canonical PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), re-encoded from the key itself. */
  pem: string;
  /** "sha256:<hex>" of the DER SPKI, as `parseTrustedKey` computes it. */
  fingerprint: string;
  /**
   * The signing algorithms the KMS says the key signs with (AWS `SigningAlgorithms`, Google's
   * `algorithm`), e.g. ["ECDSA_SHA_256"], ["RSA_SIGN_PSS_3072_SHA256"]. For the operator's eyes and for
   * verify/, which decides what it can check.
   */
  signingAlgorithms: readonly string[];
}

export type KmsErrorCode =
  /** The key (version) does not exist (or the alias points nowhere). */
  | "NOT_FOUND"
  /** The credentials were accepted but may not read this key's public key. */
  | "PERMISSION_DENIED"
  /** The KMS rejected the credentials (unknown, expired, wrongly signed). */
  | "UNAUTHENTICATED"
  /** No credentials were found in the provider's standard chain. */
  | "NO_CREDENTIALS"
  /** AWS: no region in the reference (an ARN) nor in the SDK's chain (AWS_REGION, config file). */
  | "NO_REGION"
  /** The key exists but cannot be used now (disabled, pending deletion, destroyed version). */
  | "KEY_STATE"
  /** Not an asymmetric signing key (encryption key, symmetric key, MAC key), or a kind verify/ refuses. */
  | "WRONG_KEY"
  /** The answer is not what was asked for: no key, not a public key, bad CRC32C, another key's name. */
  | "BAD_RESPONSE"
  /** The endpoint could not be reached (connection refused, DNS, TLS). */
  | "UNREACHABLE"
  /** The KMS answered that it is unavailable or throttling (5xx, throttling, internal errors). */
  | "UNAVAILABLE"
  /** No answer within the deadline. */
  | "TIMEOUT"
  /** Anything else (the words name the error's type, never its message). */
  | "FAILED";

/**
 * Why a public key could not be fetched. The message is for operators: it starts with the reference
 * and carries error codes and names only, never an SDK's or server's message text (which may name
 * principals, accounts or request ids) and never credentials.
 */
export class KmsError extends Error {
  readonly code: KmsErrorCode;
  readonly uri: string;
  constructor(code: KmsErrorCode, uri: string, words: string, options?: { cause?: unknown }) {
    super(`${uri}: ${words}`, options);
    this.name = "KmsError";
    this.code = code;
    this.uri = uri;
  }
}

/** Resolves a reference to its public key; rejects with a KmsError. Honours `signal` (deadline, stop). */
export type FetchKmsPublicKey = (reference: KmsReference, signal: AbortSignal) => Promise<KmsPublicKey>;

/** One provider's adapter (AWS, Google): loads its SDK on first use; close() ends its clients. */
export interface KmsProvider {
  fetchPublicKey: FetchKmsPublicKey;
  close(): void;
}

/** The default deadline of one public key fetch (connection, credentials, answer). */
export const DEFAULT_KMS_TIMEOUT_MS = 10_000;
