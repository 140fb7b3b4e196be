import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Secret } from "../src/config/secret.ts";
import { type PolicyStore, RELOAD_ALL } from "../src/policy/index.ts";
import { policyStoreContract } from "../src/policy/policy-store.contract.test-helpers.ts";
import {
  createRedisConnection,
  createRedisEntryMac,
  createRedisPolicyStore,
  type RedisConnection,
} from "../src/redis/index.ts";
import {
  createMemoryLogger,
  createPullgateMetrics,
  type PullgateMetrics,
  silentLogger,
} from "../src/telemetry/index.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";

let server: RedisServer;
const connections: RedisConnection[] = [];
let prefixes = 0;
const freshPrefix = (): string => `policy-${++prefixes}:`;
const KEY = randomBytes(32).toString("hex");
const mac = createRedisEntryMac({ key: new Secret(KEY), logger: silentLogger });

function connect(name: string): RedisConnection {
  const connection = createRedisConnection(new Secret(server.url), { logger: silentLogger, name });
  connections.push(connection);
  return connection;
}

/** Resolves with the first project name `store` reports that satisfies `match` (no timing assertion). */
function nextChange(store: PolicyStore, match: (project: string) => boolean = () => true): Promise<string> {
  return new Promise((resolve) => {
    const off = store.subscribe((project) => {
      if (!match(project)) return;
      off();
      resolve(project);
    });
  });
}

/** A Redis store whose subscriber is subscribed (its first "*" was delivered). */
async function createReadyRedisStore(keyPrefix: string): Promise<PolicyStore> {
  const redis = connect("policy");
  const subscriber = connect("policy-subscriber");
  const store = createRedisPolicyStore({ redis, subscriber, mac, keyPrefix, logger: silentLogger });
  await nextChange(store, (p) => p === RELOAD_ALL);
  // The subscriber being ready says nothing about the command connection: wait for it too.
  await redis.whenReady(5_000);
  return store;
}

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await server?.stop();
});

policyStoreContract({ name: "redis", create: () => createReadyRedisStore(freshPrefix()) });

describe("redis policy store across replicas", () => {
  test("a put on one replica reaches the other's listener, and survives a new store instance", async () => {
    const keyPrefix = freshPrefix();
    const a = await createReadyRedisStore(keyPrefix);
    const b = await createReadyRedisStore(keyPrefix);
    const heardByB = nextChange(b, (p) => p !== RELOAD_ALL);
    await a.put("team-a", { mode: "enforce" });
    expect(await heardByB).toBe("team-a");
    expect(await b.load()).toEqual({ "team-a": { mode: "enforce" } });

    const removedOnB = nextChange(b, (p) => p !== RELOAD_ALL);
    await a.remove("team-a");
    expect(await removedOnB).toBe("team-a");
    await a.put("team-c", { mode: "audit" });

    // A restarted pullgate (new connections, new store) loads what is stored.
    await Promise.all([a.close(), b.close()]);
    const c = await createReadyRedisStore(keyPrefix);
    expect(await c.load()).toEqual({ "team-c": { mode: "audit" } });
    await c.close();
  });

  test("writes reject while Redis is down; a Redis restart makes every subscriber reload ('*')", async () => {
    const keyPrefix = freshPrefix();
    const redis = connect("policy");
    const subscriber = connect("policy-subscriber");
    const store = createRedisPolicyStore({ redis, subscriber, mac, keyPrefix, logger: silentLogger });
    await nextChange(store, (p) => p === RELOAD_ALL);
    const heard: string[] = [];
    store.subscribe((p) => heard.push(p));

    await server.halt();
    await expect(store.put("team-a", { mode: "off" })).rejects.toThrow();
    await expect(store.remove("team-a")).rejects.toThrow();
    await expect(store.load()).rejects.toThrow();
    expect(heard).toEqual([]);

    const reload = nextChange(store, (p) => p === RELOAD_ALL);
    await server.restart();
    expect(await reload).toBe(RELOAD_ALL);
    // Subscribed again: changes by another replica arrive.
    const other = await createReadyRedisStore(keyPrefix);
    const heardAgain = nextChange(store, (p) => p !== RELOAD_ALL);
    await other.put("team-b", { mode: "enforce" });
    expect(await heardAgain).toBe("team-b");
    await Promise.all([store.close(), other.close()]);
  });
});

describe("redis policy store: overrides written by someone without the HMAC key", () => {
  /** The attacker's own client: plain ioredis, no pullgate code. */
  let attacker: Redis;
  beforeAll(() => {
    attacker = new Redis(server.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(() => attacker?.disconnect());
  /** A store with its own MAC (own counters) under `key`, on `keyPrefix`. */
  async function storeWith(keyPrefix: string, key: string) {
    const logger = createMemoryLogger();
    const metrics = createPullgateMetrics();
    const own = createRedisEntryMac({ key: new Secret(key), logger, metrics });
    const redis = connect("policy");
    const store = createRedisPolicyStore({
      redis,
      subscriber: connect("policy-subscriber"),
      mac: own,
      keyPrefix,
      logger,
    });
    await nextChange(store, (p) => p === RELOAD_ALL);
    // The subscriber being ready says nothing about the command connection (no offline queue): wait
    // for it too, or a loaded machine fails the first put (seen once in a full parallel run).
    await redis.whenReady(5_000);
    return { store, metrics, logger };
  }
  const rejected = (m: PullgateMetrics) => m.redisRejectedEntries.value({ kind: "policy" });

  test("an override planted with HSET ({mode: off}) is left out of load, counted and logged", async () => {
    const keyPrefix = freshPrefix();
    const { store, metrics: own, logger } = await storeWith(keyPrefix, KEY);
    await store.put("team-a", { mode: "enforce" });
    await attacker.hset(`${keyPrefix}policy`, "team-b", JSON.stringify({ mode: "off" }));
    await attacker.hset(`${keyPrefix}policy`, "team-c", `v1.${"A".repeat(43)}.{"mode":"off"}`);
    expect(await store.load()).toEqual({ "team-a": { mode: "enforce" } });
    expect(rejected(own)).toBe(2);
    expect(logger.records.filter((r) => r.event === "redis entry rejected")).toEqual([
      expect.objectContaining({ level: "warn", kind: "policy" }),
    ]);
    await store.close();
  });

  test("a stored override tampered with, or replayed under another project or prefix, is left out", async () => {
    const keyPrefix = freshPrefix();
    const otherPrefix = freshPrefix();
    const { store, metrics: own } = await storeWith(keyPrefix, KEY);
    const { store: other } = await storeWith(otherPrefix, KEY);
    await store.put("loose", { mode: "off" });
    await store.put("strict", { mode: "enforce" });
    const loose = (await attacker.hget(`${keyPrefix}policy`, "loose")) as string;
    const strict = (await attacker.hget(`${keyPrefix}policy`, "strict")) as string;
    expect(strict).toContain('"mode":"enforce"');
    // The same project's value, changed; another project's value, moved; another prefix's hash.
    await attacker.hset(`${keyPrefix}policy`, "strict", strict.replace('"enforce"', '"off"'));
    await attacker.hset(`${keyPrefix}policy`, "victim", loose);
    await attacker.hset(`${otherPrefix}policy`, "loose", loose);
    expect(await store.load()).toEqual({ loose: { mode: "off" } });
    expect(await other.load()).toEqual({});
    expect(rejected(own)).toBe(2);
    await Promise.all([store.close(), other.close()]);
  });

  test("another replica with the same key reads the overrides; one with another key reads none", async () => {
    const keyPrefix = freshPrefix();
    const { store: a } = await storeWith(keyPrefix, KEY);
    const { store: b, metrics: macB } = await storeWith(keyPrefix, KEY);
    const { store: stranger, metrics: strangerMac } = await storeWith(
      keyPrefix,
      randomBytes(32).toString("hex"),
    );
    await a.put("team-a", { mode: "enforce" });
    expect(await b.load()).toEqual({ "team-a": { mode: "enforce" } });
    expect(rejected(macB)).toBe(0);
    expect(await stranger.load()).toEqual({});
    expect(rejected(strangerMac)).toBe(1);
    await Promise.all([a.close(), b.close(), stranger.close()]);
  });
});
