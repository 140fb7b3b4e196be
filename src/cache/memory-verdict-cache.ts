import { BoundedLru, stringBytes } from "./bounded-lru.ts";
import type { CachedVerdict, CacheHit, VerdictCache } from "./types.ts";

/**
 * In-process verdict cache: a BoundedLru (by `maxEntries` and `maxBytes`) with a per-entry expiry.
 * get/set/delete are O(1); a second map from digest to its keys makes deleteDigest O(fingerprints of
 * that digest), kept in step by the LRU's removal callback.
 */
export interface MemoryVerdictCache extends VerdictCache {
  /** Entries held, expired ones not yet dropped included. */
  size(): number;
  /** Bytes held, as estimated for the byte bound. */
  bytes(): number;
  /** Forgets every verdict (another replica's deletions could not be told apart). */
  clear(): void;
}

export interface MemoryVerdictCacheOptions {
  /** Default 100 000. */
  maxEntries?: number;
  /**
   * Estimated bytes held (keys, verdicts, index). Default 1 KiB per entry of `maxEntries`, at least
   * 64 MiB: an ordinary verdict costs ~850 bytes, so the entry bound is the one ordinary verdicts meet
   * and this one stops unusually large ones.
   */
  maxBytes?: number;
  /** Clock in ms since epoch (tests inject one). Default Date.now. */
  now?: () => number;
}

interface Entry {
  digest: string;
  verdict: CachedVerdict;
  expiresAt: number;
}

/** Map slots, the entry and verdict objects, and the digest index's share: a rough, fixed cost. */
const ENTRY_OVERHEAD_BYTES = 256;

export function createMemoryVerdictCache(opts: MemoryVerdictCacheOptions = {}): MemoryVerdictCache {
  const maxEntries = opts.maxEntries ?? 100_000;
  const maxBytes = opts.maxBytes ?? Math.max(64 * 1024 * 1024, maxEntries * 1024);
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
  }
  if (!(maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${maxBytes}`);
  /** digest → keys of its entries (one per fingerprint). */
  const byDigest = new Map<string, Set<string>>();
  const entries = new BoundedLru<Entry>({
    maxEntries,
    maxBytes,
    sizeOf: sizeOfEntry,
    ...(opts.now ? { now: opts.now } : {}),
    onRemove: (key, entry) => {
      const keys = byDigest.get(entry.digest);
      if (keys) {
        keys.delete(key);
        if (keys.size === 0) byDigest.delete(entry.digest);
      }
    },
  });
  const now = opts.now ?? Date.now;

  return {
    async get(fingerprint, digest): Promise<CacheHit | undefined> {
      const entry = entries.get(toKey(fingerprint, digest));
      return entry
        ? { verdict: { ...entry.verdict }, tier: "memory", ttlMs: Math.max(0, entry.expiresAt - now()) }
        : undefined;
    },

    async set(fingerprint, digest, verdict, ttlSeconds) {
      if (!(ttlSeconds > 0)) return;
      const key = toKey(fingerprint, digest);
      // A copy: callers may not change what is cached.
      const expiresAt = now() + ttlSeconds * 1000;
      if (!entries.set(key, { digest, verdict: { ...verdict }, expiresAt }, expiresAt)) return;
      let keys = byDigest.get(digest);
      if (!keys) {
        keys = new Set();
        byDigest.set(digest, keys);
      }
      keys.add(key);
    },

    async deleteDigest(digest) {
      const keys = byDigest.get(digest);
      if (!keys) return 0;
      let dropped = 0;
      // delete() drops the key from the index too (onRemove), hence the copy.
      for (const key of [...keys]) if (entries.delete(key)) dropped++;
      return dropped;
    },

    size: () => entries.size,
    bytes: () => entries.bytes,

    clear() {
      entries.clear();
      byDigest.clear();
    },

    async close() {
      entries.clear();
      byDigest.clear();
    },
  };
}

/** Unambiguous for any strings: the fingerprint's length says where the digest starts. */
function toKey(fingerprint: string, digest: string): string {
  return `${fingerprint.length}:${fingerprint}${digest}`;
}

function sizeOfEntry(entry: Entry, key: string): number {
  const v = entry.verdict;
  let bytes = ENTRY_OVERHEAD_BYTES + stringBytes(key) + stringBytes(entry.digest);
  for (const s of [v.outcome, v.reason, v.via, v.key, v.keyFingerprint, v.indexDigest, v.detail]) {
    if (typeof s === "string") bytes += stringBytes(s);
  }
  return bytes;
}
