import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";
import type { RedisConnection } from "./connection.ts";

/**
 * The deletion log: every `DELETE /admin/v1/cache/{digest}` is also recorded in one sorted set
 * (`${prefix}cache-deletions`, digest → the Redis server's time in ms), and every replica reads what was
 * added since its last look every `reconcileMs` while Redis is up. Pub/sub delivers at most once: a replica
 * whose subscriber was disconnected, or a Cluster's subscriber that ioredis moved to another node without a
 * word, misses the message, and its memory tier would keep a deleted verdict (an allow: 24 h). The log brings
 * such a deletion within one period instead.
 *
 *  - Times are the server's (TIME in the script), so replicas' clocks do not matter; a read looks
 *    `SKEW_MARGIN_MS` further back than its last look, for a failover to a node whose clock differs a little.
 *    Dropping a digest twice costs a re-read from Redis, nothing more.
 *  - Bounded: entries older than `RETENTION_MS` are trimmed at every record, and at most `MAX_ENTRIES` kept.
 *    A replica that did not look for longer than the retention (Redis was down for it), or that finds the log
 *    full, cannot tell what it missed and clears its whole memory tier (`onGap`): a re-read, never an admit.
 *  - Not authenticated, like the pub/sub message: all an entry can do is make replicas forget verdicts.
 */
export const RETENTION_MS = 10 * 60_000;
export const MAX_ENTRIES = 10_000;
const SKEW_MARGIN_MS = 5_000;

/** ZADD the digest (ARGV[1]) at the server's time, trim by age (ARGV[2] ms) and count (ARGV[3]). */
export const RECORD_DELETION_SCRIPT = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[1], now, ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now - tonumber(ARGV[2]))
redis.call("ZREMRANGEBYRANK", KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return now
`;

/** The server's time, how many entries the log holds, and the digests recorded since ARGV[1] (at most ARGV[2]). */
const READ_SINCE_SCRIPT = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call("ZCARD", KEYS[1])
local since = redis.call("ZRANGEBYSCORE", KEYS[1], ARGV[1], "+inf", "LIMIT", 0, ARGV[2])
return { now, held, since }
`;

export function deletionLogKey(prefix: string): string {
  return `${prefix}cache-deletions`;
}

/** Records a deletion (after the verdicts are gone); rejects when Redis cannot be reached. */
export async function recordDeletion(redis: RedisConnection, key: string, digest: string): Promise<void> {
  await redis.client.eval(RECORD_DELETION_SCRIPT, 1, key, digest, String(RETENTION_MS), String(MAX_ENTRIES));
}

export interface DeletionCatchUpOptions {
  redis: RedisConnection;
  key: string;
  /** Default 30 s. */
  reconcileMs?: number;
  /** A digest some replica deleted since the last look. */
  onDelete: (digest: string) => unknown;
  /** What was deleted cannot be told (a look too late, or a full log): forget every verdict. */
  onGap: () => unknown;
  logger: Logger;
}

/** Reads the log every `reconcileMs` while Redis is up; stop() ends it. */
export function startDeletionCatchUp(opts: DeletionCatchUpOptions): {
  stop(): void;
  readNow(): Promise<void>;
} {
  const { redis, key, logger } = opts;
  /** The server time of the last successful look (undefined: none yet; the memory tier started empty). */
  let lastLookMs: number | undefined;
  /** The read under way: a second caller waits for it rather than sending another. */
  let reading: Promise<void> | undefined;

  const read = async (): Promise<void> => {
    try {
      const from = lastLookMs === undefined ? "+inf" : String(lastLookMs - SKEW_MARGIN_MS);
      const [now, held, since] = (await redis.client.eval(
        READ_SINCE_SCRIPT,
        1,
        key,
        from,
        String(MAX_ENTRIES),
      )) as [number, number, string[]];
      if (lastLookMs === undefined) {
        // The first look cannot tell what was deleted before it (Redis may have been down since the start).
        opts.onGap();
        logger.log("debug", "cache deletion log first read", { held });
      } else if (now - lastLookMs > RETENTION_MS - SKEW_MARGIN_MS || held >= MAX_ENTRIES) {
        opts.onGap();
        logger.log("warn", "cache memory tier cleared", {
          why:
            held >= MAX_ENTRIES ? "the deletion log is full" : "the deletion log was not read for too long",
        });
      } else if (since.length > 0) {
        for (const digest of since) opts.onDelete(digest);
        logger.log("debug", "cache deletions caught up", { digests: since.length });
      }
      lastLookMs = now;
    } catch (err) {
      logger.log("warn", "cache deletion log read failed", { cause: errorCause(err) });
    } finally {
      reading = undefined;
    }
  };
  const readNow = (): Promise<void> => {
    if (!reading && redis.isReady()) reading = read();
    return reading ?? Promise.resolve();
  };

  const timer = setInterval(() => void readNow(), opts.reconcileMs ?? 30_000);
  timer.unref();
  const offReady = redis.onReady(() => void readNow());
  void readNow();
  return {
    stop: () => {
      clearInterval(timer);
      offReady();
    },
    readNow,
  };
}
