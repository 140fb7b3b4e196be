import { createHmac, timingSafeEqual } from "node:crypto";
import { MIN_REDIS_HMAC_KEY_BYTES, type Secret } from "../config/index.ts";
import { createPullgateMetrics, type Logger, type PullgateMetrics } from "../telemetry/index.ts";

/**
 * Authenticates what pullgate stores in Redis, so that Redis contents are not trusted because they are there.
 *
 * Every value pullgate writes is sealed with an HMAC-SHA256 under a key shared by the replicas (config
 * `redis.hmacKeyEnv` / `redis.hmacKeyFile`, from a Secret). The MAC covers a domain-separated message:
 *
 *     "pullgate-redis-entry/v1" ‖ kind ‖ each context field ‖ payload      (each length-prefixed)
 *
 * `kind` separates the uses ("verdict", "policy"); the context fields bind the entry to where it is stored (the
 * Redis key name, and for a hash the field), so a value copied under another key does not verify. The payload is
 * whatever the caller needs authenticated (a verdict carries its expiry time in it).
 *
 * Stored form: `v1.<MAC, 43 characters of base64url>.<payload>`.
 *
 * `open` returns the payload of an authentic entry, or undefined when the MAC is missing (an unsealed value) or
 * wrong; such an entry is counted (the metric pullgate_redis_rejected_entries_total) and logged at
 * warn, at most one line per `logIntervalMs` per kind, with the count since the previous line. The key is never
 * logged, nor a MAC.
 *
 * What this cannot prevent: someone who can write Redis can still delete entries, or put back a value pullgate
 * itself stored earlier under the same key (a replay). Callers bound the damage: a verdict's expiry is part of its
 * payload, and a verdict key names the policy fingerprint and the digest it was decided for.
 */
export interface RedisEntryMac {
  /** The stored form of `payload` for `kind` at `context` (the Redis key, plus the hash field if any). */
  seal(kind: string, context: readonly string[], payload: string): string;
  /** The payload when `stored` is an authentic seal for `kind` at `context`; undefined (counted, logged) if not. */
  open(kind: string, context: readonly string[], stored: string): string | undefined;
}

export interface RedisEntryMacOptions {
  key: Secret;
  logger: Logger;
  /** Minimum interval between two "redis entry rejected" lines of one kind. Default 10 s. */
  logIntervalMs?: number;
  now?: () => number;
  /** Counts rejected entries by kind (pullgate_redis_rejected_entries_total). */
  metrics?: Pick<PullgateMetrics, "redisRejectedEntries">;
}

const VERSION = "v1";
const DOMAIN = "pullgate-redis-entry/v1";
const MAC_CHARS = 43; // 32 bytes, base64url without padding

export const RedisEntryLogEvents = { rejected: "redis entry rejected" } as const;

export function createRedisEntryMac(opts: RedisEntryMacOptions): RedisEntryMac {
  const key = Buffer.from(opts.key.reveal(), "utf8");
  if (key.length < MIN_REDIS_HMAC_KEY_BYTES) {
    throw new Error(`the Redis HMAC key must be at least ${MIN_REDIS_HMAC_KEY_BYTES} bytes`);
  }
  const { logger } = opts;
  const now = opts.now ?? Date.now;
  const logIntervalMs = opts.logIntervalMs ?? 10_000;
  const rejected = (opts.metrics ?? createPullgateMetrics()).redisRejectedEntries;
  const logState = new Map<string, { lastLog: number; sinceLog: number }>();

  const mac = (kind: string, context: readonly string[], payload: string): Buffer => {
    const h = createHmac("sha256", key);
    for (const part of [DOMAIN, kind, ...context, payload]) {
      // Length-prefixed: no two different (kind, context, payload) give the same message.
      h.update(`${Buffer.byteLength(part, "utf8")}:`);
      h.update(part, "utf8");
    }
    return h.digest();
  };

  const reject = (kind: string, reason: "unsealed" | "bad_mac"): undefined => {
    rejected.inc({ kind });
    const state = logState.get(kind) ?? { lastLog: Number.NEGATIVE_INFINITY, sinceLog: 0 };
    logState.set(kind, state);
    state.sinceLog++;
    const t = now();
    if (t - state.lastLog < logIntervalMs) return undefined;
    logger.log("warn", RedisEntryLogEvents.rejected, {
      kind,
      reason,
      // Rejected since the previous line of this kind (this one included).
      rejected: state.sinceLog,
    });
    state.lastLog = t;
    state.sinceLog = 0;
    return undefined;
  };

  return {
    seal(kind, context, payload) {
      return `${VERSION}.${mac(kind, context, payload).toString("base64url")}.${payload}`;
    },
    open(kind, context, stored) {
      const head = `${VERSION}.`;
      if (!stored.startsWith(head) || stored.charAt(head.length + MAC_CHARS) !== ".") {
        return reject(kind, "unsealed");
      }
      const presented = Buffer.from(stored.slice(head.length, head.length + MAC_CHARS), "base64url");
      const payload = stored.slice(head.length + MAC_CHARS + 1);
      const expected = mac(kind, context, payload);
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
        return reject(kind, "bad_mac");
      }
      return payload;
    },
  };
}
