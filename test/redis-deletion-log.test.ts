import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import { createRedisConnection, type RedisConnection } from "../src/redis/connection.ts";
import {
  deletionLogKey,
  MAX_ENTRIES,
  RETENTION_MS,
  recordDeletion,
  startDeletionCatchUp,
} from "../src/redis/deletion-log.ts";
import { createMemoryLogger, silentLogger } from "../src/telemetry/index.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";

// The cache deletion log against a real redis-server: what a replica whose pub/sub message was lost reads.

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

let server: RedisServer;
let connection: RedisConnection;
let plain: Redis;
let prefixes = 0;

beforeAll(async () => {
  server = await startRedis();
  connection = createRedisConnection(new Secret(server.url), { logger: silentLogger, name: "cache" });
  plain = new Redis(server.url, { maxRetriesPerRequest: 1 });
  expect(await connection.whenReady(10_000)).toBe(true);
});

afterAll(async () => {
  plain?.disconnect();
  await connection?.close();
  await server?.stop();
});

function reader(key: string) {
  const deleted: string[] = [];
  let gaps = 0;
  const logger = createMemoryLogger();
  const catchUp = startDeletionCatchUp({
    redis: connection,
    key,
    reconcileMs: 3_600_000, // read by hand below
    onDelete: (d) => deleted.push(d),
    onGap: () => gaps++,
    logger,
  });
  return { deleted, gaps: () => gaps, catchUp, logger };
}

describe("the cache deletion log", () => {
  it("hands a reader every digest recorded since its last read, once its first read has cleared memory", async () => {
    const key = deletionLogKey(`t${prefixes++}:`);
    await recordDeletion(connection, key, digest(1)); // before the reader: covered by its first clear
    const r = reader(key);
    await r.catchUp.readNow();
    expect(r.gaps()).toBe(1);
    expect(r.deleted).toEqual([]);
    await recordDeletion(connection, key, digest(2));
    await recordDeletion(connection, key, digest(3));
    await r.catchUp.readNow();
    // A read looks a few seconds further back than the last (clock skew after a failover): digest(1) may come
    // again, which costs a re-read from Redis and nothing else.
    expect(r.deleted).toEqual(expect.arrayContaining([digest(2), digest(3)]));
    expect(new Set(r.deleted)).toEqual(new Set([digest(1), digest(2), digest(3)]));
    expect(r.gaps()).toBe(1);
    r.catchUp.stop();
  });

  it("is bounded by age: entries expire with the retention, and older ones are trimmed", async () => {
    const key = deletionLogKey(`t${prefixes++}:`);
    await recordDeletion(connection, key, digest(1));
    const ttl = await plain.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(RETENTION_MS);
    // An entry older than the retention (as the server's clock counts) is trimmed at the next record.
    await plain.zadd(key, "1", digest(99));
    await recordDeletion(connection, key, digest(2));
    expect(await plain.zrange(key, "0", "-1")).toEqual([digest(1), digest(2)]);
  });

  it("a full log cannot say what was missed: the reader forgets everything, and says so", async () => {
    const key = deletionLogKey(`t${prefixes++}:`);
    const r = reader(key);
    await r.catchUp.readNow();
    expect(r.gaps()).toBe(1);
    const now = Number((await plain.time())[0]) * 1000;
    const members: string[] = [];
    for (let i = 0; i < MAX_ENTRIES; i++) members.push(String(now), digest(1000 + i));
    await plain.zadd(key, ...members);
    // Bounded by count: one more record keeps MAX_ENTRIES.
    await recordDeletion(connection, key, digest(1));
    expect(await plain.zcard(key)).toBe(MAX_ENTRIES);
    await r.catchUp.readNow();
    expect(r.gaps()).toBe(2);
    expect(r.deleted).toEqual([]);
    expect(r.logger.records).toContainEqual(
      expect.objectContaining({ level: "warn", event: "cache memory tier cleared" }),
    );
    r.catchUp.stop();
  });
});
