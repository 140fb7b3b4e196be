import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect } from "vitest";
import { createMemoryVerdictCache, createTieredVerdictCache } from "../src/cache/index.ts";
import { verdictCacheContract } from "../src/cache/verdict-cache.contract.test-helpers.ts";
import { Secret } from "../src/config/index.ts";
import {
  createRedisConnection,
  createRedisEntryMac,
  createRedisVerdictCache,
  type RedisConnection,
} from "../src/redis/index.ts";
import { silentLogger } from "../src/telemetry/index.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";

// The VerdictCache contract (src/cache) against a real redis-server: Redis alone, and memory in front of it.

let server: RedisServer;
let connection: RedisConnection;
let prefixes = 0;
/** A fresh key prefix per cache: tests share one redis-server but never each other's keys. */
const freshPrefix = (): string => `contract-${++prefixes}:`;
const mac = createRedisEntryMac({ key: new Secret(randomBytes(32).toString("hex")), logger: silentLogger });
const redisCache = () =>
  createRedisVerdictCache({ redis: connection, mac, keyPrefix: freshPrefix(), logger: silentLogger });

beforeAll(async () => {
  server = await startRedis();
  connection = createRedisConnection(new Secret(server.url), { logger: silentLogger, name: "contract" });
  expect(await connection.whenReady(10_000)).toBe(true);
});

afterAll(async () => {
  await connection?.close();
  await server?.stop();
});

verdictCacheContract({ name: "redis", tierAfterSet: "redis", create: redisCache });
verdictCacheContract({
  name: "tiered",
  tierAfterSet: "memory",
  create: () => createTieredVerdictCache({ memory: createMemoryVerdictCache(), redis: redisCache() }),
});
