import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createMemoryVerdictCache } from "../src/cache/memory-verdict-cache.ts";
import { createTieredVerdictCache } from "../src/cache/tiered-verdict-cache.ts";
import type { CachedVerdict } from "../src/cache/types.ts";
import { Secret } from "../src/config/secret.ts";
import { createRedisConnection, type RedisConnection, RedisLogEvents } from "../src/redis/connection.ts";
import { createRedisEntryMac } from "../src/redis/entry-mac.ts";
import { createRedisVerdictCache } from "../src/redis/verdict-cache.ts";
import { createMemoryLogger } from "../src/telemetry/logger.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";

const allow: CachedVerdict = { outcome: "allow", via: "signature", key: "k", decidedAt: 1 };
const D = `sha256:${"d".repeat(64)}`;

describe("tiered verdict cache", () => {
  let server: RedisServer;
  let connection: RedisConnection;
  const logger = createMemoryLogger();
  let prefixes = 0;
  const freshPrefix = (): string => `tiered-${++prefixes}:`;
  const mac = createRedisEntryMac({ key: new Secret(randomBytes(32).toString("hex")), logger });

  beforeAll(async () => {
    server = await startRedis();
    connection = createRedisConnection(new Secret(server.url), { logger, name: "cache" });
    expect(await connection.whenReady(10_000)).toBe(true);
  });

  afterAll(async () => {
    await connection?.close();
    await server?.stop();
  });

  test("a Redis hit fills memory for the verdict's remaining ttl, not a fresh one", async () => {
    const keyPrefix = freshPrefix();
    const redis = createRedisVerdictCache({ redis: connection, mac, keyPrefix, logger });
    // Another replica stored the verdict for an hour; 1.5 s of it are left.
    await redis.set("fp", D, allow, 3600);
    await connection.client.pexpire(`${keyPrefix}verdict:fp:${D}`, 1_500);

    let t = 5_000_000;
    const memory = createMemoryVerdictCache({ now: () => t });
    const tiered = createTieredVerdictCache({ memory, redis });
    expect(await tiered.get("fp", D)).toMatchObject({ verdict: allow, tier: "redis" });
    expect(await tiered.get("fp", D)).toMatchObject({ verdict: allow, tier: "memory" });
    t += 1_300;
    expect(await memory.get("fp", D)).toBeDefined();
    t += 300;
    expect(await memory.get("fp", D)).toBeUndefined();
  });

  test("a miss in both tiers fills nothing; set writes both tiers", async () => {
    const memory = createMemoryVerdictCache();
    const redis = createRedisVerdictCache({ redis: connection, mac, keyPrefix: freshPrefix(), logger });
    const tiered = createTieredVerdictCache({ memory, redis });
    expect(await tiered.get("fp", D)).toBeUndefined();
    expect(memory.size()).toBe(0);
    await tiered.set("fp", D, allow, 60);
    expect(await memory.get("fp", D)).toMatchObject({ verdict: allow, tier: "memory" });
    expect(await redis.get("fp", D)).toMatchObject({ verdict: allow, tier: "redis" });
    const ttl = await redis.get("fp", D);
    expect(ttl?.ttlMs).toBeGreaterThan(59_000);
    expect(ttl?.ttlMs).toBeLessThanOrEqual(60_000);
  });

  test("a stored value that is not a verdict is a miss", async () => {
    const keyPrefix = freshPrefix();
    const redis = createRedisVerdictCache({ redis: connection, mac, keyPrefix, logger });
    const key = `${keyPrefix}verdict:fp:${D}`;
    // Authentic (sealed with the right key, for this key name), yet not a verdict.
    const sealed = (payload: string) => mac.seal("verdict", [key], payload);
    await connection.client.set(key, sealed(`${Date.now() + 60_000}.{"outcome":"maybe","decidedAt":1}`));
    expect(await redis.get("fp", D)).toBeUndefined();
    await connection.client.set(key, sealed(`${Date.now() + 60_000}.not json`), "PX", 60_000);
    expect(await redis.get("fp", D)).toBeUndefined();
    await connection.client.set(key, sealed(`soon.{"outcome":"allow","decidedAt":1}`), "PX", 60_000);
    expect(await redis.get("fp", D)).toBeUndefined();
    expect(logger.records.filter((r) => r.event === "verdict cache bad value")).toHaveLength(3);
  });

  test("Redis halted: memory keeps answering, Redis reads miss, writes are dropped, nothing throws; back after restart", async () => {
    const keyPrefix = freshPrefix();
    const memory = createMemoryVerdictCache();
    const redis = createRedisVerdictCache({ redis: connection, mac, keyPrefix, logger });
    const tiered = createTieredVerdictCache({ memory, redis });
    await tiered.set("fp", "sha256:before", allow, 60);
    const downLines = (): number => logger.records.filter((r) => r.event === RedisLogEvents.down).length;
    const upLines = (): number => logger.records.filter((r) => r.event === RedisLogEvents.up).length;
    const failuresBefore = connection.stats().failures;
    expect(downLines()).toBe(0);

    await server.halt();
    // Whether or not the client has noticed yet, every call resolves.
    expect(await tiered.get("fp", "sha256:before")).toMatchObject({ verdict: allow, tier: "memory" });
    expect(await tiered.get("fp", "sha256:unknown")).toBeUndefined();
    expect(await redis.get("fp", "sha256:before")).toBeUndefined();
    await expect(tiered.set("fp", "sha256:during", allow, 60)).resolves.toBeUndefined();
    await expect(redis.set("fp", "sha256:during2", allow, 60)).resolves.toBeUndefined();
    expect(await tiered.get("fp", "sha256:during")).toMatchObject({ verdict: allow, tier: "memory" });
    // An explicit delete says that it could not reach the shared cache.
    await expect(redis.deleteDigest("sha256:before")).rejects.toThrow();

    // Many calls while down: counted, yet still one "down" line.
    await expect.poll(() => connection.isReady()).toBe(false);
    for (let i = 0; i < 50; i++) await tiered.get("fp", `sha256:x${i}`);
    expect(connection.stats().failures).toBeGreaterThan(failuresBefore + 50);
    expect(downLines()).toBe(1);

    await server.restart();
    expect(await connection.whenReady(10_000)).toBe(true);
    expect(downLines()).toBe(1);
    expect(upLines()).toBe(2); // first connect + reconnect
    expect(logger.records.find((r) => r.event === RedisLogEvents.up && "downMs" in r)).toBeDefined();

    // Redis works again (the restarted server is empty: nothing persisted).
    await tiered.set("fp", "sha256:after", allow, 60);
    const fresh = createTieredVerdictCache({ memory: createMemoryVerdictCache(), redis });
    expect(await fresh.get("fp", "sha256:after")).toMatchObject({ verdict: allow, tier: "redis" });
    expect(await redis.deleteDigest("sha256:after")).toBe(1);
  });
});
