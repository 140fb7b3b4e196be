/**
 * The verdict cache port. Verdicts are keyed by (policy fingerprint, manifest digest), never by tag:
 * a policy or key change changes the fingerprint, so old verdicts become unreachable.
 * Implementations: in-process LRU (memory), Redis, and the two-tier composition (memory in front of
 * Redis) that pull/ uses. One contract test runs against all of them.
 */

export type CachedOutcome = "allow" | "deny";

/** JSON-serializable; what pull/ needs to answer a manifest request without verifying again. */
export interface CachedVerdict {
  outcome: CachedOutcome;
  /** deny: NO_SIGNATURE | UNTRUSTED_SIGNATURE | DIGEST_MISMATCH */
  reason?: string;
  /** allow: how it was admitted. */
  via?: "signature" | "index" | "signature-artifact";
  /** allow via signature: the trusted key's name and fingerprint. */
  key?: string;
  keyFingerprint?: string;
  /** deny: what was found and why it did not count (shown in the 403 message). */
  detail?: string;
  /** allow via index: the verified index that listed this digest. */
  indexDigest?: string;
  /** ms since epoch when the verdict was made. */
  decidedAt: number;
}

export type CacheTier = "memory" | "redis";

export interface CacheHit {
  verdict: CachedVerdict;
  tier: CacheTier;
  /** How long the verdict has left to live, in ms (a tier in front keeps it no longer than that). */
  ttlMs: number;
}

export interface VerdictCache {
  get(fingerprint: string, digest: string): Promise<CacheHit | undefined>;
  /** ttlSeconds > 0. Never throws for a backend outage: the write is dropped and logged. */
  set(fingerprint: string, digest: string, verdict: CachedVerdict, ttlSeconds: number): Promise<void>;
  /** Drops every verdict for `digest` under every fingerprint; returns how many were dropped (best effort). */
  deleteDigest(digest: string): Promise<number>;
  close(): Promise<void>;
}
