import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { type RedisServer, startRedis } from "../../test/support/redis.ts";
import { Secret } from "../config/secret.ts";
import { silentLogger } from "../telemetry/logger.ts";
import { createMemoryVerdictCache } from "./memory-verdict-cache.ts";
import { createRedisConnection, type RedisConnection } from "./redis-connection.ts";
import { createRedisEntryMac } from "./redis-entry-mac.ts";
import { createRedisVerdictCache } from "./redis-verdict-cache.ts";
import { createTieredVerdictCache } from "./tiered-verdict-cache.ts";
import type { CachedVerdict, CacheTier, VerdictCache } from "./types.ts";

// The one contract every VerdictCache implementation meets (memory, Redis, memory in front of Redis).

let server: RedisServer;
let connection: RedisConnection;
let prefixes = 0;
/** A fresh key prefix per cache: tests share one redis-server but never each other's keys. */
const freshPrefix = (): string => `contract-${++prefixes}:`;
const mac = createRedisEntryMac({ key: new Secret(randomBytes(32).toString("hex")), logger: silentLogger });

beforeAll(async () => {
  server = await startRedis();
  connection = createRedisConnection(new Secret(server.url), { logger: silentLogger, name: "contract" });
  expect(await connection.whenReady(10_000)).toBe(true);
});

afterAll(async () => {
  await connection?.close();
  await server?.stop();
});

type Implementation = { name: string; tierAfterSet: CacheTier; create(): VerdictCache };

const implementations: Implementation[] = [
  { name: "memory", tierAfterSet: "memory", create: () => createMemoryVerdictCache() },
  {
    name: "redis",
    tierAfterSet: "redis",
    create: () =>
      createRedisVerdictCache({ redis: connection, mac, keyPrefix: freshPrefix(), logger: silentLogger }),
  },
  {
    name: "tiered",
    tierAfterSet: "memory",
    create: () =>
      createTieredVerdictCache({
        memory: createMemoryVerdictCache(),
        redis: createRedisVerdictCache({
          redis: connection,
          mac,
          keyPrefix: freshPrefix(),
          logger: silentLogger,
        }),
      }),
  },
];

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const FP_A = "fp-a";
const FP_B = "fp-b";

const allowBySignature: CachedVerdict = {
  outcome: "allow",
  via: "signature",
  key: "release-key",
  keyFingerprint: "SHA256:abc+/=",
  decidedAt: 1_760_000_000_123,
};
const allowByIndex: CachedVerdict = {
  outcome: "allow",
  via: "index",
  indexDigest: `sha256:${"f".repeat(64)}`,
  decidedAt: 1_760_000_000_456,
};
const deny: CachedVerdict = { outcome: "deny", reason: "UNTRUSTED_SIGNATURE", decidedAt: 1_760_000_000_789 };

describe.each(implementations)("VerdictCache contract: $name", (impl) => {
  let cache: VerdictCache;
  afterEach(async () => {
    await cache?.close();
  });

  test("a miss is undefined; a stored verdict comes back from the implementation's tier", async () => {
    cache = impl.create();
    expect(await cache.get(FP_A, D1)).toBeUndefined();
    await cache.set(FP_A, D1, allowBySignature, 60);
    expect(await cache.get(FP_A, D1)).toEqual({ verdict: allowBySignature, tier: impl.tierAfterSet });
  });

  test("every verdict shape survives the round trip exactly (JSON-safe), and callers cannot change it", async () => {
    cache = impl.create();
    const minimal: CachedVerdict = { outcome: "allow", via: "signature-artifact", decidedAt: 0 };
    const verdicts = [allowBySignature, allowByIndex, deny, minimal];
    for (const [i, verdict] of verdicts.entries()) await cache.set(FP_A, `sha256:${i}`, verdict, 60);
    for (const [i, verdict] of verdicts.entries()) {
      const hit = await cache.get(FP_A, `sha256:${i}`);
      expect(hit?.verdict).toStrictEqual(verdict);
      expect(JSON.parse(JSON.stringify(hit?.verdict))).toStrictEqual(verdict);
    }
    const hit = await cache.get(FP_A, "sha256:0");
    if (hit) hit.verdict.outcome = "deny";
    expect((await cache.get(FP_A, "sha256:0"))?.verdict.outcome).toBe("allow");
  });

  test("set replaces the verdict of the same (fingerprint, digest)", async () => {
    cache = impl.create();
    await cache.set(FP_A, D1, allowBySignature, 60);
    await cache.set(FP_A, D1, deny, 60);
    expect((await cache.get(FP_A, D1))?.verdict).toEqual(deny);
  });

  test("verdicts are isolated by fingerprint and by digest", async () => {
    cache = impl.create();
    await cache.set(FP_A, D1, allowBySignature, 60);
    await cache.set(FP_B, D2, deny, 60);
    expect(await cache.get(FP_B, D1)).toBeUndefined();
    expect(await cache.get(FP_A, D2)).toBeUndefined();
    expect((await cache.get(FP_A, D1))?.verdict).toEqual(allowBySignature);
    expect((await cache.get(FP_B, D2))?.verdict).toEqual(deny);
  });

  test("a verdict expires after its ttl; others keep their own ttl", async () => {
    cache = impl.create();
    await cache.set(FP_A, D1, allowBySignature, 0.15);
    await cache.set(FP_B, D1, deny, 60);
    expect((await cache.get(FP_A, D1))?.verdict).toEqual(allowBySignature);
    await sleep(250);
    expect(await cache.get(FP_A, D1)).toBeUndefined();
    expect((await cache.get(FP_B, D1))?.verdict).toEqual(deny);
    // Expired verdicts are not counted as dropped.
    expect(await cache.deleteDigest(D1)).toBe(1);
  });

  test("deleteDigest drops the digest under every fingerprint and nothing else", async () => {
    cache = impl.create();
    await cache.set(FP_A, D1, allowBySignature, 60);
    await cache.set(FP_B, D1, deny, 60);
    await cache.set(FP_A, D2, allowByIndex, 60);
    expect(await cache.deleteDigest(D1)).toBe(2);
    expect(await cache.get(FP_A, D1)).toBeUndefined();
    expect(await cache.get(FP_B, D1)).toBeUndefined();
    expect((await cache.get(FP_A, D2))?.verdict).toEqual(allowByIndex);
    expect(await cache.deleteDigest(D1)).toBe(0);
    expect(await cache.deleteDigest(`sha256:${"9".repeat(64)}`)).toBe(0);
    // The digest can be cached again afterwards.
    await cache.set(FP_B, D1, allowBySignature, 60);
    expect((await cache.get(FP_B, D1))?.verdict).toEqual(allowBySignature);
  });
});
