import { randomUUID } from "node:crypto";
import type { CachedVerdict, CacheHit, VerdictCache } from "../cache/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";
import type { RedisConnection } from "./connection.ts";
import { deletionLogKey, recordDeletion, startDeletionCatchUp } from "./deletion-log.ts";
import type { RedisEntryMac } from "./entry-mac.ts";

/**
 * Verdict cache shared by every replica, in Redis.
 *
 * Keys (prefix default "pullgate:v1:"; bump the version when the value format changes. Sealing the values kept
 * it: a value an older pullgate wrote has no MAC and is rejected like any other unsealed value):
 *  - `${prefix}verdict:${fingerprint}:${digest}` → `${expiresAtMs}.${CachedVerdict as JSON}`, sealed with the
 *    replicas' HMAC (redis-entry-mac.ts, kind "verdict", bound to this key name), with an expiry (SET … PX).
 *    A value that is not an authentic seal for its key is a miss (counted and logged by the MAC), so someone who
 *    can write Redis cannot plant or alter a verdict, nor move one to another (fingerprint, digest). The sealed
 *    expiry is checked on read: a verdict re-SET without a TTL does not outlive it, and what the tiered cache
 *    keeps in memory lives no longer than the sealed expiry either.
 *  - `${prefix}digest:${digest}` → a set of the fingerprints that have a verdict for `digest`, expiring no earlier
 *    than the longest-lived of them. deleteDigest reads it instead of SCANning the keyspace: SCAN is O(all keys)
 *    per call (millions of verdicts in a busy cache), needs many round trips, and still races with writers; the
 *    index costs one SADD per write, and set and delete are each one atomic Lua script. Fingerprints whose
 *    verdicts expired stay in the set until the set itself expires, which bounds it by the fingerprints seen
 *    for that digest within one TTL (a handful). The index is not authenticated: all it can do is make
 *    deleteDigest delete more verdict keys (a re-verification), never admit anything.
 *
 * Availability: get and set never throw. While the connection is not ready they do not even try (a get is a
 * miss, a set is dropped), so a Redis outage adds no latency; a failing command is a miss / a dropped write. Both
 * are counted and logged through the connection (one line per outage, not per call).
 * deleteDigest is an explicit admin action and rejects when Redis cannot be reached, so the caller can tell.
 *
 * Redis Cluster: there every key of a digest carries the digest as its hash tag (`…:{sha256:…}`; fingerprints
 * are hex, so these are the key's first braces): `${prefix}verdict:${fingerprint}:{${digest}}` and
 * `${prefix}digest:{${digest}}`. A digest's verdicts and its index live in one slot: the GET+PTTL transaction,
 * the SET script (two keys) and the delete script (which builds the verdict keys from the index, each in
 * KEYS[1]'s slot) never cross slots, and different digests spread over the cluster. One server and Sentinel
 * keep the names without braces, so upgrading does not make every cached verdict unreachable at once.
 *
 * Other replicas' memory tiers: deleteDigest publishes `{"digest","origin"}` on `${prefix}cache-invalidated`
 * (from the delete script, so only once the keys are gone). Given a `subscriber` and `onRemoteDelete`, this cache
 * subscribes to that channel (on every (re)connect of the subscriber) and hands every other replica's digest to
 * `onRemoteDelete` (the tiered cache's memory tier). Plain PUBLISH/SUBSCRIBE: on a Redis Cluster a PUBLISH on
 * any node reaches the subscribers of every node; through Sentinel it goes to the master, where every replica's
 * subscriber is. A deletion published while a replica's subscriber is disconnected does not reach that
 * replica's memory tier at once: the deletion log (deletion-log.ts), which every replica reads every 30 s, brings
 * it within that period. The message is not authenticated: all it can do is make a replica forget verdicts (a
 * re-verification), never admit anything.
 * close() does not close the connections: whoever created them does.
 */
export interface RedisVerdictCacheOptions {
  redis: RedisConnection;
  /** Seals what is stored, and checks what is read back (the HMAC key shared by the replicas). */
  mac: RedisEntryMac;
  /** Default "pullgate:v1:". */
  keyPrefix?: string;
  logger: Logger;
  /** Clock for the sealed expiry (tests). Default Date.now. */
  now?: () => number;
  /**
   * A second connection, used only for SUBSCRIBE (it may be the policy store's subscriber): with
   * `onRemoteDelete`, other replicas' deleteDigest reach this replica.
   */
  subscriber?: RedisConnection;
  /** Called with a digest another replica deleted (to drop it from this replica's memory tier). */
  onRemoteDelete?: (digest: string) => unknown;
  /**
   * With `onRemoteDelete`: the deletion log (deletion-log.ts) is read every `reconcileMs` (default 30 s), and
   * this is called when it cannot tell what was deleted (forget every verdict in memory).
   */
  onRemoteClear?: () => unknown;
  reconcileMs?: number;
}

/** The MAC kind of verdict entries. */
export const VERDICT_ENTRY_KIND = "verdict";

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

/**
 * DEL every verdict listed in the digest's index (ARGV[1] .. fingerprint .. ARGV[2]: on a cluster the same hash
 * tag, so the same slot, as KEYS[1]), then the index, then PUBLISH ARGV[4] on channel ARGV[3]; returns how many
 * verdicts existed.
 */
const DELETE_DIGEST_SCRIPT = `
local dropped = 0
for _, fingerprint in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  dropped = dropped + redis.call("DEL", ARGV[1] .. fingerprint .. ARGV[2])
end
redis.call("DEL", KEYS[1])
redis.call("PUBLISH", ARGV[3], ARGV[4])
return dropped
`;

export function createRedisVerdictCache(opts: RedisVerdictCacheOptions): VerdictCache {
  const { redis, logger, mac } = opts;
  const now = opts.now ?? Date.now;
  const prefix = opts.keyPrefix ?? "pullgate:v1:";
  // Cluster: the digest is the hash tag of every key of that digest (one slot). Digests hold no braces.
  const tagged = (digest: string): string => (redis.topology === "cluster" ? `{${digest}}` : digest);
  const verdictKey = (fingerprint: string, digest: string): string =>
    `${prefix}verdict:${fingerprint}:${tagged(digest)}`;
  const digestKey = (digest: string): string => `${prefix}digest:${tagged(digest)}`;
  const channel = `${prefix}cache-invalidated`;
  const origin = randomUUID();
  const invalidations =
    opts.subscriber && opts.onRemoteDelete
      ? subscribeInvalidations(opts.subscriber, channel, origin, opts.onRemoteDelete, logger)
      : undefined;
  const deletionLog = deletionLogKey(prefix);
  const catchUp =
    opts.onRemoteDelete && opts.onRemoteClear
      ? startDeletionCatchUp({
          redis,
          key: deletionLog,
          onDelete: opts.onRemoteDelete,
          onGap: opts.onRemoteClear,
          logger,
          ...(opts.reconcileMs === undefined ? {} : { reconcileMs: opts.reconcileMs }),
        })
      : undefined;

  /**
   * The verdict and its remaining lifetime (by the sealed expiry), or undefined: a value that is not an authentic
   * seal for `key` (counted and logged by the MAC), that has expired, or that does not parse is a miss.
   */
  const decode = (
    raw: unknown,
    key: string,
    fingerprint: string,
  ): { verdict: CachedVerdict; remainingMs: number } | undefined => {
    if (typeof raw !== "string") return undefined;
    const payload = mac.open(VERDICT_ENTRY_KIND, [key], raw);
    if (payload === undefined) return undefined;
    const dot = payload.indexOf(".");
    const expiresAt = Number(payload.slice(0, dot));
    const verdict = dot > 0 ? parseCachedVerdict(payload.slice(dot + 1)) : undefined;
    if (!verdict || !Number.isSafeInteger(expiresAt)) {
      logger.log("warn", "verdict cache bad value", { fingerprint });
      return undefined;
    }
    const remainingMs = expiresAt - now();
    return remainingMs > 0 ? { verdict, remainingMs } : undefined;
  };

  return {
    async get(fingerprint, digest): Promise<CacheHit | undefined> {
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
        const entry = decode(getResult[1], key, fingerprint);
        const pttl = pttlResult[1];
        if (!entry || typeof pttl !== "number" || pttl === -2) return undefined;
        // -1 (no expiry) cannot happen for keys we wrote: then the sealed expiry alone bounds it.
        const ttlMs = pttl > 0 ? Math.min(pttl, entry.remainingMs) : pttl === -1 ? entry.remainingMs : 0;
        if (ttlMs <= 0) return undefined;
        return { verdict: entry.verdict, tier: "redis", ttlMs };
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
        const key = verdictKey(fingerprint, digest);
        const payload = `${now() + ttlMs}.${JSON.stringify(verdict)}`;
        await redis.client.eval(
          SET_SCRIPT,
          2,
          key,
          digestKey(digest),
          mac.seal(VERDICT_ENTRY_KIND, [key], payload),
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
        `:${tagged(digest)}`,
        channel,
        JSON.stringify({ digest, origin }),
      );
      // For replicas whose subscriber missed the message (a separate key: on a cluster, another slot).
      await recordDeletion(redis, deletionLog, digest);
      return typeof dropped === "number" ? dropped : Number(dropped);
    },

    async close() {
      // The connections belong to their creator.
      catchUp?.stop();
      await invalidations?.close();
    },
  };
}

/**
 * SUBSCRIBE to the invalidation channel on every (re)connect of `subscriber` and hand other replicas' digests to
 * `onRemoteDelete`. close() unsubscribes.
 */
function subscribeInvalidations(
  subscriber: RedisConnection,
  channel: string,
  origin: string,
  onRemoteDelete: (digest: string) => unknown,
  logger: Logger,
): { close(): Promise<void> } {
  let closed = false;
  const onMessage = (from: string, message: string): void => {
    if (from !== channel || closed) return;
    const digest = parseInvalidation(message, origin);
    if (digest === undefined) return;
    try {
      void Promise.resolve(onRemoteDelete(digest)).catch(() => undefined);
    } catch {
      // a listener's failure is not Redis'
    }
  };
  subscriber.client.on("message", onMessage);
  const subscribe = async (): Promise<void> => {
    if (closed) return;
    try {
      await subscriber.client.subscribe(channel);
    } catch (err) {
      logger.log("warn", "cache invalidation subscribe failed", { cause: errorCause(err) });
      // Try again through a reconnect (the next "ready" calls us again).
      if (!closed && subscriber.isReady()) subscriber.client.disconnect(true);
    }
  };
  const offReady = subscriber.onReady(() => void subscribe());
  if (subscriber.isReady()) void subscribe();
  return {
    async close() {
      if (closed) return;
      closed = true;
      offReady();
      subscriber.client.off("message", onMessage);
      if (subscriber.isReady()) {
        try {
          await subscriber.client.unsubscribe(channel);
        } catch {
          // the connection's creator closes it anyway
        }
      }
    },
  };
}

/** The digest of another replica's invalidation message; undefined for ours or for anything else. */
function parseInvalidation(message: string, origin: string): string | undefined {
  try {
    const value = JSON.parse(message) as unknown;
    if (typeof value !== "object" || value === null) return undefined;
    const { digest, origin: from } = value as Record<string, unknown>;
    if (typeof digest !== "string" || typeof from !== "string" || from === origin) return undefined;
    return digest.length > 0 && digest.length <= 256 ? digest : undefined;
  } catch {
    return undefined;
  }
}

const VIAS = new Set(["signature", "index", "signature-artifact"]);
const OPTIONAL_STRINGS = ["reason", "key", "keyFingerprint", "indexDigest", "detail"] as const;

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
