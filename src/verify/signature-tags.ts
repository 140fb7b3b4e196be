import { DIGEST_RE, type Digest } from "../oci/index.ts";

function splitDigest(digest: Digest): { algorithm: string; hex: string } {
  if (!DIGEST_RE.test(digest)) throw new TypeError(`not a digest: ${JSON.stringify(digest.slice(0, 140))}`);
  const [algorithm, hex] = digest.split(":") as [string, string];
  return { algorithm, hex };
}

/**
 * cosign's legacy signature tag for a manifest digest: `sha256:<hex>` → `sha256-<hex>.sig`
 * (sigstore/cosign pkg/oci/remote `SignatureTag`: `<alg>-<hex>.sig`, no truncation). For a sha512 digest
 * that is 139 characters, over the 128-character tag limit: no registry can hold it and cosign cannot
 * write it, so callers should not look it up. Throws TypeError for a string that is not a digest.
 */
export function legacySignatureTag(digest: Digest): string {
  const { algorithm, hex } = splitDigest(digest);
  return `${algorithm}-${hex}.sig`;
}

/** cosign's legacy attestation tag: `sha256:<hex>` → `sha256-<hex>.att` (`AttestationTag`). */
export function legacyAttestationTag(digest: Digest): string {
  const { algorithm, hex } = splitDigest(digest);
  return `${algorithm}-${hex}.att`;
}

/**
 * The OCI 1.1 referrers tag schema tag (distribution-spec "Referrers Tag Schema"): `<alg>-<ref>`, the
 * hex truncated to 64 characters: `sha256:<hex>` → `sha256-<hex>`. Throws TypeError for a non-digest.
 */
export function referrersTagSchemaTag(digest: Digest): string {
  const { algorithm, hex } = splitDigest(digest);
  return `${algorithm}-${hex.slice(0, 64)}`;
}
