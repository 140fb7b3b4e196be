import type { CachedVerdict, CacheHit, VerdictCache } from "./types.ts";

/**
 * In-process verdict cache: LRU bounded by `maxEntries`, with a per-entry expiry. get/set/delete are O(1) (a
 * Map keeps insertion order: a hit is re-inserted at the end, eviction takes the first key); a second map from
 * digest to its keys makes deleteDigest O(fingerprints of that digest).
 */
export interface MemoryVerdictCache extends VerdictCache {
  /** Entries held, expired ones not yet dropped included. */
  size(): number;
}

export interface MemoryVerdictCacheOptions {
  /** Default 100 000. */
  maxEntries?: number;
  /** Clock in ms since epoch (tests inject one). Default Date.now. */
  now?: () => number;
}

interface Entry {
  fingerprint: string;
  digest: string;
  verdict: CachedVerdict;
  expiresAt: number;
}

export function createMemoryVerdictCache(opts: MemoryVerdictCacheOptions = {}): MemoryVerdictCache {
  const maxEntries = opts.maxEntries ?? 100_000;
  const now = opts.now ?? Date.now;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
  }
  const entries = new Map<string, Entry>();
  /** digest → keys of its entries (one per fingerprint). */
  const byDigest = new Map<string, Set<string>>();

  const remove = (key: string, entry: Entry): void => {
    entries.delete(key);
    const keys = byDigest.get(entry.digest);
    if (keys) {
      keys.delete(key);
      if (keys.size === 0) byDigest.delete(entry.digest);
    }
  };

  return {
    async get(fingerprint, digest): Promise<CacheHit | undefined> {
      const key = toKey(fingerprint, digest);
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= now()) {
        remove(key, entry);
        return undefined;
      }
      // Most recently used goes last.
      entries.delete(key);
      entries.set(key, entry);
      return { verdict: { ...entry.verdict }, tier: "memory" };
    },

    async set(fingerprint, digest, verdict, ttlSeconds) {
      if (!(ttlSeconds > 0)) return;
      const key = toKey(fingerprint, digest);
      const existing = entries.get(key);
      if (existing) remove(key, existing);
      // A copy: callers may not change what is cached.
      entries.set(key, {
        fingerprint,
        digest,
        verdict: { ...verdict },
        expiresAt: now() + ttlSeconds * 1000,
      });
      let keys = byDigest.get(digest);
      if (!keys) {
        keys = new Set();
        byDigest.set(digest, keys);
      }
      keys.add(key);
      while (entries.size > maxEntries) {
        const oldest = entries.entries().next();
        if (oldest.done) break;
        const [oldestKey, oldestEntry] = oldest.value;
        remove(oldestKey, oldestEntry);
      }
    },

    async deleteDigest(digest) {
      const keys = byDigest.get(digest);
      if (!keys) return 0;
      const t = now();
      let dropped = 0;
      for (const key of [...keys]) {
        const entry = entries.get(key);
        if (!entry) continue;
        if (entry.expiresAt > t) dropped++;
        remove(key, entry);
      }
      byDigest.delete(digest);
      return dropped;
    },

    size: () => entries.size,

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
