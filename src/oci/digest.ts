import { createHash } from "node:crypto";
import { type Digest, type DigestAlgorithm, digestAlgorithm } from "./reference.ts";

export function computeDigest(bytes: Uint8Array, algorithm: DigestAlgorithm = "sha256"): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** True when `bytes` hash to `expected` under `expected`'s own algorithm. */
export function digestMatches(bytes: Uint8Array, expected: Digest): boolean {
  return computeDigest(bytes, digestAlgorithm(expected)) === expected;
}
