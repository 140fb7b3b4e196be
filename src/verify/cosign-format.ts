/**
 * Names and limits of the cosign / Sigstore wire formats (docs/cosign-formats.md §1). pull/ uses them to
 * find signature artifacts; verify/ uses them to judge what it is handed.
 */

/** Media type of a legacy `.sig` layer: the layer blob is the simple-signing payload (§1.2, §1.3). */
export const SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";

/** Media type of a legacy `.att` layer: the layer blob is a DSSE envelope (§1.8). */
export const DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json";

/** Layer annotation holding base64 (std, padded) of the raw signature bytes over the payload blob. */
export const COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
/** Layer annotation holding the PEM leaf certificate of a keyless / `--certificate` signature. */
export const COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate";
/** Layer annotation holding the PEM chain (intermediates, then root) of that certificate. */
export const COSIGN_CHAIN_ANNOTATION = "dev.sigstore.cosign/chain";
/** Layer annotation holding the Rekor SET (`{"SignedEntryTimestamp","Payload"}` JSON, §1.6). */
export const COSIGN_REKOR_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle";

/** Every Sigstore bundle media type starts with this (…+json;version=0.1|0.2, ….v0.3+json). */
export const SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle";
/** What cosign v3 writes as referrer artifactType and layer media type (§1.9). */
export const BUNDLE_V03_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/** Annotation cosign v3 puts on a bundle referrer (and registries copy into referrers listings). */
export const BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType";

/** DSSE payloadType of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
/** in-toto statement `_type` values cosign writes (v1 for `sign`, v0.1 for legacy `attest`). */
export const IN_TOTO_STATEMENT_TYPES: readonly string[] = [
  "https://in-toto.io/Statement/v1",
  "https://in-toto.io/Statement/v0.1",
];
/** predicateType of a cosign v3 image *signature*; any other predicate is an attestation. */
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";

/** `critical.type` of a simple-signing payload. */
export const SIMPLESIGNING_PAYLOAD_TYPE = "cosign container image signature";

/** Legacy layers judged per call (cosign's own `.sig` cap is 1000 layers; real ones hold a few). */
export const MAX_LEGACY_LAYERS = 256;
/** Bundles judged per call. */
export const MAX_BUNDLES = 32;
/** Signature checks (candidate × trusted key) per call: bounds the CPU one lookup can cost. */
export const MAX_SIGNATURE_CHECKS = 1024;
/**
 * Keyless verifications (certificate chain, SCT, SET: about 7 ms of CPU each) one decision runs at
 * most; candidates beyond are not considered. cosign writes one per signer.
 */
export const MAX_KEYLESS_CHECKS = 16;
/** Legacy `.att` layers judged per call (bundles, attestations among them, count under MAX_BUNDLES). */
export const MAX_ATTESTATION_LAYERS = 32;

/** An RFC 3161 timestamp of the signature (`cosign sign --timestamp-server-url`), JSON `{SignedRFC3161Timestamp}`. */
export const COSIGN_RFC3161_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp";
