import type { CacheHit, VerdictCache } from "./types.ts";

/**
 * Two VerdictCache ports, one in front of the other: memory in front of Redis is what pull/ uses
 * when Redis is configured.
 *  - get: memory first; on a miss, Redis (GET + PTTL in one MULTI) and, on a hit, memory is filled for the
 *    verdict's REMAINING time to live, so no replica keeps a verdict longer than the replica that made it.
 *    The hit reports the tier that answered.
 *  - set: both tiers.
 *  - Redis down: the Redis cache does not even send commands while its connection is not ready, so this is
 *    memory-only with no added latency (a hung Redis costs at most the command timeout until the connection is
 *    torn down).
 *  - deleteDigest: memory, then Redis; rejects if Redis cannot be reached (memory is cleared regardless).
 *    Other replicas' memory tiers hear of it through pub/sub, or within 30 s through the deletion log
 *    (redis/deletion-log.ts).
 */
export interface TieredVerdictCacheOptions {
  /** The near tier (in process). */
  memory: VerdictCache;
  /** The shared tier (Redis): its hits report their remaining time to live. */
  redis: VerdictCache;
}

export function createTieredVerdictCache(opts: TieredVerdictCacheOptions): VerdictCache {
  const { memory, redis } = opts;
  return {
    async get(fingerprint, digest): Promise<CacheHit | undefined> {
      const local = await memory.get(fingerprint, digest);
      if (local) return local;
      const shared = await redis.get(fingerprint, digest);
      if (!shared) return undefined;
      await memory.set(fingerprint, digest, shared.verdict, shared.ttlMs / 1000);
      return shared;
    },

    async set(fingerprint, digest, verdict, ttlSeconds) {
      await memory.set(fingerprint, digest, verdict, ttlSeconds);
      await redis.set(fingerprint, digest, verdict, ttlSeconds);
    },

    async deleteDigest(digest) {
      const fromMemory = await memory.deleteDigest(digest);
      const fromRedis = await redis.deleteDigest(digest);
      // The same verdict usually lives in both tiers: count it once.
      return Math.max(fromMemory, fromRedis);
    },

    async close() {
      await Promise.all([memory.close(), redis.close()]);
    },
  };
}
