import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { CachedVerdict, VerdictCache } from "../src/cache/types.ts";
import { Secret } from "../src/config/secret.ts";
import { createRedisConnection, type RedisConnection } from "../src/redis/connection.ts";
import { createRedisEntryMac, RedisEntryLogEvents } from "../src/redis/entry-mac.ts";
import { createRedisVerdictCache } from "../src/redis/verdict-cache.ts";
import {
  createMemoryLogger,
  createPullgateMetrics,
  type PullgateMetrics,
  silentLogger,
} from "../src/telemetry/index.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";

// What someone who can write Redis directly (but does not hold the HMAC key) can do to the verdict cache.

const KEY = randomBytes(32).toString("hex");
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const allow: CachedVerdict = {
  outcome: "allow",
  via: "signature",
  key: "release",
  decidedAt: 1_760_000_000_000,
};
const deny: CachedVerdict = { outcome: "deny", reason: "NO_SIGNATURE", decidedAt: 1_760_000_000_000 };

let server: RedisServer;
let connection: RedisConnection;
/** The attacker's own client: plain ioredis, no pullgate code. */
let attacker: Redis;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedis();
  connection = createRedisConnection(new Secret(server.url), { logger: silentLogger, name: "cache" });
  attacker = new Redis(server.url, { maxRetriesPerRequest: 1 });
  expect(await connection.whenReady(10_000)).toBe(true);
});

afterAll(async () => {
  attacker?.disconnect();
  await connection?.close();
  await server?.stop();
});

/** A replica: its own MAC instance (own counters and log) with the given key, on a shared prefix. */
function replica(keyPrefix: string, opts: { key?: string; now?: () => number } = {}) {
  const logger = createMemoryLogger();
  const metrics = createPullgateMetrics();
  const mac = createRedisEntryMac({ key: new Secret(opts.key ?? KEY), logger, metrics });
  const cache = createRedisVerdictCache({
    redis: connection,
    mac,
    keyPrefix,
    logger,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return { cache, mac, metrics, logger };
}

const freshPrefix = (): string => `attack-${++prefixes}:`;
const keyOf = (prefix: string, fingerprint: string, digest: string) =>
  `${prefix}verdict:${fingerprint}:${digest}`;

async function expectMiss(cache: VerdictCache, fingerprint: string, digest: string): Promise<void> {
  expect(await cache.get(fingerprint, digest)).toBeUndefined();
  expect(await cache.get(fingerprint, digest)).toBeUndefined();
}

const rejectedVerdicts = (m: PullgateMetrics) => m.redisRejectedEntries.value({ kind: "verdict" });

describe("verdicts written to Redis by someone without the HMAC key", () => {
  test("an allow verdict planted with a Redis client is not used, and is counted and logged", async () => {
    const prefix = freshPrefix();
    const { cache, metrics, logger } = replica(prefix);
    // The format pullgate used before entries were sealed, and a guess at the sealed one.
    await attacker.set(keyOf(prefix, "fp", D1), JSON.stringify(allow), "EX", 3600);
    await attacker.set(
      keyOf(prefix, "fp", D2),
      `v1.${randomBytes(32).toString("base64url")}.${Date.now() + 3_600_000}.${JSON.stringify(allow)}`,
      "EX",
      3600,
    );
    await expectMiss(cache, "fp", D1);
    await expectMiss(cache, "fp", D2);
    expect(rejectedVerdicts(metrics)).toBe(4);
    expect(logger.records.filter((r) => r.event === RedisEntryLogEvents.rejected)).toEqual([
      expect.objectContaining({ level: "warn", kind: "verdict", reason: "unsealed" }),
    ]);
    expect(JSON.stringify(logger.records)).not.toContain(KEY);
  });

  test("a stored deny changed into an allow (MAC kept) is not used", async () => {
    const prefix = freshPrefix();
    const { cache, metrics } = replica(prefix);
    await cache.set("fp", D1, deny, 60);
    const key = keyOf(prefix, "fp", D1);
    const stored = (await attacker.get(key)) as string;
    expect(stored).toContain('"outcome":"deny"');
    await attacker.set(key, stored.replace('"outcome":"deny"', '"outcome":"allow"'), "KEEPTTL");
    await expectMiss(cache, "fp", D1);
    // Stretching the sealed expiry does not verify either.
    const expiresAt = /^v1\.[^.]+\.(\d+)\./.exec(stored)?.[1] as string;
    await attacker.set(
      key,
      stored.replace(`.${expiresAt}.`, `.${Number(expiresAt) + 86_400_000}.`),
      "KEEPTTL",
    );
    await expectMiss(cache, "fp", D1);
    expect(rejectedVerdicts(metrics)).toBe(4);
  });

  test("an authentic allow replayed under another digest or another policy fingerprint is not used", async () => {
    const prefix = freshPrefix();
    const { cache, metrics } = replica(prefix);
    await cache.set("fp-strict", D1, allow, 60);
    const stored = (await attacker.get(keyOf(prefix, "fp-strict", D1))) as string;
    await attacker.set(keyOf(prefix, "fp-strict", D2), stored, "EX", 60);
    await attacker.set(keyOf(prefix, "fp-other", D1), stored, "EX", 60);
    await expectMiss(cache, "fp-strict", D2);
    await expectMiss(cache, "fp-other", D1);
    expect(rejectedVerdicts(metrics)).toBe(4);
    // The original is still good.
    expect((await cache.get("fp-strict", D1))?.verdict).toEqual(allow);
  });

  test("an authentic verdict does not outlive its sealed expiry, even re-SET without a TTL", async () => {
    const prefix = freshPrefix();
    let t = Date.now();
    const { cache, metrics } = replica(prefix, { now: () => t });
    await cache.set("fp", D1, allow, 60);
    const key = keyOf(prefix, "fp", D1);
    await attacker.persist(key);
    expect(await attacker.pttl(key)).toBe(-1);
    // Still within its lifetime: served, for no longer than what is left of it.
    t += 20_000;
    const hit = await cache.get("fp", D1);
    expect(hit?.verdict).toEqual(allow);
    expect(hit?.ttlMs).toBe(40_000);
    // A longer Redis TTL does not stretch it either.
    await attacker.pexpire(key, 3_600_000);
    expect((await cache.get("fp", D1))?.ttlMs).toBe(40_000);
    t += 40_000;
    await expectMiss(cache, "fp", D1);
    // An expired entry is a plain miss, not an attack.
    expect(rejectedVerdicts(metrics)).toBe(0);
  });
});

describe("verdicts between replicas", () => {
  test("a verdict stored by another replica with the same key is used; with another key it is not", async () => {
    const prefix = freshPrefix();
    const a = replica(prefix);
    const b = replica(prefix);
    const stranger = replica(prefix, { key: randomBytes(32).toString("hex") });
    await a.cache.set("fp", D1, allow, 60);
    expect(await b.cache.get("fp", D1)).toMatchObject({ verdict: allow, tier: "redis" });
    expect((await b.cache.get("fp", D1))?.verdict).toEqual(allow);
    expect(rejectedVerdicts(b.metrics)).toBe(0);
    await expectMiss(stranger.cache, "fp", D1);
    expect(rejectedVerdicts(stranger.metrics)).toBe(2);
  });
});
