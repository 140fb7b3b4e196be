// Test helper: key-only policies as verify/ takes them (keys with their log rule and a trusted root).
import { PGI_ROOT, vectorText } from "../../test/support/vectors.ts";
import { judgeSignatures } from "./judge-signatures.ts";
import type { PulledRepository } from "./signed-repository.ts";
import { parseTrustRoot } from "./trust-root.ts";
import type { SignatureEvidence, TrustedKey, Verdict } from "./types.ts";
import type { KeyAuthority, TransparencyLogMode } from "./verify-authorities.ts";

/** The public-good root cosign's tests use (trusted_root_pgi.json). */
export const TEST_ROOT = parseTrustRoot("public-good", vectorText(PGI_ROOT));

export function keyAuthorities(
  keys: readonly TrustedKey[],
  transparencyLog: TransparencyLogMode = "optional",
): KeyAuthority[] {
  return keys.map((key) => ({ kind: "key", name: key.name, key, transparencyLog, root: TEST_ROOT }));
}

/** judgeSignatures for keys whose signatures need no log entry (most vectors were made without Rekor). */
export function judgeWithKeys(input: {
  digest: string;
  keys: readonly TrustedKey[];
  evidence: readonly SignatureEvidence[];
  repository?: PulledRepository;
}): Verdict {
  const { keys, ...rest } = input;
  return judgeSignatures({ ...rest, authorities: keyAuthorities(keys) });
}
