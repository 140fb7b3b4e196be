import type { Logger } from "../telemetry/logger.ts";
import type { RedisConnection } from "./redis-connection.ts";
import type { CachedVerdict, CacheHit, VerdictCache } from "./types.ts";

/**
 * Verdict cache shared by every replica, in Redis.
 *
 * Keys (prefix default "pullgate:v1:"; bump the version when the value format changes):
 *  - `${prefix}verdict:${fingerprint}:${digest}` → the CachedVerdict as JSON, with an expiry (SET … PX).
 *  - `${prefix}digest:${digest}` → a set of the fingerprints that have a verdict for `digest`, expiring no earlier
 *    than the longest-lived of them. deleteDigest reads it instead of SCANning the keyspace: SCAN is O(all keys)
 *    per call (millions of verdicts in a busy cache), needs many round trips, and still races with writers; the
 *    index costs one SADD per write, and set and delete are each one atomic Lua script. Fingerprints whose
 *    verdicts expired stay in the set until the set itself expires, which bounds it by the fingerprints seen
 *    for that digest within one TTL (a handful).
 *
 * Availability: get and set never throw. While the connection is not ready they do not even try (a get is a
 * miss, a set is dropped), so a Redis outage adds no latency; a failing command is a miss / a dropped write. Both
 * are counted and logged through the connection (one line per outage, not per call).
 * deleteDigest is an explicit admin action and rejects when Redis cannot be reached, so the caller can tell.
 *
 * The scripts touch keys they compute (standalone Redis or a single-shard deployment, not Redis Cluster).
 * close() does not close the connection: whoever created it does.
 */
export interface RedisVerdictCache extends VerdictCache {
  /** Like get(), plus the remaining time to live in ms, read in the same round trip (MULTI: GET + PTTL). */
  getWithTtl(
    fingerprint: string,
    digest: string,
  ): Promise<{ verdict: CachedVerdict; ttlMs: number } | undefined>;
}

export interface RedisVerdictCacheOptions {
  redis: RedisConnection;
  /** Default "pullgate:v1:". */
  keyPrefix?: string;
  logger: Logger;
}

/** SET the verdict, add its fingerprint to the digest's index, make the index outlive the verdict. */
const SET_SCRIPT = `
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("SADD", KEYS[2], ARGV[3])
local ttl = tonumber(ARGV[2])
if redis.call("PTTL", KEYS[2]) < ttl then
  redis.call("PEXPIRE", KEYS[2], ttl)
end
return 1
`;

/** DEL every verdict listed in the digest's index, then the index; returns how many verdicts existed. */
const DELETE_DIGEST_SCRIPT = `
local dropped = 0
for _, fingerprint in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  dropped = dropped + redis.call("DEL", ARGV[1] .. fingerprint .. ARGV[2])
end
redis.call("DEL", KEYS[1])
return dropped
`;

export function createRedisVerdictCache(opts: RedisVerdictCacheOptions): RedisVerdictCache {
  const { redis, logger } = opts;
  const prefix = opts.keyPrefix ?? "pullgate:v1:";
  const verdictKey = (fingerprint: string, digest: string): string =>
    `${prefix}verdict:${fingerprint}:${digest}`;
  const digestKey = (digest: string): string => `${prefix}digest:${digest}`;

  /** A stored value that does not parse (another version, corruption) is a miss. */
  const decode = (raw: unknown, fingerprint: string): CachedVerdict | undefined => {
    if (typeof raw !== "string") return undefined;
    const verdict = parseCachedVerdict(raw);
    if (!verdict) {
      logger.log("warn", "verdict_cache_bad_value", { fingerprint });
    }
    return verdict;
  };

  return {
    async get(fingerprint, digest): Promise<CacheHit | undefined> {
      if (!redis.isReady()) {
        redis.reportFailure("verdict_get");
        return undefined;
      }
      try {
        const verdict = decode(await redis.client.get(verdictKey(fingerprint, digest)), fingerprint);
        return verdict ? { verdict, tier: "redis" } : undefined;
      } catch (err) {
        redis.reportFailure("verdict_get", err);
        return undefined;
      }
    },

    async getWithTtl(fingerprint, digest) {
      if (!redis.isReady()) {
        redis.reportFailure("verdict_get");
        return undefined;
      }
      try {
        const key = verdictKey(fingerprint, digest);
        const results = await redis.client.multi().get(key).pttl(key).exec();
        const [getResult, pttlResult] = results ?? [];
        if (!getResult || !pttlResult) throw new Error("MULTI was aborted");
        if (getResult[0]) throw getResult[0];
        if (pttlResult[0]) throw pttlResult[0];
        const verdict = decode(getResult[1], fingerprint);
        const ttlMs = pttlResult[1];
        // -1 (no expiry) cannot happen for keys we wrote; -2 means it expired in between: a miss either way.
        if (!verdict || typeof ttlMs !== "number" || ttlMs <= 0) return undefined;
        return { verdict, ttlMs };
      } catch (err) {
        redis.reportFailure("verdict_get", err);
        return undefined;
      }
    },

    async set(fingerprint, digest, verdict, ttlSeconds) {
      const ttlMs = Math.round(ttlSeconds * 1000);
      if (!(ttlMs > 0)) return;
      if (!redis.isReady()) {
        redis.reportFailure("verdict_set");
        return;
      }
      try {
        await redis.client.eval(
          SET_SCRIPT,
          2,
          verdictKey(fingerprint, digest),
          digestKey(digest),
          JSON.stringify(verdict),
          String(ttlMs),
          fingerprint,
        );
      } catch (err) {
        redis.reportFailure("verdict_set", err);
      }
    },

    async deleteDigest(digest) {
      const dropped = await redis.client.eval(
        DELETE_DIGEST_SCRIPT,
        1,
        digestKey(digest),
        `${prefix}verdict:`,
        `:${digest}`,
      );
      return typeof dropped === "number" ? dropped : Number(dropped);
    },

    async close() {
      // The connection belongs to its creator.
    },
  };
}

const VIAS = new Set(["signature", "index", "signature-artifact"]);
const OPTIONAL_STRINGS = ["reason", "key", "keyFingerprint", "indexDigest"] as const;

/** Parses a stored verdict; undefined when it is not one. */
export function parseCachedVerdict(json: string): CachedVerdict | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (v.outcome !== "allow" && v.outcome !== "deny") return undefined;
  if (typeof v.decidedAt !== "number" || !Number.isFinite(v.decidedAt)) return undefined;
  if (v.via !== undefined && (typeof v.via !== "string" || !VIAS.has(v.via))) return undefined;
  for (const field of OPTIONAL_STRINGS) {
    if (v[field] !== undefined && typeof v[field] !== "string") return undefined;
  }
  return value as CachedVerdict;
}
